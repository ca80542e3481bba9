"""Text that may not fit: a drop-down and a label that shorten it with "…" and hold it whole in their tooltip.

A narrow window then stays usable: nothing is cut mid-letter, and hovering shows the full words.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFontMetrics, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy, QStyle, QStyleOptionComboBox, QStylePainter, QWidget

MIN_CHARS = 8  # an eliding widget never gets narrower than this many average characters


class ElidingComboBox(QComboBox):
    """Shows its current item shortened to fit; the tooltip holds the full item, then ``about``; the list shows every item whole."""

    def __init__(self, about: str = "", parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.about = about
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(MIN_CHARS)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.currentIndexChanged.connect(self.refresh_tooltip)
        self.refresh_tooltip()

    def set_about(self, about: str) -> None:
        self.about = about
        self.refresh_tooltip()

    def refresh_tooltip(self, _index: int = -1) -> None:
        """Call after changing the current item with signals blocked."""
        meaning = self.itemData(self.currentIndex(), Qt.ItemDataRole.ToolTipRole) if self.currentIndex() >= 0 else None
        current = f"{self.currentText()}: {meaning}" if meaning else self.currentText()
        self.setToolTip("\n\n".join(t for t in (current, self.about) if t))

    def longest_item_width(self) -> int:
        fm = QFontMetrics(self.font())
        return max((fm.horizontalAdvance(self.itemText(i)) for i in range(self.count())), default=0)

    def sizeHint(self) -> QSize:
        """As wide as the longest item, where the layout can afford it; ``minimumSizeHint`` stays small."""
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        contents = QSize(self.longest_item_width() + 4, self.fontMetrics().height())
        wanted = self.style().sizeFromContents(QStyle.ContentsType.CT_ComboBox, opt, contents, self)
        return QSize(max(wanted.width(), super().sizeHint().width()), super().sizeHint().height())

    def showPopup(self) -> None:
        # The list opens as wide as its longest item, even when the box itself is narrow.
        self.view().setMinimumWidth(self.longest_item_width() + 4 * self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent))
        super().showPopup()

    def shown_text(self) -> str:
        """The current item's words as painted: shortened with "…" when the box is too narrow for them."""
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        return self._elided(opt)

    def _elided(self, opt: QStyleOptionComboBox) -> str:
        room = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, opt, QStyle.SubControl.SC_ComboBoxEditField, self).width()
        return QFontMetrics(self.font()).elidedText(opt.currentText, Qt.TextElideMode.ElideRight, max(0, room - 2))

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QStylePainter(self)
        opt = QStyleOptionComboBox()
        self.initStyleOption(opt)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, opt)
        opt.currentText = self._elided(opt)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, opt)


class ElidedLabel(QLabel):
    """One line of plain text, shortened with "…" when narrow; the tooltip then holds all of it."""

    def __init__(self, text: str = "", parent: Optional[QWidget] = None, mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight):
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.PlainText)  # names from the disk are never markup
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._full = ""
        self._about = ""
        self._mode = mode
        self.set_full_text(text)

    def set_full_text(self, text: str, about: str = "") -> None:
        self._full, self._about = text, about
        self._elide()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(min(fm.horizontalAdvance(self._full), fm.averageCharWidth() * MIN_CHARS), super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 2, super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, self._mode, max(0, self.contentsRect().width()))
        super().setText(shown)
        cut = shown != self._full
        self.setToolTip("\n\n".join(t for t in ((self._full if cut else ""), self._about) if t))
