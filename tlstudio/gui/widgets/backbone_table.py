"""The backbone catalog as a table, filled from the core's specs (no per-backbone code here)."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from tlstudio.core.catalog.backbones import BackboneSpec
from tlstudio.core.catalog.weights_import import OFFICIAL, verdict_text

COLUMNS = ("Backbone", "Size (M params)", "Speed (GFLOPs)", "ImageNet accuracy", "Weights")
AVAILABILITY_TEXT = {
    "bundled": "bundled (works offline)",
    "cached": "downloaded",
    "imported": "imported",
    "needs download": "needs download",
}
_VERDICT_ROLE = Qt.ItemDataRole.UserRole + 1


class _Number(QTableWidgetItem):
    """Sorts by value, shows formatted text."""

    def __init__(self, value: float, text: str):
        super().__init__(text)
        self.setData(Qt.ItemDataRole.UserRole, value)
        self.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return float(self.data(Qt.ItemDataRole.UserRole)) < float(other.data(Qt.ItemDataRole.UserRole))


class BackboneTable(QTableWidget):
    selected = Signal(str)  # backbone name

    def __init__(self, specs: list[BackboneSpec], parent: Optional[QWidget] = None):
        super().__init__(len(specs), len(COLUMNS), parent)
        self.specs = specs
        self.setHorizontalHeaderLabels(COLUMNS)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.verticalHeader().setVisible(False)
        self.setAlternatingRowColors(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, len(COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        for col, tip in enumerate((
            "The pretrained network that turns a picture into features.",
            "Millions of parameters: bigger networks are slower and need more memory.",
            "Billions of operations per 224-pixel picture: lower is faster.",
            "Top-1 accuracy on ImageNet: a rough guide to how good its features are.",
            "Where the pretrained weights come from on this machine.",
        )):
            self.horizontalHeaderItem(col).setToolTip(tip)
        for row, spec in enumerate(specs):
            name = QTableWidgetItem(spec.title)
            name.setData(Qt.ItemDataRole.UserRole, spec.name)
            name.setToolTip(spec.notes or spec.title)
            self.setItem(row, 0, name)
            self.setItem(row, 1, _Number(spec.params_m, f"{spec.params_m:.1f}"))
            self.setItem(row, 2, _Number(spec.gflops, f"{spec.gflops:.2f}"))
            self.setItem(row, 3, _Number(spec.imagenet_top1, f"{spec.imagenet_top1:.1f} %"))
            self.setItem(row, 4, QTableWidgetItem(""))
        self.itemSelectionChanged.connect(self._on_selection)

    def set_availability(self, name: str, availability: str, verdict: str = "", detail: str = "") -> None:
        """``verdict``: for imported weights, whether they are the official file (weights_import's verdicts)."""
        row = self._row(name)
        if row is None:
            return
        item = self.item(row, 4)
        text = AVAILABILITY_TEXT.get(availability, availability)
        if verdict and verdict != OFFICIAL:
            text = f"{text} ({verdict_text(verdict)})"
        item.setText(text)
        item.setToolTip(detail)
        item.setData(Qt.ItemDataRole.UserRole, availability)
        item.setData(_VERDICT_ROLE, verdict)

    def availability(self, name: str) -> str:
        row = self._row(name)
        return "" if row is None else str(self.item(row, 4).data(Qt.ItemDataRole.UserRole) or "")

    def weights_verdict(self, name: str) -> str:
        """"" unless the row's weights are imported; then OFFICIAL, NOT_OFFICIAL, NO_CHECKSUM or NOT_RECORDED."""
        row = self._row(name)
        return "" if row is None else str(self.item(row, 4).data(_VERDICT_ROLE) or "")

    def select(self, name: str) -> None:
        row = self._row(name)
        if row is not None:
            self.selectRow(row)

    def current(self) -> Optional[str]:
        rows = self.selectionModel().selectedRows()
        return None if not rows else self.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)

    def _row(self, name: str) -> Optional[int]:
        for row in range(self.rowCount()):
            if self.item(row, 0).data(Qt.ItemDataRole.UserRole) == name:
                return row
        return None

    def _on_selection(self) -> None:
        name = self.current()
        if name:
            self.selected.emit(name)
