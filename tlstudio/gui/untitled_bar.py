"""The strip above the steps that says where unsaved work goes, with the button that saves it where the user wants."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from tlstudio.gui.studio import Studio, scratch_projects_dir


def where_work_goes(studio: Studio) -> str:
    """'' when the work is in a project the user chose; else plain words on where it is kept."""
    if studio.project is None:
        return f"Not saved yet. A run you train now goes into an Untitled project in tlstudio's own folder, {scratch_projects_dir()}."
    if studio.scratch:
        return f"Untitled project, kept in tlstudio's own folder: {studio.project.root}. Save it where you will find it again."
    return ""


class UntitledBar(QFrame):
    save_as_requested = Signal()

    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.setObjectName("untitledBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)  # it names a folder from disk
        self.save_button = QPushButton("Save Project As…")
        self.save_button.setToolTip("Choose a name and a folder for this project; tlstudio carries on in it.")
        self.save_button.clicked.connect(self.save_as_requested)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.text, 1)
        row.addWidget(self.save_button)
        studio.project_changed.connect(self.update_text)
        self.update_text()

    def update_text(self) -> None:
        words = where_work_goes(self.studio)
        self.text.setText(words)
        self.setVisible(bool(words))
