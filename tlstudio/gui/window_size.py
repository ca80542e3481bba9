"""The main window's size on this screen: as designed where it fits, the available area where it does not, never tiny."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize

PREFERRED = QSize(1200, 780)
SMALLEST = QSize(640, 420)  # below this the steps are unusable; a restored geometry this small is ignored
BORDER, TITLE = 8, 40  # what the window manager adds around the client area: borders, and a title bar on top


def _room(available: QRect) -> QRect:
    """The part of the available area the client area can take once the frame is around it."""
    return available.adjusted(BORDER, TITLE, -BORDER, -BORDER)


def _fit(size: QSize, available: QRect) -> QSize:
    room = _room(available)
    return size.boundedTo(QSize(max(1, room.width()), max(1, room.height())))


def _centred(size: QSize, available: QRect) -> QRect:
    rect = QRect(0, 0, size.width(), size.height())
    rect.moveCenter(_room(available).center())
    return rect


def first_geometry(available: QRect) -> QRect:
    """Where the window opens the first time: the preferred size, shrunk to the screen's available area."""
    return _centred(_fit(PREFERRED, available), available)


def fitted_geometry(saved: QRect, available: QRect) -> QRect:
    """A restored geometry kept on the screen: shrunk to fit, moved inside; a tiny or empty one is replaced."""
    if saved.width() < min(SMALLEST.width(), available.width()) or saved.height() < min(SMALLEST.height(), available.height()):
        return first_geometry(available)
    size = _fit(saved.size(), available)
    rect = QRect(saved.topLeft(), size)
    room = _room(available)
    if rect.right() > room.right():
        rect.moveRight(room.right())
    if rect.bottom() > room.bottom():
        rect.moveBottom(room.bottom())
    if rect.left() < room.left():
        rect.moveLeft(room.left())
    if rect.top() < room.top():
        rect.moveTop(room.top())
    return rect
