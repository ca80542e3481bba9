"""A drop-down of the project's runs, bound to the studio's current run (shared by Train, Evaluate and Export).

Its context menu (and ``rename_action``, which a panel may also put on a button) renames the current
run: the name is kept in project.json, the run folder keeps its id, and every run list shows the name.
"""

from __future__ import annotations

from typing import Callable, Optional

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QInputDialog, QLineEdit, QWidget

from tlstudio.core.errors import UserError
from tlstudio.core.runs.project import MAX_NAME
from tlstudio.gui.studio import Studio


TIP = (
    "Every training run of this project is kept; choose one to see its curves, results and model file. "
    "Right-click to give the run a name."
)


class RunPicker(QComboBox):
    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.setMinimumContentsLength(24)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        # (the run's current name) -> the new name, or None for cancel. Tests answer it; the dialog would block them.
        self.ask_name: Callable[[str], Optional[str]] = self._ask_name
        self.rename_action = QAction("Rename Run…", self)
        self.rename_action.setToolTip("Give the chosen run a name of your own; its folder keeps its date and time.")
        self.rename_action.triggered.connect(self.rename_current)
        self.addAction(self.rename_action)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.currentIndexChanged.connect(self._on_index)
        self.currentIndexChanged.connect(self._show_title_in_tip)
        studio.runs_changed.connect(self.reload)
        studio.current_run_changed.connect(self._show)
        self.reload()

    def reload(self) -> None:
        self.blockSignals(True)
        self.clear()
        runs = self.studio.runs()
        for run in reversed(runs):  # newest first
            self.addItem(run.title(), run.id)
        if not runs:
            self.addItem("No runs yet: train a model on the Train step", "")
        self.blockSignals(False)
        self.rename_action.setEnabled(bool(runs))
        self._show(self.studio.current_run)
        self._show_title_in_tip()

    def rename_current(self) -> bool:
        """Ask for a name for the current run and keep it; True when it was renamed.

        A name the project refuses (empty, too long, a hidden character) goes to the notifier, which says why."""
        project, run_id = self.studio.project, self.currentData() or ""  # the run this list shows
        if project is None or not run_id:
            return False
        try:
            record = project.record(run_id)
        except UserError:
            return False
        name = self.ask_name(record.name)
        if name is None:
            return False
        try:
            project.rename_run(run_id, name)
        except UserError as exc:
            self.studio.notifier.exception(exc, "Renaming the run")
            return False
        self.studio.runs_changed.emit()  # every run list shows the new name
        return True

    def _ask_name(self, current: str) -> Optional[str]:
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename the run")
        dialog.setLabelText(f"A name for this run (at most {MAX_NAME} characters), such as 'frozen, 10 epochs':")
        dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
        dialog.setTextValue(current)
        line = dialog.findChild(QLineEdit)
        if line is not None:
            line.setMaxLength(MAX_NAME)
        ok = dialog.exec()
        text = dialog.textValue()
        dialog.deleteLater()
        return text if ok else None

    def _show(self, run_id: str) -> None:
        i = self.findData(run_id)
        if i >= 0 and i != self.currentIndex():
            self.blockSignals(True)
            self.setCurrentIndex(i)
            self.blockSignals(False)
            self._show_title_in_tip()

    def _show_title_in_tip(self, *_index) -> None:
        """The whole title in the tooltip: a narrow window cuts a long one short in the box."""
        self.setToolTip(f"{self.currentText()}\n\n{TIP}" if self.currentText() else TIP)

    def _on_index(self, i: int) -> None:
        run_id = self.itemData(i) or ""
        if run_id:
            self.studio.set_current_run(run_id)
