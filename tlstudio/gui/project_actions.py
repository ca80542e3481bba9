"""New / Open / Save / Save As and the recent-projects menu: the dialogs around ``Studio``'s project calls."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from tlstudio.core.errors import UserError
from tlstudio.core.runs.project import SUFFIX, Project

from tlstudio.gui.recent import RecentList, RecentMenu
from tlstudio.gui.start_folder import PROJECT
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
        path = self._ask_new_path("New project", "MyProject")
        if path:
            self._guarded("Creating the project", lambda: self.studio.new_project(path))

    def open_project(self, path: Optional[str] = None) -> bool:
        if path is None:
            start = self.studio.dialog_folder(PROJECT)
            path = QFileDialog.getExistingDirectory(self.window, f"Open a project (a folder ending in {SUFFIX})", start)
            if not path:
                return False
        return self._guarded("Opening the project", lambda: self.studio.open_project(path))

    def save_project(self) -> None:
        if self.studio.project is None or self.studio.scratch:
            self.save_project_as()
        else:
            self._guarded("Saving the project", self.studio.save_project)

    def save_project_as(self) -> None:
        studio = self.studio
        name = studio.project.name if studio.project and not studio.scratch else "MyProject"
        path = self._ask_new_path("Save the project as", name)
        if path:
            self.save_as(path)

    def save_as(self, path: str) -> bool:
        """Save the work so far as the project ``path`` and carry on in it (an Untitled project is left behind)."""
        studio = self.studio
        if studio.project is None:  # nothing trained yet: a new project with the settings so far
            return self._guarded("Saving the project", lambda: studio.new_project(path))
        untitled = studio.project.root if studio.scratch else None
        saved = self._guarded("Saving the project", lambda: studio.save_project(path))
        if saved and untitled is not None:
            self.recent.remove(str(untitled))  # the copy is the one to come back to
        return saved

    def _ask_new_path(self, title: str, name: str) -> str:
        start = Path(self.studio.dialog_folder(PROJECT)) / f"{name}{SUFFIX}"
        path, _ = QFileDialog.getSaveFileName(self.window, title, str(start), f"tlstudio project (*{SUFFIX})")
        return path

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
            if not self.studio.scratch:
                self.studio.remember_folder(PROJECT, project.root)
            self.opened.emit(str(project.root))
