"""The one place where errors reach the user: a readable dialog, never a traceback in their face.

A ``UserError`` (a folder, a file, a setting the user can fix) shows its own message; so does a
``DiskError`` (a full or read-only volume), also one that reached here as a plain ``OSError``.
Anything else is a bug: a short message, the traceback under "Show Details...", and the
log. Dialogs are opened with ``open()``, never ``exec()``: no nested event loop, nothing
blocks the window (or a test). ``notified`` carries the same text for listeners and tests.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from typing import Optional

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from tlstudio.core.disk import disk_error
from tlstudio.core.errors import UserError

log = logging.getLogger("tlstudio.gui")


@dataclass(frozen=True)
class ErrorInfo:
    """An error as plain data, safe to pass through a queued signal."""

    message: str
    details: str = ""  # the traceback, for bugs only
    user_error: bool = False

    @classmethod
    def from_exception(cls, exc: BaseException) -> "ErrorInfo":
        # A full, read-only or forbidden volume that a write did not wrap is still the user's to fix, not a bug.
        exc = disk_error(exc, writing=False) or exc
        if isinstance(exc, UserError):
            return cls(str(exc), "", True)
        details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return cls(f"{type(exc).__name__}: {exc}", details, False)


class Notifier(QObject):
    notified = Signal(object)  # ErrorInfo, after it was logged and shown

    def __init__(self, parent_widget: Optional[QWidget] = None):
        super().__init__()
        self._parent_widget = parent_widget
        self.show_dialogs = True
        self.last: Optional[ErrorInfo] = None
        self.dialogs: list[QMessageBox] = []  # open ones; a parentless box would otherwise be collected at once

    def set_parent_widget(self, widget: QWidget) -> None:
        self._parent_widget = widget

    def exception(self, exc: BaseException, context: str = "") -> None:
        self.error(ErrorInfo.from_exception(exc), context)

    def error(self, info: ErrorInfo, context: str = "") -> None:
        if info.user_error:
            log.warning("%s%s", f"{context}: " if context else "", info.message)
        else:
            log.error("%s%s\n%s", f"{context}: " if context else "", info.message, info.details)
        self.last = info
        if self.show_dialogs:
            self._dialog(info, context)
        self.notified.emit(info)

    def _dialog(self, info: ErrorInfo, context: str) -> None:
        box = QMessageBox(self._parent_widget)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowTitle("tlstudio")
        if info.user_error:
            box.setIcon(QMessageBox.Icon.Warning)
            box.setText((f"{context} did not work.\n\n" if context else "") + _sentence(info.message))
        else:
            box.setIcon(QMessageBox.Icon.Critical)
            box.setText(
                (f"{context} stopped because of an internal error." if context else "Something went wrong inside tlstudio.")
                + "\n\nYour project and data are unchanged. If this keeps happening, send the details below to the developers."
            )
            box.setInformativeText(info.message)
            box.setDetailedText(info.details)
        self.dialogs.append(box)
        box.finished.connect(self._forget_dialog)
        box.open()

    def _forget_dialog(self) -> None:
        box = self.sender()
        if box in self.dialogs:
            self.dialogs.remove(box)


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] if text else text
