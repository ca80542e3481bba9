"""The Export step's "Classify a folder": every new picture in a folder, answered by the run's model file.

The answers are exactly those of ``tlstudio predict MODEL FOLDER``: the same ``open_model_file`` loads
the file and the same ``predict_paths`` finds the pictures (any nesting, clutter skipped) and runs
them, in a background job that a stop ends within one batch. "Save CSV…" writes the CLI's CSV with
the CLI's writer (``write_predictions_csv``, atomic). A picture that cannot be read is a row with
its reason, not an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSortFilterProxyModel, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.errors import UserError
from tlstudio.core.engine.calibration import NOT_SURE
from tlstudio.core.eta import PhaseProgress
from tlstudio.core.names import printable
from tlstudio.core.runs.project import RunInfo
from tlstudio.gui.panels.onnx_step import ONNX_FILE, verified_report
from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.image_gallery import GalleryItem, ImageGallery
from tlstudio.gui.widgets.kept_epoch import kept_epoch_to_evaluate
from tlstudio.gui.widgets.thumbnails import PATH_ROLE, FileActions
from tlstudio.gui.widgets.try_it import NOT_TRUSTED, ExportedModels, TrustNeeded, ask_to_trust_dialog
from tlstudio.gui.workers import Job
from tlstudio.gui.start_folder import ANSWERS, PICTURES, ask_existing_folder, ask_save_path

PICTURE, ANSWER, CONFIDENCE, PROBLEM = range(4)
HEADERS = ("Picture", "Answer", "Confidence", "Problem")
HEADER_TIPS = (
    "Where the picture is, inside the folder you chose.",
    "The class the model file gives the picture.",
    "How sure the model is of its answer (its probability for that class).",
    "Why a picture could not be read; it has no answer.",
)
SORT_ROLE = Qt.ItemDataRole.UserRole + 1  # what a column sorts by: numbers for the confidence, not their text
NO_RUN = "Train a model on the Train step first; its model file can then classify a folder of new pictures here."
STOPPED_RUN = (
    "This run stopped before its last epoch, so it has no model file yet. Make one first: choose ONNX above and press "
    "Export Model File…, or press Evaluate the Kept Epoch on the Evaluate step. Then classify a folder here."
)
NO_FILE = (
    "This run has no model file: it was trained with 'Export the model file at the end' off. Train again with it on "
    "to classify new pictures."
)


@dataclass(frozen=True)
class FolderAnswers:
    """What one classification of a folder found: the model's class names and one Prediction per picture."""

    folder: str
    class_names: list[str]
    predictions: list  # [core Prediction], in the order predict_paths gives (the CLI's order)

    @property
    def unreadable(self) -> int:
        return sum(1 for p in self.predictions if not p.ok)


def model_file_of(run: Optional[RunInfo]) -> tuple[str, str]:
    """``(model file, "")`` for a run with a verified model file (model.pt, else a verified model.onnx), else ``("", why not)``."""
    if run is None:
        return "", NO_RUN
    if run.has_model:
        return str(run.files.model), ""
    if verified_report(run.files.root, run.record.summary) is not None:
        return str(run.files.root / ONNX_FILE), ""
    return "", STOPPED_RUN if kept_epoch_to_evaluate(run) else NO_FILE


def time_left(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f", about {max(1, round(seconds))} s left"
    return f", about {round(seconds / 60)} min left"


class AnswerTable(QAbstractTableModel):
    """One row per picture: where it is (under the folder), the answer, its confidence, or why it could not be read."""

    def __init__(self, answers: Optional[FolderAnswers] = None, parent=None):
        super().__init__(parent)
        self.answers = answers
        self.rows = list(answers.predictions) if answers is not None else []

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return HEADER_TIPS[section]
        return None

    def best(self, row: int) -> tuple[str, Optional[float]]:
        """The answer and its confidence for ``row``; ``("", None)`` for a picture that could not be read, and
        "not sure" (with the top probability) below the model file's threshold."""
        p = self.rows[row]
        if not p.ok:
            return "", None
        name, prob = p.top(1, self.answers.class_names)[0]
        return (NOT_SURE if p.not_sure else name), prob

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        p, column = self.rows[index.row()], index.column()
        name, prob = self.best(index.row())
        if role == Qt.ItemDataRole.DisplayRole:
            return printable(
                (self._relative(p.path), name, f"{prob:.1%}" if prob is not None else "", p.error)[column]
            )  # names from disk and class names are text to read, never markup or hidden characters
        if role == SORT_ROLE:
            return (self._relative(p.path).lower(), name.lower(), -1.0 if prob is None else prob, p.error)[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return printable(p.path)
        if role == PATH_ROLE:
            return p.path
        if role == Qt.ItemDataRole.TextAlignmentRole and column == CONFIDENCE:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _relative(self, path: str) -> str:
        try:
            return os.path.relpath(path, self.answers.folder)
        except ValueError:  # another drive on Windows
            return path


class ClassifyFolderView(QWidget):
    classified = Signal(object)  # FolderAnswers, once shown
    saved = Signal(str)  # the CSV written

    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.models = ExportedModels()
        self.model_path = ""
        self.job: Optional[Job] = None
        self.answers: Optional[FolderAnswers] = None
        self.progress = PhaseProgress()
        # Tests answer these; the dialogs would block them.
        self.ask_to_trust: Callable[[str], bool] = lambda model_path: ask_to_trust_dialog(self, model_path)
        self.ask_folder: Callable[[], str] = self._ask_folder
        self.ask_save_path: Callable[[], str] = self._ask_save_path

        self.choose_button = QPushButton("Classify a Folder…")
        self.choose_button.setToolTip("Choose a folder of new pictures (sub-folders too): the model file answers each one.")
        self.choose_button.clicked.connect(self._choose_clicked)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop classifying; it ends after the pictures in progress.")
        self.stop_button.clicked.connect(self.stop)
        self.save_button = QPushButton("Save CSV…")
        self.save_button.setToolTip("Save the answers as a table (CSV) for a spreadsheet: the same file 'tlstudio predict --csv' writes.")
        self.save_button.clicked.connect(self._save_clicked)
        self.status = QLabel()
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # holds folder and file names from disk
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setTextVisible(False)
        self.bar.setMaximumHeight(8)

        self.table_model = AnswerTable(None, self)
        self.sorted = QSortFilterProxyModel(self)
        self.sorted.setSortRole(SORT_ROLE)
        self.sorted.setSourceModel(self.table_model)
        self.table = QTableView()
        self.table.setModel(self.sorted)
        self.table.setSortingEnabled(True)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)  # first shown in the CSV's order
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(PICTURE, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("Click a column title to sort by it. Double-click a picture to open it.")
        self.table_actions = FileActions(self.table, self)
        self.gallery = ImageGallery("The pictures appear here once they are classified.")
        self.gallery.view.setToolTip("Double-click a picture to open it; right-click for Show in Folder.")
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "Table")
        self.tabs.addTab(self.gallery, "Pictures")
        self.tabs.setMinimumHeight(180)  # the Export step scrolls: without a floor the answers would shrink to a line

        buttons = QHBoxLayout()
        buttons.addWidget(self.choose_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.tabs, 1)
        self.set_model_file("", NO_RUN)

    # ------------------------------------------------------------ what the panel calls
    def set_run(self, run: Optional[RunInfo]) -> None:
        path, why_not = model_file_of(run)
        if path != self.model_path or not path:
            self.set_model_file(path, why_not)

    def set_model_file(self, path: str | Path, why_not: str = NO_FILE) -> None:
        """Classify with the model file at ``path``; with none, say ``why_not`` and offer nothing."""
        self.model_path = str(path) if path and Path(path).is_file() else ""
        if self.job is not None:
            self.job.stop()  # its answers belong to another model: ignored when they come
            self.job = None
        self._show(None)
        self.status.setText("" if self.model_path else why_not)
        self._update_buttons()

    def classify(self, folder: str | Path, trusted_sha256: str = "") -> Optional[Job]:
        """Classify every picture under ``folder`` in the background, exactly as ``tlstudio predict`` would."""
        if not self.model_path or self.job is not None:
            return None
        models, model_path, folder = self.models, self.model_path, str(folder)

        def work(on_event, stop):
            answer = models.predict_paths(model_path, [folder], on_event, stop, trusted_sha256)  # open_model_file, as the CLI's predict
            return answer if isinstance(answer, TrustNeeded) else FolderAnswers(folder, *answer)

        self._show(None)
        self.progress = PhaseProgress()
        self.job = job = self.studio.jobs.start("classify", "Classifying a folder of pictures", work)
        job.event.connect(self._on_event)
        job.succeeded.connect(self._on_done)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        job.finished.connect(self._on_finished)
        self.status.setText(f"Looking for pictures in {folder}…")
        self._update_buttons()
        return job

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()

    def save_csv(self, path: str | Path) -> bool:
        """Write the answers shown to ``path`` as ``tlstudio predict --csv`` does; False (and why, on screen) when it cannot."""
        from tlstudio.core.inference.predict import write_predictions_csv

        if self.answers is None or not self.answers.predictions:
            return False
        try:
            write_predictions_csv(path, self.answers.predictions, self.answers.class_names)
        except UserError as exc:  # a full or read-only disk: named, with what to do
            self.status.setText(f"Not saved: {exc}")
            return False
        self.status.setText(f"Saved the answers to {path}")
        self.saved.emit(str(path))
        return True

    def shutdown(self) -> None:
        self.gallery.shutdown()

    def settle(self) -> None:
        self.gallery.settle()

    # ------------------------------------------------------------ the job's answers
    def _on_event(self, event) -> None:
        if self.sender() is not self.job or not self.progress.update(event):
            return
        state = self.progress.state()
        self.bar.setRange(0, max(1, state.total))
        self.bar.setValue(state.done)
        if state.total:
            self.status.setText(f"Classified {state.done} of {state.total} pictures{time_left(state.seconds_left)}…")

    def _on_done(self, answer) -> None:
        if self.sender() is not self.job:
            return
        if isinstance(answer, TrustNeeded):
            self.job = None  # answered; a new job runs after a yes
            if self.ask_to_trust(answer.model_path):
                self.classify(answer.pictures[0], trusted_sha256=answer.sha256)
            else:
                self.status.setText(NOT_TRUSTED)
                self._update_buttons()
            return
        self._show(answer)
        n, bad = len(answer.predictions), answer.unreadable
        if not n:
            self.status.setText(f"No pictures were found in {answer.folder}.")
        else:
            self.status.setText(
                f"{n - bad} of {n} pictures classified"
                + (f"; {bad} could not be read (the table says why)." if bad else ".")
            )
        self.classified.emit(answer)

    def _on_failed(self, info) -> None:
        if self.sender() is self.job:
            self.status.setText(f"The folder could not be classified: {info.message}")

    def _on_cancelled(self) -> None:
        if self.sender() is self.job:
            self.status.setText("Stopped. Nothing was classified; choose the folder again to start over.")

    def _on_finished(self) -> None:
        if self.sender() is self.job:
            self.job = None
            self._update_buttons()

    def _show(self, answers: Optional[FolderAnswers]) -> None:
        self.answers = answers
        self.table_model = AnswerTable(answers, self)
        self.sorted.setSourceModel(self.table_model)
        self.gallery.show_items([self._tile(p, answers.class_names) for p in answers.predictions] if answers else [])
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if answers else 0)
        self._update_buttons()

    @staticmethod
    def _tile(p, class_names: list[str]) -> GalleryItem:
        if not p.ok:
            return GalleryItem(p.path, "could not be read", printable(f"{p.path}\n{p.error}"))
        name, prob = p.top(1, class_names)[0]
        shown = f"{NOT_SURE} ({printable(name)}?)" if p.not_sure else printable(name)
        return GalleryItem(p.path, f"{shown}\n{prob:.0%}", printable(p.path))

    def _update_buttons(self) -> None:
        running = self.job is not None
        self.choose_button.setEnabled(bool(self.model_path) and not running)
        self.stop_button.setEnabled(running)
        self.save_button.setEnabled(not running and self.answers is not None and bool(self.answers.predictions))

    # ------------------------------------------------------------ dialogs
    def _choose_clicked(self) -> None:
        folder = self.ask_folder()
        if folder:
            self.classify(folder)

    def _save_clicked(self) -> None:
        path = self.ask_save_path()
        if path:
            self.save_csv(path)

    def _ask_folder(self) -> str:
        return ask_existing_folder(self, self.studio, PICTURES, "Choose a folder of new pictures to classify")

    def _ask_save_path(self) -> str:
        name = f"{Path(self.answers.folder).name}-answers.csv" if self.answers else "answers.csv"
        return ask_save_path(self, self.studio, ANSWERS, "Save the answers", name, "Table for spreadsheets (*.csv)")
