"""Knowledge distillation ("make it smaller"): a student learns a finished run's softened outputs and the labels.

The loss is Hinton et al. (2015)'s: ``(1 - a) CE(labels) + a T^2 KL(softmax(teacher / T) || softmax(student / T))``,
where CE is the run's own label loss (its class weighting included) and ``T^2`` keeps the soft part's gradients
on the scale of the hard part's whatever T is. T and a are ``TrainConfig`` settings with defaults from the
literature (``config.DISTILL_TEMPERATURE``, ``config.DISTILL_WEIGHT``), never tuned on validation pictures.

The teacher runs once, before training, on the evaluation crop of every picture the student trains on, with its
own preprocessing (its input size, mean and std); its logits are kept in the project cache, keyed by the teacher's
weights and the pictures. The student's feed then hands each batch its rows' teacher logits
(``feeds.Loop.use_teacher``), so a distilled run is a normal run of the one training loop (``engine.fit``).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from tlstudio.core import atomic
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.augment import Augmenter, normalize_batch
from tlstudio.core.data.index import DatasetIndex
from tlstudio.core.data.pixel_store import build_pixel_store
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, Message, PhaseStarted, Progress, StopToken
from tlstudio.core.inference.batches import batched_outputs
from tlstudio.core.inference.trained_model import TrainedModel, load_trained_model
from tlstudio.core.runs.files import RunFiles

TEACHER_BATCH = 32
CACHE_VERSION = 1


@dataclass(frozen=True)
class Distillation:
    """The soft part of the loss: its temperature and its weight ``a`` (``1 - a`` goes to the labels)."""

    temperature: float
    weight: float


def distillation_loss(hard_loss: nn.Module, logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor, d: Distillation) -> torch.Tensor:
    """``(1 - a) hard_loss(logits, labels) + a T^2 KL(softmax(teacher / T) || softmax(logits / T))``, KL averaged over the batch."""
    t = d.temperature
    hard = hard_loss(logits, labels)
    soft = F.kl_div(F.log_softmax(logits / t, dim=1), F.log_softmax(teacher_logits.float() / t, dim=1), reduction="batchmean", log_target=True)
    return (1.0 - d.weight) * hard + d.weight * t * t * soft


@dataclass
class Teacher:
    """A finished run the student learns from, rebuilt on the CPU from its best checkpoint (``load_trained_model``)."""

    run_dir: Path
    trained: TrainedModel
    weights_key: str  # what the teacher's weights are, for the cache key of its logits
    val_accuracy: Optional[float]
    training_digests: frozenset  # the pictures the teacher trained on (its dataset.json), by content digest

    @property
    def backbone(self) -> str:
        return self.trained.spec.name

    def record(self, d: Distillation, pictures: int, saw_validation: int, from_cache: bool) -> dict:
        """What the student's summary says about its teacher."""
        return {
            "run_dir": str(self.run_dir), "run_id": self.run_dir.name, "backbone": self.backbone, "val_accuracy": self.val_accuracy,
            "temperature": d.temperature, "weight": d.weight, "pictures": pictures, "validation_pictures_it_trained_on": saw_validation,
            "outputs_from_cache": from_cache,
        }


def read_teacher(cfg: TrainConfig, classes: Sequence[str]) -> Teacher:
    """The run ``cfg.teacher``; refused when it is not a finished run or its classes are not the student's."""
    run_dir = Path(cfg.teacher)
    if not run_dir.is_dir():
        raise UserError(f"--teacher '{cfg.teacher}' is not a folder. Give the folder of a finished run (runs/<id> in a project, or a 'tlstudio train --out' folder).")
    trained = load_trained_model(run_dir)
    if list(trained.classes) != list(classes):
        raise UserError(
            f"--teacher '{cfg.teacher}' knows the classes {', '.join(trained.classes)}, but the student's pictures have {', '.join(classes)}. "
            "Choose a teacher trained on the same classes (same folder names)."
        )
    files = RunFiles(run_dir)
    summary = files.read_json(files.summary, {}) or {}
    dataset = files.read_json(files.dataset, None)
    trained_on = frozenset(s.get("digest") for s in (dataset or {}).get("samples", []) if s.get("split") == "train")
    best = files.best.stat()
    weights_key = f"{run_dir.resolve()}:{best.st_size}:{best.st_mtime_ns}"
    return Teacher(run_dir, trained, weights_key, summary.get("val_accuracy"), trained_on)


def teacher_saw(teacher: Teacher, index: DatasetIndex, val_rows: Sequence[int]) -> int:
    """How many of the student's validation pictures the teacher trained on (0 when they share a split)."""
    return sum(1 for r in val_rows if index.samples[r].digest in teacher.training_digests)


def teacher_logits(teacher: Teacher, index: DatasetIndex, rows: Sequence[int], device: torch.device, amp: Optional[torch.dtype],
                   cache_dir: Optional[Path], emit: EventCallback, stop: StopToken) -> tuple[np.ndarray, bool]:
    """The teacher's logits (float32, ``len(rows)`` x classes) on each row's evaluation crop, and whether they came from the cache."""
    samples = [index.samples[r] for r in rows]
    key = _cache_key(teacher, [s.digest for s in samples])
    path = Path(cache_dir) / "teacher" / f"{key}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        cached = np.load(path, allow_pickle=False)
        if cached.shape == (len(rows), len(teacher.trained.classes)):
            emit(Message("Reused the teacher's outputs from an earlier run's cache."))
            return cached, True
    # Every picture, as the teacher's own run decoded them: in a project its decoded store is reused from the cache.
    store = build_pixel_store(index.root, index.samples, teacher.trained.pre.resize_size, cache_dir, emit, stop)
    logits = _run_teacher(teacher.trained, store, list(rows), device, amp, emit, stop)
    if path is not None:
        atomic.write_buffered(path, lambda buf: np.save(buf, logits, allow_pickle=False))
    return logits, False


def _cache_key(teacher: Teacher, digests: Sequence[str]) -> str:
    h = hashlib.sha256(f"{CACHE_VERSION}|{teacher.weights_key}|{teacher.trained.pre.to_dict()}".encode())
    for d in digests:
        h.update(d.encode())
    return h.hexdigest()[:32]


def _run_teacher(trained: TrainedModel, store, rows: list[int], device: torch.device, amp, emit: EventCallback, stop: StopToken) -> np.ndarray:
    pre, count = trained.pre, len(rows)
    view = Augmenter("none", pre.input_size, pre.interpolation)
    channels_last = trained.spec.is_cnn
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # the student's random draws stay as without a teacher
        model = trained.model.to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)

        def batch(span: range) -> torch.Tensor:
            x = torch.stack([view.eval_view(store[rows[i]]) for i in span]).to(device)
            return normalize_batch(x, pre.mean, pre.std, channels_last)

        emit(PhaseStarted("running the teacher", count))
        out = []
        for logits, span in batched_outputs(model, count, TEACHER_BATCH, batch, device, amp, stop):
            out.append(logits.float().cpu().numpy())
            emit(Progress(span.stop, count, "pictures"))
        trained.model.to("cpu")
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, len(trained.classes)), np.float32)


def attach_teacher(teacher: Teacher, ctx, loop, index: DatasetIndex, fit_rows: Sequence[int], val_rows: Sequence[int],
                   cache_dir: Optional[Path], emit: EventCallback, stop: StopToken, run_teacher: bool = True) -> dict:
    """Give ``loop`` the teacher's logits of the rows it trains on and ``ctx`` the distillation loss; the summary's record.

    ``run_teacher`` False (evaluating a run again, no training): only the record."""
    cfg = ctx.cfg
    d = Distillation(cfg.distill_temperature, cfg.distill_weight)
    saw, from_cache = teacher_saw(teacher, index, val_rows), False
    if run_teacher:
        logits, from_cache = teacher_logits(teacher, index, fit_rows, ctx.device, ctx.amp, cache_dir, emit, stop)
        loop.use_teacher(dict(zip(fit_rows, logits)))
        ctx.distill = d
        emit(Message(
            f"The student learns from the teacher '{teacher.run_dir.name}' ({teacher.backbone}): its outputs softened at temperature "
            f"{d.temperature:g} weigh {d.weight:g}, the labels {1 - d.weight:g}."
        ))
    if saw:
        emit(Message(
            f"The teacher trained on {saw} of the {len(val_rows)} validation pictures: the student's validation figures are optimistic. "
            "Train the student on the teacher's split (same data folder, split and seed).", "warning",
        ))
    return teacher.record(d, len(fit_rows), saw, from_cache)


# ------------------------------------------------------------------ for the GUI and the CLI

def distill_config(base: TrainConfig, teacher_run: str | Path, student_backbone: str, freeze_depth: str) -> TrainConfig:
    """The student's settings: ``base`` with the teacher, the student backbone and freeze depth, on the teacher's
    pictures and split (its data folder, split fractions and seed), so both are measured on the same validation pictures."""
    from dataclasses import replace

    from tlstudio.core.runs.files import read_config

    files = RunFiles(teacher_run)
    if not files.config.is_file():
        raise UserError(f"'{teacher_run}' is not a training run: it has no config.json. Choose the folder of a finished run.")
    teacher_cfg = read_config(files.config)
    return replace(
        base, teacher=str(teacher_run), backbone=student_backbone, freeze_depth=str(freeze_depth), start_from="", pretrained=True,
        data_dir=teacher_cfg.data_dir or base.data_dir, val_split=teacher_cfg.val_split, test_split=teacher_cfg.test_split, seed=teacher_cfg.seed,
    ).validate()


@dataclass(frozen=True)
class ModelFigures:
    """One arm of the comparison, on the validation pictures."""

    name: str
    run_dir: str
    backbone: str
    accuracy: float
    balanced_accuracy: float
    params: int
    megabytes: float  # float32 weights
    images_per_s: float  # evaluation on this machine's CPU, measured in one process with the other arms


@dataclass(frozen=True)
class DistillReport:
    student: ModelFigures
    teacher: ModelFigures
    alone: Optional[ModelFigures] = None  # the same student trained on the labels only
    same_validation: bool = True  # every arm was measured on the same validation pictures

    @property
    def speedup(self) -> float:
        return self.student.images_per_s / max(1e-9, self.teacher.images_per_s)

    def to_dict(self) -> dict:
        return {**asdict(self), "speedup": self.speedup}


def compare_distillation(student_run: str | Path, teacher_run: str | Path, alone_run: Optional[str | Path] = None,
                         batch: int = 16, repeats: int = 5, stop: Optional[StopToken] = None) -> DistillReport:
    """Accuracy, size and speed of the student, the teacher and (when given) the student trained alone.

    Images/s is the CPU evaluation of a batch at each model's input size, the arms timed in turns in this process,
    each at its fastest of ``repeats`` batches (on a shared computer the slower ones measure the other work)."""
    from tlstudio.core.events import as_token

    stop = as_token(stop)
    arms = [("student", student_run), ("teacher", teacher_run)] + ([("alone", alone_run)] if alone_run is not None else [])
    models = {name: load_trained_model(run) for name, run in arms}
    speeds = _images_per_s(models, batch, repeats, stop)
    figures, vals = {}, []
    for name, run in arms:
        files = RunFiles(run)
        metrics = files.read_json(files.metrics, None)
        if not metrics:
            raise UserError(f"'{run}' has no metrics.json: it did not finish. Choose a finished run.")
        dataset = files.read_json(files.dataset, {}) or {}
        vals.append(sorted(s.get("digest") for s in dataset.get("samples", []) if s.get("split") == "val"))
        model = models[name].model
        params = sum(p.numel() for p in model.parameters())
        megabytes = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6
        figures[name] = ModelFigures(name, str(run), models[name].spec.name, float(metrics["accuracy"]), float(metrics["balanced_accuracy"]),
                                     int(params), round(megabytes, 2), round(speeds[name], 1))
    return DistillReport(figures["student"], figures["teacher"], figures.get("alone"), all(v == vals[0] for v in vals))


def _images_per_s(models: dict, batch: int, repeats: int, stop: StopToken) -> dict:
    import time

    inputs, seconds = {}, {name: float("inf") for name in models}
    for name, m in models.items():
        size = m.pre.input_size
        memory = torch.channels_last if m.spec.is_cnn else torch.contiguous_format
        m.model.to(memory_format=memory)
        inputs[name] = torch.rand(batch, 3, size, size).contiguous(memory_format=memory)
        with torch.inference_mode():
            m.model(inputs[name])  # warm-up: allocations and kernel choices
    for _ in range(repeats):  # in turns, so a change of the machine's load falls on every arm alike
        for name, m in models.items():
            stop.check()
            with torch.inference_mode():
                t0 = time.perf_counter()
                m.model(inputs[name])
                seconds[name] = min(seconds[name], time.perf_counter() - t0)
    return {name: batch / max(1e-9, s) for name, s in seconds.items()}
