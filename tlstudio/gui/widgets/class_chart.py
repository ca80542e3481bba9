"""Images per class and split, as grouped bars."""

from __future__ import annotations

from typing import Optional

import PySide6.QtWidgets  # noqa: F401 - PySide6 before pyqtgraph, so pyqtgraph binds to it
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

SPLIT_COLOURS = {"train": (66, 133, 244), "val": (244, 160, 0), "test": (120, 120, 120)}
SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}


class ClassChart(pg.PlotWidget):
    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent=parent, background="w")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.getPlotItem().setTitle("Images per class")
        self.setLabel("left", "images")
        self.getPlotItem().showGrid(y=True, alpha=0.2)
        self.legend = self.addLegend(offset=(-10, 10))
        self.bars: dict[str, pg.BarGraphItem] = {}

    def set_counts(self, classes: list[str], counts: dict[str, dict[str, int]]) -> None:
        """``counts`` is ``DatasetIndex.counts()``: {class: {split: n}}; empty splits are left out."""
        for item in self.bars.values():
            self.removeItem(item)
        self.legend.clear()
        self.bars = {}
        splits = [s for s in ("train", "val", "test") if any(counts[c].get(s, 0) for c in classes)]
        width = 0.8 / max(1, len(splits))
        for k, split in enumerate(splits):
            xs = [i - 0.4 + width * (k + 0.5) for i in range(len(classes))]
            heights = [counts[c].get(split, 0) for c in classes]
            bar = pg.BarGraphItem(x=xs, height=heights, width=width * 0.9, brush=pg.mkBrush(*SPLIT_COLOURS[split]), pen=None)
            self.addItem(bar)
            self.legend.addItem(bar, SPLIT_NAMES[split])
            self.bars[split] = bar
        self.getAxis("bottom").setTicks([[(i, name) for i, name in enumerate(classes)]])
        self.setXRange(-0.6, len(classes) - 0.4, padding=0)
        top = max([counts[c].get(s, 0) for c in classes for s in splits] or [1])
        self.setYRange(0, top * 1.15, padding=0)

    def heights(self, split: str) -> list[float]:
        bar = self.bars.get(split)
        return [] if bar is None else [float(h) for h in bar.opts["height"]]
