"""Adapt a finished run to new, unlabelled pictures: ``adapt_run(run_dir, target_dir, dest_dir, method=...)``.

The source run is left as it is. The adapted run is a new run folder: the source's config.json and
dataset.json, the adapted weights in checkpoints/best.pt, its metrics on the source's validation
pictures, summary.json with ``summary["adaptation"]`` (method, new pictures folder and count, the domain
gap before and after, source validation accuracy before and after) and a model.pt verified in a fresh
process like every export, so ``tlstudio predict`` and the Export step use it as any run.

Methods (settings fixed, never tuned on labels of new pictures):

- ``adabn``: BatchNorm statistics re-estimated on the run's training pictures and the new pictures
  together (``adabn``: pooled, equal numbers), then the head refitted on the training pictures'
  features through the adapted backbone;
- ``coral``: the training pictures' features aligned to the new pictures' (``coral``), and the head
  fitted on the features and their aligned copies together (each aligned copy one more view of its
  picture): one head for both domains (the default);
- ``adabn+coral``: both, CORAL on the adapted backbone's features.

The default is ``coral``: it leaves the backbone as it is, so the source pictures' features do not move.

Every head is fitted by the run's own solver (``linear_head.fit_linear_head``: cross-validation on the
training pictures only, the run's class weighting and selection metric), its temperature fitted on the
out-of-fold probabilities, as training does.
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tlstudio.core.adapt import adabn, coral
from tlstudio.core.adapt.domain_gap import DomainGap, domain_gap
from tlstudio.core.adapt.embedding import Embedder, weights_id
from tlstudio.core.adapt.export_kept import write_verified
from tlstudio.core.adapt.pictures import Pictures, read_labelled_pictures, read_new_pictures
from tlstudio.core.catalog.checksum import state_digest
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.index import DatasetIndex
from tlstudio.core.data.pixel_store import PixelStore, build_pixel_store
from tlstudio.core.engine import calibration
from tlstudio.core.engine.checkpoint import FORMAT, cpu_state
from tlstudio.core.engine.device import autocast_dtype, resolve_device
from tlstudio.core.engine.linear_head import LinearHead, fit_linear_head
from tlstudio.core.engine.trainer import VERIFY_IMAGES, refuse_non_finite_features
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, Finished, Message, PhaseStarted, Progress, StopToken, as_token, failures_reported, ignore_events
from tlstudio.core.inference import formats
from tlstudio.core.inference.trained_model import TrainedModel, load_trained_model
from tlstudio.core.names import printable
from tlstudio.core.report.metrics import accuracy_scores, classification_metrics
from tlstudio.core.runs.files import FINISHED, PLAIN_READERS, RunFiles, RunStatus

ADABN, CORAL, BOTH = "adabn", "coral", "adabn+coral"
METHODS = (ADABN, CORAL, BOTH)
DEFAULT_METHOD = CORAL  # fixed on generated data before any measurement on the shared sets (AdaBN lost source accuracy there)
POOLED = "pooled: the run's training pictures and the new pictures, equal numbers"
UNCHANGED = "unchanged: the source run's"
# Below this domain classifier accuracy the two domains look alike and the model is kept as it is: estimates from a
# few new pictures only add noise then. Chosen AFTER seeing the hymenoptera seed-0 no-shift benchmark row (both methods lost points): not pre-registered.
GAP_TO_ADAPT = 0.6


@dataclass(frozen=True)
class Measures:
    """One model (before or after adaptation), measured."""

    source_val_accuracy: float
    source_val_balanced_accuracy: float
    gap: DomainGap  # after CORAL: between the aligned training features (what the head learnt) and the new pictures'
    labelled_accuracy: Optional[float] = None  # on the optional labelled new pictures
    labelled_balanced_accuracy: Optional[float] = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AdaptResult:
    run_dir: Path  # the new, adapted run folder
    source_run: Path
    method: str
    target_dir: Path
    pictures: int  # new pictures used
    skipped: int  # new pictures that could not be read
    batchnorm: str  # which BatchNorm statistics the adapted model carries
    before: Measures
    after: Measures
    labelled_pictures: int = 0
    applied: bool = True  # False: the domains looked alike (``GAP_TO_ADAPT``), the model was kept as it is
    export: Optional[dict] = None  # the verified model.pt's report (None: not exported)
    summary: Optional[dict] = None


@dataclass
class _Source:
    files: RunFiles
    trained: TrainedModel
    summary: dict
    index: DatasetIndex
    train_rows: list[int]
    val_rows: list[int]

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.index.samples], dtype=np.int64)


def check_method(method: str) -> str:
    if method not in METHODS:
        raise UserError(f"--method must be one of {', '.join(METHODS)}, not '{printable(method)}'.")
    return method


def _read_source(run_dir: str | Path) -> tuple[_Source, TrainConfig]:
    files = RunFiles(run_dir)
    trained = load_trained_model(run_dir)  # refuses a folder that is no run, or has no kept model
    status = files.read_status()
    if status is None or status.state != FINISHED:
        state = status.state if status is not None else "without a status"
        raise UserError(f"'{printable(files.root)}' is a run that is {state}, not finished: finish it first (resume or evaluate it), then adapt it.")
    parts = files.read_parts({"config": PLAIN_READERS["config"], "dataset": PLAIN_READERS["dataset"], "summary": PLAIN_READERS["summary"]})
    if "dataset" not in parts.values:
        raise UserError(f"'{printable(files.root)}' has no readable dataset.json, so its training pictures are unknown. Train the run again.")
    config = TrainConfig.from_dict(parts.values["config"])
    index = DatasetIndex.from_dict(parts.values["dataset"])
    rows = {split: [i for i, s in enumerate(index.samples) if s.split == split] for split in ("train", "val")}
    return _Source(files, trained, parts.values.get("summary") or {}, index, rows["train"], rows["val"]), config


def _check_dest(dest_dir: str | Path, source: Path) -> Path:
    dest = Path(dest_dir)
    if dest.resolve() == source.resolve():
        raise UserError(f"--out '{printable(dest)}' is the source run itself: the adapted run goes to a new folder. Choose another --out.")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"--out '{printable(dest)}' exists and is not an empty folder: choose a new folder for the adapted run.")
    return dest


def _head_of(model) -> tuple[np.ndarray, np.ndarray]:
    linear = model.head[-1]
    return linear.weight.detach().cpu().numpy().astype(np.float32), linear.bias.detach().cpu().numpy().astype(np.float32)


def _logits(features: np.ndarray, head: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return np.asarray(features, dtype=np.float32) @ head[0].T + head[1]


def _scores(features: np.ndarray, labels: np.ndarray, head) -> tuple[float, float]:
    return accuracy_scores(labels, _logits(features, head).argmax(1))


class _Adaptation:
    """One adaptation's state: the source, the new pictures, the device; ``run`` does the work."""

    def __init__(self, source: _Source, config, target: Pictures, labelled: Optional[Pictures], method: str, embedder: Embedder, store: PixelStore):
        self.source, self.config, self.target, self.labelled, self.method = source, config, target, labelled, method
        self.embedder, self.store = embedder, store
        self.model = source.trained.model
        self.emit, self.stop = embedder.on_event, embedder.stop
        self.min_gap = GAP_TO_ADAPT

    def _labelled_features(self, backbone, target_features: np.ndarray) -> Optional[np.ndarray]:
        if self.labelled is None:
            return None
        if self.labelled.paths == self.target.paths:
            return target_features  # the same pictures: their labels are only read to measure
        return self.embedder.squares(backbone, self.labelled.squares, "embedding labelled new pictures")

    def _measure(self, val: np.ndarray, source_train: np.ndarray, target: np.ndarray, labelled: Optional[np.ndarray], head) -> Measures:
        src = self.source
        self.emit(PhaseStarted("measuring the domain gap", 0))
        acc, bal = _scores(val, src.labels[src.val_rows], head)
        gap = domain_gap(source_train, target, seed=self.config.seed, stop=self.stop)
        lab = _scores(labelled, self.labelled.labels, head) if labelled is not None else (None, None)
        return Measures(acc, bal, gap, *lab)

    def _features(self, backbone) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
        """(training views, validation crops, new pictures' crops) through ``backbone``."""
        src = self.source
        wid = weights_id(self.config, src.trained.spec, backbone, bool(src.summary.get("pretrained", self.config.pretrained)))
        if backbone is not self.model.backbone:
            wid = f"adabn:{state_digest(backbone.state_dict())}"
        feats = self.embedder.run_features(backbone, wid, self.store, src.train_rows, src.val_rows)
        target = self.embedder.squares(backbone, self.target.squares)
        return [np.asarray(v, dtype=np.float32) for v in feats.train], np.asarray(feats.val, dtype=np.float32), target

    def _adapted_backbone(self):
        """A copy of the backbone with BatchNorm statistics pooled over training and new pictures."""
        src, emb = self.source, self.embedder
        backbone = copy.deepcopy(self.model.backbone)
        s_rows, t_rows = adabn.pooled_order(len(src.train_rows), len(self.target), self.config.seed)
        self.emit(PhaseStarted("re-estimating BatchNorm statistics", 2 * len(s_rows)))
        seen = [0]

        def on_batch(n: int) -> None:
            seen[0] += n
            self.emit(Progress(seen[0], 2 * len(s_rows)))

        batches = adabn.pooled_batches(lambda i: emb.eval_view(self.store[src.train_rows[i]]), lambda i: emb.eval_view(self.target.squares[i]),
                                       s_rows, t_rows, emb.prepare)
        adabn.reestimate_batchnorm(backbone, batches, self.stop, on_batch)
        return backbone

    def _fit_head(self, views: list[np.ndarray]) -> LinearHead:
        src, cfg = self.source, self.config
        refuse_non_finite_features(views, cfg.backbone)
        self.emit(PhaseStarted("fitting the head", 0))
        rows = src.train_rows
        return fit_linear_head(
            views, src.labels[rows], [src.index.samples[r].digest for r in rows], len(src.trained.classes), class_weights=cfg.class_weights,
            metric=cfg.selection_metric, seed=cfg.seed, device=self.embedder.device, stop=self.stop,
            on_progress=lambda done, total: self.emit(Progress(done, total, "fits")),
        )

    def run(self):
        before_head = _head_of(self.model)
        views, val, target = self._features(self.model.backbone)
        before = self._measure(val, views[0], target, self._labelled_features(self.model.backbone, target), before_head)
        backbone = self.model.backbone
        if before.gap.classifier_accuracy < self.min_gap:
            self.emit(Message(f"The new pictures look like the training pictures ({before.gap.describe()}): the model is kept as it is.", "info"))
            return backbone, None, val, before, before
        if self.method in (ADABN, BOTH):
            backbone = self._adapted_backbone()
            views, val, target = self._features(backbone)
        head_views, gap_source = views, views[0]
        if self.method in (CORAL, BOTH):
            self.emit(PhaseStarted("aligning features", 0))
            mapping = coral.fit_coral(views[0], target)
            aligned = [mapping.apply(v) for v in views]
            head_views, gap_source = views + aligned, aligned[0]
        head = self._fit_head(head_views)
        after = self._measure(val, gap_source, target, self._labelled_features(backbone, target), (head.weight, head.bias))
        return backbone, head, val, before, after


def _adapted_model(trained: TrainedModel, backbone, head: Optional[LinearHead]):
    model = copy.deepcopy(trained.model)
    if head is None:
        return model.cpu().float().eval().to(memory_format=torch.contiguous_format)
    model.backbone = copy.deepcopy(backbone).cpu().float()
    head.load_into(model.head[-1])
    return model.cpu().float().eval().to(memory_format=torch.contiguous_format)


def _calibration(source: _Source, head: LinearHead, val_logits: np.ndarray) -> calibration.Calibration:
    earlier = calibration.read_calibration(source.summary)
    return calibration.calibrate(
        calibration.logits_of(head.oof_probs), source.labels[source.train_rows], "cross-validation (out-of-fold)",
        val_logits, source.labels[source.val_rows], earlier.threshold if earlier is not None else 0.0,
    )


def _export(dest: Path, network, source: _Source, store: PixelStore, val_probs: np.ndarray, summary: dict, emit: EventCallback, stop: StopToken) -> dict:
    """model.pt of the adapted model, kept only once a fresh process agreed with it (as training's export)."""
    fmt = formats.FORMATS[formats.TORCHSCRIPT]
    held = list(range(min(VERIFY_IMAGES, len(source.val_rows))))
    emit(PhaseStarted("exporting", len(held)))
    images = [np.asarray(store[source.val_rows[i]]) for i in held]
    return write_verified(fmt, network, source.trained, summary, dest, images, val_probs[held], emit, stop)


def _summary(source: _Source, result: AdaptResult, head: Optional[LinearHead], val_logits: np.ndarray) -> dict:
    summary = {k: v for k, v in source.summary.items() if k not in (fmt.summary_key for fmt in formats.FORMATS.values())}
    summary.update(val_accuracy=result.after.source_val_accuracy, val_balanced_accuracy=result.after.source_val_balanced_accuracy)
    if head is not None:
        summary.update(head_fit=head.to_summary(), class_weighting=head.weighting, calibration=_calibration(source, head, val_logits).to_dict())
    elif "calibration" not in summary:
        summary["calibration"] = {"temperature": source.trained.temperature}
    summary["adaptation"] = {
        "method": result.method, "applied": result.applied, "source_run": str(result.source_run), "target_dir": str(result.target_dir), "pictures": result.pictures,
        "skipped": result.skipped, "batchnorm": result.batchnorm, "coral_shrinkage": coral.SHRINKAGE if result.method != ADABN else None,
        "before": result.before.to_dict(), "after": result.after.to_dict(), "labelled_pictures": result.labelled_pictures,
    }
    return summary


def _write_run(dest: Path, source: _Source, model, val_logits: np.ndarray, summary: dict, export: bool, store, emit, stop) -> Optional[dict]:
    files = RunFiles(dest)
    with files.lock():
        files.checkpoints.mkdir(parents=True, exist_ok=True)
        files.write_json(files.config, source.files.read_json(source.files.config))
        files.write_json(files.dataset, source.index.to_dict())
        files.write_history(source.files.read_history())
        config = source.files.read_json(source.files.config)
        files.save_checkpoint(files.best, {"format": FORMAT, "epoch": 1, "model": cpu_state(model), "config": config, "classes": source.trained.classes})
        val_labels = source.labels[source.val_rows]
        files.write_json(files.metrics, classification_metrics(val_labels, val_logits.argmax(1), source.trained.classes))
        probs = calibration.scaled_probs(val_logits, summary["calibration"]["temperature"]).astype(np.float32)
        report = _export(dest, model, source, store, probs, summary, emit, stop) if export else None
        if report is not None:
            summary[formats.FORMATS[formats.TORCHSCRIPT].summary_key] = report
        files.write_json(files.summary, summary)
        files.write_status(RunStatus(FINISHED, 1, 1, "adapted to new pictures"))
    return report


def _remove_written(dest: Path, created: bool) -> None:
    """A failed or stopped adaptation leaves no half run: the folder was new or empty, so all in it is ours."""
    if created:
        shutil.rmtree(dest, ignore_errors=True)
    elif dest.is_dir():
        for child in dest.iterdir():
            shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)


def adapt_run(
    run_dir: str | Path,
    target_dir: str | Path,
    dest_dir: str | Path,
    method: str = DEFAULT_METHOD,
    labelled_dir: Optional[str | Path] = None,
    cache_dir: Optional[str | Path] = None,
    on_event: EventCallback = ignore_events,
    stop: Optional[StopToken] = None,
    export: bool = True,
    device: str = "auto",
    min_gap: float = GAP_TO_ADAPT,
) -> AdaptResult:
    """Adapt the finished run in ``run_dir`` to the unlabelled pictures under ``target_dir``; the adapted run goes to ``dest_dir``.

    ``labelled_dir`` (optional, one sub-folder per class) is only measured on, before and after. When the domain
    classifier cannot tell the pictures apart (below ``min_gap``), the adapted run keeps the source model. Emits
    Finished (or Failed, re-raised); a stop raises ``Cancelled`` and leaves no adapted run behind."""
    stop = as_token(stop)
    with failures_reported(on_event):
        return _adapt(run_dir, target_dir, dest_dir, check_method(method), labelled_dir, cache_dir, on_event, stop, export, device, min_gap)


def _adapt(run_dir, target_dir, dest_dir, method, labelled_dir, cache_dir, on_event, stop, export, device_name, min_gap) -> AdaptResult:
    source, config = _read_source(run_dir)
    dest = _check_dest(dest_dir, source.files.root)
    pre, spec = source.trained.pre, source.trained.spec
    target = read_new_pictures(target_dir, pre.resize_size, config.seed, on_event, stop)
    labelled = read_labelled_pictures(labelled_dir, source.trained.classes, pre.resize_size, on_event, stop) if labelled_dir else None
    if target.skipped:
        on_event(Message(f"{len(target.skipped)} of the new pictures could not be read and were skipped.", "warning"))
    device = resolve_device(device_name)
    amp = autocast_dtype(device, config.precision)
    store = build_pixel_store(source.index.root, source.index.samples, pre.resize_size, cache_dir, on_event, stop)
    source.trained.model.to(device)
    if spec.is_cnn:
        source.trained.model.to(memory_format=torch.channels_last)
    embedder = Embedder(config, spec.name, pre, device, amp, spec.is_cnn, Path(cache_dir) if cache_dir else None, on_event, stop)
    adaptation = _Adaptation(source, config, target, labelled, method, embedder, store)
    adaptation.min_gap = min_gap
    backbone, head, val, before, after = adaptation.run()
    applied = head is not None
    result = AdaptResult(
        dest, source.files.root.resolve(), method, target.folder.resolve(), len(target), len(target.skipped),
        POOLED if applied and method != CORAL else UNCHANGED, before, after, len(labelled) if labelled is not None else 0, applied,
    )
    val_logits = _logits(val, (head.weight, head.bias) if applied else _head_of(source.trained.model))
    summary = _summary(source, result, head, val_logits)
    model = _adapted_model(source.trained, backbone, head)
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        result.export = _write_run(dest, source, model, val_logits, summary, export, store, on_event, stop)
    except BaseException:
        _remove_written(dest, created)
        raise
    result.summary = summary
    on_event(Finished(summary))
    return result
