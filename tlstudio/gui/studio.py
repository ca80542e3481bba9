"""What the panels share: the open project, the scanned data, the settings being edited, the current run.

Plain Python state with Qt signals, owned by the window and handed to each panel. Panels
never call each other: they read and write the studio and listen to its signals. The
settings live in one ``TrainConfig`` that each panel edits in place, so saving a project is
just writing that config and the data settings into ``project.json``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QObject, QSettings, Signal

from tlstudio.core.config import TrainConfig
from tlstudio.core.data.index import DatasetIndex
from tlstudio.core.errors import UserError
from tlstudio.core.paths import data_dir
from tlstudio.core.runs.project import SUFFIX, Project, RunInfo

from tlstudio.gui import start_folder
from tlstudio.gui.notifier import Notifier
from tlstudio.gui.workers import Jobs

log = logging.getLogger("tlstudio.gui")

SCRATCH_PREFIX = "Untitled-"


def scratch_projects_dir() -> Path:
    """Where an Untitled project goes when the user trains before opening or creating one."""
    return data_dir() / "projects"


def is_scratch_folder(path: str | Path) -> bool:
    path = Path(path)
    try:
        inside = path.resolve().parent == scratch_projects_dir().resolve()
    except OSError:
        return False
    return inside and path.name.startswith(SCRATCH_PREFIX)


class Studio(QObject):
    project_changed = Signal()  # another project was opened or created: panels reload from ``config``
    index_changed = Signal(object)  # DatasetIndex, or None when the folder could not be used
    backbone_changed = Signal(str)
    runs_changed = Signal()
    current_run_changed = Signal(str)  # run id, "" for none
    new_pictures_changed = Signal(str)  # the project's folder of unlabelled new pictures, "" for none

    def __init__(self, notifier: Notifier, settings: Optional[QSettings] = None):
        super().__init__()
        self.notifier = notifier
        self.settings = settings  # the window's QSettings: where file dialogs open (``dialog_folder``)
        self.jobs = Jobs(notifier)
        self.project: Optional[Project] = None
        self.scratch = False  # the project is the automatic "Untitled" one in the user's data folder
        self.config = TrainConfig()
        self.index: Optional[DatasetIndex] = None
        self.current_run = ""

    # ------------------------------------------------------------ projects
    def ensure_project(self) -> Project:
        """The open project; an Untitled one in the user's data folder when none was opened yet."""
        if self.project is None:
            stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
            folder, n = scratch_projects_dir() / f"{SCRATCH_PREFIX}{stamp}", 2
            while folder.with_name(folder.name + SUFFIX).exists():
                folder, n = scratch_projects_dir() / f"{SCRATCH_PREFIX}{stamp}-{n}", n + 1
            self.project = Project.create(folder)
            self.scratch = True
            log.info("no project was open: this work is kept in the Untitled project %s", self.project.root)
            self._write_settings()
            self.project_changed.emit()
        return self.project

    def set_project(self, project: Project, scratch: bool = False) -> None:
        """Show another project: its settings, its data folder, its runs."""
        self.project, self.scratch = project, scratch
        self.config = project.train_config()
        self.index = None
        runs = project.runs
        self.current_run = runs[-1].id if runs else ""
        self.project_changed.emit()
        self.runs_changed.emit()
        self.current_run_changed.emit(self.current_run)

    def open_project(self, path: str | Path) -> Project:
        project = Project.open(path)
        self.set_project(project, scratch=is_scratch_folder(project.root))  # a reopened Untitled one is still unsaved
        return project

    def new_project(self, path: str | Path) -> Project:
        project = Project.create(path)
        project.config = self.config.to_dict()  # keep what the user set so far
        project.set_data(self.config.data_dir, self.config.val_split, self.config.test_split, self.config.seed)
        project.save()
        self.set_project(project)
        return project

    def save_project(self, path: Optional[str | Path] = None) -> Project:
        """Write the settings into the project; with ``path``, save a copy there and continue in the copy."""
        project = self.ensure_project()
        self._write_settings()
        if path is not None:
            project = project.save_as(path)
            self.set_project(project)
        return project

    def project_folder(self) -> Optional[Path]:
        """The open project's folder when the user chose it (not an Untitled one in tlstudio's own folder)."""
        return self.project.root if self.project is not None and not self.scratch else None

    # ------------------------------------------------------------ where file dialogs open
    def dialog_folder(self, kind: str) -> str:
        """The folder a file dialog for ``kind`` (see ``start_folder``) opens in."""
        if self.settings is None:
            return str(self.project_folder() or Path.home())
        return start_folder.start_folder(self.settings, kind, self.project_folder())

    def remember_folder(self, kind: str, path: str | Path) -> None:
        if self.settings is not None and path:
            start_folder.remember_folder(self.settings, kind, path)

    def _write_settings(self) -> None:
        if self.project is None:
            return
        cfg = self.config
        self.project.set_data(cfg.data_dir, cfg.val_split, cfg.test_split, cfg.seed)
        self.project.config = cfg.to_dict()
        self.project.save()

    def autosave(self) -> None:
        """Save quietly after a change the user would expect kept (a scan, a run); never creates a project."""
        if self.project is not None:
            try:
                self._write_settings()
            except UserError as exc:
                self.notifier.exception(exc, "Saving the project")

    # ------------------------------------------------------------ data and model
    def set_index(self, index: Optional[DatasetIndex]) -> None:
        self.index = index
        if index is not None:
            self.config.data_dir = index.root
        self.index_changed.emit(index)
        self.autosave()

    @property
    def new_pictures_dir(self) -> str:
        return self.project.new_pictures_dir if self.project is not None else ""

    def set_new_pictures(self, folder: str | Path) -> None:
        """The folder of unlabelled new pictures ("" for none), kept in the project (which is created if need be)."""
        project = self.ensure_project()
        project.set_new_pictures(folder)
        self.autosave()
        self.new_pictures_changed.emit(project.new_pictures_dir)

    def set_backbone(self, name: str) -> None:
        if name != self.config.backbone:
            self.config.backbone = name
            self.backbone_changed.emit(name)

    @property
    def num_classes(self) -> int:
        return len(self.index.classes) if self.index is not None else 2

    # ------------------------------------------------------------ runs
    def runs(self) -> list[RunInfo]:
        return self.project.list_runs() if self.project is not None else []

    def run(self, run_id: str) -> Optional[RunInfo]:
        if self.project is None or not run_id:
            return None
        try:
            return self.project.load_run(run_id)
        except UserError:
            return None

    def set_current_run(self, run_id: str) -> None:
        if run_id != self.current_run:
            self.current_run = run_id
            self.current_run_changed.emit(run_id)
