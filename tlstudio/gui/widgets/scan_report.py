"""What the scan found, in words: a one-line summary, then every skipped file and every warning.

Each problem says what is wrong and what to do (``REASON_TEXT``), not a Python exception. Names from
the disk are shown through ``printable``, so no character in a name can hide or reorder the text.

In a narrow window the table shortens its text with "…" (never a sideways scroll bar); the full
text is in each row's tooltip, and the chosen row's problem is written out whole under the table.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStyledItemDelegate, QStyleOptionViewItem, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from tlstudio.core.data.index import REASON_TEXT, DatasetIndex
from tlstudio.core.names import printable

PROBLEM_COLUMN = 220  # pixels at most; the explanation gets the rest
CHOOSE_A_ROW = "Click a row to read its problem in full."


class MiddleElide(QStyledItemDelegate):
    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


class ScanReport(QWidget):
    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.summary = QLabel("Choose a folder of images: one sub-folder per class.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Problem", "What it means and what to do"])
        self.tree.setRootIsDecorated(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.tree.setItemDelegateForColumn(0, MiddleElide(self.tree))  # a path keeps its folder and its file name
        self.tree.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the columns share the width
        self.tree.header().setStretchLastSection(True)
        self.tree.setColumnWidth(0, PROBLEM_COLUMN)
        self.tree.currentItemChanged.connect(self._show_detail)
        self.detail = QLabel()
        self.detail.setObjectName("hint")
        self.detail.setWordWrap(True)
        self.detail.setTextFormat(Qt.TextFormat.PlainText)  # file names from the disk are never markup
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setVisible(False)
        self.copy_button = QPushButton("Copy Report")
        self.copy_button.setToolTip("Copy the full scan report as text, e.g. to send it to a colleague.")
        self.copy_button.setEnabled(False)
        self.copy_button.clicked.connect(self.copy)
        self.text = ""

        row = QHBoxLayout()
        row.addWidget(self.summary, 1)
        row.addWidget(self.copy_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.detail)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.tree.setColumnWidth(0, min(PROBLEM_COLUMN, max(80, int(self.tree.viewport().width() * 0.4))))

    def _show_detail(self, item: Optional[QTreeWidgetItem], _previous=None) -> None:
        if item is None:
            self.detail.setText(CHOOSE_A_ROW)
            return
        text = item.toolTip(1) or item.text(1) or item.toolTip(0) or item.text(0)  # the explanation; a warning's file, its path
        self.detail.setText(" ".join(text.split()))

    def show_index(self, index: DatasetIndex) -> None:
        from tlstudio.core.data.scan_report import format_report

        self.text = format_report(index)
        self.copy_button.setEnabled(True)
        self.summary.setStyleSheet("")
        self.summary.setTextFormat(Qt.TextFormat.AutoText)
        n = len(index.samples)
        counts = index.counts()
        per_split = {s: sum(c[s] for c in counts.values()) for s in ("train", "val", "test")}
        split_text = ", ".join(f"{v} {k}" for k, v in (("training", per_split["train"]), ("validation", per_split["val"]), ("test", per_split["test"])) if v)
        how = "from the folder's own train/val sub-folders" if index.split_source == "folders" else f"split with seed {index.seed}"
        problems = len(index.skipped) + len(index.warnings)
        self.summary.setText(
            f"<b>{n} images</b> in <b>{len(index.classes)} classes</b> ({split_text}; {how}). "
            + (f"<b>{problems} problem(s)</b> below." if problems else "No problems found.")
        )
        self.tree.clear()
        if index.skipped:
            top = QTreeWidgetItem([f"Skipped files ({len(index.skipped)})", "These files are left out of training."])
            top.setToolTip(1, "These files are left out of training.")
            for s in index.skipped:
                explanation = REASON_TEXT.get(s.reason, s.reason)
                item = QTreeWidgetItem([printable(s.path), explanation])
                item.setToolTip(0, printable(index.abspath(s)))
                item.setToolTip(1, f"{explanation}\n\nDetail: {printable(s.detail)}" if s.detail else explanation)
                top.addChild(item)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)
        if index.warnings:
            top = QTreeWidgetItem([f"Warnings ({len(index.warnings)})", "Training works, but check these."])
            top.setToolTip(1, "Training works, but check these.")
            for w in index.warnings:
                text = printable(w.text)
                item = QTreeWidgetItem([w.kind, text])
                item.setToolTip(1, text)
                for path in w.paths:
                    child = QTreeWidgetItem([printable(path), ""])
                    child.setToolTip(0, printable(path))
                    item.addChild(child)
                top.addChild(item)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)
        self.detail.setVisible(bool(problems))
        self._show_detail(None)

    def show_error(self, message: str) -> None:
        self.text = message
        self.copy_button.setEnabled(True)
        self.tree.clear()
        self.detail.setVisible(False)
        self.summary.setStyleSheet("color: #b00020;")
        self.summary.setTextFormat(Qt.TextFormat.PlainText)  # a folder's name could hold "<b>"
        self.summary.setText(f"This folder cannot be used yet: {printable(message)}")

    def show_busy(self, text: str) -> None:
        self.summary.setStyleSheet("")
        self.summary.setTextFormat(Qt.TextFormat.AutoText)
        self.summary.setText(text)

    def problems(self) -> list[tuple[str, str]]:
        """(problem, explanation) for every row under the two groups; for tests and screen readers."""
        out = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            out += [(top.child(j).text(0), top.child(j).text(1)) for j in range(top.childCount())]
        return out

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.text)
