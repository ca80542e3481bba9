"""Compare runs: a sortable table of every run of the project, and the validation curves of the ticked ones.

Above them, when the shown run has a from-scratch baseline (or is one), a plain sentence says what
transfer learning added (``uplift_words``), and both runs are ticked so their curves sit side by side.

The rows and curves come from ``tlstudio.core.runs.comparison`` (``run_table`` / ``curves``), which
reads each run folder defensively: a stopped, failed or damaged run still gets a row saying so.
Each run keeps one colour (by its place in the project's run list) in the table's swatch and in
both plots, so a curve is easy to find in the table. The colours are Okabe and Ito's palette,
which stays distinguishable for colour-blind users; past eight runs the dash pattern changes too.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import PySide6.QtWidgets  # noqa: F401 - PySide6 before pyqtgraph, so pyqtgraph binds to it
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from tlstudio.core.names import printable
from tlstudio.core.runs.project import RunInfo
from tlstudio.core.runs.comparison import curves, run_table

from tlstudio.gui.widgets.per_class_table import NumberItem
from tlstudio.gui.widgets.plot_style import legend_below, plain_axes

PALETTE = [(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (213, 94, 0), (0, 0, 0), (150, 150, 150)]
DASHES = [Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine]
COLUMNS = ("Run", "Status", "Backbone", "Start", "Frozen", "Epochs", "Time", "Accuracy", "Balanced")
TIPS = (
    "Tick a run to draw its validation curves below.",
    "Finished, stopped, failed, interrupted (the app was closed or crashed), or damaged. Hover for details.",
    "The network the run was built on.",
    "Pretrained: started from ImageNet weights (transfer learning). Scratch: random weights, the baseline.",
    "How much of the backbone was frozen: 'all' trains only the new head; 'none' trains everything.",
    "Epochs completed (of those planned, when it stopped early).",
    "How long the run took, from start to the verified model file.",
    "Share of the validation pictures classified correctly (best epoch).",
    "Balanced accuracy: the average of the per-class recalls, so a rare class counts as much as a common one.",
)
RUN_NAME_MIN_WIDTH = 90  # pixels: the tick, the colour and the start of the run's name
DEFAULT_TICKED = 3  # the newest runs are ticked when they first appear


def duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes = int(round(seconds)) // 60
    return f"{minutes} min {int(round(seconds)) % 60:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def freeze_words(depth) -> str:
    depth = "" if depth is None else str(depth)
    if depth == "all":
        return "all (head only)"
    if depth == "none":
        return "none"
    return f"first {depth} stages" if depth else "–"


def _points(fraction: float) -> str:
    return f"{100 * fraction:+.1f} points"


def uplift_words(u: dict) -> str:
    """What the pretrained weights added over training from scratch, in one plain sentence (rich text).

    ``u`` is ``tlstudio.core.runs.baseline.uplift``'s answer; differing settings are named, since they make
    the comparison unfair.
    """
    acc, bal = u["accuracy_uplift"], u["balanced_accuracy_uplift"]
    lead = f"Transfer learning added <b>{_points(acc)}</b>" if acc >= 0 else f"Transfer learning did not help here: <b>{_points(acc)}</b>"
    text = (
        f"{lead} of accuracy (pretrained {u['pretrained_accuracy']:.1%} vs from scratch {u['baseline_accuracy']:.1%}), "
        f"balanced accuracy {_points(bal)} ({u['pretrained_balanced_accuracy']:.1%} vs {u['baseline_balanced_accuracy']:.1%})"
    )
    if u.get("pretrained_seconds") is not None and u.get("baseline_seconds") is not None:
        text += f"; trained in {duration(u['pretrained_seconds'])} vs {duration(u['baseline_seconds'])}"
    text += "."
    if u.get("mismatches"):
        differ = ", ".join(f"{name.replace('_', ' ')} ({html.escape(str(a))} vs {html.escape(str(b))})" for name, (a, b) in u["mismatches"].items())
        text += (
            f"<br>Not quite a fair comparison: the two runs differ in {differ}. "
            "“Train a baseline from scratch” on the pretrained run gives one that differs only in the starting weights."
        )
    return text


def _number(value, text: str) -> QTableWidgetItem:
    return NumberItem(text, float(value) if isinstance(value, (int, float)) else -1.0)  # unknown sorts below every number


def _percent(value) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "–"


def _swatch(colour: tuple[int, int, int]) -> QPixmap:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(*colour))
    return pixmap


def _plot(title: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setTitle(title)
    plot.setLabel("bottom", "epoch")
    plot.setLabel("left", y_label)
    plain_axes(plot)
    plot.showGrid(x=True, y=True, alpha=0.2)
    plot.setMenuEnabled(False)
    plot.setMinimumSize(160, 160)
    return plot


class RunComparisonView(QWidget):
    ticked_changed = Signal()

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.runs: list[RunInfo] = []
        self.rows: list[dict] = []
        self.series: dict = {}
        self.current = ""
        self.uplift_data: Optional[dict] = None  # what the uplift line shows, or None
        self._uplift_pair: tuple[str, str] = ("", "")
        self._ticked: set[str] = set()
        self._seen: set[str] = set()
        self.curves: dict[str, tuple[pg.PlotDataItem, pg.PlotDataItem]] = {}

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in enumerate(TIPS):
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # every column fits: see table_minimum_width
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the run's name gives way, shortened with "…"
        header.setStretchLastSection(False)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.table.itemChanged.connect(self._on_item_changed)

        self.acc_plot = _plot("Validation accuracy", "higher is better")
        self.acc_plot.setYRange(0, 1.02, padding=0)
        self.loss_plot = _plot("Validation loss", "lower is better")
        self.acc_legend = legend_below(self.acc_plot, columns=2)  # one legend for both plots: a run keeps its colour
        plots = QWidget()
        row = QHBoxLayout(plots)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.acc_plot)
        row.addWidget(self.loss_plot)

        self.uplift = QLabel()
        self.uplift.setObjectName("uplift")
        self.uplift.setWordWrap(True)
        self.uplift.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.uplift.setVisible(False)
        self.note = QLabel("Tick runs in the table to compare their validation curves. Click a column title to sort.")
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        split = QSplitter(Qt.Orientation.Vertical)
        split.setObjectName("evaluateCompareSplit")
        split.addWidget(self.table)
        split.addWidget(plots)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.uplift)
        layout.addWidget(self.note)
        layout.addWidget(split, 1)

    def hasHeightForWidth(self) -> bool:
        # The wrapped uplift line would otherwise make the whole view ask for the table's and the plots'
        # full heights, and the step's scroll area would grow it beyond the window (then scroll sideways too).
        return False

    # ------------------------------------------------------------ data in
    def set_runs(self, runs: Sequence[RunInfo], current: str = "") -> None:
        """Every run of the project, oldest first (``Project.list_runs()``); ``current`` is shown in bold."""
        self.runs, self.current = list(runs), current
        ids = [r.id for r in self.runs]
        newest = set(ids[-DEFAULT_TICKED:])
        for run_id in ids:
            if run_id not in self._seen and run_id in newest:
                self._ticked.add(run_id)
        self._seen.update(ids)
        self._ticked &= set(ids)
        folders = [r.files.root for r in self.runs]
        self.rows = run_table(folders)
        self.series = curves(folders, ("val_acc", "val_loss"))
        self._fill_table()
        self._draw()

    def _colour(self, i: int) -> tuple[tuple[int, int, int], Qt.PenStyle]:
        return PALETTE[i % len(PALETTE)], DASHES[(i // len(PALETTE)) % len(DASHES)]

    def _fill_table(self) -> None:
        t = self.table
        t.blockSignals(True)
        t.setSortingEnabled(False)
        t.setRowCount(len(self.runs))
        for i, (run, row) in enumerate(zip(self.runs, self.rows)):
            first = QTableWidgetItem(printable(run.record.name) if run.record.name else run.id)
            first.setData(Qt.ItemDataRole.UserRole, run.id)
            first.setFlags(first.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            first.setCheckState(Qt.CheckState.Checked if run.id in self._ticked else Qt.CheckState.Unchecked)
            first.setData(Qt.ItemDataRole.DecorationRole, _swatch(self._colour(i)[0]))
            tip = f"{run.id}\n{row.get('name') or ''}".strip() + "\nTick to draw its curves."
            if run.id == self.current:
                font = first.font()
                font.setBold(True)
                first.setFont(font)
                tip += "\nThis is the run shown in the other tabs."
            first.setToolTip(tip)
            t.setItem(i, 0, first)
            status = QTableWidgetItem(str(row.get("status", "")))
            status.setToolTip(row.get("message") or str(row.get("status", "")))
            t.setItem(i, 1, status)
            t.setItem(i, 2, QTableWidgetItem(row.get("backbone") or "–"))
            t.setItem(i, 3, QTableWidgetItem(row.get("init") or "–"))
            t.setItem(i, 4, QTableWidgetItem(freeze_words(row.get("freeze_depth"))))
            epochs, planned = row.get("epochs") or 0, row.get("planned_epochs")
            t.setItem(i, 5, _number(epochs, f"{epochs} of {planned}" if planned and planned != epochs else str(epochs)))
            t.setItem(i, 6, _number(row.get("seconds"), duration(row.get("seconds"))))
            t.setItem(i, 7, _number(row.get("accuracy"), _percent(row.get("accuracy"))))
            t.setItem(i, 8, _number(row.get("balanced_accuracy"), _percent(row.get("balanced_accuracy"))))
        t.setSortingEnabled(True)
        t.blockSignals(False)
        t.setMinimumWidth(self.table_minimum_width())

    def table_minimum_width(self) -> int:
        """Every column but the run's name at its full width, and a part of the name."""
        t, header = self.table, self.table.horizontalHeader()
        others = sum(max(header.sectionSizeHint(c), t.sizeHintForColumn(c)) for c in range(1, t.columnCount()))
        return RUN_NAME_MIN_WIDTH + others + t.verticalScrollBar().sizeHint().width() + 2 * t.frameWidth()

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 0:
            return
        run_id = item.data(Qt.ItemDataRole.UserRole)
        if item.checkState() == Qt.CheckState.Checked:
            self._ticked.add(run_id)
        else:
            self._ticked.discard(run_id)
        self._draw()
        self.ticked_changed.emit()

    def show_uplift(self, u: Optional[dict], hint: str = "") -> None:
        """The uplift of a pretrained run over its baseline (``uplift``'s dict), or ``hint`` when there is none."""
        self.uplift_data = u
        text = uplift_words(u) if u is not None else hint
        self.uplift.setText(text)
        self.uplift.setVisible(bool(text))
        if u is None:
            self.uplift.setToolTip("")
            return
        pair = (Path(u["pretrained_run"]).name, Path(u["baseline_run"]).name)
        self.uplift.setToolTip(f"Pretrained run: {pair[0]}\nIts from-scratch baseline: {pair[1]}")
        if pair != self._uplift_pair:  # tick both once; the user may untick them afterwards
            self._uplift_pair = pair
            for run_id in pair:
                self.set_ticked(run_id, True)

    # ------------------------------------------------------------ curves
    def _draw(self) -> None:
        for acc, loss in self.curves.values():
            self.acc_plot.removeItem(acc)
            self.loss_plot.removeItem(loss)
        self.curves = {}
        epochs = np.asarray(self.series.get("epochs", []), dtype=float)
        longest = 0
        for i, (run, series) in enumerate(zip(self.runs, self.series.get("runs", []))):
            acc = np.array([np.nan if v is None else v for v in series.get("val_acc", [])], dtype=float)
            loss = np.array([np.nan if v is None else v for v in series.get("val_loss", [])], dtype=float)
            if run.id not in self._ticked or not np.isfinite(acc).any():
                continue
            longest = max(longest, int(np.flatnonzero(np.isfinite(acc))[-1]) + 1)
            colour, dash = self._colour(i)
            kw = dict(pen=pg.mkPen(colour, width=2, style=dash), symbol="o", symbolSize=5, symbolBrush=colour, symbolPen=None, connect="finite")
            self.curves[run.id] = (
                self.acc_plot.plot(epochs, acc, name=_short(run, self.rows[i].get("init")), **kw),
                self.loss_plot.plot(epochs, loss, **kw),
            )
        self.acc_plot.setYRange(0, 1.02, padding=0)  # accuracies compare best on the full scale
        for plot in (self.acc_plot, self.loss_plot):
            axis = plot.getAxis("bottom")
            if 0 < longest <= 15:
                axis.setTickSpacing(1, 1)  # whole epochs, not 1.5
            else:
                axis.setTickSpacing()

    # ------------------------------------------------------------ for the panel and tests
    def run_ids(self) -> list[str]:
        """The runs in the table, top to bottom as shown."""
        return [self.table.item(r, 0).data(Qt.ItemDataRole.UserRole) for r in range(self.table.rowCount())]

    def ticked(self) -> list[str]:
        return [r.id for r in self.runs if r.id in self._ticked]

    def set_ticked(self, run_id: str, on: bool) -> None:
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item.data(Qt.ItemDataRole.UserRole) == run_id:
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)  # itemChanged redraws

    def plotted(self) -> dict[str, int]:
        """{run id: epochs with a value on its accuracy curve} for every drawn run."""
        out = {}
        for run_id, (acc, _loss) in self.curves.items():
            _, y = acc.getData()
            out[run_id] = 0 if y is None else int(np.isfinite(y).sum())
        return out


def _short(run: RunInfo, init: Optional[str] = None) -> str:
    """A legend entry: the run's name, or its time and backbone without the date; a from-scratch run says so."""
    parts = run.id.split("_", 2)
    name = f"{parts[1].replace('-', ':')} {parts[2]}" if len(parts) == 3 else run.id
    if run.record.name:
        name = printable(run.record.name)
    return f"{name} (from scratch)" if init == "scratch" else name
