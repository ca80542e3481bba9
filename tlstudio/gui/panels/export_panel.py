"""Step 5, Export: save the run's verified model file where the user wants it, and show how to use it.

Two formats: TorchScript (``model.pt``, runs in PyTorch) and ONNX (``model.onnx``, runs without Python
code in onnxruntime). The ONNX file is made here, in the background, when the run has none yet
(``onnx_step``), and only kept once a fresh onnxruntime process agreed with the trained model.

The trainer already exported the best epoch's model as ``runs/<id>/model.pt`` and only kept
it after a fresh process loaded it and agreed with the trained model. Exporting here copies
that verified file (temp file + ``os.replace``, so a full disk never leaves half a file) and
reads its embedded class names back from the copy.

Below, "Classify a folder" runs the run's model file on a folder of new pictures, exactly as
``tlstudio predict`` does, and saves the answers as the CLI's CSV (``widgets.classify_folder``).
"""

from __future__ import annotations

import html

import os
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QGuiApplication
from PySide6.QtWidgets import (
    QButtonGroup,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.errors import UserError
from tlstudio.core.names import printable
from tlstudio.core.runs.files import RunStatus

from tlstudio.gui.panels.onnx_step import ONNX_FILE, export_onnx_copy, verified_report
from tlstudio.gui.snippets import ONNX_SNIPPET, TORCHSCRIPT_SNIPPET
from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.classify_folder import ClassifyFolderView
from tlstudio.gui.widgets.kept_epoch import kept_epoch_to_evaluate
from tlstudio.gui.widgets.run_picker import RunPicker
from tlstudio.gui.workers import Job
from tlstudio.gui.start_folder import EXPORT, ask_save_path
from tlstudio.gui.window_close import WindowCloseWatch


TORCHSCRIPT_KIND = "Model file for PyTorch (TorchScript, .pt)"
ONNX_KIND = "Model file for any runtime (ONNX, .onnx)"


def percent_text(fraction: float) -> str:
    """A small fraction as a percentage a reader takes in at once: 6.1e-05 -> '0.006%'."""
    percent = abs(fraction) * 100
    if percent >= 1:
        return f"{percent:.1f}%"
    if percent < 0.0001:
        return "0%" if percent == 0 else "less than 0.0001%"
    return f"{float(f'{percent:.1g}'):g}%"


def verified_in_plain_words(report: dict) -> str:
    """What the verification numbers mean, for someone who does not read 6.1e-05."""
    agreement, images = report.get("agreement", 0), report.get("images", 0)
    same = (
        "gave the same answers"
        if agreement >= 1
        else f"gave the same answer for {round(agreement * images)} of {images} pictures"
    )
    return f"The exported file and the trained model {same}; their confidences differ by at most {percent_text(report.get('max_abs_diff', 0))}."


def copy_model(source: Path, dest: Path) -> dict:
    """Copy ``source`` to ``dest`` atomically and return the file's embedded information."""
    if not source.is_file():
        raise UserError(f"the run has no model file ({source}). Train again with 'Export the model file at the end' switched on.")
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        os.close(fd)
        try:
            shutil.copy2(source, tmp)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        raise UserError(f"could not save '{dest}': {exc.strerror or exc}. Choose another folder.") from None
    from tlstudio.core.inference.export import read_export_info

    # Read from the zip, never run. The copy is trusted exactly when the run's file is (same bytes, same
    # sha256); recording it here would let a run folder from a stranger launder its model.pt into trust.
    return read_export_info(dest)


class ExportPanel(QWidget):
    exported = Signal(str)  # the path written

    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.job: Optional[Job] = None

        self.runs = RunPicker(studio)
        self.rename_button = QToolButton()
        self.rename_button.setDefaultAction(self.runs.rename_action)
        self.classify = ClassifyFolderView(studio)
        self.verification = QLabel()
        self.verification.setWordWrap(True)
        self.classes = QLabel()
        self.classes.setWordWrap(True)
        self.export_button = QPushButton("Export Model File…")
        self.export_button.setObjectName("primary")
        self.export_button.setToolTip("Save the best model of this run as a file that runs without tlstudio: TorchScript for PyTorch, or ONNX for onnxruntime.")
        self.export_button.clicked.connect(self.choose_destination)
        self.as_torchscript = QRadioButton(TORCHSCRIPT_KIND)
        self.as_torchscript.setToolTip("A TorchScript file: runs wherever PyTorch runs (Python or C++), with its preprocessing and class names inside.")
        self.as_onnx = QRadioButton(ONNX_KIND)
        self.as_onnx.setToolTip("A file of standard ONNX operators for onnxruntime (C, C++, C#, Java, JavaScript, Python...): no PyTorch, no code inside.")
        self.as_torchscript.setChecked(True)
        formats = QButtonGroup(self)
        for button in (self.as_torchscript, self.as_onnx):
            formats.addButton(button)
        self.as_onnx.toggled.connect(self.refresh)
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.snippet = QPlainTextEdit()
        self.snippet.setReadOnly(True)
        font = QFont("monospace")
        font.setStyleHint(QFont.StyleHint.TypeWriter)
        self.snippet.setFont(font)
        self.copy_button = QPushButton("Copy Code")
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.snippet.toPlainText()))

        file_box = QGroupBox("Model file")
        fl = QVBoxLayout(file_box)
        format_row = QHBoxLayout()
        format_row.addWidget(QLabel("Format:"))
        format_row.addWidget(self.as_torchscript)
        format_row.addWidget(self.as_onnx)
        format_row.addStretch(1)
        fl.addLayout(format_row)
        fl.addWidget(self.verification)
        fl.addWidget(self.classes)
        row = QHBoxLayout()
        row.addWidget(self.export_button)
        row.addWidget(self.result, 1)
        fl.addLayout(row)
        code_box = self.code_box = QGroupBox("Use it from plain PyTorch")
        cl = QVBoxLayout(code_box)
        cl.addWidget(self.snippet)
        copy_row = QHBoxLayout()
        copy_row.addStretch(1)
        copy_row.addWidget(self.copy_button)
        cl.addLayout(copy_row)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        top.addWidget(self.runs, 1)
        top.addWidget(self.rename_button)
        classify_box = QGroupBox("Classify a folder of new pictures")
        QVBoxLayout(classify_box).addWidget(self.classify)
        below = QSplitter()
        below.setOrientation(Qt.Orientation.Vertical)
        below.addWidget(classify_box)
        below.addWidget(code_box)
        below.setStretchFactor(0, 2)
        below.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(file_box)
        layout.addWidget(below, 1)

        studio.current_run_changed.connect(self.show_run)
        studio.runs_changed.connect(self.refresh)
        WindowCloseWatch(self, self.classify.settle)  # no decode may still run while the window goes
        self.show_run(studio.current_run)

    def shutdown(self) -> None:
        """Stop the thumbnail decoder for good (the application is quitting)."""
        self.classify.shutdown()

    def refresh(self) -> None:
        self.show_run(self.studio.current_run)

    def show_run(self, run_id: str) -> None:
        run = self.studio.run(run_id)
        self.result.setText("")
        self.classify.set_run(run)
        self._set_snippet(ONNX_FILE if self.as_onnx.isChecked() else "model.pt")
        if run is None:
            self.verification.setText("Train a model on the Train step first; its best epoch can then be exported here.")
            self.classes.setText("")
            self.export_button.setEnabled(False)
            return
        classes = run.metrics.get("classes") or run.record.summary.get("classes") or []
        self.classes.setText("Classes, in output order: " + ", ".join(f"<b>{html.escape(printable(str(c)))}</b>" for c in classes) if classes else "")
        if self.as_onnx.isChecked():
            self.verification.setText(self._onnx_verification(run))
            self.export_button.setEnabled(self._can_export(run) and self.job is None)
            return
        report = run.record.summary.get("export") or {}
        if run.has_model and report.get("verified"):
            self.verification.setText(
                f"&#10004; <b>Verified</b>: a fresh Python process loaded the file and agreed with the trained model on "
                f"{report.get('agreement', 0):.1%} of {report.get('images', 0)} held pictures "
                f"(largest difference in probability {report.get('max_abs_diff', 0):.1e}).<br>"
                + html.escape(verified_in_plain_words(report))
            )
        elif run.has_model:
            self.verification.setText("This run has a model file (verified when it was written).")
        elif kept_epoch_to_evaluate(run):
            self.verification.setText(
                "This run was stopped before its model file was written: <b>Evaluate the Kept Epoch</b> on the "
                "Evaluate step measures the epoch it kept and writes its verified model file."
            )
        elif not (run.files.read_status() or RunStatus(epochs_completed=1)).evaluable:
            self.verification.setText("This run ended before it completed an epoch, so it has no model to export.")
        else:
            self.verification.setText(
                "This run has no model file: it was trained with 'Export the model file at the end' off. Train again with it on to export."
            )
        self.export_button.setEnabled(run.has_model and self.job is None)

    @staticmethod
    def _onnx_verification(run) -> str:
        report = verified_report(run.files.root, run.record.summary)
        if report is not None:
            return (
                f"&#10004; <b>Verified</b>: a fresh process with nothing but onnxruntime ran {ONNX_FILE} and agreed with the trained model on "
                f"{report.get('agreement', 0):.1%} of {report.get('images', 0)} held pictures "
                f"(largest difference in probability {report.get('max_abs_diff', 0):.1e}).<br>"
                + html.escape(verified_in_plain_words(report))
            )
        return (
            f"Exporting makes {ONNX_FILE} from this run's kept epoch: its held pictures are evaluated again, and the file is kept "
            "only once a fresh onnxruntime process agrees with the trained model (a little while)."
        )

    def _can_export(self, run) -> bool:
        if not self.as_onnx.isChecked():
            return run.has_model
        status = run.files.read_status()
        return run.has_model or verified_report(run.files.root, run.record.summary) is not None or (status is not None and status.evaluable)

    def choose_destination(self) -> None:
        run = self.studio.run(self.studio.current_run)
        if run is None:
            return
        suffix, kind = (".onnx", f"{ONNX_KIND} (*.onnx)") if self.as_onnx.isChecked() else (".pt", f"{TORCHSCRIPT_KIND} (*.pt)")
        name = f"{self.studio.project.name}-{run.record.backbone or 'model'}{suffix}".replace(" ", "_")
        path = ask_save_path(self, self.studio, EXPORT, "Export the model file", name, kind)
        if path:
            self.export_to(path)

    def export_to(self, path: str | Path) -> Optional[Job]:
        """Copy the current run's verified model file (of the chosen format) to ``path`` in the background."""
        run = self.studio.run(self.studio.current_run)
        if run is None or self.job is not None:
            return None
        onnx = self.as_onnx.isChecked()
        suffix = ".onnx" if onnx else ".pt"
        source, dest = run.files.model, Path(path)
        if dest.suffix != suffix:
            dest = dest.with_name(dest.name + suffix)
        root, summary, cache = run.files.root, dict(run.record.summary), self.studio.project.cache_dir

        def work(on_event, stop):
            if onnx:
                return export_onnx_copy(root, summary, cache, dest, on_event, stop)
            return dest, copy_model(source, dest)

        job = self.studio.jobs.start("export", "Exporting the model file", work)
        self.job = job
        self.export_button.setEnabled(False)
        self.result.setText("Saving…")
        job.succeeded.connect(self._on_exported)
        job.failed.connect(self._on_export_failed)
        job.finished.connect(self._on_finished)
        return job

    def _on_export_failed(self, info) -> None:
        self.result.setText(f"Not saved: {info.message}")

    def _on_exported(self, done: tuple) -> None:
        dest, info = done[:2]
        if len(done) == 4 and done[3] is not None:  # the run's model.onnx was made: its summary now says so
            run = self.studio.run(self.studio.current_run)
            if run is not None:
                self.studio.project.finish_run(run.id, run.record.status, done[3], run.record.message)
                self.studio.runs_changed.emit()
        names = [printable(str(n)) for n in info.get("class_names") or info.get("classes") or []]
        self.result.setText(f"Saved to <b>{dest}</b>" + (f" (classes: {', '.join(names)})." if names else "."))
        self._set_snippet(dest.name)
        self.exported.emit(str(dest))

    def _on_finished(self) -> None:
        self.job = None
        run = self.studio.run(self.studio.current_run)
        self.export_button.setEnabled(run is not None and self._can_export(run))

    def _set_snippet(self, name: str) -> None:
        onnx = name.endswith(".onnx")
        self.code_box.setTitle("Use it from plain onnxruntime (no PyTorch)" if onnx else "Use it from plain PyTorch")
        self.snippet.setPlainText((ONNX_SNIPPET if onnx else TORCHSCRIPT_SNIPPET).format(name=name))
