"""New / Open / Save / Save As and the recent-projects menu: the dialogs around ``Studio``'s project calls."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from tlstudio.core.errors import UserError
from tlstudio.core.runs.project import SUFFIX, Project

from tlstudio.gui.recent import RecentList, RecentMenu
from tlstudio.gui.studio import Studio


class ProjectActions(QObject):
    opened = Signal(str)  # project folder

    def __init__(self, studio: Studio, recent: RecentList, window: QWidget):
        super().__init__(window)
        self.studio, self.recent, self.window = studio, recent, window
        self.recent_menu = RecentMenu("Open &Recent", recent, self.open_project, window)
        studio.project_changed.connect(self._remember)

    # ------------------------------------------------------------ what the menu items call
    def new_project(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "New project", str(Path.home() / f"MyProject{SUFFIX}"), f"tlstudio project (*{SUFFIX})")
        if path:
            self._guarded("Creating the project", lambda: self.studio.new_project(path))

    def open_project(self, path: Optional[str] = None) -> None:
        if path is None:
            path = QFileDialog.getExistingDirectory(self.window, f"Open a project (a folder ending in {SUFFIX})", str(Path.home()))
            if not path:
                return
        self._guarded("Opening the project", lambda: self.studio.open_project(path))

    def save_project(self) -> None:
        if self.studio.project is None or self.studio.scratch:
            self.save_project_as()
        else:
            self._guarded("Saving the project", self.studio.save_project)

    def save_project_as(self) -> None:
        name = self.studio.project.name if self.studio.project and not self.studio.scratch else "MyProject"
        path, _ = QFileDialog.getSaveFileName(self.window, "Save the project as", str(Path.home() / f"{name}{SUFFIX}"), f"tlstudio project (*{SUFFIX})")
        if path:
            self._guarded("Saving the project", lambda: self.studio.save_project(path))

    # ------------------------------------------------------------ helpers
    def _guarded(self, what: str, action) -> bool:
        if self.studio.jobs.busy("train"):
            self.studio.notifier.exception(UserError("training is running. Stop it first, then switch projects."), what)
            return False
        try:
            action()
        except UserError as exc:
            self.studio.notifier.exception(exc, what)
            return False
        return True

    def _remember(self) -> None:
        project: Optional[Project] = self.studio.project
        if project is not None:  # an Untitled project too: its runs must stay easy to find
            self.recent.add(str(project.root))
            self.opened.emit(str(project.root))
