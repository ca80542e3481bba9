"""The confusion matrix as a heat map: counts and row percentages, one click away from the pictures.

Rows are the true class, columns what the model said. Each cell shows its count and the share of
its row (of the pictures of that true class, how many went there), shaded by that share: blue on
the diagonal (right answers), orange off it (mistakes). Blue and orange stay apart for the common
kinds of colour blindness, and the text turns white on dark cells so it always reads.

The cells share out the space the view is given (never less than ``MIN_CELL`` pixels a side). Past
``NAMES_UP_TO`` classes the columns are numbered and each row says "number  name", so a 20 x 20
matrix fits a laptop screen; every header keeps the full class name in its tooltip. A cell too small
for its count and share shows the count alone, and the tooltip always says both.
"""

from __future__ import annotations

from typing import Optional, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QAbstractItemView, QFrame, QHeaderView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTableView, QWidget

RIGHT = (8, 81, 156)  # dark blue: the diagonal at 100 %
WRONG = (204, 85, 0)  # dark orange: an off-diagonal cell at 100 %
NAMES_UP_TO = 8  # classes; beyond this the columns are numbered (a name does not fit a narrow column)
MIN_CELL = 24  # pixels: the smallest cell that still reads and takes a click
NAMED_CELL = 40  # the smallest cell when the column titles are names (shortened with "…" below it)
ROWS_AT_LEAST = 8  # the view may get shorter than all its rows (then it scrolls down), never than these
ROW_TITLE_WIDTH = 120  # the row titles' most: a longer name is shortened with "…" (its tooltip has it whole)


def shade(share: float, right: bool) -> QColor:
    """White at 0, the full colour at 1; a small floor so that 1 picture out of 1,000 still shows."""
    if share <= 0:
        return QColor(255, 255, 255)
    t = 0.12 + 0.88 * min(1.0, share)
    r, g, b = RIGHT if right else WRONG
    return QColor(round(255 + (r - 255) * t), round(255 + (g - 255) * t), round(255 + (b - 255) * t))


def readable_text(background: QColor) -> QColor:
    """Black or white, whichever contrasts more with ``background`` (WCAG relative luminance)."""

    def channel(c: int) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    lum = 0.2126 * channel(background.red()) + 0.7152 * channel(background.green()) + 0.0722 * channel(background.blue())
    return QColor(0, 0, 0) if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else QColor(255, 255, 255)


class ConfusionModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.classes: list[str] = []
        self.counts: list[list[int]] = []
        self.numbered = False  # columns titled 1, 2, 3…, rows "1  name"
        self._bold = QFont()
        self._bold.setBold(True)

    def set_matrix(self, classes: Sequence[str], counts: Sequence[Sequence[int]]) -> None:
        self.beginResetModel()
        self.classes = list(classes)
        self.counts = [[int(n) for n in row] for row in counts]
        self.numbered = len(self.classes) > NAMES_UP_TO
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self.classes)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.classes)

    def share(self, i: int, j: int) -> float:
        total = sum(self.counts[i])
        return self.counts[i][j] / total if total else 0.0

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        i, j = index.row(), index.column()
        n, share = self.counts[i][j], self.share(i, j)
        if role == Qt.ItemDataRole.DisplayRole:
            return f"{n}\n{share:.0%}" if sum(self.counts[i]) else "0"
        if role == Qt.ItemDataRole.UserRole:
            return n
        if role == Qt.ItemDataRole.BackgroundRole:
            return shade(share, i == j)
        if role == Qt.ItemDataRole.ForegroundRole:
            return readable_text(shade(share, i == j))
        if role == Qt.ItemDataRole.FontRole and i == j:
            return self._bold
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(i, j, n, share)
        return None

    def _tooltip(self, i: int, j: int, n: int, share: float) -> str:
        true, said, total = self.classes[i], self.classes[j], sum(self.counts[i])
        if not total:
            return f"There are no '{true}' pictures among the validation pictures."
        if i == j:
            what = f"{n} of the {total} '{true}' pictures ({share:.0%}) were recognised correctly."
        else:
            what = f"{n} of the {total} '{true}' pictures ({share:.0%}) were taken for '{said}'."
        return what + ("\nClick to see them." if n else "")

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if not 0 <= section < len(self.classes):
            return None
        name = self.classes[section]
        if role == Qt.ItemDataRole.DisplayRole:
            if not self.numbered:
                return name
            return f"{section + 1}  {name}" if orientation == Qt.Orientation.Vertical else str(section + 1)
        if role == Qt.ItemDataRole.ToolTipRole:
            number = f" {section + 1}" if self.numbered else ""
            if orientation == Qt.Orientation.Vertical:
                return f"Row{number}: the pictures that really are '{name}'."
            return f"Column{number}: the pictures the model called '{name}'."
        return None


class CellDelegate(QStyledItemDelegate):
    """Keeps the heat-map colour of the chosen cell (a selection fill would hide it) and frames it instead.

    Shows as much of "count / share" as the cell holds: both lines, the count alone, or only the colour.
    A numbered (big) matrix leaves its empty cells blank; their tooltips still say 0.
    """

    def initStyleOption(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        super().initStyleOption(option, index)
        if index.data(Qt.ItemDataRole.UserRole) == 0 and index.model().numbered:
            option.text = ""  # in a big matrix, rows of zeros would hide the few cells that matter
            return
        margin = 12  # the style's text margins and the grid line, with room to spare: text is never shortened to "10…"
        option.text = fitting_text(option.text, QFontMetrics(option.font), option.rect.width() - margin, option.rect.height() - 2)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        chosen = bool(opt.state & QStyle.StateFlag.State_Selected)
        opt.state &= ~(QStyle.StateFlag.State_Selected | QStyle.StateFlag.State_HasFocus)
        super().paint(painter, opt, index)
        if chosen:
            painter.save()
            pen = QPen(QColor(20, 20, 20), 3)
            pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
            painter.setPen(pen)
            painter.drawRect(option.rect.adjusted(2, 2, -2, -2))
            painter.restore()


LINE_BREAK = "\u2028"


def fitting_text(text: str, fm: QFontMetrics, width: int, height: int) -> str:
    """The lines of ``text`` that fit a ``width`` x ``height`` cell, from the first; "" when not even the first does."""
    lines = text.replace("\n", LINE_BREAK).split(LINE_BREAK)  # the view hands its text over with Qt's line separator
    while lines and (fm.lineSpacing() * len(lines) > height or max(fm.horizontalAdvance(line) for line in lines) > width):
        lines.pop()
    return LINE_BREAK.join(lines)


class ConfusionMatrixView(QTableView):
    cell_chosen = Signal(int, int)  # true class row, predicted class column

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.matrix = ConfusionModel(self)
        self.setModel(self.matrix)
        self.setItemDelegate(CellDelegate(self))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setWordWrap(True)
        self.setCornerButtonEnabled(False)
        self.setFrameShape(QFrame.Shape.NoFrame)  # the cells' grid is frame enough, and a laptop screen needs the pixels
        self.setToolTip("Rows: the true class. Columns: what the model said. The diagonal holds the right answers.\nClick a cell to see its pictures.")
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setHighlightSections(True)
            header.setTextElideMode(Qt.TextElideMode.ElideRight)
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)  # the cells share the space out
        self.verticalHeader().setMaximumWidth(ROW_TITLE_WIDTH)
        self._set_cell_minimum()
        self.clicked.connect(self._on_clicked)
        self.activated.connect(self._on_clicked)  # Enter on the keyboard, too

    def set_matrix(self, classes: Sequence[str], counts: Sequence[Sequence[int]]) -> None:
        self.matrix.set_matrix(classes, counts)
        self._set_cell_minimum()
        self.updateGeometry()

    def smallest_cell(self) -> int:
        return MIN_CELL if self.matrix.numbered else NAMED_CELL

    def _set_cell_minimum(self) -> None:
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setMinimumSectionSize(self.smallest_cell())
            header.setDefaultSectionSize(self.smallest_cell())

    def minimumSizeHint(self) -> QSize:
        """Every column at its smallest, so the matrix never scrolls sideways; a short screen may scroll the last rows."""
        return self._room_for(min(len(self.matrix.classes), ROWS_AT_LEAST))

    def sizeHint(self) -> QSize:
        """Room for every cell at its smallest: the whole matrix without scrolling."""
        return self._room_for(len(self.matrix.classes))

    def _room_for(self, rows: int) -> QSize:
        n, frame = max(1, len(self.matrix.classes)), 2 * self.frameWidth()
        row_titles = min(ROW_TITLE_WIDTH, self.verticalHeader().sizeHint().width())
        cell = self.smallest_cell()
        return QSize(row_titles + n * cell + frame, self.horizontalHeader().sizeHint().height() + max(1, rows) * cell + frame)

    def cell_sizes(self) -> list[tuple[int, int]]:
        """(width, height) of every cell as shown, row by row; for tests."""
        return [(self.columnWidth(j), self.rowHeight(i)) for i in range(self.matrix.rowCount()) for j in range(self.matrix.columnCount())]

    def values(self) -> list[list[int]]:
        return [list(row) for row in self.matrix.counts]

    def cell_clicked(self, i: int, j: int) -> None:
        """Select cell (i, j) and open its pictures, as a click does."""
        index = self.matrix.index(i, j)
        if index.isValid():
            self.setCurrentIndex(index)
            self._on_clicked(index)

    def _on_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            self.cell_chosen.emit(index.row(), index.column())
