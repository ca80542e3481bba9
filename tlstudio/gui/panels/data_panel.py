"""Step 1, Data: choose a folder, scan it in the background, see the classes, the pictures and every problem."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.data.index import DatasetIndex
from tlstudio.core.errors import UserError
from tlstudio.core.events import PhaseStarted, Progress

from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.check_view import CheckView
from tlstudio.gui.widgets.class_chart import ClassChart
from tlstudio.gui.widgets.label_next_view import LabelNextView
from tlstudio.gui.widgets.scan_report import ScanReport
from tlstudio.gui.widgets.thumbnails import ClassGallery
from tlstudio.gui.workers import Job
from tlstudio.gui.widgets.calm_progress import CalmProgressBar
from tlstudio.gui.start_folder import IMAGES

CHOOSE_TIP = "A folder with one sub-folder per class, e.g. ants/ and bees/ (or train/ and val/ each holding them)."
NEW_PICTURES_TIP = (
    "Optional: a folder of new pictures without labels, from where the model will be used (another microscope, camera "
    "or season). The Evaluate step can adapt a model to them and use them to make a smaller model. Nothing in it is "
    "moved or changed."
)
TRAINING_TIP = "A run is training on this folder: choose another one once it has ended (or stop it on the Train step)."


class DataPanel(QWidget):
    folder_opened = Signal(str)  # the user chose a folder (for the recent list)
    scan_done = Signal(object)  # DatasetIndex, or None when the scan failed or stopped

    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.job: Optional[Job] = None

        self.folder = QLineEdit()
        self.folder.setReadOnly(True)
        self.folder.setPlaceholderText("No folder chosen. Drop a folder onto this window, or click Choose Folder…")
        self.choose_button = QPushButton("Choose Folder…")
        self.choose_button.setToolTip(CHOOSE_TIP)
        self.choose_button.clicked.connect(self.choose_folder)

        self.new_pictures = QLineEdit()
        self.new_pictures.setReadOnly(True)
        self.new_pictures.setPlaceholderText("None (optional): new pictures without labels, from where the model will be used")
        self.new_pictures_button = QPushButton("Choose…")
        self.new_pictures_clear = QPushButton("Clear")
        for w in (self.new_pictures, self.new_pictures_button, self.new_pictures_clear):
            w.setToolTip(NEW_PICTURES_TIP)
        self.new_pictures_button.clicked.connect(self.choose_new_pictures)
        self.new_pictures_clear.clicked.connect(lambda: self.set_new_pictures(""))

        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.05, 0.5)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setDecimals(2)
        self.val_fraction.setToolTip(
            "The share of each class kept aside to check the model on pictures it never trained on.\n"
            "0.2 keeps one picture in five. Ignored when the folder already has train/ and val/ sub-folders."
        )
        self.seed = QSpinBox()
        self.seed.setRange(0, 999_999)
        self.seed.setToolTip("Which pictures go to validation is drawn at random from this number; the same number gives the same split.")
        self.rescan_button = QPushButton("Re-scan")
        self.rescan_button.setToolTip("Read the folder again, e.g. after adding or fixing pictures, or to apply new split settings.")
        self.rescan_button.clicked.connect(self.rescan)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.progress = CalmProgressBar()
        self.progress.setTextVisible(True)

        self.chart = ClassChart()
        self.report = ScanReport()
        self.gallery = ClassGallery()

        top = QHBoxLayout()
        top.addWidget(QLabel("Image folder:"))
        top.addWidget(self.folder, 1)
        top.addWidget(self.choose_button)
        unlabelled = QHBoxLayout()
        unlabelled.addWidget(QLabel("New pictures (unlabelled):"))
        unlabelled.addWidget(self.new_pictures, 1)
        unlabelled.addWidget(self.new_pictures_button)
        unlabelled.addWidget(self.new_pictures_clear)
        split = QHBoxLayout()
        split.addWidget(QLabel("Validation share:"))
        split.addWidget(self.val_fraction)
        split.addSpacing(12)
        split.addWidget(QLabel("Random seed:"))
        split.addWidget(self.seed)
        split.addSpacing(12)
        split.addWidget(self.rescan_button)
        split.addWidget(self.stop_button)
        split.addWidget(self.progress, 1)

        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.chart)
        report_box = QGroupBox("Scan report")
        QVBoxLayout(report_box).addWidget(self.report)
        left.addWidget(report_box)
        left.setStretchFactor(0, 1)
        left.setStretchFactor(1, 2)  # the report's words need the height more than the bars
        left.setSizes([180, 360])
        self.check = CheckView(studio)
        self.right = QTabWidget()
        self.right.setDocumentMode(True)
        self.right.addTab(self.gallery, "Pictures by class")
        self.right.setTabToolTip(self.right.addTab(self.check, "Check my data"),
                                 "Pictures likely to cost accuracy: suspected wrong labels, near-duplicates, outliers; keep, leave out or relabel each.")
        self.label_next = LabelNextView(studio)
        self.right.setTabToolTip(self.right.addTab(self.label_next, "Label new pictures"),
                                 "Which of the unlabelled new pictures to label first, and their labels.")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setObjectName("dataSplitter")
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.right)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([520, 420])

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(split)
        layout.addLayout(unlabelled)
        layout.addWidget(self.splitter, 1)

        self.val_fraction.valueChanged.connect(self._settings_edited)
        self.seed.valueChanged.connect(self._settings_edited)
        studio.project_changed.connect(self._load_from_project)
        studio.jobs.live_changed.connect(self._update_for_training)
        self._load_from_project()
        self._set_busy(False)

    # ------------------------------------------------------------ what the dialog, a drop and the menu call
    def choose_folder(self) -> None:
        start = self.folder.text() or self.studio.dialog_folder(IMAGES)
        path = QFileDialog.getExistingDirectory(self, "Choose the folder of images", start)
        if path:
            self.open_folder(path)

    def open_folder(self, path: str | Path) -> None:
        """Use ``path`` as the image folder and scan it in the background."""
        path = str(Path(path).resolve())
        self.folder.setText(path)
        self.studio.config.data_dir = path
        self.folder_opened.emit(path)
        self.rescan()

    def choose_new_pictures(self) -> None:
        start = self.new_pictures.text() or self.studio.dialog_folder(IMAGES)
        path = QFileDialog.getExistingDirectory(self, "Choose the folder of new, unlabelled pictures", start)
        if path:
            self.set_new_pictures(path)

    def set_new_pictures(self, path: str | Path) -> None:
        """Keep ``path`` ("" for none) as the project's folder of unlabelled new pictures."""
        try:
            self.studio.set_new_pictures(str(Path(path).resolve()) if path else "")
        except UserError as exc:
            self.studio.notifier.exception(exc, "Choosing the new pictures")
            return
        self._show_new_pictures()

    def _show_new_pictures(self) -> None:
        folder = self.studio.new_pictures_dir
        self.new_pictures.setText(folder)
        self.new_pictures_clear.setEnabled(bool(folder))

    def rescan(self) -> None:
        root = self.folder.text()
        if not root:
            return
        if self.job is not None:
            self.job.stop()  # its result is ignored: only the newest scan counts
        cfg = self.studio.config
        cfg.val_split, cfg.seed = round(self.val_fraction.value(), 4), self.seed.value()
        val, test, seed = cfg.val_split, cfg.test_split, cfg.seed

        def work(on_event, stop):
            from tlstudio.core.data.scan import scan_folder

            return scan_folder(root, val_split=val, test_split=test, seed=seed, on_event=on_event, stop=stop)

        job = self.studio.jobs.start("scan", "Scanning the folder", work)
        self.job = job
        # Bound slots: they disconnect by themselves if the panel goes away first.
        job.event.connect(self._on_event)
        job.succeeded.connect(self._on_scanned)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        job.finished.connect(self._on_job_finished)
        self.report.show_busy(f"Scanning {root}…")
        self.progress.setRange(0, 0)
        self._set_busy(True)

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()

    # ------------------------------------------------------------ results
    def _is_current(self) -> bool:
        """Only the newest scan's signals count; an older one was stopped and replaced."""
        return self.job is not None and self.sender() is self.job

    def _on_event(self, event) -> None:
        if not self._is_current():
            return
        if isinstance(event, PhaseStarted):
            self.progress.setRange(0, max(0, event.total))
            self.progress.setValue(0)
        elif isinstance(event, Progress) and event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
            self.progress.setFormat(f"%v of %m files {event.detail}".strip())

    def _on_scanned(self, index: DatasetIndex) -> None:
        if not self._is_current():
            return
        self._scan_over()
        self.show_index(index)
        self.studio.set_index(index)
        self.scan_done.emit(index)

    def _on_cancelled(self) -> None:
        if self._is_current():
            self._scan_over()
            self._show_failure(None)

    def _on_failed(self, info) -> None:
        if self._is_current():
            self._scan_over()
            self._show_failure(info.message)

    def _scan_over(self) -> None:
        """The answer is in: Re-scan works from now on, before the thread has wound down (``finished``).

        Waiting for ``finished`` left a window in which ``scan_done`` had been emitted but the
        Re-scan button was still disabled, so a click right after a scan was lost under load.
        """
        self.job = None
        self._set_busy(False)

    def _show_failure(self, message: Optional[str]) -> None:
        if message is None:
            self.report.show_busy("The scan was stopped. Click Re-scan to read the folder again.")
        else:
            self.report.show_error(message)
            self.chart.set_counts([], {})
            self.gallery.show_classes({})
        self.studio.set_index(None)
        self.scan_done.emit(None)

    def _on_job_finished(self) -> None:
        if self._is_current():  # ended without an answer
            self._scan_over()

    def show_index(self, index: DatasetIndex) -> None:
        self.chart.set_counts(index.classes, index.counts())
        self.report.show_index(index)
        by_class: dict[str, list[str]] = {c: [] for c in index.classes}
        for s in sorted(index.samples, key=lambda s: s.path):
            by_class[index.classes[s.label]].append(str(index.abspath(s)))
        self.gallery.show_classes(by_class)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.progress.setFormat(f"{len(index.samples)} images in {index.seconds:.1f} s")
        own_split = index.split_source == "folders"
        for box in (self.val_fraction, self.seed):
            box.setEnabled(not own_split)  # the folder's own train/ and val/ sub-folders decide
        if own_split:
            self.val_fraction.setToolTip("This folder has its own train/ and val/ sub-folders; they are used as they are.")

    # ------------------------------------------------------------ settings
    def _settings_edited(self) -> None:
        index = self.studio.index
        changed = index is not None and (round(self.val_fraction.value(), 4) != index.val_split or self.seed.value() != index.seed)
        self.rescan_button.setText("Re-scan to apply" if changed else "Re-scan")

    def _load_from_project(self) -> None:
        cfg = self.studio.config
        for box, value in ((self.val_fraction, cfg.val_split), (self.seed, cfg.seed)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)
        self.folder.setText(cfg.data_dir)
        self._show_new_pictures()
        if cfg.data_dir and Path(cfg.data_dir).is_dir():
            self.rescan()  # a reopened project shows its data again
        elif cfg.data_dir:
            self.report.show_error(f"the project's image folder '{cfg.data_dir}' is not there any more. Choose it again (it may have moved).")

    def _set_busy(self, busy: bool) -> None:
        self.stop_button.setVisible(busy)
        self.rescan_button.setEnabled(not busy and bool(self.folder.text()))
        self.rescan_button.setText("Re-scan")
        if not busy and self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.progress.setFormat("")

    def _update_for_training(self) -> None:
        """A run trains on the folder shown: no other folder is chosen until it ends."""
        training = self.studio.jobs.busy("train")
        self.choose_button.setEnabled(not training)
        self.choose_button.setToolTip(TRAINING_TIP if training else CHOOSE_TIP)

    def shutdown(self) -> None:
        self.gallery.shutdown()
