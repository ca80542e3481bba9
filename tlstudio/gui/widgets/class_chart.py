"""Images per class and split, as grouped bars.

Past ``NAMES_UP_TO`` classes the bars are numbered (as the confusion matrix numbers them) rather than
named, since twenty names cannot share one axis; the chart's tooltip lists every number with its name.
"""

from __future__ import annotations

from typing import Optional

import PySide6.QtWidgets  # noqa: F401 - PySide6 before pyqtgraph, so pyqtgraph binds to it
import pyqtgraph as pg
from PySide6.QtWidgets import QWidget

from tlstudio.gui.widgets.confusion_matrix import NAMES_UP_TO
from tlstudio.gui.widgets.plot_style import legend_below, plain_axes

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
        plain_axes(self)
        self.legend = legend_below(self)  # a tall bar can fill any corner
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
        numbered = len(classes) > NAMES_UP_TO
        self.getAxis("bottom").setTicks([[(i, str(i + 1) if numbered else name) for i, name in enumerate(classes)]])
        self.setToolTip("\n".join(f"{i + 1}  {name}" for i, name in enumerate(classes)) if numbered else "")
        self.setXRange(-0.6, len(classes) - 0.4, padding=0)
        top = max([counts[c].get(s, 0) for c in classes for s in splits] or [1])
        self.setYRange(0, top * 1.15, padding=0)

    def heights(self, split: str) -> list[float]:
        bar = self.bars.get(split)
        return [] if bar is None else [float(h) for h in bar.opts["height"]]
