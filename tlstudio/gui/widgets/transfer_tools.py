"""The Evaluate step's "Adapt, shrink, combine" page: three things to do with finished runs.

- Adapt to new pictures: the shown run, adapted to the project's unlabelled new pictures (Data step),
  becomes a new run of the project (``core.adapt``);
- Make it smaller: a smaller backbone trained on the shown run's softened answers (``engine.distill``);
  the student is trained on the Train step (live curves, pause, stop, resume), like any run, and its
  comparison with its teacher (accuracy, size, speed) is measured here once it has finished;
- Combine runs: the ticked runs become one model file that averages their probabilities (``inference.ensemble``).

Each is a ``JobBox``: a background job with progress and Stop; nothing here blocks the window.
"""

from __future__ import annotations

import html
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QListWidget, QListWidgetItem, QPushButton, QSpinBox, QTabWidget, QVBoxLayout, QWidget

from tlstudio.core.catalog.backbones import get_backbone, list_backbones
from tlstudio.core.errors import UserError
from tlstudio.core.runs.project import RunInfo
from tlstudio.gui import transfer_work
from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.job_box import JobBox

ADAPT_METHODS = (
    ("coral", "Align the features, keep the network as it is (recommended)"),
    ("adabn+coral", "Re-estimate the picture statistics, then align the features"),
    ("adabn", "Re-estimate the picture statistics only (AdaBN)"),
)


def narrow_combo() -> QComboBox:
    """A drop-down whose long item texts do not widen the page (the chosen one is elided)."""
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(16)
    return combo


def usable(run: Optional[RunInfo]) -> bool:
    """A run these actions can start from: it kept a trained checkpoint and was evaluated (a model file is not needed)."""
    return run is not None and run.files.best.is_file() and bool(run.metrics)


class TransferTools(QWidget):
    train_requested = Signal(object)  # a TrainConfig to train on the Train step (the smaller model)

    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.adapt = self._adapt_box()
        self.smaller = self._smaller_box()
        self.combine = self._combine_box()
        self.pages = QTabWidget()  # one action at a time: three side by side would not fit a laptop screen
        for box in (self.adapt, self.smaller, self.combine):
            self.pages.addTab(box, box.title())
        QVBoxLayout(self).addWidget(self.pages)
        studio.current_run_changed.connect(lambda _id: self.refresh())
        studio.runs_changed.connect(self.refresh)
        studio.new_pictures_changed.connect(lambda _f: self.refresh())
        self.refresh()

    # ------------------------------------------------------------ the three boxes
    def _adapt_box(self) -> JobBox:
        box = JobBox(
            "Adapt to new pictures",
            "New pictures from another microscope, camera or season can look different from the training ones. "
            "Adapting uses them without labels and makes a new run; the one shown stays as it is.",
            "Adapt", self.studio.jobs, "adapt", self._prepare_adapt, transfer_work.describe_adaptation,
        )
        self.method = narrow_combo()
        for key, words in ADAPT_METHODS:
            self.method.addItem(words, key)
        box.add_row("How:", self.method, "Both steps fix their settings in advance; the new pictures' labels are never needed.")
        box.succeeded.connect(self._on_new_run)
        return box

    def _smaller_box(self) -> JobBox:
        box = JobBox(
            "Make it smaller",
            "Train a smaller, faster backbone to give the shown run's answers (knowledge distillation). "
            "It trains on the Train step; come back here to compare it with its teacher.",
            "Compare with its teacher", self.studio.jobs, "distill compare", self._prepare_compare, transfer_work.describe_distillation,
        )
        self.student = narrow_combo()
        for spec in list_backbones():
            if spec.source == "bundled":
                self.student.addItem(f"{spec.title}  ({spec.params_m:.1f} M parameters)", spec.name)
        self.trained_stages = QSpinBox()
        self.trained_stages.setRange(0, 9)
        self.trained_stages.setValue(3)
        self.trained_stages.setToolTip("How many of the student's last stages fine-tune (0: only its new head).")
        box.add_row("Smaller backbone:", self.student)
        box.add_row("Stages that train:", self.trained_stages)
        self.train_student = QPushButton("Train the smaller model…")
        self.train_student.clicked.connect(self.request_student)
        box.form.addWidget(self.train_student)
        return box

    def _combine_box(self) -> JobBox:
        box = JobBox(
            "Combine runs",
            "Tick two or more finished runs of the same classes: one model file averages their answers. "
            "Runs with different backbones often make fewer mistakes together.",
            "Combine", self.studio.jobs, "ensemble", self._prepare_combine, transfer_work.describe_ensemble,
        )
        self.members = QListWidget()
        box.form.addWidget(self.members)
        return box

    # ------------------------------------------------------------ state
    def shown_run(self) -> Optional[RunInfo]:
        return self.studio.run(self.studio.current_run)

    def refresh(self) -> None:
        run = self.shown_run()
        finished = usable(run)
        folder = self.studio.new_pictures_dir
        self.adapt.start_button.setEnabled(finished and bool(folder) and not self.adapt.is_running())
        self.adapt.start_button.setToolTip("" if folder else "Choose a folder of new pictures on the Data step first.")
        self.train_student.setEnabled(finished)
        self.smaller.start_button.setEnabled(run is not None and transfer_work.teacher_of(run) is not None and not self.smaller.is_running())
        self._list_members()

    def _list_members(self) -> None:
        ticked = self.ticked_runs()
        self.members.clear()
        for run in reversed(self.studio.runs()):
            if not usable(run):
                continue
            item = QListWidgetItem(run.title())
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if run.id in ticked else Qt.CheckState.Unchecked)
            item.setData(Qt.ItemDataRole.UserRole, run.id)
            self.members.addItem(item)

    def ticked_runs(self) -> list[str]:
        items = (self.members.item(i) for i in range(self.members.count()))
        return [it.data(Qt.ItemDataRole.UserRole) for it in items if it.checkState() == Qt.CheckState.Checked]

    def set_ticked(self, run_ids) -> None:
        for i in range(self.members.count()):
            item = self.members.item(i)
            item.setCheckState(Qt.CheckState.Checked if item.data(Qt.ItemDataRole.UserRole) in run_ids else Qt.CheckState.Unchecked)

    # ------------------------------------------------------------ actions
    def _require_run(self) -> RunInfo:
        run = self.shown_run()
        if not usable(run):
            raise UserError("choose a finished run at the top of the Evaluate step first.")
        return run

    def _prepare_adapt(self):
        run = self._require_run()
        return transfer_work.adapt_work(self.studio.ensure_project(), run, self.studio.new_pictures_dir, self.method.currentData())

    def request_student(self) -> None:
        """The student's config goes to the Train step (through ``train_requested``)."""
        try:
            run = self._require_run()
            spec = get_backbone(self.student.currentData())
            trained = min(self.trained_stages.value(), len(spec.stages))
            config = transfer_work.student_config(self.studio.ensure_project(), run, spec.name, trained)
        except UserError as exc:
            self.smaller.status.setText(html.escape(str(exc)))
            return
        self.train_requested.emit(config)

    def _prepare_compare(self):
        run = self.shown_run()
        if run is None or transfer_work.teacher_of(run) is None:
            raise UserError("choose a run made by “Train the smaller model” at the top of the Evaluate step first.")
        return transfer_work.compare_work(run)

    def _prepare_combine(self):
        ticked = self.ticked_runs()
        if len(ticked) < 2:
            raise UserError("tick at least two finished runs to combine.")
        project = self.studio.ensure_project()
        return transfer_work.combine_work(project, [project.load_run(i) for i in ticked])

    def _on_new_run(self, result) -> None:
        self.studio.runs_changed.emit()
        run_id = transfer_work.new_run_id(result)
        if run_id:
            self.studio.set_current_run(run_id)
