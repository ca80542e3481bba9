"""The strategy sweep view: which way of transferring works best on the project's pictures.

Self-contained: give it the Project (and the studio's Jobs, and the scanned index when there is one).
It lists the planned members with their estimated time and a checkbox each (uncheck slow ones),
Start/Stop, a chart of validation balanced accuracy against training time, the table and the
recommendation. The estimate and the sweep run in ``gui.sweep_worker`` jobs; nothing here blocks.
"""

from __future__ import annotations

import math
from typing import Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from tlstudio.core.errors import UserError
from tlstudio.core.runs import sweep
from tlstudio.core.runs.sweep_report import COLUMNS, table_rows
from tlstudio.gui import sweep_worker


class SweepView(QWidget):
    sweep_finished = Signal(object)  # the SweepRecord, also when stopped
    estimated = Signal()

    def __init__(self, project, jobs=None, index=None, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.project, self.jobs, self.index = project, jobs, index
        self.members: list[sweep.SweepMember] = []
        self.estimates: dict[str, float] = {}
        self.results: list[sweep.MemberResult] = []
        self.record: Optional[sweep.SweepRecord] = None
        self.job = None
        self._build()

    # ------------------------------------------------------------ layout
    def _build(self) -> None:
        self.intro = QLabel("Train each way of transferring on these pictures, cheapest first, and see which is worth its time. "
                            "Uncheck the ones that would take too long.")
        self.intro.setWordWrap(True)
        self.member_list = QListWidget()
        self.plan_button = QPushButton("Plan and estimate")
        self.plan_button.clicked.connect(lambda: self.plan())
        self.start_button, self.stop_button = QPushButton("Start sweep"), QPushButton("Stop")
        self.start_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        self.status = QLabel("")
        self.chart = pg.PlotWidget()
        self.chart.setLabel("bottom", "training time (s, log scale)")
        self.chart.setLabel("left", "validation balanced accuracy")
        self.chart.setLogMode(x=True, y=False)
        self.scatter = pg.ScatterPlotItem(size=10)
        self.chart.addItem(self.scatter)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.recommendation = QLabel("")
        self.recommendation.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.plan_button)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        for w in (self.intro, self.member_list):
            layout.addWidget(w)
        layout.addLayout(buttons)
        layout.addWidget(self.chart, 2)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.recommendation)

    def set_project(self, project, index=None) -> None:
        """Another project (or its data scanned again): the plan, estimates and results start over."""
        if self.job is not None:
            return  # a sweep or estimate is running on the old one: the view follows once it has ended
        self.project, self.index = project, index
        self.members, self.estimates, self.results, self.record = [], {}, [], None
        self.member_list.clear()
        self._show([], None)
        self.status.setText("")
        self.start_button.setEnabled(False)

    # ------------------------------------------------------------ planning
    def plan(self, skip=("scratch",), epochs: int = sweep.SWEEP_EPOCHS) -> None:
        """List the members for the project's settings and measure their estimated time (in a job)."""
        try:
            self.members = sweep.plan_sweep(self.project.train_config(), skip, epochs)
        except UserError as exc:
            self.status.setText(str(exc))
            return
        self.estimates = {}
        self._list_members()
        if self.job is not None or self.project is None:
            return
        self.start_button.setEnabled(False)
        self.plan_button.setEnabled(False)
        self.status.setText("Measuring how long each would take...")
        self.job = sweep_worker.start(self.jobs, "sweep estimate", "Estimating the strategy sweep",
                                      sweep_worker.estimate_work(self.project, self.members, self.index))
        self.job.succeeded.connect(self._on_estimated)
        self.job.finished.connect(self._on_job_finished)

    def _list_members(self) -> None:
        self.member_list.clear()
        for m in self.members:
            seconds = self.estimates.get(m.name)
            item = QListWidgetItem(f"{m.title}" + (f"  (about {_duration(seconds)})" if seconds is not None else ""))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            item.setData(Qt.ItemDataRole.UserRole, m.name)
            self.member_list.addItem(item)

    def _on_estimated(self, result: sweep_worker.Estimated) -> None:
        self.index = result.index
        self.estimates = {e.name: e.seconds for e in result.estimates}
        checked = self.checked_names()
        self._list_members()
        for i in range(self.member_list.count()):
            item = self.member_list.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) in checked else Qt.CheckState.Unchecked)
        self.status.setText(f"About {_duration(sum(self.estimates.values()))} in all (an estimate from a short trial).")
        self.estimated.emit()

    def checked_names(self) -> set[str]:
        items = (self.member_list.item(i) for i in range(self.member_list.count()))
        return {it.data(Qt.ItemDataRole.UserRole) for it in items if it.checkState() == Qt.CheckState.Checked}

    def set_checked(self, name: str, checked: bool) -> None:
        for i in range(self.member_list.count()):
            item = self.member_list.item(i)
            if item.data(Qt.ItemDataRole.UserRole) == name:
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    # ------------------------------------------------------------ running
    def start(self) -> None:
        chosen = [m for m in self.members if m.name in self.checked_names()]
        if not chosen or self.index is None or self.job is not None:
            return
        estimates = [sweep.MemberEstimate(m.name, self.estimates[m.name]) for m in chosen if m.name in self.estimates]
        self.results = [sweep.MemberResult(m.name, m.kind, m.title, estimated_seconds=self.estimates.get(m.name)) for m in chosen]
        self.record = None
        self._show(self.results, None)
        self.start_button.setEnabled(False)
        self.plan_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.job = sweep_worker.start(self.jobs, "sweep", "Strategy sweep", sweep_worker.sweep_work(self.project, chosen, self.index, estimates))
        self.job.event.connect(self._on_event)
        self.job.succeeded.connect(self._on_swept)
        self.job.finished.connect(self._on_job_finished)

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()
            self.status.setText("Stopping after the current batch...")

    def _on_event(self, event) -> None:
        if isinstance(event, sweep.MemberStarted):
            self.status.setText(f"Training {event.index + 1} of {event.total}: {self.results[event.index].title}")
        elif isinstance(event, sweep.MemberEnded):
            self.results = [event.result if r.name == event.result.name else r for r in self.results]
            self._show(self.results, sweep.recommend(self.results))

    def _on_swept(self, record: sweep.SweepRecord) -> None:
        self.record, self.results = record, list(record.members)
        self._show(record.members, record.recommendation)
        self.status.setText("Stopped: the finished members are kept." if record.stopped else "Done.")
        self.sweep_finished.emit(record)

    def _on_job_finished(self) -> None:
        self.job = None
        self.start_button.setEnabled(bool(self.members) and self.index is not None)
        self.plan_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    # ------------------------------------------------------------ showing
    def _show(self, results, rec) -> None:
        points = sweep.chart_points(results)
        self.scatter.setData([math.log10(max(p.seconds, 1e-3)) for p in points], [p.val_balanced_accuracy for p in points],
                             data=[p.name for p in points])
        rows = table_rows(results)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(value))
        self.recommendation.setText(sweep.recommendation_sentence(rec, results) if rec is not None else "")

    def chart_values(self) -> list[tuple[str, float, float]]:
        """(member, seconds, balanced accuracy) as the chart shows them."""
        xs, ys = self.scatter.getData()
        names = self.scatter.data["data"]
        return [(str(n), 10 ** float(x), float(y)) for n, x, y in zip(names, xs, ys)]


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
