"""What the scan found, in words: a one-line summary, then every skipped file and every warning.

Each problem says what is wrong and what to do (``REASON_TEXT``), not a Python exception. Names from
the disk are shown through ``printable``, so no character in a name can hide or reorder the text.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from tlstudio.core.data.index import REASON_TEXT, DatasetIndex
from tlstudio.core.names import printable


class ScanReport(QWidget):
    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.summary = QLabel("Choose a folder of images: one sub-folder per class.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Problem", "What it means and what to do"])
        self.tree.setRootIsDecorated(True)
        self.tree.setWordWrap(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setColumnWidth(0, 220)
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
            for w in index.warnings:
                text = printable(w.text)
                item = QTreeWidgetItem([w.kind, text])
                item.setToolTip(1, text)
                for path in w.paths:
                    item.addChild(QTreeWidgetItem([printable(path), ""]))
                top.addChild(item)
            self.tree.addTopLevelItem(top)
            top.setExpanded(True)

    def show_error(self, message: str) -> None:
        self.text = message
        self.copy_button.setEnabled(True)
        self.tree.clear()
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
