"""Live loss and accuracy curves that never slow training down.

Curves are created once. New values go into growing numpy buffers (cheap, on arrival);
a QTimer a few times a second hands the dirty buffers to ``setData``. So a fast feature
loop sending many batch values costs a handful of redraws per second, not one per value.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import PySide6.QtWidgets  # noqa: F401 - PySide6 before pyqtgraph, so pyqtgraph binds to it
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QWidget

from tlstudio.gui.widgets.plot_style import legend_below, plain_axes

REDRAW_MS = 250
TRAIN, VAL, BATCH = (66, 133, 244), (244, 120, 0), (160, 180, 220)


class Series:
    """x/y values in a numpy buffer that doubles when full."""

    def __init__(self, capacity: int = 256):
        self.x = np.empty(capacity)
        self.y = np.empty(capacity)
        self.n = 0

    def append(self, x: float, y: float) -> None:
        if self.n == len(self.x):
            self.x = np.resize(self.x, 2 * self.n)
            self.y = np.resize(self.y, 2 * self.n)
        self.x[self.n], self.y[self.n] = x, y
        self.n += 1

    def clear(self) -> None:
        self.n = 0

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x[: self.n], self.y[: self.n]


def _plot(title: str, y_label: str, legend_columns: int) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setTitle(title)
    plot.setLabel("bottom", "epoch")
    plot.setLabel("left", y_label)
    plain_axes(plot)  # during the first epoch the x axis runs 0.15…0.4: still epochs, not "x0.001"
    plot.showGrid(x=True, y=True, alpha=0.2)
    legend_below(plot, legend_columns)  # a noisy batch loss can cross any corner of the plot
    plot.setMenuEnabled(False)
    plot.setMinimumSize(160, 160)  # let the window be narrow; the plots scale
    item = plot.getPlotItem()
    item.setClipToView(True)
    return plot


class LivePlots(QWidget):
    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        # Short titles: a plot cannot get narrower than its title, and the window may be narrow.
        # Two legend entries a line: three would make a plot wider than a narrow window gives it.
        self.loss_plot = _plot("Loss", "lower is better", 2)
        self.acc_plot = _plot("Accuracy", "higher is better", 2)
        self.acc_plot.setYRange(0, 1.02, padding=0)

        def curve(plot, name, colour, width=2, symbol="o", **kw):
            return plot.plot([], [], name=name, pen=pg.mkPen(colour, width=width), symbol=symbol, symbolSize=6, symbolBrush=colour, symbolPen=None, **kw)

        self.curves = {
            "batch_loss": curve(self.loss_plot, "batches", BATCH, 1, None),
            "train_loss": curve(self.loss_plot, "training", TRAIN),
            "val_loss": curve(self.loss_plot, "validation", VAL),
            "train_acc": curve(self.acc_plot, "training", TRAIN),
            "val_acc": curve(self.acc_plot, "validation", VAL),
        }
        self.curves["batch_loss"].setDownsampling(auto=True, method="peak")
        self.series = {name: Series() for name in self.curves}
        self._dirty: set[str] = set()

        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self.flush)
        self.timer.start()

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.loss_plot)
        layout.addWidget(self.acc_plot)

    # ------------------------------------------------------------ data in (cheap)
    def add_step(self, x: float, loss: float) -> None:
        """One batch's loss at fractional epoch ``x`` (0.5 = half-way through the first epoch)."""
        self._add("batch_loss", x, loss)

    def add_epoch(self, epoch: int, train_loss: float, train_acc: float, val_loss: float, val_acc: float) -> None:
        for name, value in (("train_loss", train_loss), ("train_acc", train_acc), ("val_loss", val_loss), ("val_acc", val_acc)):
            self._add(name, float(epoch), value)

    def load_history(self, rows: list[dict]) -> None:
        """A saved run's history.jsonl rows."""
        self.clear()
        for row in rows:
            self.add_epoch(row["epoch"], row["train_loss"], row["train_acc"], row["val_loss"], row["val_acc"])
        self.flush()

    def clear(self) -> None:
        for name, series in self.series.items():
            series.clear()
            self._dirty.add(name)
        self.flush()

    def _add(self, name: str, x: float, y: float) -> None:
        self.series[name].append(x, y)
        self._dirty.add(name)

    # ------------------------------------------------------------ drawing (a few times a second)
    def flush(self) -> None:
        for name in self._dirty:
            x, y = self.series[name].view()
            self.curves[name].setData(x, y)
        self._dirty.clear()

    def points(self, name: str) -> int:
        """How many points the curve ``name`` shows now."""
        x, _ = self.curves[name].getData()
        return 0 if x is None else len(x)
