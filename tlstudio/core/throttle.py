"""Limit how often per-item progress reaches listeners (a GUI repaints a few times a second, not per file)."""

from __future__ import annotations

import time


class Throttle:
    def __init__(self, interval_s: float = 0.1):
        self.interval_s = interval_s
        self._last = float("-inf")

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            return True
        return False
