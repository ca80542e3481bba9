"""A progress bar that takes values at any rate and repaints at most every 50 ms.

``QProgressBar.setValue`` repaints synchronously, and a synchronous repaint paints every other
dirty widget of the window with it (the live plots included). A burst of progress events at the
start of a run then held the GUI thread for 90-120 ms on a 2-core machine; landing the latest value
on a short timer keeps each step cheap.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QProgressBar, QWidget

INTERVAL_MS = 50


class CalmProgressBar(QProgressBar):
    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self._latest: Optional[int] = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self._land)

    def setValue(self, value: int) -> None:  # noqa: N802 - Qt's name
        self._latest = int(value)
        if not self._timer.isActive():
            self._timer.start()

    def setRange(self, minimum: int, maximum: int) -> None:  # noqa: N802 - Qt's name
        super().setRange(minimum, maximum)
        if self._latest is not None:  # a pending value belongs to the new range
            self._timer.start()

    def pending_or_shown(self) -> tuple[int, int]:
        """(value, maximum) as the bar shows them once the pending value has landed: what a test compares."""
        return (self._latest if self._latest is not None else self.value()), self.maximum()

    def _land(self) -> None:
        if self._latest is not None:
            value, self._latest = self._latest, None
            super().setValue(value)
