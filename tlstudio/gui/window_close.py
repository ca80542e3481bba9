"""Run a callback when the window holding a widget is asked to close, whether or not the close is then refused.

The pages with thumbnail decoders settle them then: no decode may still be running while the window goes.
The window is found the first time the widget is shown (a panel is reparented into the window's stack).
"""

from __future__ import annotations

from typing import Callable, Optional

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget


class WindowCloseWatch(QObject):
    def __init__(self, widget: QWidget, on_close: Callable[[], None]):
        super().__init__(widget)
        self._widget, self._on_close = widget, on_close
        self._window: Optional[QWidget] = None
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._widget and event.type() == QEvent.Type.Show:
            window = self._widget.window()
            if window is not self._widget and window is not self._window:
                window.installEventFilter(self)
                self._window = window
        elif watched is self._window and event.type() == QEvent.Type.Close:
            self._on_close()
        return False
