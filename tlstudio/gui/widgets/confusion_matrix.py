"""The confusion matrix as a heat map: counts and row percentages, one click away from the pictures.

Rows are the true class, columns what the model said. Each cell shows its count and the share of
its row (of the pictures of that true class, how many went there), shaded by that share: blue on
the diagonal (right answers), orange off it (mistakes). Blue and orange stay apart for the common
kinds of colour blindness, and the text turns white on dark cells so it always reads.
"""

from __future__ import annotations

from typing import Optional, Sequence

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStyle, QStyledItemDelegate, QStyleOptionViewItem, QTableView, QWidget

RIGHT = (8, 81, 156)  # dark blue: the diagonal at 100 %
WRONG = (204, 85, 0)  # dark orange: an off-diagonal cell at 100 %
STRETCH_UP_TO = 8  # classes; beyond this the cells keep a readable size and the view scrolls
CELL = 58


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
        self._bold = QFont()
        self._bold.setBold(True)

    def set_matrix(self, classes: Sequence[str], counts: Sequence[Sequence[int]]) -> None:
        self.beginResetModel()
        self.classes = list(classes)
        self.counts = [[int(n) for n in row] for row in counts]
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
            return name
        if role == Qt.ItemDataRole.ToolTipRole:
            if orientation == Qt.Orientation.Vertical:
                return f"Row: the pictures that really are '{name}'."
            return f"Column: the pictures the model called '{name}'."
        return None


class CellDelegate(QStyledItemDelegate):
    """Keeps the heat-map colour of the chosen cell (a selection fill would hide it) and frames it instead."""

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
        self.setToolTip("Rows: the true class. Columns: what the model said. The diagonal holds the right answers.\nClick a cell to see its pictures.")
        for header in (self.horizontalHeader(), self.verticalHeader()):
            header.setMinimumSectionSize(CELL)
            header.setDefaultSectionSize(CELL)
            header.setHighlightSections(True)
        self.clicked.connect(self._on_clicked)
        self.activated.connect(self._on_clicked)  # Enter on the keyboard, too

    def set_matrix(self, classes: Sequence[str], counts: Sequence[Sequence[int]]) -> None:
        self.matrix.set_matrix(classes, counts)
        mode = QHeaderView.ResizeMode.Stretch if len(classes) <= STRETCH_UP_TO else QHeaderView.ResizeMode.Fixed
        self.horizontalHeader().setSectionResizeMode(mode)
        self.verticalHeader().setSectionResizeMode(mode)

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
