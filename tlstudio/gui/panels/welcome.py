"""The welcome page: what the window shows while no project is open. Recent projects, the ways to begin, the five steps."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from tlstudio.core.runs.project import SUFFIX

from tlstudio.gui.recent import RecentList

STEPS_IN_WORDS = (
    "tlstudio teaches the computer to sort pictures into groups you choose, in five steps. "
    "1 Data: choose a folder of pictures with one sub-folder per group, and check what was found. "
    "2 Model: choose the pretrained network to start from and how much of it learns again. "
    "3 Train: start training and watch it learn. "
    "4 Evaluate: see how well it does on pictures it never trained on, and where it goes wrong. "
    "5 Export: save the model as one file that runs without tlstudio. "
    "Everything stays on this computer."
)

PATH_ROLE = Qt.ItemDataRole.UserRole


class WelcomePage(QWidget):
    open_folder_requested = Signal()
    open_project_requested = Signal()
    new_project_requested = Signal()
    guide_requested = Signal()
    recent_chosen = Signal(str)  # a project folder

    def __init__(self, recent_projects: RecentList, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.recent_projects = recent_projects

        title = QLabel("Welcome to tlstudio")
        font = title.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        title.setFont(font)
        self.notice = QLabel()  # why the last project could not be reopened, when it could not
        self.notice.setWordWrap(True)
        self.notice.setTextFormat(Qt.TextFormat.PlainText)  # it names a folder from disk
        self.notice.setObjectName("hint")
        self.notice.setVisible(False)

        self.open_folder_button = QPushButton("Open a Folder of Images…")
        self.open_folder_button.setObjectName("primary")
        self.open_folder_button.setToolTip("A folder with one sub-folder per class, e.g. ants/ and bees/. You can also drop it on this window.")
        self.open_project_button = QPushButton("Open Project…")
        self.open_project_button.setToolTip("A folder ending in .tlstudio that you saved before.")
        self.new_project_button = QPushButton("New Project…")
        self.new_project_button.setToolTip("Choose where your settings, runs and model files will be kept.")
        self.guide_button = QPushButton("Read the Guide")
        self.guide_button.setToolTip("A short page for each step, and the words explained (F1).")
        for button, signal in (
            (self.open_folder_button, self.open_folder_requested),
            (self.open_project_button, self.open_project_requested),
            (self.new_project_button, self.new_project_requested),
            (self.guide_button, self.guide_requested),
        ):
            button.clicked.connect(signal)

        self.recent = QListWidget()
        self.recent.setObjectName("recentProjects")
        self.recent.itemClicked.connect(self._on_recent_clicked)
        self.recent.itemActivated.connect(self._on_recent_clicked)
        self.no_recent = QLabel("No recent projects yet.")
        self.no_recent.setObjectName("hint")
        recent_box = QGroupBox("Recent projects")
        recent_layout = QVBoxLayout(recent_box)
        recent_layout.addWidget(self.recent)
        recent_layout.addWidget(self.no_recent, 0, Qt.AlignmentFlag.AlignTop)

        steps = QLabel(STEPS_IN_WORDS)
        steps.setWordWrap(True)

        buttons = QVBoxLayout()
        for button in (self.open_folder_button, self.open_project_button, self.new_project_button, self.guide_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        row = QHBoxLayout()
        row.addLayout(buttons)
        row.addWidget(recent_box, 1)

        column = QVBoxLayout()
        column.addWidget(title)
        column.addWidget(self.notice)
        column.addWidget(steps)
        column.addLayout(row, 1)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(column, 6)
        outer.addStretch(1)
        self.refresh()

    # ------------------------------------------------------------ public
    def refresh(self) -> None:
        """List the recent projects that still exist, newest first."""
        self.recent.clear()
        for path in self.recent_projects.existing():
            folder = Path(path)
            name = folder.name[: -len(SUFFIX)] if folder.name.endswith(SUFFIX) else folder.name
            item = QListWidgetItem(f"{name}    {folder.parent}")  # list items are plain text: names from disk stay as they are
            item.setToolTip(path)
            item.setData(PATH_ROLE, path)
            self.recent.addItem(item)
        has_any = self.recent.count() > 0
        self.recent.setVisible(has_any)
        self.no_recent.setVisible(not has_any)

    def recent_paths(self) -> list[str]:
        return [self.recent.item(i).data(PATH_ROLE) for i in range(self.recent.count())]

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def set_training(self, training: bool) -> None:
        """While a run trains, its image folder stays as it is."""
        self.open_folder_button.setEnabled(not training)

    # ------------------------------------------------------------ reactions
    def _on_recent_clicked(self, item: QListWidgetItem) -> None:
        self.recent_chosen.emit(item.data(PATH_ROLE))
