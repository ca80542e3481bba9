"""Per-class precision, recall, F1 and number of pictures, sortable by any column, numerically.

A ``QTableWidgetItem`` sorts by its text, so "100.0%" would come before "75.0%" and "10" before
"9". ``NumberItem`` keeps the number itself in ``UserRole`` and compares that instead.

The number columns are always as wide as their numbers; the class column takes what is left and
shortens a long name with "…" (the row's tooltip holds it whole), so no column is ever cut off.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

COLUMNS = ("Class", "Precision", "Recall", "F1", "Pictures")
TIPS = (
    "The class (sub-folder) name.",
    "Precision: of the pictures the model called this class, how many really were this class.\n"
    "Low precision: the model often gives this answer wrongly.",
    "Recall: of the pictures that really are this class, how many the model recognised.\n"
    "Low recall: the model often misses this class.",
    "F1: precision and recall in one number (their harmonic mean). It is high only when both are high.",
    "Pictures: how many validation pictures the class has. With only a few, its figures can change a lot by chance.",
)
CLASS_MIN_WIDTH = 90  # pixels; a longer name is shortened with "…"


class NumberItem(QTableWidgetItem):
    """Shows ``text``, sorts by ``value``."""

    def __init__(self, text: str, value: float):
        super().__init__(text)
        self.setData(Qt.ItemDataRole.UserRole, float(value))
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        mine, theirs = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        if isinstance(mine, float) and isinstance(theirs, float):
            return mine < theirs
        return super().__lt__(other)


def number_or_none(item: Optional[QTableWidgetItem]) -> Optional[float]:
    value = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
    return value if isinstance(value, float) else None


class PerClassTable(QTableWidget):
    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(0, len(COLUMNS), parent)
        self.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in enumerate(TIPS):
            self.horizontalHeaderItem(col).setToolTip(tip)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.verticalHeader().setVisible(False)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # every column fits: see minimumSizeHint
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(CLASS_MIN_WIDTH // 2)
        header.setStretchLastSection(False)
        self.setToolTip("Click a column title to sort by it; click again to reverse.")
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # classes in folder order until the user sorts
        self.setSortingEnabled(True)

    def show_metrics(self, classes: list[str], per_class: dict) -> None:
        """``per_class`` as metrics.json holds it: {class: {precision, recall, f1, support}}."""
        self.setSortingEnabled(False)  # filling a sorted table moves rows under our feet
        self.setRowCount(len(classes))
        for row, name in enumerate(classes):
            m = per_class.get(name, {})
            name_item = QTableWidgetItem(name)
            name_item.setToolTip(name)
            self.setItem(row, 0, name_item)
            for col, key in enumerate(("precision", "recall", "f1"), start=1):
                value = float(m.get(key, 0.0))
                self.setItem(row, col, NumberItem(f"{value:.1%}", value))
            support = int(m.get("support", 0))
            self.setItem(row, 4, NumberItem(str(support), support))
        self.setSortingEnabled(True)  # sorts again by the column the user chose last
        self.updateGeometry()

    def minimumSizeHint(self) -> QSize:
        """Wide enough for every number column whole and a useful part of the class names."""
        header = self.horizontalHeader()
        numbers = sum(max(header.sectionSizeHint(c), self.sizeHintForColumn(c)) for c in range(1, self.columnCount()))
        scroll = self.verticalScrollBar().sizeHint().width()
        return QSize(CLASS_MIN_WIDTH + numbers + scroll + 2 * self.frameWidth(), super().minimumSizeHint().height())

    def column_values(self, col: int) -> list[Optional[float]]:
        """The numbers of a column, top to bottom as shown."""
        return [number_or_none(self.item(r, col)) for r in range(self.rowCount())]

    def column_texts(self, col: int) -> list[str]:
        return [self.item(r, col).text() for r in range(self.rowCount())]
