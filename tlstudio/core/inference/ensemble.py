"""Combine finished runs into one model that averages their calibrated probabilities ("Combine runs").

``combine_runs(run_dirs, dest_dir)`` refuses runs that cannot be combined honestly (fewer than two,
unfinished, different class lists, different validation pictures), then:

- scores the ensemble from the runs' own saved validation probabilities (``predictions.json``, already
  calibrated), averaged with equal weights: nothing is trained and nothing is chosen, so the figures
  are as honest as each member's. "Best member" is the member with the highest validation accuracy,
  an oracle pick the ensemble is compared against;
- writes one TorchScript file (``ensemble_export``) holding every member with its own preprocessing,
  recorded in the trust store, so ``tlstudio predict`` and Classify a folder run it like any model file;
- checks it in a fresh process on held validation pictures before it is called done, and writes
  ``ensemble.json`` (the result) beside it.

Members are rebuilt from their ``checkpoints/best.pt`` (weights only, never a pickled program), so a
run exported as ONNX only, or not exported, can be a member too.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from tlstudio.core.atomic import write_json
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, Message, PhaseStarted, Progress, StopToken, as_token, ignore_events
from tlstudio.core.inference.ensemble_export import KIND, EnsembleCheck, build_ensemble, held_pictures, outer_preprocessing, save_ensemble, verify_ensemble
from tlstudio.core.inference.export import FORMAT
from tlstudio.core.inference.trained_model import TrainedModel, load_trained_model
from tlstudio.core.report.metrics import accuracy_scores
from tlstudio.core.runs.files import FINISHED, RunFiles

MODEL_FILE = "model.pt"
RESULT_FILE = "ensemble.json"
VERIFY_IMAGES = 50  # validation pictures the file must reproduce in a fresh process


@dataclass(frozen=True)
class EnsembleMember:
    run_dir: str
    run_id: str  # the run folder's name (runs/<id> in a project)
    backbone: str
    val_accuracy: float  # from its saved validation probabilities, as the ensemble's are
    val_balanced_accuracy: float


@dataclass(frozen=True)
class EnsembleResult:
    members: tuple[EnsembleMember, ...]
    classes: tuple[str, ...]
    val_pictures: int
    val_accuracy: float
    val_balanced_accuracy: float
    best_member: EnsembleMember  # highest validation accuracy (then balanced accuracy): an oracle pick
    model_path: Path
    result_path: Path
    verification: EnsembleCheck
    seconds: float

    @property
    def gain_points(self) -> float:
        """Ensemble minus best member, validation accuracy in points."""
        return 100 * (self.val_accuracy - self.best_member.val_accuracy)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(model_path=str(self.model_path), result_path=str(self.result_path), gain_points=self.gain_points)
        return d


@dataclass(frozen=True)
class RunRecord:
    """What combining needs from one run folder, read without torch."""

    files: RunFiles
    backbone: str
    classes: tuple[str, ...]
    data_dir: str
    val: dict[str, str]  # validation picture path (relative to data_dir) -> content digest
    probs: dict[str, np.ndarray]  # path -> the run's saved calibrated probabilities
    labels: dict[str, int]

    @property
    def name(self) -> str:
        return str(self.files.root)


def read_run(run_dir: str | os.PathLike) -> RunRecord:
    """One run folder as a member, or a UserError naming the run and what to do."""
    files = RunFiles(run_dir)
    where = f"run '{files.root}'"
    if not files.config.is_file():
        raise UserError(f"{where} is not a training run (it has no config.json). Choose the folder of a finished run.")
    status = files.read_status()
    if status is None or status.state != FINISHED:
        state = status.state if status is not None else "not started"
        raise UserError(f"{where} is not finished ({state}): only finished runs can be combined. Resume it to the end, or leave it out.")
    summary, dataset, predictions = (files.read_json(p) for p in (files.summary, files.dataset, files.predictions))
    if not isinstance(summary, dict) or not isinstance(dataset, dict) or not isinstance(predictions, list):
        raise UserError(f"{where} lacks its summary.json, dataset.json or predictions.json (or one is damaged). Evaluate it again ('tlstudio evaluate').")
    try:
        return _record(files, summary, dataset, predictions)
    except (KeyError, TypeError, ValueError, IndexError):
        raise UserError(f"{where} has a summary.json, dataset.json or predictions.json this tlstudio cannot read. Evaluate it again.") from None


def _record(files: RunFiles, summary: dict, dataset: dict, predictions: list) -> RunRecord:
    classes = tuple(str(c) for c in summary["classes"])
    val = {str(s["path"]): str(s["digest"]) for s in dataset["samples"] if s["split"] == "val"}
    rows = [p for p in predictions if p["split"] == "val"]
    probs = {str(p["path"]): np.asarray(p["probs"], dtype=np.float64) for p in rows}
    if set(probs) != set(val) or any(len(v) != len(classes) for v in probs.values()):
        raise UserError(f"run '{files.root}': its predictions.json does not match its validation pictures. Evaluate it again ('tlstudio evaluate').")
    labels = {str(p["path"]): int(p["label"]) for p in rows}
    return RunRecord(files, str(summary["backbone"]), classes, str(dataset["root"]), val, probs, labels)


def check_combinable(records: Sequence[RunRecord]) -> None:
    """Same classes in the same order, same validation pictures (by path and content): else a UserError naming the run."""
    first = records[0]
    for other in records[1:]:
        if other.classes != first.classes:
            raise UserError(
                f"run '{other.name}' has the classes {', '.join(other.classes)} but run '{first.name}' has {', '.join(first.classes)}: "
                "only runs of the same classes can be combined. Choose runs trained on the same data folder."
            )
        if other.val != first.val:
            differ = len(set(other.val.items()) ^ set(first.val.items()))
            raise UserError(
                f"run '{other.name}' was validated on other pictures than run '{first.name}' ({differ} differ in name or content): "
                "their figures could not be compared. Combine runs trained on the same data folder with the same split (seed, validation share)."
            )


def mean_probabilities(records: Sequence[RunRecord]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(validation paths in the first run's order, labels, the equal-weight mean of the members' probabilities)."""
    paths = list(records[0].probs)
    labels = np.array([records[0].labels[p] for p in paths], dtype=np.int64)
    mean = np.mean([np.stack([r.probs[p] for p in paths]) for r in records], axis=0)
    return paths, labels, mean


def member_of(record: RunRecord, paths: Sequence[str], labels: np.ndarray) -> EnsembleMember:
    preds = np.stack([record.probs[p] for p in paths]).argmax(1)
    acc, bal = accuracy_scores(labels, preds)
    return EnsembleMember(str(record.files.root), record.files.root.name, record.backbone, acc, bal)


def best_of(members: Sequence[EnsembleMember]) -> EnsembleMember:
    return max(members, key=lambda m: (m.val_accuracy, m.val_balanced_accuracy))


def refuse_runs(run_dirs: Sequence[str | os.PathLike], dest_dir: Path) -> None:
    if len(run_dirs) < 2:
        raise UserError(f"an ensemble needs at least two finished runs; {len(run_dirs)} given. Choose two or more runs.")
    resolved = [Path(r).resolve() for r in run_dirs]
    if len(set(resolved)) < len(resolved):
        raise UserError("the same run is given twice: an ensemble of a run with itself is that run. Choose different runs.")
    if dest_dir.resolve() in resolved:
        raise UserError(f"'{dest_dir}' is one of the runs: its model.pt would be replaced. Choose another folder for the ensemble.")


def combine_runs(
    run_dirs: Sequence[str | os.PathLike], dest_dir: str | os.PathLike, on_event: EventCallback = ignore_events, stop: Optional[StopToken] = None,
    verify_images: int = VERIFY_IMAGES,
) -> EnsembleResult:
    """Combine the finished runs in ``run_dirs`` into ``dest_dir``/model.pt, checked in a fresh process on the first
    ``verify_images`` validation pictures (at least one); see the module docstring."""
    started, stop, dest_dir = time.perf_counter(), as_token(stop), Path(dest_dir)
    refuse_runs(run_dirs, dest_dir)
    on_event(PhaseStarted("reading runs", len(run_dirs)))
    records = [read_run(r) for r in run_dirs]
    check_combinable(records)
    paths, labels, mean = mean_probabilities(records)
    members = tuple(member_of(r, paths, labels) for r in records)
    acc, bal = accuracy_scores(labels, mean.argmax(1))
    summary = ensemble_summary(records, members, acc, bal, len(paths))
    models = rebuilt_members(records, on_event, stop)
    dest_dir.mkdir(parents=True, exist_ok=True)
    held = spread(len(paths), verify_images)
    check, model_path = export_checked(records, models, [paths[i] for i in held], mean[held], summary, dest_dir, on_event, stop)
    result = EnsembleResult(members, records[0].classes, len(paths), acc, bal, best_of(members), model_path, dest_dir / RESULT_FILE, check,
                            round(time.perf_counter() - started, 2))
    write_json(result.result_path, result.to_dict())
    return result


def spread(n: int, k: int) -> list[int]:
    """``k`` of ``range(n)`` evenly spread (the validation list runs class by class: every class gets checked)."""
    return sorted(set(np.linspace(0, n - 1, max(1, min(k, n))).round().astype(int).tolist()))


def rebuilt_members(records: Sequence[RunRecord], on_event: EventCallback, stop: StopToken) -> list[TrainedModel]:
    on_event(PhaseStarted("building the members", len(records)))
    models = []
    for i, record in enumerate(records):
        stop.check()
        model = load_trained_model(record.files.root)
        if tuple(model.classes) != record.classes:
            raise UserError(f"run '{record.name}': its checkpoint's classes differ from its summary.json. Train the run again.")
        models.append(model)
        on_event(Progress(i + 1, len(records), record.backbone))
    return models


def export_checked(
    records: Sequence[RunRecord], models: Sequence[TrainedModel], paths: Sequence[str], mean: np.ndarray, summary: dict,
    dest_dir: Path, on_event: EventCallback, stop: StopToken,
) -> tuple[EnsembleCheck, Path]:
    """Write the file as model.unverified.pt, check it in a fresh process on ``paths`` (their averaged probabilities: ``mean``),
    then move it to model.pt (kept aside if it disagreed)."""
    on_event(PhaseStarted("exporting", len(paths)))
    unverified, dest = dest_dir / "model.unverified.pt", dest_dir / MODEL_FILE
    root = Path(records[0].data_dir)
    outer = outer_preprocessing(models)
    try:
        save_ensemble(build_ensemble(models, records[0].classes), file_info(records, models, summary), unverified)
        pictures = held_pictures([root / p for p in paths], [m.pre.resize_size for m in models], outer.resize_size, stop)
        progress = lambda done: on_event(Progress(done, len(paths), "pictures checked"))  # noqa: E731
        check = verify_ensemble(unverified, pictures, mean, stop=stop, on_progress=progress)
    except BaseException:
        unverified.unlink(missing_ok=True)  # stopped or broken before its check ended: no unchecked file stays
        raise
    if not check.ok:
        raise RuntimeError(f"the ensemble's file disagreed with its members' saved probabilities ({check.message}); it was kept as {unverified}")
    unverified.replace(dest)
    on_event(Message(f"Exported {dest}: a fresh process {check.message}."))
    return check, dest


def ensemble_summary(records: Sequence[RunRecord], members: Sequence[EnsembleMember], acc: float, bal: float, n: int) -> dict:
    """The file's training summary: what it is, where its members came from, its validation figures."""
    return {
        "kind": KIND, "val_accuracy": acc, "val_balanced_accuracy": bal, "val_pictures": n, "classes": list(records[0].classes),
        "weights": "equal", "backbones": [m.backbone for m in members], "data_dir": records[0].data_dir,
        "members": [{**asdict(m), "data_dir": r.data_dir} for m, r in zip(members, records)],
        "calibration": {"temperature": 1.0, "threshold": 0.0},  # each member carries its own temperature; no threshold chosen
    }


def file_info(records: Sequence[RunRecord], models: Sequence[TrainedModel], summary: dict) -> dict:
    outer = outer_preprocessing(models)
    return {
        "format": FORMAT, "kind": KIND, "class_names": list(records[0].classes), "preprocessing": outer.to_dict(), "summary": summary,
        "members": [
            {"run_id": r.files.root.name, "run_dir": str(r.files.root), "backbone": m.spec.name, "data_dir": r.data_dir,
             "preprocessing": m.pre.to_dict(), "temperature": m.temperature}
            for r, m in zip(records, models)
        ],
        "torch": torch.__version__, "temperature": 1.0, "not_sure_below": 0.0,
    }
