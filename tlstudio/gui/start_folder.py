"""Where a file dialog opens: the last folder used for that kind of file, else the project's folder, else home.

Kinds are short words that name what the dialog is for (``IMAGES``, ``PROJECT``, ``WEIGHTS``, ``EXPORT``,
``REPORT``, ``PICTURES``, ``ANSWERS``); each remembers its own folder in QSettings under ``folders/<kind>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSettings

from tlstudio.core.runs.project import SUFFIX

IMAGES = "images"  # the folder of images, one sub-folder per class
PROJECT = "project"  # a .tlstudio project folder (opened, created or saved as)
WEIGHTS = "weights"  # a weights file to import
EXPORT = "export"  # the exported model file
REPORT = "report"  # a run's HTML report
PICTURES = "pictures"  # pictures to try the model on, or a folder of them to classify
ANSWERS = "answers"  # a table of the model's answers (.csv)


def _key(kind: str) -> str:
    return f"folders/{kind}"


def start_folder(settings: QSettings, kind: str, project_dir: Optional[str | Path] = None) -> str:
    """The folder a dialog for ``kind`` should open in; ``project_dir`` is the open project's folder, if any."""
    saved = settings.value(_key(kind))
    if saved and Path(str(saved)).is_dir():
        return str(saved)
    if project_dir:
        folder = Path(project_dir)
        if kind == PROJECT:
            folder = folder.parent  # the place that holds the projects, not the inside of one
        if folder.is_dir():
            return str(folder)
    return str(Path.home())


def remember_folder(settings: QSettings, kind: str, path: str | Path) -> None:
    """Keep where the user just went for ``kind``: a chosen folder itself, or the folder that holds a file or a project."""
    path = Path(path)
    if not str(path):
        return
    folder = path if path.is_dir() and not path.name.endswith(SUFFIX) else path.parent
    settings.setValue(_key(kind), str(folder))


# The dialogs, opened where ``start_folder`` says and remembering where the user went. ``studio`` is the window's
# Studio (its ``dialog_folder`` and ``remember_folder``); each returns "" (or []) when the user cancels.
def ask_existing_folder(parent, studio, kind: str, title: str) -> str:
    from PySide6.QtWidgets import QFileDialog

    path = QFileDialog.getExistingDirectory(parent, title, studio.dialog_folder(kind))
    studio.remember_folder(kind, path)
    return path


def ask_open_file(parent, studio, kind: str, title: str, filters: str) -> str:
    from PySide6.QtWidgets import QFileDialog

    path, _ = QFileDialog.getOpenFileName(parent, title, studio.dialog_folder(kind), filters)
    studio.remember_folder(kind, path)
    return path


def ask_open_files(parent, studio, kind: str, title: str, filters: str) -> list[str]:
    from PySide6.QtWidgets import QFileDialog

    paths, _ = QFileDialog.getOpenFileNames(parent, title, studio.dialog_folder(kind), filters)
    if paths:
        studio.remember_folder(kind, paths[0])
    return paths


def ask_save_path(parent, studio, kind: str, title: str, file_name: str, filters: str) -> str:
    from PySide6.QtWidgets import QFileDialog

    path, _ = QFileDialog.getSaveFileName(parent, title, str(Path(studio.dialog_folder(kind)) / file_name), filters)
    studio.remember_folder(kind, path)
    return path
