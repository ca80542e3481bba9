"""Step 4, Evaluate: how the chosen run does on the validation pictures (metrics.json).

For now: accuracy, balanced accuracy, the confusion matrix and the per-class table.
Issue #5 grows this panel (mistakes gallery, thresholds); keep it self-contained.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.run_picker import RunPicker


def _table(rows: int, cols: int) -> QTableWidget:
    t = QTableWidget(rows, cols)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return t


def _cell(text: str, align_right: bool = True) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if align_right:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class EvaluatePanel(QWidget):
    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.runs = RunPicker(studio)
        self.accuracy = QLabel()
        self.accuracy.setObjectName("bigNumber")
        self.balanced = QLabel()
        self.balanced.setObjectName("bigNumber")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.confusion = _table(0, 0)
        self.confusion.setToolTip("Rows: the true class. Columns: what the model said. The diagonal holds the correct answers.")
        self.per_class = _table(0, 4)
        self.per_class.setHorizontalHeaderLabels(["Precision", "Recall", "F1", "Pictures"])
        self.per_class.setToolTip(
            "Precision: of the pictures the model put in this class, the share that belong there.\n"
            "Recall: of the pictures of this class, the share the model found.\n"
            "F1: one number combining both. Pictures: how many validation pictures the class has."
        )

        numbers = QHBoxLayout()
        for title, label, tip in (
            ("Validation accuracy", self.accuracy, "The share of validation pictures the model classifies correctly."),
            ("Balanced accuracy", self.balanced, "The average of the per-class recalls: a rare class counts as much as a common one."),
        ):
            box = QGroupBox(title)
            box.setToolTip(tip)
            QVBoxLayout(box).addWidget(label)
            numbers.addWidget(box)
        numbers.addWidget(self.note, 2)
        cm_box = QGroupBox("Confusion matrix (rows: true class, columns: predicted)")
        QVBoxLayout(cm_box).addWidget(self.confusion)
        pc_box = QGroupBox("Per class")
        QVBoxLayout(pc_box).addWidget(self.per_class)
        tables = QHBoxLayout()
        tables.addWidget(cm_box, 1)
        tables.addWidget(pc_box, 1)
        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        top.addWidget(self.runs, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(numbers)
        layout.addLayout(tables, 1)

        studio.current_run_changed.connect(self.show_run)
        studio.runs_changed.connect(self.refresh)
        self.show_run(studio.current_run)

    def refresh(self) -> None:
        self.show_run(self.studio.current_run)

    def show_run(self, run_id: str) -> None:
        run = self.studio.run(run_id)
        metrics = run.metrics if run is not None else {}
        if not metrics:
            self.accuracy.setText("–")
            self.balanced.setText("–")
            self.note.setText("No results yet: the run needs to finish training." if run else "Train a model on the Train step to see how it does here.")
            self.confusion.setRowCount(0)
            self.confusion.setColumnCount(0)
            self.per_class.setRowCount(0)
            return
        self.accuracy.setText(f"{metrics['accuracy']:.1%}")
        self.balanced.setText(f"{metrics['balanced_accuracy']:.1%}")
        self.note.setText(
            f"On {metrics.get('n', 0)} validation pictures the model never trained on"
            + (f", with the weights of epoch {metrics['best_epoch']} (the best one)." if metrics.get("best_epoch") else ".")
        )
        self._fill_confusion(metrics["classes"], metrics["confusion_matrix"])
        self._fill_per_class(metrics["classes"], metrics["per_class"])

    def _fill_confusion(self, classes: list[str], cm: list[list[int]]) -> None:
        t = self.confusion
        t.setRowCount(len(classes))
        t.setColumnCount(len(classes))
        t.setHorizontalHeaderLabels(classes)
        t.setVerticalHeaderLabels(classes)
        peak = max([max(row) for row in cm] or [1]) or 1
        for i, row in enumerate(cm):
            for j, n in enumerate(row):
                item = _cell(str(n))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                # Shade by count: green on the diagonal (right), red off it (mistakes).
                strength = int(40 + 160 * n / peak) if n else 0
                if n:
                    colour = QColor(40, 160, 80, strength) if i == j else QColor(210, 60, 60, strength)
                    item.setBackground(QBrush(colour))
                t.setItem(i, j, item)

    def _fill_per_class(self, classes: list[str], per_class: dict) -> None:
        t = self.per_class
        t.setRowCount(len(classes))
        t.setVerticalHeaderLabels(classes)
        for i, name in enumerate(classes):
            m = per_class[name]
            for j, text in enumerate((f"{m['precision']:.1%}", f"{m['recall']:.1%}", f"{m['f1']:.1%}", str(m["support"]))):
                t.setItem(i, j, _cell(text))

    def confusion_values(self) -> list[list[int]]:
        t = self.confusion
        return [[int(t.item(i, j).text()) for j in range(t.columnCount())] for i in range(t.rowCount())]
