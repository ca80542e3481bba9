"""One action of the Evaluate step that runs as a background job: its settings, Start, Stop, progress, result.

A ``JobBox`` is given a ``prepare()`` that reads its settings and returns the work (``workers.Work``) or
raises ``UserError`` (shown in the box, nothing starts), and a ``describe(result)`` that turns the core's
typed result into the box's words. The work runs in a ``workers.Job`` of the studio's ``Jobs``: the
window never waits for it, Stop asks the core to stop within one batch, and what the box shows always
belongs to the last job it started.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from tlstudio.core.errors import UserError
from tlstudio.core.events import PhaseStarted, Progress
from tlstudio.gui.phase_words import phase_line
from tlstudio.gui.widgets.calm_progress import CalmProgressBar
from tlstudio.gui.workers import Job, Jobs, Work


class JobBox(QGroupBox):
    succeeded = Signal(object)  # the core's result, once it is shown

    def __init__(self, title: str, intro: str, action: str, jobs: Jobs, name: str,
                 prepare: Callable[[], Work], describe: Callable[[Any], str], parent: Optional[QWidget] = None):
        super().__init__(title, parent)
        self.jobs, self.name, self._prepare, self._describe = jobs, name, prepare, describe
        self.job: Optional[Job] = None
        self.result: Any = None
        self.intro = QLabel(intro)
        self.intro.setWordWrap(True)
        self.form = QVBoxLayout()  # the caller's settings go here
        self.start_button, self.stop_button = QPushButton(action), QPushButton("Stop")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        self.progress = CalmProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.progress, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addLayout(self.form)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addStretch(1)

    def add_row(self, label: str, widget: QWidget, tip: str = "") -> None:
        row = QHBoxLayout()
        words = QLabel(label)
        for w in (words, widget):
            w.setToolTip(tip)
        row.addWidget(words)
        row.addWidget(widget, 1)
        self.form.addLayout(row)

    # ------------------------------------------------------------ running
    def start(self) -> None:
        if self.job is not None:
            return
        try:
            work = self._prepare()
        except UserError as exc:
            self.status.setText(_escape(str(exc)))
            return
        self.result = None
        self.status.setText("Starting…")
        self.progress.setRange(0, 0)
        job = self.jobs.start(self.name, self.title(), work)
        self.job = job
        job.event.connect(self._on_event)
        job.succeeded.connect(self._on_succeeded)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        job.finished.connect(self._on_finished)
        self._set_running(True)

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()
            self.status.setText("Stopping at the end of the current batch…")

    def is_running(self) -> bool:
        return self.job is not None

    def _mine(self) -> bool:
        return self.job is not None and self.sender() is self.job

    def _on_event(self, event) -> None:
        if not self._mine():
            return
        if isinstance(event, PhaseStarted):
            self.progress.setRange(0, max(0, event.total))
            self.progress.setValue(0)
        elif isinstance(event, Progress) and event.total:
            self.progress.setRange(0, event.total)
            self.progress.setValue(event.done)
        if isinstance(event, (PhaseStarted, Progress)):  # the Train step's words for the job's phase
            self.status.setText(_escape(phase_line(self.job.phase_state(), self.job.paused)))

    def _on_succeeded(self, result) -> None:
        if not self._mine():
            return
        self.result = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.status.setText(self._describe(result))
        self.succeeded.emit(result)

    def _on_failed(self, info) -> None:
        if self._mine():
            self.status.setText(_escape(info.message))  # the notifier has it too

    def _on_cancelled(self) -> None:
        if self._mine():
            self.status.setText("Stopped. Nothing was changed; start again when you like.")

    def _on_finished(self) -> None:
        if self._mine():
            self.job = None
            self._set_running(False)
            if self.progress.maximum() == 0:
                self.progress.setRange(0, 1)
                self.progress.setValue(0)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)


def _escape(text: str) -> str:
    import html

    return html.escape(text)
