"""The project folder on disk: what the user set and every run, so reopening it shows everything again.

```
MyProject.tlstudio/
  project.json      data folder, split settings, the last TrainConfig, the run list
  runs/<id>/        one RunFiles root per run (config, history, metrics, checkpoints, model.pt)
  cache/            decoded images and cached features (safe to delete)
```

Headless: the GUI and the CLI both use it. Every write goes through ``tlstudio.core.atomic``.
``project.json`` carries a schema version; an older file is migrated when it is read.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Optional

from tlstudio.core import atomic
from tlstudio.core.disk import disk_error, writing
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.names import printable
from tlstudio.core.runs.files import PLAIN_READERS, RunFiles, read_config, remove_if_only
from tlstudio.core.runs.lock import LOCK_NAME

SCHEMA_VERSION = 1
SUFFIX = ".tlstudio"
PROJECT_FILE = "project.json"

# Run states. A run still "running" when its project is opened again was cut short (a crash, a power cut).
RUNNING = "running"
FINISHED = "finished"
CANCELLED = "cancelled"
FAILED = "failed"
INTERRUPTED = "interrupted"

FROM_SCRATCH = "from scratch"  # how a run list marks a run trained from random weights
MAX_NAME = 80  # characters in a run's name: a run list line, not a paragraph


@dataclass
class RunRecord:
    """One line of the run list in project.json."""

    id: str
    status: str = RUNNING
    created: str = ""  # ISO time
    backbone: str = ""
    summary: dict = field(default_factory=dict)  # the trainer's summary (val accuracy, export report, ...)
    message: str = ""  # why it failed, in the user's words
    name: str = ""  # the user's name for the run; "" shows the id. The run folder keeps the id.

    @classmethod
    def from_dict(cls, d: dict) -> "RunRecord":
        known = {"id", "status", "created", "backbone", "summary", "message", "name"}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class RunInfo:
    """A run as the GUI shows it: its record plus what its files hold."""

    record: RunRecord
    files: RunFiles
    config: Optional[TrainConfig]
    history: list[dict]
    metrics: dict

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def has_model(self) -> bool:
        return self.files.model.is_file()

    @property
    def from_scratch(self) -> bool:
        """Trained from random weights (the baseline ``runs.baseline`` makes), not from a pretrained backbone."""
        return self.config is not None and self.config.pretrained is False

    def title(self) -> str:
        """A short line for a run list: its name (or when and which backbone), how it started, how it went."""
        acc = self.metrics.get("accuracy", self.record.summary.get("val_accuracy"))
        status = "stopped" if self.record.status == CANCELLED else self.record.status  # the word the Stop button and Compare runs use
        how = f"val accuracy {acc:.1%}" if isinstance(acc, (int, float)) else status
        if self.record.status in (CANCELLED, FAILED, INTERRUPTED, RUNNING):
            how = status if acc is None else f"{status}, {how}"
        if self.from_scratch:
            how = f"{FROM_SCRATCH}, {how}"
        origin = self.record.summary.get("origin") or {}
        if origin:
            how = f"from {printable(origin.get('run_name') or origin.get('run_id', ''))}, {how}"
        return f"{printable(self.record.name) if self.record.name else self.id}  ({how})"


def migrate(d: dict) -> dict:
    """Bring a project.json written by an older tlstudio up to SCHEMA_VERSION."""
    version = int(d.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise UserError(
            f"this project was written by a newer tlstudio (project schema {version}, this one reads up to {SCHEMA_VERSION}). Update tlstudio."
        )
    d["schema_version"] = SCHEMA_VERSION
    return d


def valid_run_name(name: str) -> str:
    """``name`` stripped, or a UserError saying what is wrong with it."""
    name = str(name).strip()
    if not name:
        raise UserError("a run's name cannot be empty. Type a few words, such as 'frozen, 10 epochs'.")
    if len(name) > MAX_NAME:
        raise UserError(f"a run's name can have at most {MAX_NAME} characters (this one has {len(name)}). Choose a shorter name.")
    if not name.isprintable():
        raise UserError(f"the name '{printable(name)}' holds a hidden character (a line break, tab or control). Type the name again without it.")
    return name


def is_project(path: str | Path) -> bool:
    return (Path(path) / PROJECT_FILE).is_file()


def new_run_id(backbone: str, now: Optional[datetime] = None) -> str:
    return f"{(now or datetime.now()).strftime('%Y-%m-%d_%H-%M-%S')}_{backbone}"


class Project:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.data_dir: str = ""
        self.val_split: float = 0.2
        self.test_split: float = 0.0
        self.seed: int = 0
        self.new_pictures_dir: str = ""  # unlabelled pictures from where the model will be used (adaptation, distillation)
        self.config: dict = {}  # the last TrainConfig the user set, as a dict
        self.runs: list[RunRecord] = []
        self.created: str = datetime.now().isoformat(timespec="seconds")

    # ------------------------------------------------------------ where things are
    @property
    def name(self) -> str:
        return self.root.name[: -len(SUFFIX)] if self.root.name.endswith(SUFFIX) else self.root.name

    @property
    def file(self) -> Path:
        return self.root / PROJECT_FILE

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def run_files(self, run_id: str) -> RunFiles:
        return RunFiles(self.runs_dir / run_id)

    # ------------------------------------------------------------ create, open, save
    @classmethod
    def create(cls, path: str | Path) -> "Project":
        """A new, empty project folder. ``.tlstudio`` is added to the name when missing."""
        root = Path(path)
        if not root.name.endswith(SUFFIX):
            root = root.with_name(root.name + SUFFIX)
        if is_project(root):
            raise UserError(f"'{root}' is already a tlstudio project. Open it instead, or choose another name.")
        if root.exists() and (not root.is_dir() or any(root.iterdir())):
            raise UserError(f"'{root}' already exists and is not empty. Choose another name for the new project.")
        project = cls(root)
        try:
            project.runs_dir.mkdir(parents=True, exist_ok=True)
            project.cache_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise disk_error(exc, root) or UserError(f"could not create the project folder '{root}': {exc.strerror or exc}.") from None
        project.save()
        return project

    @classmethod
    def open(cls, path: str | Path) -> "Project":
        root = Path(path)
        if root.name == PROJECT_FILE:
            root = root.parent
        if not is_project(root):
            raise UserError(f"'{root}' is not a tlstudio project (it has no {PROJECT_FILE}). Choose a folder whose name ends in {SUFFIX}.")
        try:
            d = migrate(json.loads((root / PROJECT_FILE).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise UserError(f"the project file '{root / PROJECT_FILE}' could not be read ({exc}).") from None
        project = cls(root)
        project.data_dir = str(d.get("data_dir", ""))
        project.val_split = float(d.get("val_split", 0.2))
        project.test_split = float(d.get("test_split", 0.0))
        project.seed = int(d.get("seed", 0))
        project.new_pictures_dir = str(d.get("new_pictures_dir", ""))
        project.config = dict(d.get("config", {}))
        project.created = str(d.get("created", project.created))
        project.runs = [RunRecord.from_dict(r) for r in d.get("runs", [])]
        project._adopt_unlisted_runs()
        if any(r.status == RUNNING for r in project.runs):
            for r in project.runs:
                if r.status == RUNNING:
                    r.status = INTERRUPTED  # nothing can still be running in a project that is only now opened
            project.save()
        return project

    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "created": self.created,
            "data_dir": self.data_dir,
            "val_split": self.val_split,
            "test_split": self.test_split,
            "seed": self.seed,
            "new_pictures_dir": self.new_pictures_dir,
            "config": self.config,
            "runs": [asdict(r) for r in self.runs],
        }

    def save(self) -> None:
        try:
            atomic.write_json(self.file, self.to_dict())
        except OSError as exc:
            raise UserError(f"could not save the project '{self.file}': {exc.strerror or exc}.") from None

    def save_as(self, path: str | Path) -> "Project":
        """Copy the project (runs included, the rebuildable cache left out) to a new folder and return the copy."""
        dest = Path(path)
        if not dest.name.endswith(SUFFIX):
            dest = dest.with_name(dest.name + SUFFIX)
        if dest.resolve() == self.root.resolve():
            self.save()
            return self
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise UserError(f"'{dest}' already exists and is not empty. Choose another name.")
        self.save()
        try:
            shutil.copytree(self.root, dest, ignore=shutil.ignore_patterns("cache"), dirs_exist_ok=True)
        except OSError as exc:
            raise UserError(f"could not copy the project to '{dest}': {exc}.") from None
        (dest / "cache").mkdir(exist_ok=True)
        return Project.open(dest)

    # ------------------------------------------------------------ settings
    def set_data(self, data_dir: str | Path, val_split: float, test_split: float, seed: int) -> None:
        self.data_dir = str(data_dir)
        self.val_split, self.test_split, self.seed = float(val_split), float(test_split), int(seed)

    def set_new_pictures(self, folder: str | Path) -> None:
        """The folder of unlabelled new pictures ("" for none). Only its path is kept: nothing in it is moved or copied."""
        if folder and not Path(folder).is_dir():
            raise UserError(f"'{folder}' is not a folder. Choose the folder that holds the new, unlabelled pictures.")
        self.new_pictures_dir = str(folder)

    def train_config(self) -> TrainConfig:
        """The last config, with the project's data folder and split settings."""
        cfg = TrainConfig.from_dict(self.config) if self.config else TrainConfig()
        cfg.data_dir = self.data_dir
        cfg.val_split, cfg.test_split, cfg.seed = self.val_split, self.test_split, self.seed
        return cfg

    # ------------------------------------------------------------ runs
    def new_run(self, config: TrainConfig, now: Optional[datetime] = None, remember: bool = True) -> RunFiles:
        """Record a new run (status running) and return its files.

        With ``remember`` its config becomes the project's last one; a run the user did not set up
        (the from-scratch baseline of another run) passes False and leaves their settings alone.
        """
        base = new_run_id(config.backbone, now)
        run_id, n = base, 2
        while (self.runs_dir / run_id).exists() or any(r.id == run_id for r in self.runs):
            run_id, n = f"{base}-{n}", n + 1
        files = RunFiles(self.runs_dir / run_id)
        with writing(files.root):
            files.root.mkdir(parents=True)
        if remember:
            self.config = config.to_dict()
        self.runs.append(RunRecord(run_id, RUNNING, datetime.now().isoformat(timespec="seconds"), config.backbone))
        self.save()
        return files

    def finish_run(self, run_id: str, status: str, summary: Optional[dict] = None, message: str = "") -> None:
        record = self.record(run_id)
        record.status = status
        record.summary = dict(summary or {})
        record.message = message
        self.save()

    def rename_run(self, run_id: str, name: str) -> str:
        """Give the run a display name (kept in project.json; its folder keeps the id) and return it, stripped.

        Refused with a UserError when it is empty, longer than MAX_NAME characters or holds hidden characters."""
        record = self.record(run_id)
        record.name = valid_run_name(name)
        self.save()
        return record.name

    def discard_run(self, run_id: str) -> bool:
        """Forget a run that ended before its first epoch (refused, or failed while preparing): True when it is gone.

        Only a folder holding nothing but what every run writes before it trains (its lock, config, dataset and
        status files) is removed with its record: there is no trained epoch to evaluate, export or resume."""
        files = self.run_files(run_id)
        if not remove_if_only(files.root, {files.root / LOCK_NAME, files.config, files.dataset, files.status}):
            return False
        self.runs = [r for r in self.runs if r.id != run_id]
        self.save()
        return True

    def record(self, run_id: str) -> RunRecord:
        for r in self.runs:
            if r.id == run_id:
                return r
        raise UserError(f"there is no run '{run_id}' in project '{self.root}'.")

    def load_run(self, run_id: str) -> RunInfo:
        record = self.record(run_id)
        files = self.run_files(run_id)
        parts = files.read_parts({
            "config": read_config, "history": PLAIN_READERS["history"], "metrics": PLAIN_READERS["metrics"],
        })
        values = parts.values
        return RunInfo(record, files, values.get("config"), values.get("history", []), values.get("metrics", {}))

    def list_runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        return [self.load_run(r.id) for r in self.runs]

    def _adopt_unlisted_runs(self) -> None:
        """A run folder that project.json does not list (written by a crash between the two writes) is shown as interrupted."""
        listed = {r.id for r in self.runs}
        if not self.runs_dir.is_dir():
            return
        for folder in sorted(p for p in self.runs_dir.iterdir() if p.is_dir()):
            if folder.name not in listed and (folder / "config.json").is_file():
                self.runs.append(RunRecord(folder.name, INTERRUPTED))
