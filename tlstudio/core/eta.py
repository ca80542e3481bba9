"""Time left in a phase, and time spent in it, with the pauses left out.

``ActiveTimer`` measures seconds of work: wall-clock time minus the seconds a ``StopToken`` held the
work paused. ``PhaseEta`` turns a phase's done/total into seconds left from that active time.
``PhaseProgress`` follows the events of one job (PhaseStarted, Progress) and knows, at any moment, the
phase, its done/total and its time left: the window's Train step and its status bar read the same one.
Plain Python, no Qt: the clock and the paused seconds are passed in, so tests drive them by hand.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

from tlstudio.core.events import PhaseStarted, Progress

Clock = Callable[[], float]

# Below this much active time (or before the first unit after the start) a rate is noise, not an estimate.
MIN_ACTIVE_S = 0.5


def no_pauses() -> float:
    return 0.0


class ActiveTimer:
    """Seconds since ``start`` (or creation) that were not spent paused."""

    def __init__(self, paused_seconds: Clock = no_pauses, clock: Clock = time.perf_counter):
        self._paused, self._clock = paused_seconds, clock
        self.start()

    def start(self) -> None:
        self._t0, self._paused0 = self._clock(), self._paused()

    def seconds(self) -> float:
        return max(0.0, self._clock() - self._t0 - (self._paused() - self._paused0))


class PhaseEta:
    """Seconds left in a phase of ``total`` units, from the rate since the phase began (pauses excluded).

    ``done0`` is where the phase starts counting (a resumed run's training phase starts at its completed
    epochs' steps): only the units done since count towards the rate."""

    def __init__(self, total: int, done0: int = 0, paused_seconds: Clock = no_pauses, clock: Clock = time.monotonic):
        self.total, self.done0 = total, done0
        self.timer = ActiveTimer(paused_seconds, clock)

    def seconds_left(self, done: int) -> Optional[float]:
        """None while there is nothing to go on yet (no unit done, or under half a second of work)."""
        active, progressed = self.timer.seconds(), done - self.done0
        if self.total <= 0 or progressed <= 0 or active < MIN_ACTIVE_S:
            return None
        return max(0.0, (self.total - done) * active / progressed)


@dataclass(frozen=True)
class PhaseState:
    name: str  # "" before the first phase
    done: int
    total: int  # 0: unknown
    seconds_left: Optional[float]  # None: no estimate yet

    @property
    def fraction(self) -> Optional[float]:
        return min(1.0, self.done / self.total) if self.total > 0 else None


class PhaseProgress:
    """The current phase of one job, fed its events in order."""

    def __init__(self, paused_seconds: Clock = no_pauses, clock: Clock = time.monotonic):
        self._paused, self._clock = paused_seconds, clock
        self.name, self.done, self.total = "", 0, 0
        self._eta: Optional[PhaseEta] = None

    def update(self, event) -> bool:
        """Take one event; True when it changed the phase or its progress.

        The rate is measured from the phase's first Progress on: a resumed run's first report carries
        the steps of its completed epochs, which took no time in this session."""
        if isinstance(event, PhaseStarted):
            self.name, self.done, self.total = event.name, 0, max(0, event.total)
            self._eta = None
            return True
        if isinstance(event, Progress):
            if self._eta is None or event.total != self.total:  # the first report, or a phase that learns its size late
                self.total = max(0, event.total)
                self._eta = PhaseEta(self.total, event.done, self._paused, self._clock)
            self.done = event.done
            return True
        return False

    def state(self) -> PhaseState:
        left = self._eta.seconds_left(self.done) if self._eta is not None else None
        return PhaseState(self.name, self.done, self.total, left)
