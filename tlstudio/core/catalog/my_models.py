"""My models: a finished run as the starting point of a new one (two-step transfer learning).

``config.start_from`` names a run folder. Its catalog backbone is built and the backbone part of its
kept (best) epoch is loaded instead of the ImageNet weights; the new run's head is new. The source is
read only through ``torch.load(weights_only=True)``: a checkpoint is data, never a pickle.

``read_source_run`` refuses, naming the folder and what to do, a source that is missing, unfinished,
without a kept epoch or of a backbone this catalog lacks. ``finished_runs`` lists a project's runs
that can be picked, without loading any tensor (the GUI's list).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog.checksum import state_digest
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.names import printable
from tlstudio.core.runs.files import FINISHED, PLAIN_READERS, RunFiles, read_config

BACKBONE_PREFIX = "backbone.body."  # the architecture's tensors in a checkpoint's "model" (Classifier.backbone.body)
PROJECT_FILE = "project.json"


@dataclass(frozen=True)
class MyModel:
    """A finished run that can start a new one, as a list shows it (no tensor loaded)."""

    folder: Path
    run_id: str
    name: str
    backbone: str
    data_dir: str
    classes: tuple[str, ...]
    val_accuracy: Optional[float]
    val_balanced_accuracy: Optional[float]
    image_size: Optional[int]

    def title(self) -> str:
        acc = f"val accuracy {self.val_accuracy:.1%}" if isinstance(self.val_accuracy, (int, float)) else "no accuracy recorded"
        return f"{printable(self.name or self.run_id)}  ({self.backbone}, {len(self.classes)} classes from {printable(Path(self.data_dir).name or self.data_dir)}, {acc})"

    def origin(self) -> dict:
        """What a run started from this one records in its summary (and so in its export)."""
        return {
            "run_folder": str(self.folder), "run_id": self.run_id, "run_name": self.name, "data_dir": self.data_dir,
            "classes": list(self.classes), "backbone": self.backbone, "val_accuracy": self.val_accuracy,
            "val_balanced_accuracy": self.val_balanced_accuracy, "image_size": self.image_size,
        }


@dataclass(frozen=True)
class SourceRun:
    """A source run with its kept backbone tensors, ready to initialise a new run's backbone."""

    model: MyModel
    backbone_state: dict = field(repr=False)
    digest: str = ""  # of the kept backbone tensors: the feature cache key of runs started from it

    @property
    def weights_id(self) -> str:
        return f"run:{self.digest}"

    def origin(self) -> dict:
        return {**self.model.origin(), "weights_digest": self.digest}

    def state_dict_loader(self) -> Callable[[bb.BackboneSpec], dict]:
        """A ``build_backbone`` loader: the source's backbone tensors, plus the architecture's own classifier
        tensors (the catalog's build loads the full architecture, then drops the classifier)."""

        def load_source_backbone(spec: bb.BackboneSpec) -> dict:
            prefix = spec.classifier_path + "."
            fresh = bb.architecture(spec).state_dict()
            return {**{k: v for k, v in fresh.items() if k.startswith(prefix)}, **self.backbone_state}

        return load_source_backbone


def _refuse(folder: Path, why: str, todo: str) -> UserError:
    return UserError(f"--start-from '{printable(folder)}' {why}. {todo}")


def read_my_model(folder: str | Path) -> MyModel:
    """The run in ``folder`` as a starting point, checked without loading its weights."""
    folder = Path(folder)
    pick = "Pick a finished run's folder (a project's runs/<id>, or a --out of 'tlstudio train')."
    if not folder.is_dir():
        raise _refuse(folder, "is not a folder", pick)
    files = RunFiles(folder)
    parts = files.read_parts({"config": read_config, "summary": PLAIN_READERS["summary"]})
    if "config" not in parts.values:
        raise _refuse(folder, f"is not a tlstudio run folder ({parts.problems.get('config', 'it has no config.json')})", pick)
    status = files.read_status()
    if status is None or status.state != FINISHED:
        state = status.state if status is not None else "without a status"
        raise _refuse(folder, f"is a run that is {state}, not finished", "Finish it first (resume it, or evaluate its kept epoch), or pick a finished run.")
    if not files.best.is_file():
        raise _refuse(folder, "holds no kept epoch (checkpoints/best.pt is missing)", "Pick a run that kept an epoch, or train that run again.")
    config: TrainConfig = parts.values["config"]
    try:
        bb.get_backbone(config.backbone)
    except (UserError, KeyError):
        raise _refuse(folder, f"was trained on backbone '{printable(config.backbone)}', which this tlstudio's catalog lacks", "Update tlstudio or pick another run.") from None
    summary = parts.values.get("summary") or {}
    run_id = folder.resolve().name
    return MyModel(
        folder.resolve(), run_id, _run_name(folder.resolve()), config.backbone, str(summary.get("data_dir") or config.data_dir),
        tuple(map(str, summary.get("classes") or [])), summary.get("val_accuracy"), summary.get("val_balanced_accuracy"),
        summary.get("image_size") or config.image_size,
    )


def read_source_run(folder: str | Path) -> SourceRun:
    """``read_my_model`` plus the kept epoch's backbone tensors (loaded with ``weights_only=True``)."""
    model = read_my_model(folder)
    files = RunFiles(model.folder)
    try:
        checkpoint = files.load_checkpoint(files.best)
        state = checkpoint["model"]
        backbone_state = {k[len(BACKBONE_PREFIX):]: v for k, v in state.items() if k.startswith(BACKBONE_PREFIX)}
    except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint is the user's file to replace
        raise _refuse(model.folder, f"has a kept epoch that could not be read ({type(exc).__name__}: {exc})", "Pick another run.") from None
    if not backbone_state:
        raise _refuse(model.folder, "has a kept epoch with no backbone tensors", "Pick another run.")
    return SourceRun(model, backbone_state, state_digest(backbone_state))


def start_config(config: TrainConfig, model: MyModel) -> TrainConfig:
    """``config`` started from ``model``: its folder, its catalog backbone and its image size, pretrained weights."""
    return replace(config, start_from=str(model.folder), backbone=model.backbone, image_size=model.image_size, pretrained=True)


def finished_runs(runs) -> list[MyModel]:
    """The runs (``RunInfo``) that can start a new one; the others are left out silently."""
    found = []
    for info in runs:
        try:
            found.append(read_my_model(info.files.root))
        except UserError:
            continue
    return found


def _run_name(folder: Path) -> str:
    """The user's name for the run when it lies in a project's runs/ (read only: the project is not opened)."""
    project_file = folder.parent.parent / PROJECT_FILE
    if folder.parent.name != "runs" or not project_file.is_file():
        return ""
    try:
        runs = json.loads(project_file.read_text(encoding="utf-8")).get("runs", [])
        return next((str(r.get("name") or "") for r in runs if isinstance(r, dict) and r.get("id") == folder.name), "")
    except (OSError, ValueError, AttributeError):
        return ""
