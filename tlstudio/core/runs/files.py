"""The files of one training run (``runs/<id>/`` in a project, or the CLI's ``--out``), written atomically.

The one reader and writer of a run folder. It imports torch only to save or load a checkpoint,
so a page of text about a run (the HTML report) never pays for loading it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from tlstudio.core import atomic, disk
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.runs.lock import RunLock, is_locked

# A run's status (status.json). A run marked running that no live process holds was cut short: crashed.
RUNNING, FINISHED, STOPPED, FAILED, CRASHED = "running", "finished", "stopped", "failed", "crashed"


@dataclass
class RunStatus:
    state: str = RUNNING
    epochs_completed: int = 0
    epochs: int = 0
    message: str = ""  # why it failed or stopped, in the user's words
    stopped_early: Optional[dict] = None  # early stopping's reason: {"epoch", "best_epoch", "patience"}
    seconds: float = 0.0  # time spent training, over every start of the run (resumes add up)
    starts: int = 1

    @property
    def resumable(self) -> bool:
        return self.state in (STOPPED, CRASHED, FAILED)

    @property
    def evaluable(self) -> bool:
        """A stopped, crashed or failed run that completed an epoch holds a best checkpoint to evaluate and export."""
        return self.epochs_completed > 0

    @classmethod
    def from_dict(cls, d: dict) -> "RunStatus":
        known = {"state", "epochs_completed", "epochs", "message", "stopped_early", "seconds", "starts"}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict:
        return asdict(self)


# The parts of a run folder that are read as data, and their files.
RUN_PARTS = {
    "config": "config.json", "dataset": "dataset.json", "history": "history.jsonl", "metrics": "metrics.json",
    "predictions": "predictions.json", "summary": "summary.json",
}


def json_of(kind: type) -> Callable[[Path], Any]:
    """A reader of a JSON file that must hold a ``kind`` (dict or list)."""

    def read(path: Path):
        obj = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(obj, kind):
            raise ValueError(f"expected a JSON {'object' if kind is dict else 'list'}")
        return obj

    return read


def json_lines(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError("a line is not a JSON object")
    return rows


def read_config(path: Path) -> TrainConfig:
    """config.json as the TrainConfig it holds (migrated from an older schema)."""
    return TrainConfig.from_dict(json_of(dict)(path))


PLAIN_READERS: dict[str, Callable[[Path], Any]] = {
    "config": json_of(dict), "dataset": json_of(dict), "history": json_lines, "metrics": json_of(dict),
    "predictions": json_of(list), "summary": json_of(dict),
}


@dataclass
class RunParts:
    """The parts of a run folder as read; a missing or unreadable file is named, never raised."""

    values: dict[str, Any] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # parts whose file is absent
    problems: dict[str, str] = field(default_factory=dict)  # part -> why its file could not be read
    written: float = 0.0  # the newest modification time among the files read


class RunFiles:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    config = property(lambda self: self.root / "config.json")
    dataset = property(lambda self: self.root / "dataset.json")
    history = property(lambda self: self.root / "history.jsonl")
    metrics = property(lambda self: self.root / "metrics.json")
    predictions = property(lambda self: self.root / "predictions.json")
    summary = property(lambda self: self.root / "summary.json")
    status = property(lambda self: self.root / "status.json")
    checkpoints = property(lambda self: self.root / "checkpoints")
    best = property(lambda self: self.root / "checkpoints" / "best.pt")
    last = property(lambda self: self.root / "checkpoints" / "last.pt")
    model = property(lambda self: self.root / "model.pt")

    def lock(self) -> RunLock:
        return RunLock(self.root)

    def prepare(self) -> None:
        """A new run into this folder: an earlier run's results must not pass for this run's."""
        with disk.writing(self.checkpoints):
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            for stale in (self.history, self.metrics, self.summary, self.predictions, self.last, self.best):
                stale.unlink(missing_ok=True)

    def write_json(self, path: Path, obj: Any) -> None:
        atomic.write_json(path, obj)

    def read_json(self, path: Path, default: Any = None) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return default

    def append_history(self, row: dict) -> None:
        atomic.append_line(self.history, atomic.json_line(row))

    def write_history(self, rows: list[dict]) -> None:
        atomic.write_text(self.history, "".join(atomic.json_line(r) + "\n" for r in rows))

    def read_history(self) -> list[dict]:
        if not self.history.exists():
            return []
        return [json.loads(line) for line in self.history.read_text(encoding="utf-8").splitlines() if line.strip()]

    def write_status(self, status: RunStatus) -> None:
        self.write_json(self.status, status.to_dict())

    def read_parts(self, readers: Mapping[str, Callable[[Path], Any]]) -> RunParts:
        """Each part in ``readers`` read by its reader (``PLAIN_READERS`` for plain JSON); the one way a run folder is read."""
        parts = RunParts()
        for part, reader in readers.items():
            path = self.root / RUN_PARTS[part]
            if not path.is_file():
                parts.missing.append(part)
                continue
            try:
                parts.written = max(parts.written, path.stat().st_mtime)
                parts.values[part] = reader(path)
            except UserError as exc:
                parts.problems[part] = f"{path.name} could not be read: {exc}"
            except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
                parts.problems[part] = f"{path.name} could not be read ({type(exc).__name__}: {exc})"
        return parts

    def read_status(self) -> Optional[RunStatus]:
        """The run's status, ``crashed`` for one still marked running that no live process holds; None before any."""
        d = self.read_json(self.status)
        if not isinstance(d, dict):
            return None
        status = RunStatus.from_dict(d)
        if status.state == RUNNING and not is_locked(self.root):
            status.state = CRASHED
        return status

    def save_checkpoint(self, path: Path, state: dict) -> None:
        """Serialised in memory first: a full disk is then a DiskError, never torch's C++ writer aborting the process."""
        import torch

        atomic.write_buffered(path, lambda buf: torch.save(state, buf))

    def load_checkpoint(self, path: Path) -> dict:
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)


def first_missing(path: Path) -> Optional[Path]:
    """The outermost folder of ``path`` that does not exist yet (what a run there creates), or None."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            return missing
        missing = folder
    return missing


def remove_if_only(created: Path, ours: set[Path]) -> bool:
    """Remove ``created`` (the folders made for a run folder) when every file in them is one of ``ours``; True when gone.

    Anything else there was written by someone else in the meantime, and stays."""
    files = [p for p in created.rglob("*") if not p.is_dir()] if created.is_dir() else []
    if not all(p in ours for p in files):
        return False
    shutil.rmtree(created, ignore_errors=True)
    return True


class ReadingRunFiles(RunFiles):
    """The run folder as a rank other than 0 of a run of several processes sees it: it reads what rank 0
    wrote (the checkpoint to resume from) and writes nothing, so each file has one writer."""

    def lock(self):
        return contextlib.nullcontext()

    def prepare(self) -> None:
        pass

    def write_json(self, path: Path, obj: Any) -> None:
        pass

    def append_history(self, row: dict) -> None:
        pass

    def write_history(self, rows: list[dict]) -> None:
        pass

    def save_checkpoint(self, path: Path, state: dict) -> None:
        pass
