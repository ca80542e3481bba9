"""Long core calls off the GUI thread: a QObject worker moved to a QThread, one ``Job`` per call.

The work is a plain callable ``fn(on_event, stop) -> result`` that only touches plain data
(the core's scan, download, train, export). Its events become queued signals carrying the
core's frozen event dataclasses; its result, error or cancellation arrive the same way.
Stopping only asks (``StopToken.stop()``), the core checks between batches or files, and
the thread ends on its own: never ``QThread.terminate()``.

``Jobs`` keeps every live job (so no QThread is ever destroyed while running), sends every
failure to the one notifier, and reports the current job's progress for the status bar.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Optional

from PySide6.QtCore import QCoreApplication, QObject, QThread, Qt, Signal, Slot

from tlstudio.core.eta import PhaseProgress, PhaseState
from tlstudio.core.events import Cancelled, EpochEnded, Failed, Finished, PhaseStarted, Progress, StepEnded, StopToken

from tlstudio.gui.notifier import ErrorInfo, Notifier
from tlstudio.gui.phase_words import status_line

Work = Callable[[Callable[[Any], None], StopToken], Any]

# Per-item events reach the GUI at most this often; phase changes, epochs and the last item always do.
THROTTLE_S = 0.05


class _Worker(QObject):
    event = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)  # ErrorInfo
    cancelled = Signal()
    done = Signal()

    def __init__(self, fn: Work, token: StopToken):
        super().__init__()
        self._fn, self._token = fn, token
        self._last_emit: dict[type, float] = {}

    def _on_event(self, event: Any) -> None:
        # Called on the worker thread: only emit, never touch a widget.
        if isinstance(event, Failed):
            return  # the exception that follows carries it to the notifier once
        if isinstance(event, (Progress, StepEnded)):
            last = isinstance(event, Progress) and event.total and event.done >= event.total
            now = time.monotonic()
            # One clock per kind: the trainer sends a StepEnded and a Progress together, and a shared
            # clock let only the StepEnded through, leaving the bar still until the phase's end.
            if not last and now - self._last_emit.get(type(event), float("-inf")) < THROTTLE_S:
                return
            self._last_emit[type(event)] = now
        self.event.emit(event)

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self._on_event, self._token)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure must reach the notifier, not kill the thread
            self.failed.emit(ErrorInfo.from_exception(exc))
        else:
            self.succeeded.emit(result)
        finally:
            # Hand this object back to the GUI thread, so that it is deleted there (deleteLater in Job),
            # never on this thread and never by a garbage collection here.
            self.moveToThread(QCoreApplication.instance().thread())
            self.done.emit()


class Job(QObject):
    """One core call on its own thread. Lives on the GUI thread; all its signals arrive there."""

    event = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)  # ErrorInfo
    cancelled = Signal()
    finished = Signal()  # always last, after the thread has ended
    paused_changed = Signal(bool)

    def __init__(self, name: str, title: str, fn: Work):
        super().__init__()
        self.name, self.title = name, title
        self.token = StopToken()
        # The current phase, its done/total and time left (pauses left out): every view of this job reads this one.
        token = self.token  # not self: no reference cycle through the lambda
        self.phase = PhaseProgress(lambda: token.paused_seconds)
        self.detail = ""  # the last Progress's own words ("epoch 2/3"), for the status bar
        self.result: Any = None
        self.error: Optional[ErrorInfo] = None
        self.was_cancelled = False
        self._thread = QThread()
        self._thread.setObjectName(f"tlstudio-{name}")
        self._worker = _Worker(fn, self.token)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.done.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)  # quit() is thread-safe
        self._worker.event.connect(self._on_event)
        self._worker.succeeded.connect(self._on_succeeded)
        self._worker.failed.connect(self._on_failed)
        self._worker.cancelled.connect(self._on_cancelled)
        self._thread.finished.connect(self._on_thread_finished)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the work to stop at its next check (within one batch or file)."""
        self.token.stop()

    def pause(self) -> None:
        if not self.token.paused and not self.token.stopped:
            self.token.pause()
            self.paused_changed.emit(True)

    def resume(self) -> None:
        if self.token.paused:
            self.token.resume()
            self.paused_changed.emit(False)

    def phase_state(self) -> PhaseState:
        return self.phase.state()

    @property
    def paused(self) -> bool:
        return self.token.paused

    def is_running(self) -> bool:
        return self._thread.isRunning()

    def wait(self, ms: int = -1) -> bool:
        """Block until the thread has ended. Only for shutdown paths; the window waits on ``finished`` instead."""
        return self._thread.wait() if ms < 0 else self._thread.wait(ms)

    @property
    def thread(self) -> QThread:
        return self._thread

    @Slot(object)
    def _on_event(self, event: Any) -> None:
        self.phase.update(event)  # before the listeners: they read the phase this event made
        if isinstance(event, PhaseStarted):
            self.detail = ""
        elif isinstance(event, Progress):
            self.detail = event.detail
        self.event.emit(event)

    @Slot(object)
    def _on_succeeded(self, result: Any) -> None:
        self.result = result
        self.succeeded.emit(result)

    @Slot(object)
    def _on_failed(self, info: ErrorInfo) -> None:
        self.error = info
        self.failed.emit(info)

    @Slot()
    def _on_cancelled(self) -> None:
        self.was_cancelled = True
        self.cancelled.emit()

    @Slot()
    def _on_thread_finished(self) -> None:
        self._thread.wait()  # ``finished`` is emitted just before the thread really ends
        self._worker.deleteLater()
        self.finished.emit()


class Jobs(QObject):
    """Every live job. Failures go to the notifier; the newest job's progress goes to ``progress``."""

    progress = Signal(str, int, int)  # text, done, total (total 0: unknown)
    busy_changed = Signal(bool)
    live_changed = Signal()  # a job started or ended: ``busy(name)`` may have changed
    all_finished = Signal()

    def __init__(self, notifier: Notifier):
        super().__init__()
        self.notifier = notifier
        self._live: list[Job] = []

    def start(self, name: str, title: str, fn: Work) -> Job:
        job = Job(name, title, fn)
        self._live.append(job)
        # Bound slots, not lambdas: no reference cycle keeps a finished Job alive.
        job.event.connect(self._on_event)
        job.paused_changed.connect(self._on_paused_changed)
        job.failed.connect(self._on_failed)
        job.finished.connect(self._on_finished)
        job.start()
        if len(self._live) == 1:
            self.busy_changed.emit(True)
        self.live_changed.emit()
        if self._speaks(job):
            self.progress.emit(f"{title}…", 0, 0)
        return job

    def live(self, name: Optional[str] = None) -> list[Job]:
        return [j for j in self._live if name is None or j.name == name]

    def busy(self, name: Optional[str] = None) -> bool:
        return bool(self.live(name))

    def stop_all(self) -> None:
        for job in self._live:
            job.stop()

    def wait_all(self, ms: int = 30_000) -> bool:
        """Stop and join every thread (application shutdown). True when all ended in time."""
        self.stop_all()
        deadline = time.monotonic() + ms / 1000
        return all(j.wait(max(0, int((deadline - time.monotonic()) * 1000))) for j in list(self._live))

    @Slot(object)
    def _on_failed(self, info: ErrorInfo) -> None:
        job = self.sender()
        self.notifier.error(info, job.title if isinstance(job, Job) else "")

    def _speaks(self, job: Job) -> bool:
        """Whether ``job``'s progress goes to the status bar: the oldest live job with phases (a run) keeps it,
        so that a short job started meanwhile (thumbnails, a report) does not replace the run's figures."""
        for other in self._live:
            if other is job:
                return True
            if other.phase.name:
                return False
        return True

    @Slot(object)
    def _on_event(self, event: Any) -> None:
        job = self.sender()
        if not isinstance(job, Job) or not self._speaks(job):
            return
        if isinstance(event, (PhaseStarted, Progress, EpochEnded)):
            self._report(job)
        elif isinstance(event, Finished) and event.cancelled:
            self.progress.emit(f"{job.title}: stopped", 0, 0)

    @Slot(bool)
    def _on_paused_changed(self, _paused: bool) -> None:
        job = self.sender()
        if isinstance(job, Job) and self._speaks(job):
            self._report(job)

    def _report(self, job: Job) -> None:
        """The job's phase as the Train step shows it: the same done/total, the same words, paused shown as paused."""
        state = job.phase_state()
        self.progress.emit(status_line(job.title, state, job.paused, job.detail), state.done, state.total)

    def _report_next(self) -> None:
        """After a job ends, the status bar shows the one that speaks now, not the ended job's last line."""
        job = next((j for j in self._live if j.phase.name), self._live[-1])
        if job.phase.name:
            self._report(job)
        else:
            self.progress.emit(f"{job.title}…", 0, 0)

    @Slot()
    def _on_finished(self) -> None:
        job = self.sender()
        if job in self._live:
            self._live.remove(job)
        self.live_changed.emit()
        if self._live:
            self._report_next()
        else:
            self.progress.emit("Ready", 0, 0)
            self.busy_changed.emit(False)
            self.all_finished.emit()


def reserve_a_core_for_the_window() -> int:
    """Let torch use every core but one, so the window keeps a core to draw on. Returns the thread count.

    torch's intra-op pool is process-wide; training in a worker thread with all cores busy
    makes the GUI thread wait for a core, and on a 2-core machine that shows as stutter.
    """
    import torch

    threads = max(1, (os.cpu_count() or 2) - 1)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads
