"""A drop-down of the project's runs, bound to the studio's current run (shared by Train, Evaluate and Export)."""

from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import QComboBox, QWidget

from tlstudio.gui.studio import Studio


class RunPicker(QComboBox):
    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.setToolTip("Every training run of this project is kept; choose one to see its curves, results and model file.")
        self.setMinimumContentsLength(24)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.currentIndexChanged.connect(self._on_index)
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
        self._show(self.studio.current_run)

    def _show(self, run_id: str) -> None:
        i = self.findData(run_id)
        if i >= 0 and i != self.currentIndex():
            self.blockSignals(True)
            self.setCurrentIndex(i)
            self.blockSignals(False)

    def _on_index(self, i: int) -> None:
        run_id = self.itemData(i) or ""
        if run_id:
            self.studio.set_current_run(run_id)
