"""Step 3, Train: settings, Start / Pause / Stop, live curves, speed and time left, and a log of what happens."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QShowEvent, QTextCursor
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.catalog import weights
from tlstudio.core.catalog.backbones import get_backbone
from tlstudio.core.runs import project as pj
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.engine.dataset_actions import PlannedWarning, saved_warnings
from tlstudio.core.engine.plan import PlanMade
from tlstudio.core.events import EpochEnded, Message, PhaseStarted, Progress, StepEnded
from tlstudio.core.names import printable
from tlstudio.core.report.fit_report import diagnosis_sentences, selection_sentence

from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.live_plots import LivePlots
from tlstudio.gui.widgets.run_picker import RunPicker
from tlstudio.gui.widgets.train_settings import TrainSettings
from tlstudio.gui.garbage import freeze_long_lived_objects
from tlstudio.gui.workers import Job, reserve_a_core_for_the_window
from tlstudio.gui.widgets.calm_progress import CalmProgressBar
from tlstudio.gui.phase_words import PHASE_TEXT, PHASE_UNIT, duration, phase_line, phase_name, time_left

__all__ = ["PHASE_TEXT", "TrainPanel", "duration", "missing_weights"]

STOPPING = "Stopping after the current batch…"


def missing_weights(config: TrainConfig) -> str:
    """Why ``config`` cannot start on this computer for want of its backbone's weights, or ''."""
    if not config.pretrained:
        return ""
    try:
        spec = get_backbone(config.backbone)
    except UserError:
        return ""  # an unknown name: preparing the run says so, with the names it knows
    if weights.availability(spec) != weights.NEEDS_DOWNLOAD:
        return ""
    return (
        f"The ImageNet weights of {spec.title} are not on this computer, so training cannot start. "
        "Download or import them on the Model step, or choose a backbone whose weights are here."
    )


class TrainPanel(QWidget):
    run_started = Signal(str)  # run id
    run_finished = Signal(object)  # the TrainResult, or None when the run failed
    model_step_requested = Signal()  # "Go to the Model Step": the backbone chosen has no weights here

    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.job: Optional[Job] = None
        self.run_id = ""
        self.planned_warnings: tuple[PlannedWarning, ...] = ()  # the shown run's: from the running plan, or a saved summary
        self.run_epochs = 0  # the planned epochs of the run in progress
        self.refusal = ""  # why Start is refused now ("" when it is not)

        self.runs = RunPicker(studio)
        self.settings = TrainSettings(studio.config)
        self.start_button = QPushButton("Start Training")
        self.start_button.setObjectName("primary")
        self.start_button.setToolTip("Train on the chosen folder with the chosen backbone. The window stays usable meanwhile.")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Hold training after the current batch; Continue goes on exactly where it stopped.")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End training after the current batch. The best model so far is kept, and Resume Run continues it later.")
        self.resume_button = QPushButton("Resume Run")
        self.resume_button.setToolTip("Continue the chosen stopped or interrupted run from its last complete epoch, with the settings it was started with.")
        self.resume_button.clicked.connect(lambda _checked=False: self.resume())
        self.start_button.clicked.connect(lambda _checked=False: self.start())
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop)

        self.phase = QLabel("Ready.")
        self.phase.setWordWrap(True)  # a long message must not widen the window
        self.notice = QLabel()  # the dataset's warnings, shown once the run's plan is made (before its work)
        self.notice.setObjectName("datasetNotice")
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.PlainText)  # class names from the disk are never markup
        self.notice.hide()
        self.weights_note = QLabel()
        self.weights_note.setObjectName("weightsNotice")
        self.weights_note.setWordWrap(True)
        self.weights_note.setTextFormat(Qt.TextFormat.PlainText)
        self.model_step_button = QPushButton("Go to the Model Step")
        self.model_step_button.setToolTip("Download or import the backbone's weights there, or choose another backbone.")
        self.model_step_button.clicked.connect(lambda _checked=False: self.model_step_requested.emit())
        self.settings_note = QLabel()  # while a run with its own settings trains: which settings apply
        self.settings_note.setObjectName("settingsNotice")
        self.settings_note.setWordWrap(True)
        self.settings_note.setTextFormat(Qt.TextFormat.PlainText)
        self.settings_note.hide()
        self.epoch_label = QLabel("")
        self.speed_label = QLabel("")
        self.eta_label = QLabel("")
        self.progress = CalmProgressBar()
        self.plots = LivePlots()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setPlaceholderText("What happens during training is written here.")

        settings_box = QGroupBox("Settings")
        settings_box.setMaximumWidth(310)
        box = QVBoxLayout(settings_box)
        box.addWidget(self.settings_note)
        box.addWidget(self.settings)
        box.addWidget(self.weights_note)
        box.addWidget(self.model_step_button)
        box.addWidget(self.start_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.stop_button)
        box.addLayout(buttons)
        box.addWidget(self.resume_button)
        box.addStretch(1)

        stats = QHBoxLayout()
        for w in (self.epoch_label, self.speed_label, self.eta_label):
            stats.addWidget(w)
            stats.addSpacing(16)
        stats.addWidget(self.progress, 1)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.phase)
        rl.addWidget(self.notice)
        rl.addLayout(stats)
        rl.addWidget(self.plots, 3)
        rl.addWidget(self.log, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("trainSplitter")
        self.splitter.addWidget(settings_box)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        top.addWidget(self.runs, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.splitter, 1)

        studio.project_changed.connect(self._on_project_changed)
        studio.current_run_changed.connect(self._show_run)
        studio.backbone_changed.connect(lambda _name: self.check_weights())
        self._set_running(False)
        self._show_run(studio.current_run)
        self.check_weights()

    # ------------------------------------------------------------ buttons
    def start(self, config: Optional[TrainConfig] = None) -> Optional[Job]:
        """Train with the settings on the left, or with ``config`` (the from-scratch baseline of a run).

        An explicit ``config`` is used as it is, data folder included, and does not become the
        project's settings: the Settings box keeps what the user chose.
        """
        if self.job is not None:
            return None
        explicit = config is not None
        refused = missing_weights(config) if explicit else self.refusal if self.check_weights() else ""
        if refused:  # the menu's Ctrl+R, or a run handed over from another step: nothing is created
            self.studio.notifier.exception(UserError(refused), "Starting training")
            return None
        try:
            config, files = self._prepare_run(config)
        except UserError as exc:
            self.studio.notifier.exception(exc, "Starting training")
            return None
        index = self._index_for(config) if explicit else self.studio.index
        cache = self.studio.project.cache_dir

        def work(on_event, stop):
            from tlstudio.core.engine.trainer import Trainer

            reserve_a_core_for_the_window()
            return Trainer(config, files.root, cache_dir=cache, index=index).run(on_event, stop)

        self.plots.clear()
        self.log.clear()
        start = f"freeze depth {config.freeze_depth}" if config.pretrained else "from random weights, everything trains"
        self._log(f"Run {files.root.name}: {config.backbone}, {start}, {config.epochs} epochs.")
        if explicit:
            self._show_settings_of_run(config)
        return self._launch(files.root.name, work, config.epochs)

    def resume(self, run_id: str = "") -> Optional[Job]:
        """Continue a stopped or interrupted run (the chosen one) from its last complete epoch, with its own settings."""
        run = self.studio.run(run_id or self.studio.current_run)
        if self.job is not None or run is None or not self._resumable(run):
            return None
        cache = self.studio.project.cache_dir

        def work(on_event, stop):
            from tlstudio.core.engine.trainer import Trainer

            reserve_a_core_for_the_window()
            return Trainer.resume(run.files.root, cache_dir=cache).run(on_event, stop)

        self.studio.project.finish_run(run.id, pj.RUNNING, run.record.summary)
        self.plots.load_history(run.history)  # the epochs done so far; the resumed ones follow
        self.log.clear()
        self._log(f"Run {run.id}: continuing after epoch {len(run.history)} of {run.config.epochs}, with the settings it was started with.")
        self._show_settings_of_run(run.config)
        return self._launch(run.id, work, run.config.epochs)

    @staticmethod
    def _resumable(run) -> bool:
        status = run.files.read_status()
        return run.config is not None and status is not None and status.resumable

    def _launch(self, run_id: str, work, epochs: int) -> Job:
        self.run_id, self.run_epochs = run_id, epochs
        self._clear_numbers()
        self._show_warnings(())
        self.studio.runs_changed.emit()
        self.studio.set_current_run(run_id)
        freeze_long_lived_objects()  # no 300 ms garbage collection pause in the window during the run
        job = self.studio.jobs.start("train", "Training", work)
        self.job = job
        job.event.connect(self._on_event)
        job.paused_changed.connect(self._on_paused_changed)
        job.succeeded.connect(self._on_succeeded)
        job.failed.connect(self._on_failed)
        job.finished.connect(self._on_finished)
        self._set_running(True)
        self._show_phase()
        self.run_started.emit(self.run_id)
        return job

    def toggle_pause(self) -> None:
        if self.job is None:
            return
        if self.job.paused:
            self.job.resume()
            self._log("Resumed.")
        else:
            self.job.pause()
            self._log("Paused after the current batch. Click Continue to go on.")

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()
            self.stop_button.setEnabled(False)
            self.pause_button.setEnabled(False)
            self.pause_button.setText("Pause")
            self._show_phase()
            self._log(STOPPING)

    def _prepare_run(self, config: Optional[TrainConfig] = None):
        if config is not None:
            config = TrainConfig.from_dict(config.to_dict()).validate()  # a copy: the run owns its config
            project = self.studio.ensure_project()
            self.studio.autosave()
            return config, project.new_run(config, remember=False)
        index = self.studio.index
        if index is None:
            raise UserError("there are no pictures to train on yet. Choose an image folder on the Data step first.")
        config = TrainConfig.from_dict(self.studio.config.to_dict())
        config.data_dir = index.root
        config.validate()
        project = self.studio.ensure_project()
        self.studio.autosave()
        return config, project.new_run(config)

    def _index_for(self, config: TrainConfig):
        """The scanned folder when it is the one ``config`` trains on, split the same way; else None (the trainer scans)."""
        index = self.studio.index
        if index is None or Path(index.root) != Path(config.data_dir):
            return None
        same_split = (index.val_split, index.test_split, index.seed) == (config.val_split, config.test_split, config.seed)
        return index if same_split else None

    # ------------------------------------------------------------ events from the trainer (GUI thread)
    def _on_event(self, event) -> None:
        if isinstance(event, StepEnded):
            self.plots.add_step(event.epoch - 1 + event.step / max(1, event.steps_per_epoch), event.loss)
            self.epoch_label.setText(f"Epoch {event.epoch} of {self.run_epochs or event.epoch}")
            self.speed_label.setText(f"{event.images_per_s:,.0f} images/s")
        elif isinstance(event, Progress):
            self._show_phase()
        elif isinstance(event, EpochEnded):
            self.plots.add_epoch(event.epoch, event.train_loss, event.train_acc, event.val_loss, event.val_acc)
            self.epoch_label.setText(f"Epoch {event.epoch} of {event.epochs}")
            self.speed_label.setText(f"{event.images_per_s:,.0f} images/s")
            self._show_phase()
            best = "  (kept so far: the best on the held-back training pictures)" if event.is_best else ""
            self._log(
                f"Epoch {event.epoch}/{event.epochs}: loss {event.train_loss:.3f}, accuracy {event.train_acc:.1%}; "
                f"validation loss {event.val_loss:.3f}, accuracy {event.val_acc:.1%}; {duration(event.seconds)}{best}"
            )
        elif isinstance(event, PhaseStarted):
            self.speed_label.setText("")  # a speed belongs to the training phase that measured it
            self._show_phase()
            unit = self._phase_amount()
            self._log(f"{phase_name(event.name)}" + (f" ({unit})" if unit else "") + "…")
        elif isinstance(event, Message):
            self._log(("Warning: " if event.level == "warning" else "") + event.text)
        elif isinstance(event, PlanMade):
            self._show_warnings(event.plan.warnings)

    def _phase_amount(self) -> str:
        state = self.job.phase_state() if self.job is not None else None
        if state is None or state.total <= 0:
            return ""
        return f"{state.total:,} {PHASE_UNIT.get(state.name, 'steps')}"

    def _on_paused_changed(self, paused: bool) -> None:
        self.pause_button.setText("Continue" if paused else "Pause")
        self._show_phase()

    def _show_phase(self) -> None:
        """The headline, the bar and the time left, from the job's phase: the status bar shows the same one."""
        job = self.job
        if job is None:
            return
        state, paused = job.phase_state(), job.paused
        line = STOPPING if job.token.stopped else phase_line(state, paused)
        self.phase.setText(f"<b>{html.escape(line)}</b>")
        self.eta_label.setText("" if job.token.stopped else time_left(state, paused))
        self.progress.setRange(0, state.total)
        self.progress.setValue(min(state.done, state.total) if state.total else 0)

    def _clear_numbers(self) -> None:
        """No epoch, speed, time left or bar from another run or phase."""
        for label in (self.epoch_label, self.speed_label, self.eta_label):
            label.setText("")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)

    def _show_warnings(self, warnings: tuple[PlannedWarning, ...]) -> None:
        """The notice above the curves: what the scan warned of, before the run spends its time (the log says what it does about each)."""
        self.planned_warnings = warnings
        self.notice.setVisible(bool(warnings))
        if warnings:
            kinds = ", ".join(dict.fromkeys(printable(w.kind) for w in warnings))
            many = "thing" if len(warnings) == 1 else "things"
            self.notice.setText(f"Before training: {len(warnings)} {many} about these pictures to look at ({kinds}). The run goes ahead; the log below says what it does about each.")

    def _on_succeeded(self, result) -> None:
        status = pj.CANCELLED if result.cancelled else pj.FINISHED
        self.studio.project.finish_run(self.run_id, status, result.summary)
        if result.cancelled:
            done = result.summary.get("epochs_completed", 0)
            self._log(f"Stopped after {done} complete epoch(s). The last completed epoch's checkpoint is kept: Resume Run continues from it.")
            self.phase.setText("<b>Stopped.</b>")
        else:
            s = result.summary
            kept = f", epoch {s['best_epoch']} kept" if s.get("best_epoch") else ""
            figures = f"validation accuracy {s.get('val_accuracy', 0):.1%}, balanced accuracy {s.get('val_balanced_accuracy', 0):.1%}"
            self._log(f"Done in {duration(s.get('seconds', 0))}: {figures}{kept}.")
            early = s.get("stopped_early")
            if early:
                self._log(
                    f"Stopped early after epoch {early['epoch']} of {s.get('epochs_planned', early['epoch'])}: the held-back training pictures "
                    f"scored no better for {early['patience']} epochs, so epoch {early['best_epoch']} is kept."
                )
            if s.get("selection"):
                self._log(selection_sentence(s["selection"], (result.metrics or {}).get("n", 0)))
            for sentence in diagnosis_sentences(s.get("diagnosis") or {}):
                self._log("Warning: " + sentence)
            self.phase.setText(f"<b>Done.</b> Validation accuracy {s.get('val_accuracy', 0):.1%} (balanced {s.get('val_balanced_accuracy', 0):.1%}). See Evaluate and Export.")

    def _on_failed(self, info) -> None:
        project = self.studio.project
        # A run that ended before its first epoch for a reason the message explains (an empty class, missing weights)
        # leaves the run lists: it has nothing to evaluate, export or resume. A bug's run stays, for the report.
        if not (info.user_error and project.discard_run(self.run_id)):
            project.finish_run(self.run_id, pj.FAILED, message=info.message)
        self._log(f"Training stopped with an error: {info.message}")
        self.phase.setText("<b>Training failed.</b> The message explains why.")

    def _on_finished(self) -> None:
        job, self.job = self.job, None
        self.plots.flush()
        self.progress.setRange(0, 1)
        self.progress.setValue(1 if job is not None and job.result is not None and not job.result.cancelled else 0)
        self._set_running(False)
        self._show_own_settings()
        self.eta_label.setText("")
        self.speed_label.setText("")
        self.studio.runs_changed.emit()
        self.run_finished.emit(job.result if job is not None else None)

    # ------------------------------------------------------------ showing a saved run
    def _on_project_changed(self) -> None:
        if self.job is None:  # a run with its own settings shows them until it ends
            self.settings.load(self.studio.config)
        self.check_weights()

    def _show_settings_of_run(self, config: TrainConfig) -> None:
        """While a run with its own settings trains, the box shows those (read-only: the run is running), and says so."""
        self.settings.load(TrainConfig.from_dict(config.to_dict()))  # a copy: nothing typed here reaches the run or the project
        start = "ImageNet weights" if config.pretrained else "random weights, everything trainable"
        self.settings_note.setText(
            f"This run uses its own settings, shown below ({config.backbone}, {start}). "
            "Your settings come back when it ends."
        )
        self.settings_note.show()

    def _show_own_settings(self) -> None:
        self.settings_note.hide()
        self.settings.load(self.studio.config)

    # ------------------------------------------------------------ refusing a start
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.check_weights()

    def check_weights(self) -> bool:
        """Refuse Start (in place, with the way out) while the chosen backbone's weights are not here. True when refused."""
        self.refusal = missing_weights(self.studio.config)
        self.weights_note.setText(self.refusal)
        self.weights_note.setVisible(bool(self.refusal))
        self.model_step_button.setVisible(bool(self.refusal))
        self.start_button.setEnabled(self.job is None and not self.refusal)
        return bool(self.refusal)

    def _show_run(self, run_id: str) -> None:
        if self.job is not None:
            return  # the live run owns the curves
        run = self.studio.run(run_id)
        if run is None:
            self.plots.clear()
            self._clear_numbers()
            self._show_warnings(())
            self.resume_button.setEnabled(False)
            return
        self._show_warnings(saved_warnings(run.record.summary))  # the notice is the shown run's
        self.plots.load_history(run.history)
        self._clear_numbers()
        if run.history:
            last = run.history[-1]
            self.epoch_label.setText(f"Epoch {last['epoch']} of {run.config.epochs if run.config else last['epoch']}")
            if last.get("images_per_s"):
                self.speed_label.setText(f"{last['images_per_s']:,.0f} images/s")
        self.phase.setText(f"Run {html.escape(run.id)}: {html.escape(str(run.record.status))}.")
        self.resume_button.setEnabled(self._resumable(run))

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running and not self.refusal)
        self.pause_button.setEnabled(running)
        self.pause_button.setText("Pause")
        self.stop_button.setEnabled(running)
        run = None if running else self.studio.run(self.studio.current_run)
        self.resume_button.setEnabled(run is not None and self._resumable(run))
        self.settings.set_enabled_for_run(running)
        self.runs.setEnabled(not running)

    def _log(self, text: str) -> None:
        self.log.appendPlainText(text)
        self.log.moveCursor(QTextCursor.MoveOperation.End)
