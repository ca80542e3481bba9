"""Per-class precision, recall, F1 and number of pictures, sortable by any column, numerically.

A ``QTableWidgetItem`` sorts by its text, so "100.0%" would come before "75.0%" and "10" before
"9". ``NumberItem`` keeps the number itself in ``UserRole`` and compares that instead.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

COLUMNS = ("Class", "Precision", "Recall", "F1", "Pictures")
TIPS = (
    "The class (sub-folder) name.",
    "Precision: of the pictures the model put in this class, the share that really belong there.",
    "Recall: of the pictures of this class, the share the model found.",
    "F1: one number combining precision and recall (their harmonic mean).",
    "How many validation pictures the class has.",
)


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
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.setToolTip("Click a column title to sort by it; click again to reverse.")
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)  # classes in folder order until the user sorts
        self.setSortingEnabled(True)

    def show_metrics(self, classes: list[str], per_class: dict) -> None:
        """``per_class`` as metrics.json holds it: {class: {precision, recall, f1, support}}."""
        self.setSortingEnabled(False)  # filling a sorted table moves rows under our feet
        self.setRowCount(len(classes))
        for row, name in enumerate(classes):
            m = per_class.get(name, {})
            self.setItem(row, 0, QTableWidgetItem(name))
            for col, key in enumerate(("precision", "recall", "f1"), start=1):
                value = float(m.get(key, 0.0))
                self.setItem(row, col, NumberItem(f"{value:.1%}", value))
            support = int(m.get("support", 0))
            self.setItem(row, 4, NumberItem(str(support), support))
        self.setSortingEnabled(True)  # sorts again by the column the user chose last

    def column_values(self, col: int) -> list[Optional[float]]:
        """The numbers of a column, top to bottom as shown."""
        return [number_or_none(self.item(r, col)) for r in range(self.rowCount())]

    def column_texts(self, col: int) -> list[str]:
        return [self.item(r, col).text() for r in range(self.rowCount())]
