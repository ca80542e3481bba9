"""The small vocabulary that long-running core work speaks.

Every long operation (scan, download, train, export) takes ``on_event`` (a plain
callable, called on the worker's own thread) and a ``StopToken``. Listeners are the
CLI progress bar, the GUI worker (which turns events into queued Qt signals) and the
tests. Events are frozen dataclasses of plain data: never tensors, never widgets.
"""

from __future__ import annotations

import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class PhaseStarted:
    """A named phase begins: scanning, decoding, caching features, training, evaluating, exporting, downloading."""

    name: str
    total: int = 0  # units of work in this phase (files, images, batches); 0 when unknown


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    detail: str = ""


@dataclass(frozen=True)
class StepEnded:
    """One optimisation step (batch) of training."""

    epoch: int
    step: int
    steps_per_epoch: int
    loss: float
    images_per_s: float


@dataclass(frozen=True)
class EpochEnded:
    epoch: int  # 1-based
    epochs: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    images_per_s: float
    seconds: float
    eta_s: float
    is_best: bool = False  # the epoch kept so far, chosen on the selection split (a solved frozen head has none)


@dataclass(frozen=True)
class Message:
    """Something the user should read: a warning (slow CPU training) or a note (batch size chosen)."""

    text: str
    level: str = "info"  # "info" | "warning"


@dataclass(frozen=True)
class Finished:
    summary: dict = field(default_factory=dict)
    cancelled: bool = False


@dataclass(frozen=True)
class Failed:
    message: str
    traceback: str = ""


Event = Any
EventCallback = Callable[[Event], None]


@contextmanager
def failures_reported(on_event: EventCallback):
    """A failure of the work inside is sent as ``Failed`` (a user's mistake as its message, a bug with its traceback), then raised."""
    from tlstudio.core.errors import UserError

    try:
        yield
    except UserError as exc:
        on_event(Failed(str(exc)))
        raise
    except Exception as exc:
        on_event(Failed(f"{type(exc).__name__}: {exc}", traceback.format_exc()))
        raise


def ignore_events(_event: Event) -> None:
    """The default listener."""


class Cancelled(Exception):
    """Raised inside core work when the StopToken asks it to stop; callers turn it into a cancelled result."""


class StopToken:
    """Stop and pause, asked for from any thread and checked by the work between units (batches, files).

    Stopping never kills anything: the work polls ``check()`` and unwinds on its own. The token also
    counts the seconds the work spent held by a pause (``paused_seconds``), so that epoch times, speeds
    and time-left figures leave the pause out.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._clock = clock
        self._held = threading.Condition()
        self._waiting = 0  # threads blocked in check(): the decoder's pool may hold several at once
        self._held_since = 0.0
        self._held_total = 0.0

    def stop(self) -> None:
        self._stop.set()
        self._running.set()  # a paused worker must wake up to see the stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @property
    def blocked(self) -> bool:
        """True while the work is actually held by the pause (it ends its current unit first)."""
        with self._held:
            return self._waiting > 0

    @property
    def paused_seconds(self) -> float:
        """Wall-clock seconds the work has been held so far, the pause in progress included."""
        with self._held:
            ongoing = self._clock() - self._held_since if self._waiting else 0.0
            return self._held_total + ongoing

    def wait_until_blocked(self, timeout: float) -> bool:
        """Block the caller until the work is held by the pause; False after ``timeout`` seconds."""
        with self._held:
            return self._held.wait_for(lambda: self._waiting > 0, timeout)

    def check(self) -> None:
        """Block while paused; raise Cancelled if a stop was asked for."""
        if not self._running.is_set():
            self._hold()
        if self._stop.is_set():
            raise Cancelled()

    def _hold(self) -> None:
        with self._held:
            if self._waiting == 0:
                self._held_since = self._clock()
            self._waiting += 1
            self._held.notify_all()
        try:
            self._running.wait()
        finally:
            with self._held:
                self._waiting -= 1
                if self._waiting == 0:
                    self._held_total += self._clock() - self._held_since


def as_token(stop: Optional[StopToken]) -> StopToken:
    return stop if stop is not None else StopToken()
