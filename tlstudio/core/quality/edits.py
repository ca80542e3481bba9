"""The user's decisions about single pictures: leave one out of training, or say which class it belongs to.

Decisions never touch the user's files: they are a small record (``DataEdits``) kept in the project
(``data_edits.json``) and copied into each run's config, so a run (and its resume) trains on exactly the
pictures it was started with. ``apply_edits`` gives the scanned index with the decisions applied; the
``EditRecord`` it returns is what a run's summary and report list. A picture is named by its path in the
data folder and its content digest: a file changed since the decision no longer matches, and the
decision is reported as not applied rather than applied to other pixels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional

from tlstudio.core import atomic
from tlstudio.core.data.index import DatasetIndex, Sample
from tlstudio.core.errors import UserError
from tlstudio.core.names import printable

FILE_NAME = "data_edits.json"  # in the project folder: the decisions as they stand
RECORD_FILE = "data_edits.json"  # in a run folder: what they did to that run's pictures (EditRecord)
EXCLUDE, RELABEL = "exclude", "relabel"


@dataclass(frozen=True)
class Edit:
    path: str  # relative to the data folder, as the index names it
    digest: str  # the picture's content when the decision was made
    action: str  # EXCLUDE or RELABEL
    label: str = ""  # RELABEL: the class it belongs to (one of the project's classes)


@dataclass
class DataEdits:
    edits: dict[str, Edit] = field(default_factory=dict)  # by path: one decision per picture, the last one made

    def exclude(self, sample: Sample) -> None:
        self.edits[sample.path] = Edit(sample.path, sample.digest, EXCLUDE)

    def relabel(self, sample: Sample, label: str, classes: list[str]) -> None:
        if label not in classes:
            raise UserError(f"'{printable(label)}' is not one of this project's classes ({', '.join(map(printable, classes))}). Choose one of them.")
        self.edits[sample.path] = Edit(sample.path, sample.digest, RELABEL, label)

    def keep(self, path: str) -> None:
        """No decision for ``path`` (the picture is used as its folder says): keeping it, or undoing a decision."""
        self.edits.pop(path, None)

    def to_list(self) -> list[dict]:
        return [asdict(e) for e in sorted(self.edits.values(), key=lambda e: e.path)]

    @classmethod
    def from_list(cls, items) -> "DataEdits":
        edits = {}
        for item in items or []:
            edit = Edit(str(item["path"]), str(item["digest"]), str(item["action"]), str(item.get("label", "")))
            if edit.action not in (EXCLUDE, RELABEL):
                raise ValueError(f"unknown action {edit.action!r}")
            edits[edit.path] = edit
        return cls(edits)


def edits_of_config(items) -> DataEdits:
    """The decisions a run's config carries (``TrainConfig.data_edits``)."""
    try:
        return DataEdits.from_list(items)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"the run's data_edits setting could not be read ({exc}). Start the run again from the window, or remove data_edits from config.json.") from None


def load_edits(project_root: str | Path) -> DataEdits:
    path = Path(project_root) / FILE_NAME
    if not path.is_file():
        return DataEdits()
    try:
        return DataEdits.from_list(json.loads(path.read_text(encoding="utf-8")).get("edits"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"the picture decisions in '{path}' could not be read ({exc}). Move the file away to start again without them.") from None


def save_edits(project_root: str | Path, edits: DataEdits) -> Path:
    path = Path(project_root) / FILE_NAME
    atomic.write_json(path, {"version": 1, "edits": edits.to_list()})
    return path


@dataclass(frozen=True)
class EditRecord:
    """What a run's decisions did to its pictures."""

    excluded: dict[str, int]  # split -> pictures left out
    relabelled: dict[str, int]  # split -> pictures given another class
    not_applied: tuple[str, ...]  # decisions whose picture is gone or changed since
    paths: tuple[tuple[str, str, str], ...]  # (path, action, new class or "") of every decision applied

    @property
    def validation_edited(self) -> bool:
        """The pictures the run's accuracy is measured on were edited: say so wherever that accuracy is shown."""
        return any(self.excluded.get(s, 0) + self.relabelled.get(s, 0) for s in ("val", "test"))

    @property
    def any(self) -> bool:
        return bool(self.paths)

    def to_dict(self) -> dict:
        return {**asdict(self), "validation_edited": self.validation_edited}

    @classmethod
    def from_dict(cls, d: dict) -> "EditRecord":
        return cls(dict(d.get("excluded", {})), dict(d.get("relabelled", {})), tuple(d.get("not_applied", ())),
                   tuple(tuple(p) for p in d.get("paths", ())))


def apply_edits(index: DatasetIndex, edits: DataEdits) -> tuple[DatasetIndex, EditRecord]:
    """``index`` with the decisions applied (excluded pictures left out, relabelled ones in their new class)."""
    kept: list[Sample] = []
    excluded: dict[str, int] = {}
    relabelled: dict[str, int] = {}
    applied: list[tuple[str, str, str]] = []
    found: set[str] = set()
    for sample in index.samples:
        edit = edits.edits.get(sample.path)
        if edit is None or edit.digest != sample.digest:
            kept.append(sample)
            continue
        found.add(sample.path)
        if edit.action == EXCLUDE:
            excluded[sample.split] = excluded.get(sample.split, 0) + 1
            applied.append((sample.path, EXCLUDE, ""))
            continue
        if edit.label not in index.classes:
            raise UserError(f"the decision about '{printable(sample.path)}' names the class '{printable(edit.label)}', which this folder has not. Undo it.")
        new = index.classes.index(edit.label)
        if new != sample.label:
            relabelled[sample.split] = relabelled.get(sample.split, 0) + 1
            applied.append((sample.path, RELABEL, edit.label))
        kept.append(replace(sample, label=new))
    stale = tuple(sorted(set(edits.edits) - found))
    record = EditRecord(excluded, relabelled, stale, tuple(applied))
    return (replace(index, samples=kept) if record.any else index), record


def describe(record: Optional[dict]) -> str:
    """One plain sentence about a run's decisions (from its summary), or "" when it had none."""
    if not record or not record.get("paths"):
        return ""
    out, moved = sum(record.get("excluded", {}).values()), sum(record.get("relabelled", {}).values())
    text = f"Your decisions about single pictures: {out} left out, {moved} given another class."
    if record.get("validation_edited"):
        text += " The validation set was edited: its accuracy is measured on the pictures as you corrected them."
    return text
