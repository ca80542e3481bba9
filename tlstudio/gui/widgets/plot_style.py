"""What every plot of the app shares: its legend sits below the plot area, and the axes read in plain units.

The legend goes under the x axis, in the plot's own layout, rather than in a corner of the data:
curves can pass through any corner (a noisy batch loss, an accuracy that starts high), so no corner is
safe, and a legend below costs one line of height and never covers a point.
"""

from __future__ import annotations

import PySide6.QtWidgets  # noqa: F401 - PySide6 before pyqtgraph, so pyqtgraph binds to it
import pyqtgraph as pg

LEGEND_ROW = 4  # PlotItem's layout: 0 title, 1 top axis, 2 the plot, 3 bottom axis


def legend_below(plot: pg.PlotWidget, columns: int = 3) -> pg.LegendItem:
    """A legend under the plot's x axis; ``plot(name=...)`` adds its entries there."""
    item = plot.getPlotItem()
    legend = pg.LegendItem(offset=None, colCount=columns, horSpacing=12)
    item.layout.addItem(legend, LEGEND_ROW, 0, 1, 3)  # under the y axis too: the legend gets the plot's whole width
    item.legend = legend  # PlotItem.addItem puts named curves in ``item.legend``
    return legend


def plain_axes(plot: pg.PlotWidget) -> None:
    """No automatic SI prefix: "epoch (x0.001)" or "loss (x1e-3)" would puzzle anyone."""
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)
