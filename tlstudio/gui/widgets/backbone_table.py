"""The backbone catalog as a table, filled from the core's specs (no per-backbone code here)."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStyle, QTableWidget, QTableWidgetItem, QWidget

from tlstudio.core.catalog import weights
from tlstudio.core.catalog.backbones import BackboneSpec
from tlstudio.core.catalog.weights_import import OFFICIAL, verdict_text

COLUMNS = ("Backbone", "Size (millions)", "Work (billions)", "ImageNet accuracy", "Weights")
HEADER_TIPS = (
    "The backbone is the pretrained network that already knows how to see; tlstudio adds a new last layer for your classes.",
    "Size: millions of numbers the network learned (its parameters). Bigger networks are slower and need more memory.",
    "Work per picture: billions of operations (GFLOPs) to look at one 224-pixel picture; lower is faster.",
    "Top-1 accuracy on ImageNet: a rough guide to how good its features are.",
    "Whether the pretrained weights are on this computer. A backbone that needs its weights cannot train\n"
    "until you download them or import the file: select it and use the buttons under the table.",
)
AVAILABILITY_TEXT = {
    "bundled": "bundled (works offline)",
    "cached": "downloaded",
    "imported": "imported",
    "needs download": "needs its weights",
}
AVAILABLE_TIP = "On this computer: works offline."
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
        for col, tip in enumerate(HEADER_TIPS):
            self.horizontalHeaderItem(col).setToolTip(tip)
        self._missing_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        self._ready_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_DialogApplyButton)
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
        missing = availability == weights.NEEDS_DOWNLOAD
        item.setText(text)
        item.setIcon(self._missing_icon if missing else self._ready_icon)
        item.setToolTip(_missing_tip(self.specs[row]) if missing else detail or AVAILABLE_TIP)
        item.setData(Qt.ItemDataRole.UserRole, availability)
        item.setData(_VERDICT_ROLE, verdict)

    def marked_missing(self, name: str) -> bool:
        """Does the row show the 'needs its weights' mark: its warning icon and words?"""
        row = self._row(name)
        if row is None:
            return False
        item = self.item(row, 4)
        return item.icon().cacheKey() == self._missing_icon.cacheKey() and item.text() == AVAILABILITY_TEXT[weights.NEEDS_DOWNLOAD]

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


def _missing_tip(spec: BackboneSpec) -> str:
    return (
        f"The pretrained weights of {spec.title} are not on this computer, so it cannot train yet.\n"
        f"Select it and use Download, or Import Weights File... with {weights.weights_file_name(spec)} copied from another computer."
    )
