"""What the next launch reopens: the last project and the step it was left on, kept in QSettings."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QSettings

from tlstudio.core.runs.project import Project

LAST_PROJECT = "session/project"
LAST_STEP = "window/step"  # the step list's row; the name predates the session keys

NEEDS_DATA = ("Train",)  # nothing to do there without an image folder
NEEDS_RUN = ("Evaluate", "Export")  # empty pages without a run


def last_project(settings: QSettings) -> str:
    return str(settings.value(LAST_PROJECT, "") or "")


def remember_project(settings: QSettings, root: str | Path) -> None:
    settings.setValue(LAST_PROJECT, str(root))


def forget_project(settings: QSettings) -> None:
    settings.remove(LAST_PROJECT)


def last_step(settings: QSettings, steps: tuple[str, ...]) -> str:
    try:
        row = int(settings.value(LAST_STEP, 0))
    except (TypeError, ValueError):
        row = 0
    return steps[row] if 0 <= row < len(steps) else steps[0]


def remember_step(settings: QSettings, row: int) -> None:
    settings.setValue(LAST_STEP, row)


def restorable_step(step: str, project: Optional[Project], first: str = "Data") -> str:
    """``step`` when reopening on it makes sense for ``project``, else the first step.

    Evaluate and Export need a run to show; Train needs an image folder (or a run to show the curves of).
    """
    if project is None:
        return first
    has_runs = bool(project.runs)
    if step in NEEDS_RUN and not has_runs:
        return first
    if step in NEEDS_DATA and not (project.data_dir or has_runs):
        return first
    return step
