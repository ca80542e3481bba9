"""The Evaluate step's two buttons about the shown run: train its from-scratch baseline, export its HTML report.

The baseline is not trained here: ``baseline_requested`` carries its config (the run's own
``config.json`` through ``baseline_config``) and the window hands it to the Train step, where the
live curves, Pause and Stop work as for any run. Before that, a short trial of the whole network on
this computer (a background job) gives an estimate of how long it would take, and the user confirms. The report is written by a background job; a
failure reaches the notifier through ``Jobs``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QMessageBox, QPushButton, QWidget

from tlstudio.core.runs import project as pj
from tlstudio.core.runs.baseline import baseline_config
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.runs.project import RunInfo
from tlstudio.core.engine.speed_probe import SpeedEstimate

from tlstudio.gui.phase_words import duration
from tlstudio.gui.studio import Studio
from tlstudio.gui.workers import Job, reserve_a_core_for_the_window
from tlstudio.gui.start_folder import REPORT

log = logging.getLogger("tlstudio.gui")

BASELINE_TIP = (
    "Train this run's settings again from random weights instead of ImageNet ones, with everything trainable. "
    "The difference between the two runs is what transfer learning added; Compare runs shows it."
)
REPORT_TIP = "Save one web page about this run (curves, confusion matrix, per-class figures, worst mistakes) to send to a colleague."


class RunActions(QWidget):
    baseline_requested = Signal(object)  # the TrainConfig of the baseline to train
    report_written = Signal(str)  # the path of the report

    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.run: Optional[RunInfo] = None
        self.report_job: Optional[Job] = None
        self.ask_report_path: Callable[[str], str] = self._ask_report_path  # tests replace the dialog
        # (title, question) -> bool; the window's own confirm when this sits in one, tests answer it directly
        self.confirm: Callable[[str, str], bool] = self._ask
        self.estimate_job: Optional[Job] = None
        self.estimate: Optional[SpeedEstimate] = None  # the last baseline estimate shown

        self.baseline_button = QPushButton("Train a Baseline from Scratch")
        self.baseline_button.clicked.connect(lambda _checked=False: self.train_baseline())
        self.report_button = QPushButton("Export Report…")
        self.report_button.setToolTip(REPORT_TIP)
        self.report_button.clicked.connect(lambda _checked=False: self.choose_report_path())
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.baseline_button)
        row.addWidget(self.report_button)

        studio.jobs.live_changed.connect(self._update)
        self._update()

    def set_run(self, run: Optional[RunInfo]) -> None:
        self.run = run
        self._update()

    def _update(self) -> None:
        run = self.run
        if run is None:
            why = "Choose a finished run first."
        elif run.config is None or not run.config.pretrained:
            why = "This run started from random weights already: it is a baseline."
        elif run.record.status != pj.FINISHED or not run.metrics:
            why = "The run has to finish training first."
        elif self.studio.jobs.busy("train"):
            why = "Wait until the training that is running ends."
        elif self.estimate_job is not None:
            why = "Measuring how long the baseline would take…"
        else:
            why = ""
        self.baseline_button.setEnabled(not why)
        self.baseline_button.setToolTip(BASELINE_TIP + (f"\n\n{why}" if why else ""))
        self.report_button.setEnabled(run is not None and self.report_job is None)

    # ------------------------------------------------------------ baseline
    def train_baseline(self) -> Optional[TrainConfig]:
        """Measure how long the shown run's from-scratch baseline would take; once the user agrees, ask for it to be trained.

        Returns the baseline's config (the estimate and the question follow from a background job), or None."""
        run = self.run
        if run is None or not self.baseline_button.isEnabled():
            return None
        try:
            source = TrainConfig.from_json(run.files.config.read_text(encoding="utf-8"))
            config = baseline_config(source)
        except UserError as exc:
            self.studio.notifier.exception(exc, "Training a baseline from scratch")
            return None
        except (OSError, ValueError, TypeError) as exc:
            problem = UserError(f"the run's settings '{run.files.config}' could not be read ({exc}). Train the run again.")
            self.studio.notifier.exception(problem, "Training a baseline from scratch")
            return None
        classes, pictures = self._classes_and_pictures(config, run)

        def work(on_event, stop):
            from tlstudio.core.engine.speed_probe import measure_training_speed

            reserve_a_core_for_the_window()
            return measure_training_speed(config, classes, pictures, stop)

        job = self.studio.jobs.start("baseline estimate", "Measuring how long the baseline would take", work)
        self.estimate_job = job
        job.succeeded.connect(lambda estimate: self._ask_to_train(config, estimate))
        job.finished.connect(self._on_estimate_finished)
        self._update()
        return config

    def _classes_and_pictures(self, config: TrainConfig, run: RunInfo) -> tuple[int, int]:
        """The classes and training pictures of the baseline's folder: the scanned one's when it is that folder."""
        index = self.studio.index
        classes = len((run.metrics or {}).get("classes") or run.record.summary.get("classes") or ()) or 2
        if index is not None and Path(index.root) == Path(config.data_dir):
            return len(index.classes), len(index.split("train"))
        return classes, 0

    def _ask_to_train(self, config: TrainConfig, estimate: SpeedEstimate) -> None:
        self.estimate = estimate
        if self.studio.jobs.busy("train"):  # a run was started while the trial ran: one run at a time
            return
        if self.confirm("Train a baseline from scratch?", baseline_question(config, estimate)):
            self.baseline_requested.emit(config)

    def _on_estimate_finished(self) -> None:
        self.estimate_job = None
        self._update()

    def _ask(self, title: str, question: str) -> bool:
        window = self.window()
        asked = getattr(window, "confirm", None) if window is not self else None
        if callable(asked):
            return bool(asked(title, question))
        answer = QMessageBox.question(self, title, question, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    # ------------------------------------------------------------ report
    def choose_report_path(self) -> None:
        if self.run is None:
            return
        path = self.ask_report_path(str(Path(self.studio.dialog_folder(REPORT)) / f"{self.run.id}-report.html"))
        if path:
            self.export_report(path)

    def _ask_report_path(self, start: str) -> str:
        path, _ = QFileDialog.getSaveFileName(self, "Export a report of the run", start, "Web page (*.html)")
        return path

    def export_report(self, path: str | Path) -> Optional[Job]:
        """Write the shown run's report to ``path`` (``.html`` added when missing) in the background."""
        if self.run is None or self.report_job is not None:
            return None
        source, dest = self.run.files.root, Path(path)
        if dest.suffix.lower() not in (".html", ".htm"):
            dest = dest.with_name(dest.name + ".html")

        def work(on_event, stop):
            from tlstudio.core.report.html import write_report  # reads pictures for the thumbnails: never on the GUI thread

            return str(write_report(source, dest))

        job = self.studio.jobs.start("report", "Writing the report", work)
        self.report_job = job
        job.succeeded.connect(self._on_report_written)
        job.finished.connect(self._on_report_finished)
        self._update()
        return job

    def _on_report_written(self, path: str) -> None:
        self.studio.remember_folder(REPORT, path)  # the next report is proposed there
        log.info("Report written to %s", path)
        self.report_written.emit(path)

    def _on_report_finished(self) -> None:
        self.report_job = None
        self._update()


def baseline_question(config: TrainConfig, estimate: SpeedEstimate) -> str:
    """The question before a baseline: how long, on what basis, and what it is for."""
    speed = f"{estimate.images_per_s:,.1f} images/s"
    basis = (
        f"A short trial of this network on this computer, with every layer training, took {speed}. "
        "Decoding the pictures and checking the validation pictures after each epoch come on top."
    )
    if estimate.seconds is not None:
        how_long = (
            f"Training every layer of {config.backbone} from random weights, {estimate.pictures:,} pictures "
            f"for {estimate.epochs} epochs, takes about {duration(estimate.seconds)}."
        )
    else:
        how_long = f"Training every layer of {config.backbone} from random weights for {estimate.epochs} epochs goes at about {speed}."
    return f"{how_long}\n\n{basis}\n\nThe window stays usable meanwhile, and Stop ends it at any time. Start it?"
