"""Labels the user gives new pictures (``quality.active`` says which first), kept in the project.

The pictures stay where they are: only ``{path: class}`` is written (``new_labels.json`` in the project).
``copy_labelled`` copies them, when the user asks, into the project's own ``labelled pictures/<class>/``
folder (one sub-folder per class, like a data folder); nothing is moved or renamed, and a picture already
copied is not copied twice.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tlstudio.core import atomic
from tlstudio.core.errors import UserError
from tlstudio.core.names import printable

FILE_NAME = "new_labels.json"
COPIES = "labelled pictures"


def load_labels(project_root: str | Path) -> dict[str, str]:
    path = Path(project_root) / FILE_NAME
    if not path.is_file():
        return {}
    try:
        return {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8"))["labels"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"the labels of new pictures in '{path}' could not be read ({exc}). Move the file away to start again without them.") from None


def save_labels(project_root: str | Path, labels: dict[str, str]) -> Path:
    path = Path(project_root) / FILE_NAME
    atomic.write_json(path, {"version": 1, "labels": dict(sorted(labels.items()))})
    return path


def copy_labelled(project_root: str | Path, labels: dict[str, str]) -> list[Path]:
    """Copies of the labelled pictures in ``project/labelled pictures/<class>/`` (an existing copy is kept); their paths."""
    out = []
    for source, label in sorted(labels.items()):
        src = Path(source)
        if not src.is_file():
            raise UserError(f"'{printable(src)}' is not there any more, so it cannot be copied. Label it again or undo its label.")
        dest, n = Path(project_root) / COPIES / label / src.name, 2
        while dest.exists() and dest.read_bytes() != src.read_bytes():  # another picture of the same name
            dest, n = dest.with_name(f"{src.stem}-{n}{src.suffix}"), n + 1
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)
        out.append(dest)
    return out
