""""Try it": drop new pictures (or folders of them) and see what the run's exported model says.

Only the run's ``model.pt`` is used, through ``tlstudio.core.inference.model_file.open_model_file`` (the
CLI's ``predict`` runs the same code), so what is shown here is what the file will say anywhere.
Loading the file and predicting happen in a background job; the file is loaded once per run and
kept. "Save Results…" writes the answers shown as the CSV of ``tlstudio predict --top-k 3`` (the same writer). Each result row shows a lazily loaded thumbnail and the top classes as probability bars,
drawn by a delegate, so a folder of a thousand pictures costs a thousand small rows, not widgets.

A TorchScript file is a program: one this installation did not make is not run until the user
says yes to ``ask_to_trust``. The job only finds the file unknown and answers ``TrustNeeded``; the
question is asked on the GUI thread; after a yes a new job records the file's hash and runs it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QFont, QPainter, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QMessageBox,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.errors import UserError
from tlstudio.core.names import printable
from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.thumbnails import FileActions, ThumbnailLoader, ThumbnailModel
from tlstudio.gui.workers import Job
from tlstudio.gui.start_folder import ANSWERS, PICTURES, ask_existing_folder, ask_open_files, ask_save_path

TOP_K = 3
THUMB = 64
BAR_TOP, BAR_OTHER, BAR_BACK = QColor(31, 95, 191), QColor(140, 165, 205), QColor(232, 236, 242)
NO_MODEL = (
    "This run has no model file, so it cannot try new pictures. Train again with "
    "'Export the model file at the end' switched on (Train step), then come back here."
)
NOT_TRUSTED = "The model file was not run: tlstudio did not make it, and you chose not to trust it."


@dataclass(frozen=True)
class TrustNeeded:
    """What a job answers, instead of predictions, for a model file the trust store does not know."""

    model_path: str
    sha256: str
    pictures: list[str]


@dataclass(frozen=True)
class TryResult:
    path: str
    top: list[tuple[str, float]]  # best first; empty when the file could not be used
    error: str = ""
    not_sure: bool = False  # the top probability is below the model file's "not sure" threshold

    @property
    def title(self) -> str:
        return Path(self.path).name + (" — not sure" if self.not_sure else "")


class ExportedModels:
    """Exported model files, each loaded once (until the file changes). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, tuple[int, Any]] = {}

    def get(self, path: str | os.PathLike):
        """The loaded model; raises ``UntrustedModel`` for a TorchScript file the trust store does not know."""
        from tlstudio.core.inference.model_file import open_model_file

        from tlstudio.core.errors import UserError

        path = os.path.abspath(path)
        try:
            stamp = os.stat(path).st_mtime_ns
        except OSError:
            raise UserError(f"the run's model file '{path}' is not there any more. Train again with the export switched on.") from None
        with self._lock:
            cached = self._models.get(path)
            if cached is None or cached[0] != stamp:
                self._models = {path: (stamp, open_model_file(path))}  # one run's model at a time is plenty
            return self._models[path][1]

    def predict_paths(self, model_path: str, paths: list[str], on_event, stop, trusted_sha256: str = ""):
        """(class names, predictions) of ``model_path`` on ``paths`` (a job's work), or ``TrustNeeded`` for a file the
        trust store does not know; ``trusted_sha256`` is the file the user just said yes to, recorded first."""
        from tlstudio.core.inference import trust

        if trusted_sha256:
            trust.remember(trusted_sha256, trust.TRUSTED, model_path)
        try:
            model = self.get(model_path)  # a file changed since the yes has another hash: asked again
        except trust.UntrustedModel as exc:
            return TrustNeeded(model_path, exc.sha256, paths)  # the question is the GUI thread's
        return model.class_names, model.predict_paths(paths, on_event, stop)


def ask_to_trust_dialog(parent: Optional[QWidget], model_path: str) -> bool:
    """Ask whether to run a TorchScript file tlstudio did not make; No is the default."""
    answer = QMessageBox.question(
        parent,
        "Run a model file tlstudio did not make?",
        f"tlstudio did not make '{Path(model_path).name}'.\n\n"
        "A TorchScript model file is a program: running it can read and change your files and do anything "
        "else you can do on this computer.\n\nRun it only if you trust who sent it. Run it?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def local_paths(mime) -> list[str]:
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile() and u.toLocalFile()] if mime.hasUrls() else []


class DropZone(QFrame):
    dropped = Signal(list)  # local paths: files and folders

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.setAcceptDrops(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("QFrame#dropZone { border: 2px dashed #8a9bb8; border-radius: 8px; }"
                           "QFrame#dropZone[hover=\"true\"] { border-color: #1f5fbf; background: #eef3fb; }")
        self.setMinimumHeight(90)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.isEnabled() and local_paths(event.mimeData()):
            event.acceptProposedAction()
            self._hover(True)

    def dragLeaveEvent(self, event) -> None:
        self._hover(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self._hover(False)
        paths = local_paths(event.mimeData())
        if not self.isEnabled() or not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.dropped.emit(paths)

    def _hover(self, on: bool) -> None:
        self.setProperty("hover", on)
        self.style().unpolish(self)
        self.style().polish(self)


class ResultModel(ThumbnailModel):
    def __init__(self, results: Sequence[TryResult], loader: ThumbnailLoader, parent: Optional[QObject] = None):
        super().__init__([r.path for r in results], loader, parent)
        self.results = list(results)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        result = self.results[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(result.path).name
        if role == Qt.ItemDataRole.ToolTipRole:
            if result.error:
                return f"{result.path}\nCould not be used: {result.error}"
            return result.path + ("\nNot sure: no class reaches the model file's threshold" if result.not_sure else "") + "\n" + "\n".join(
                f"{name}: {p:.1%}" for name, p in result.top)
        if role == Qt.ItemDataRole.UserRole:
            return result
        return super().data(index, role)


class ResultDelegate(QStyledItemDelegate):
    """Thumbnail, file name, then one bar per top class with its probability."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        line = option.fontMetrics.height() + 4
        return QSize(320, max(THUMB + 8, 8 + line * (1 + TOP_K)))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        result: TryResult = index.data(Qt.ItemDataRole.UserRole)
        if result is None:
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = option.widget
        style = widget.style() if widget is not None else None
        if style is not None:
            style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, opt, painter, widget)
        painter.save()
        rect = option.rect.adjusted(4, 4, -4, -4)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            painter.drawPixmap(QRect(rect.left(), rect.top(), THUMB, THUMB), pixmap)
        x = rect.left() + THUMB + 10
        width = rect.right() - x
        fm = option.fontMetrics
        line = fm.height() + 4
        bold = QFont(option.font)
        bold.setBold(True)
        painter.setFont(bold)
        painter.setPen(option.palette.text().color())
        painter.drawText(QRect(x, rect.top(), width, line), Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(result.title, Qt.TextElideMode.ElideMiddle, width))
        painter.setFont(option.font)
        if result.error:
            painter.setPen(QColor(170, 30, 30))
            painter.drawText(QRect(x, rect.top() + line, width, 2 * line), Qt.TextFlag.TextWordWrap, f"Could not be used: {result.error}")
            painter.restore()
            return
        name_w = min(140, max(60, width // 3))
        pct_w = fm.horizontalAdvance("100.0%") + 6
        bar_w = max(20, width - name_w - pct_w - 8)
        for k, (name, p) in enumerate(result.top):
            y = rect.top() + line * (k + 1)
            painter.setPen(option.palette.text().color())
            painter.drawText(QRect(x, y, name_w, line), Qt.AlignmentFlag.AlignVCenter, fm.elidedText(name, Qt.TextElideMode.ElideRight, name_w))
            bar = QRect(x + name_w + 4, y + 3, bar_w, line - 6)
            painter.fillRect(bar, BAR_BACK)
            painter.fillRect(QRect(bar.left(), bar.top(), round(bar_w * max(0.0, min(1.0, p))), bar.height()), BAR_TOP if k == 0 else BAR_OTHER)
            painter.drawText(QRect(bar.right() + 4, y, pct_w, line), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, f"{p:.1%}")
        painter.restore()


class TryItView(QWidget):
    predicted = Signal(list)  # [TryResult], once shown
    image_selected = Signal(str)

    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.models = ExportedModels()
        self.model_path = ""
        self.job: Optional[Job] = None
        self.loader = ThumbnailLoader(size=THUMB, parent=self)
        self.model: Optional[ResultModel] = None
        self.class_names: list[str] = []  # the model's own names, for the saved CSV (the screen shows them printable)
        self.predictions: list = []  # the core's Predictions behind the rows shown
        # (model file path) -> run it?  Asked on the GUI thread; tests answer it, a modal dialog would block them.
        self.ask_to_trust: Callable[[str], bool] = lambda model_path: ask_to_trust_dialog(self, model_path)
        # () -> where to save the CSV ("" for cancel). Tests answer it; the dialog would block them.
        self.ask_save_path: Callable[[], str] = self._ask_save_path

        self.zone = DropZone()
        self.zone.setToolTip("Drag pictures or folders of pictures from your file manager and drop them here.")
        self.zone.dropped.connect(self.predict)
        self.open_files = QPushButton("Open Images…")
        self.open_files.setToolTip("Choose picture files the model has never seen.")
        self.open_files.clicked.connect(self._choose_files)
        self.open_folder = QPushButton("Open Folder…")
        self.open_folder.setToolTip("Choose a folder: every picture in it (and its sub-folders) is tried.")
        self.open_folder.clicked.connect(self._choose_folder)
        prompt = QLabel("Drop pictures or folders here to see what the model says about them.")
        prompt.setWordWrap(True)
        prompt.setAlignment(Qt.AlignmentFlag.AlignCenter)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_files)
        buttons.addWidget(self.open_folder)
        buttons.addStretch(1)
        zone_layout = QVBoxLayout(self.zone)
        zone_layout.addWidget(prompt)
        zone_layout.addLayout(buttons)

        self.status = QLabel()
        self.status.setWordWrap(True)
        self.list = QListView()
        self.list.setItemDelegate(ResultDelegate(self.list))
        self.list.setUniformItemSizes(True)
        self.list.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.list.setToolTip("The model's top classes for each picture. Click a picture to see where the model looked; double-click to open it.")
        self.file_actions = FileActions(self.list, self)
        self.save_button = QPushButton("Save Results…")
        self.save_button.setToolTip("Save the answers shown as a table (CSV) that a spreadsheet opens: each picture, its top classes and their probabilities.")
        self.save_button.clicked.connect(self._save_clicked)
        self.save_status = QLabel()
        self.save_status.setTextFormat(Qt.TextFormat.PlainText)  # holds a file name from disk
        self.save_status.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.zone)
        layout.addWidget(self.status)
        layout.addWidget(self.list, 1)
        save_row = QHBoxLayout()
        save_row.addWidget(self.save_status, 1)
        save_row.addWidget(self.save_button)
        layout.addLayout(save_row)
        self._show([])
        self.set_model_file("", "Choose a finished run first.")

    # ------------------------------------------------------------ what the panel calls
    def set_model_file(self, path: str | Path, why_not: str = NO_MODEL) -> None:
        """Use the exported model at ``path``; with no such file, say ``why_not`` instead."""
        self.model_path = str(path) if path and Path(path).is_file() else ""
        if self.job is not None:
            self.job.stop()  # its answer belongs to another model; it is ignored when it comes
            self.job = None
        self._show([])
        usable = bool(self.model_path)
        for w in (self.zone, self.open_files, self.open_folder):
            w.setEnabled(usable)
        self.status.setText("" if usable else why_not)

    def predict(self, paths: list[str], trusted_sha256: str = "") -> Optional[Job]:
        """Run the model file on ``paths`` (files or folders) in the background; the drop and the buttons call this.

        ``trusted_sha256``: the user said yes to the file with this hash; the job records it first."""
        if not self.model_path or not paths:
            return None
        if self.job is not None:
            self.job.stop()  # only the newest drop counts
        models, model_path, paths = self.models, self.model_path, [str(p) for p in paths]

        def work(on_event, stop):
            return models.predict_paths(model_path, paths, on_event, stop, trusted_sha256)

        job = self.studio.jobs.start("try", "Trying the model on new pictures", work)
        self.job = job
        job.event.connect(self._on_event)
        job.succeeded.connect(self._on_predicted)
        job.failed.connect(self._on_failed)
        job.finished.connect(self._on_finished)
        self.status.setText(f"Asking the model about {len(paths)} item{'s' if len(paths) != 1 else ''}…")
        return job

    def results(self) -> list[TryResult]:
        return list(self.model.results) if self.model is not None else []

    def save_results(self, path: str | Path) -> bool:
        """Write the answers shown to ``path`` as ``tlstudio predict --top-k 3``'s CSV; False (and why, on screen) when it cannot."""
        from tlstudio.core.inference.predict import write_predictions_csv

        if not self.predictions:
            return False
        try:
            write_predictions_csv(path, self.predictions, self.class_names, min(TOP_K, len(self.class_names)))
        except UserError as exc:  # a full or read-only disk: named, with what to do
            self.save_status.setText(f"Not saved: {exc}")
            return False
        self.save_status.setText(f"Saved to {path}")
        return True

    def select(self, row: int) -> None:
        if self.model is not None and 0 <= row < self.model.rowCount():
            self.list.setCurrentIndex(self.model.index(row))

    def settle(self) -> None:
        """Drop queued thumbnail decodes and wait for the one in progress (the window is closing)."""
        self.loader.settle()

    def shutdown(self) -> None:
        self.loader.shutdown()

    # ------------------------------------------------------------ results
    def _on_predicted(self, answer) -> None:
        if self.sender() is not self.job:
            return  # a replaced job: its pictures are no longer wanted
        if isinstance(answer, TrustNeeded):
            self._on_trust_needed(answer)
            return
        names, predictions = answer
        shown = [printable(n) for n in names]  # shown only: a class name cannot hide or reorder text
        results = [TryResult(p.path, [] if p.error else p.top(min(TOP_K, len(shown)), shown), p.error, p.not_sure) for p in predictions]
        self._show(results)
        self.class_names, self.predictions = list(names), list(predictions)
        self.save_button.setEnabled(bool(predictions))
        bad = sum(1 for r in results if r.error)
        if not results:
            self.status.setText("No pictures were found in what you chose.")
        else:
            self.status.setText(
                f"{len(results)} picture{'s' if len(results) != 1 else ''} tried"
                + (f"; {bad} could not be used (hover over them to see why)." if bad else ".")
            )
        self.predicted.emit(results)

    def _on_trust_needed(self, need: TrustNeeded) -> None:
        self.job = None  # answered; a new job runs after a yes
        if self.ask_to_trust(need.model_path):
            self.predict(need.pictures, trusted_sha256=need.sha256)
        else:
            self.status.setText(NOT_TRUSTED)

    def _on_event(self, event) -> None:
        from tlstudio.core.events import Progress

        if self.sender() is self.job and isinstance(event, Progress) and event.total:
            self.status.setText(f"Tried {event.done} of {event.total} pictures…")

    def _on_failed(self, info) -> None:
        if self.sender() is self.job:
            self.status.setText(f"The pictures could not be tried: {info.message}")

    def _on_finished(self) -> None:
        if self.sender() is self.job:
            self.job = None

    def _show(self, results: list[TryResult]) -> None:
        self.class_names, self.predictions = [], []
        self.save_button.setEnabled(False)
        self.save_status.setText("")
        self.loader.forget()
        old, old_selection = self.model, self.list.selectionModel()
        self.model = ResultModel(results, self.loader, self)
        self.list.setModel(self.model)
        self.list.selectionModel().currentChanged.connect(self._on_current)
        if old is not None:
            old.deleteLater()
        if old_selection is not None:
            old_selection.deleteLater()

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and self.model is not None and not self.model.results[current.row()].error:
            self.image_selected.emit(self.model.results[current.row()].path)

    # ------------------------------------------------------------ dialogs
    def _choose_files(self) -> None:
        from tlstudio.core.data.scan import IMAGE_EXTENSIONS

        pattern = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        paths = ask_open_files(self, self.studio, PICTURES, "Choose pictures to try", f"Images ({pattern});;All files (*)")
        if paths:
            self.predict(paths)

    def _save_clicked(self) -> None:
        path = self.ask_save_path()
        if path:
            self.save_results(path)

    def _ask_save_path(self) -> str:
        return ask_save_path(self, self.studio, ANSWERS, "Save the answers", "try-it-answers.csv", "Table for spreadsheets (*.csv)")

    def _choose_folder(self) -> None:
        path = ask_existing_folder(self, self.studio, PICTURES, "Choose a folder of pictures to try")
        if path:
            self.predict([path])
