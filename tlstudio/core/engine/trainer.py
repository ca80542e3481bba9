"""The training engine: ``Trainer(config, out_dir).run(on_event, stop)``, and ``Trainer.resume(run_dir)``.

A run is plan -> feed -> fit -> run folder: ``engine.plan`` decides everything first,
``engine.feeds`` makes the batches (images, or cached outputs of frozen layers),
``engine.fit`` is the one gradient-descent loop with its callbacks, ``runs.files`` the folder,
locked for the run. It speaks only in events (``tlstudio.core.events``) and polls the stop
token every batch, so the CLI progress bar, the GUI worker and the tests are all plain listeners.

Phases: scanning -> decoding (decode-once pixel store) -> caching features (what
frozen layers compute: a frozen backbone's features, or a partly frozen one's prefix
output) -> fitting the head (solved on frozen features) -> training -> evaluating ->
exporting (TorchScript, verified in a fresh process).

``config.pretrained`` picks the initialisation: the ImageNet weights, or a random one
seeded by ``config.seed`` (the from-scratch baseline, see ``tlstudio.core.runs.baseline``).
Feature caches are keyed by the initialisation, and a random backbone never warm-starts
the head (its features say nothing yet) and always re-estimates BatchNorm statistics
(it has no ImageNet statistics to keep).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.engine.batch_size import choose_batch_size
from tlstudio.core.catalog.classifier import Classifier
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.index import DatasetIndex
from tlstudio.core import distributed
from tlstudio.core.engine.device import autocast_dtype, describe_device, embedding_batch, precision_name, resolve_device
from tlstudio.core.disk import DiskError
from tlstudio.core.errors import UserError
from tlstudio.core.events import (
    Cancelled,
    EpochEnded,
    EventCallback,
    failures_reported,
    Finished,
    Message,
    PhaseStarted,
    Progress,
    StopToken,
    as_token,
    ignore_events,
)
from tlstudio.core.engine.features import FeatureRequest, cached_features
from tlstudio.core.catalog.frozen_prefix import run_chain, split_chain
from tlstudio.core.engine.class_balance import rule_weighting, training_loss
from tlstudio.core.report.fit_report import Selection, diagnose
from tlstudio.core.engine.linear_head import LinearHead, fit_linear_head
from tlstudio.core.report.metrics import classification_metrics
from tlstudio.core.data.pixel_store import build_pixel_store
from tlstudio.core.data.preprocess import preprocessing_for
from tlstudio.core.engine.callbacks import Checkpointing, EarlyStopping, HistoryLog, KeepBest, NonFiniteGuard, ProgressReport, default_patience
from tlstudio.core.engine.checkpoint import best_checkpoint, cpu_state, restore_training, resumable, training_checkpoint
from tlstudio.core.engine.fit import FitState, Optimisation, fit
from tlstudio.core.engine.plan import FEATURES, PREFIX, PlanMade, RunPlan, plan_messages, plan_run
from tlstudio.core.runs.files import FAILED, FINISHED, PLAIN_READERS, RUNNING, STOPPED, ReadingRunFiles, RunFiles, RunStatus, first_missing, read_config, remove_if_only
from tlstudio.core.runs.lock import LOCK_NAME, remove_stale_temporaries
from tlstudio.core.engine.selection import SelectionSplit, selection_split
from tlstudio.core.engine import calibration
from tlstudio.core.engine import distill
from tlstudio.core.catalog.checksum import state_digest
from tlstudio.core.engine.feeds import CachedLoop, ImageLoop, Loop, LoopContext
from tlstudio.core.inference import formats

VERIFY_IMAGES = 200  # held images the exported file must agree on


@dataclass
class TrainResult:
    run_dir: Path
    cancelled: bool = False
    summary: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    plan: Optional[RunPlan] = None


def warmup_cosine(total_steps: int, warmup_steps: int, floor: float = 0.01) -> Callable[[int], float]:
    """LR multiplier: linear warm-up to 1, then cosine decay to ``floor``."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return floor + (1 - floor) * (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def param_groups(model: Classifier, lr: float, backbone_scale: float, weight_decay: float, head_converged: bool = False) -> list[dict]:
    """Head at ``lr``, trainable backbone stages at ``lr * backbone_scale``; no weight decay on biases and norms.

    A head already solved to convergence on frozen features (LP-FT) trains at the backbone's rate too:
    Adam moves every weight by about the learning rate per step whatever its gradient, and at the
    head's full rate the first steps would undo the solved head before the backbone has moved.
    """
    groups = []
    head_lr = lr * backbone_scale if head_converged else lr
    for module, group_lr in ((model.head, head_lr), (model.backbone, lr * backbone_scale)):
        decay = [p for p in module.parameters() if p.requires_grad and p.ndim > 1]
        no_decay = [p for p in module.parameters() if p.requires_grad and p.ndim <= 1]
        if decay:
            groups.append({"params": decay, "lr": group_lr, "weight_decay": weight_decay})
        if no_decay:
            groups.append({"params": no_decay, "lr": group_lr, "weight_decay": 0.0})
    return groups


class Trainer:
    def __init__(
        self,
        config: TrainConfig,
        out_dir: str | Path,
        cache_dir: Optional[str | Path] = None,
        index: Optional[DatasetIndex] = None,
        pretrained: Optional[bool] = None,
        state_dict_loader=None,
        resume: bool = False,
        evaluate_only: bool = False,
        ranks: distributed.Ranks = distributed.SINGLE,
    ):
        """``pretrained`` overrides ``config.pretrained`` (None: follow the config). Tests pass False to use
        random weights with any freeze depth and never touch a weights file; the run's summary records what
        was really used.

        ``resume`` continues the run in ``out_dir`` from its last checkpoint (use ``Trainer.resume``);
        ``evaluate_only`` then trains no further and evaluates (and exports) the epoch kept so far.

        ``ranks``: this process's place in a run of several processes (torchrun, ``engine.distributed``).
        Every rank builds its share of the caches and trains on its share of each batch; only rank 0
        writes the run's files, fits a solved head, evaluates and exports."""
        self.config = config.validate()
        self.ranks = ranks
        self.files = RunFiles(out_dir) if ranks.is_main else ReadingRunFiles(out_dir)
        self.resuming, self.evaluate_only = resume, evaluate_only
        self.export = config.export
        self.export_format = formats.TORCHSCRIPT  # what training exports; 'tlstudio export --format' can ask for another
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.index = index
        self.pretrained = config.pretrained if pretrained is None else bool(pretrained)
        self.state_dict_loader = state_dict_loader
        self._emit: EventCallback = ignore_events
        self._stop = StopToken()
        self.plan: Optional[RunPlan] = None
        self.cache_reused = False  # the frozen layers' outputs came from an earlier run's cache
        self._weighting = "none"  # the class weighting the run trains with
        self._head_converged = False  # the head was solved on frozen features before the epochs
        # The frozen backbone's cached features of a run that used them (view 0 of the training rows is
        # their centre crop): benchmarks and tests fit independent reference probes on exactly these.
        self.features = None
        self._fit_state: Optional[FitState] = None
        self._last: Optional[dict] = None  # the checkpoint a resumed run continues from
        self._teacher, self._teacher_record = None, None  # the run a distilled student learns from (engine.distill)
        self._edit_record = None  # what the config's data_edits did to the pictures (quality.edits)
        self._index_is_the_runs = False  # ``index`` is the run's own dataset.json (a resume): its edits are applied
        self._status = RunStatus(RUNNING, 0, config.epochs)
        self._status_written = False  # nothing of this run is on disk yet (but the lock)
        self._batchnorm_frozen = False  # several processes on the CPU keep BatchNorm statistics as they are
        self._export_template: Optional[nn.Module] = None  # the network before SyncBatchNorm, which the export holds

    @classmethod
    def resume(
        cls, run_dir: str | Path, cache_dir: Optional[str | Path] = None, evaluate_only: bool = False, export: Optional[bool] = None,
        export_format: str = formats.TORCHSCRIPT, **kw
    ) -> "Trainer":
        """The run in ``run_dir``, to be continued with its own settings and pictures (its config.json and dataset.json)."""
        parts = RunFiles(run_dir).read_parts({"config": read_config, "dataset": PLAIN_READERS["dataset"]})
        if "config" not in parts.values:
            why = parts.problems.get("config", "it has no config.json")
            raise UserError(f"'{run_dir}' is not a tlstudio run folder ({why}). Give the folder a run wrote.")
        refuse_adapted(run_dir)
        dataset = parts.values.get("dataset")
        index = DatasetIndex.from_dict(dataset) if dataset is not None else None
        trainer = cls(parts.values["config"], run_dir, cache_dir, index=index, resume=True, evaluate_only=evaluate_only, **kw)
        trainer._index_is_the_runs = index is not None
        if export is not None:
            trainer.export = export
        trainer.export_format = formats.export_format(export_format).name
        return trainer

    # ----------------------------------------------------------------- entry point
    def run(self, on_event: EventCallback = ignore_events, stop: Optional[StopToken] = None) -> TrainResult:
        """Train, evaluate and export. Emits Finished (also when cancelled) or Failed; a Failed is re-raised.

        The run folder is locked for the whole run: a second writer is refused before it touches a file."""
        self._emit, self._stop = on_event, as_token(stop)
        created = first_missing(self.files.root)
        try:
            with failures_reported(on_event), self.files.lock() as lock:
                if lock is not None and lock.taken_over:
                    on_event(Message(f"Took over '{self.files.root}' from process {lock.taken_over.get('pid', '?')}, which ended without finishing."))
                result = self._run_locked()
        finally:
            if created is not None and not self._status_written and self.ranks.is_main:
                # Refused (or cut short by a full disk) before its files were complete: the run leaves nothing.
                remove_if_only(created, {self.files.root / LOCK_NAME, self.files.config, self.files.dataset})
        on_event(Finished(result.summary, cancelled=result.cancelled))
        return result

    def _run_locked(self) -> TrainResult:
        """The run, with its status on disk at every end: finished, stopped (resumable, evaluable) or failed."""
        if self.ranks.is_main:
            remove_stale_temporaries(self.files.root)
        started = time.perf_counter()
        self._begin_status()
        try:
            result = self._run()
        except (Cancelled, KeyboardInterrupt) as stop:
            done = self._fit_state.epoch if self._fit_state is not None else 0
            self._end_status(STOPPED, started, f"stopped after epoch {done} of {self.config.epochs}")
            if isinstance(stop, KeyboardInterrupt):
                raise  # Ctrl+C in a terminal: stopped like the Stop button, and the command says so
            return TrainResult(self.files.root, cancelled=True, summary={"cancelled": True, "epochs_completed": done})
        except BaseException as exc:
            self._end_status(FAILED, started, str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}")
            raise
        state = self._fit_state
        stopped = self.evaluate_only and state is not None and state.epoch < state.epochs and state.stop_reason is None
        self._end_status(STOPPED if stopped else FINISHED, started, result.summary.get("stopped_after") or "")
        return result

    def _begin_status(self) -> None:
        """The run's status, written with its first files (``_open_files``), once nothing refuses the run any more."""
        previous = self.files.read_status() if self.resuming else None
        if self.resuming and previous is not None and previous.state == FINISHED and not self.evaluate_only:
            raise UserError(f"'{self.files.root}' finished all its epochs; there is nothing to resume. Evaluate or export it instead.")
        status = previous or RunStatus(RUNNING, 0, self.config.epochs)
        if previous is not None:
            status.state, status.message, status.starts = RUNNING, "", previous.starts + 1
        self._status = status

    def _end_status(self, state: str, started: float, message: str) -> None:
        status = self._status
        status.state, status.message = state, message
        if self._fit_state is not None:
            status.epochs_completed = self._fit_state.epoch
            status.stopped_early = self._fit_state.stop_reason
        status.seconds = round(status.seconds + time.perf_counter() - started, 2)
        if not self._status_written:
            return  # refused before its first file: an earlier run's status there stays as it was
        try:
            self.files.write_status(status)
        except (OSError, DiskError):
            pass  # the run's own error (a full disk) is the one to report

    # ----------------------------------------------------------------- the phases
    def _run(self) -> TrainResult:
        started = time.perf_counter()
        earlier = self._earlier_exports()
        threshold = self._earlier_threshold()
        ctx, spec, index, rows = self._setup()
        train_rows, val_rows, test_rows = rows
        selection = selection_split(ctx.labels[train_rows], self._digests(index, train_rows), self.config.seed, self.config.selection_split)
        plan = self.plan = self._plan(ctx, spec, rows, selection)
        ctx.store = build_pixel_store(index.root, index.samples, ctx.pre.resize_size, self.cache_dir, self._emit, self._stop, workers=None, ranks=ctx.ranks)
        loop, head = self._loop(ctx, spec, index, train_rows, val_rows, selection, plan)
        if loop is None:
            return self._share_done()  # a frozen run's other ranks: their share of the features is cached
        if self._teacher is not None:
            self._teacher_record = distill.attach_teacher(self._teacher, ctx, loop, index, [train_rows[i] for i in selection.fit], val_rows,
                                                          self.cache_dir, self._emit, self._stop, run_teacher=not self.evaluate_only)
        if plan.solved_head:
            best_state, best_epoch, history = self._record_head_fit(ctx, loop, head, len(train_rows))
            chosen_on = Selection("cross-validation", self.config.selection_metric, ("class weighting", "L2 strength"), len(train_rows), folds=head.folds)
        else:
            state = self._fit(ctx, loop)
            if not ctx.ranks.is_main:
                return self._share_done()
            if state.best_state is None:
                raise UserError(f"'{self.files.root}' has no completed epoch to evaluate: resume it to train.")
            best_state, best_epoch, history = state.best_state, state.best_epoch, state.history
            chosen_on = self._fine_tune_selection(selection, head, [index.samples[train_rows[i]].path for i in selection.held])
        ctx.model.load_state_dict(best_state)
        self._fit_calibration(ctx, loop, head if plan.solved_head else None, selection, train_rows, threshold)
        metrics, val_probs = self._evaluate(ctx, loop, index, rows, best_epoch)
        summary = self._summary(ctx, spec, history, best_epoch, metrics, head, chosen_on, started)
        summary["calibration"] = self._calibration.to_dict()
        if self.export:
            summary[formats.export_format(self.export_format).summary_key] = self._export(ctx, val_rows, val_probs, summary)
        self._other_exports(summary, earlier)
        summary["seconds"] = round(time.perf_counter() - started, 2)
        self.files.write_json(self.files.summary, summary)
        return TrainResult(self.files.root, summary=summary, metrics=metrics, plan=plan)

    def _share_done(self) -> TrainResult:
        """What a rank other than 0 returns once its share of the work is done: rank 0 reports the run."""
        return TrainResult(self.files.root, summary={"rank": self.ranks.rank})

    def _setup(self) -> tuple[LoopContext, bb.BackboneSpec, DatasetIndex, tuple[list[int], list[int], list[int]]]:
        """Everything before the first choice: the folder, the decoded pixels, the model with its frozen stages, the device."""
        cfg, emit, stop = self.config, self._emit, self._stop
        torch.manual_seed(cfg.seed)
        device = resolve_device(distributed.rank_device(self.ranks, cfg.device))
        self.ranks = distributed.join(self.ranks, device)
        self._refuse_unshared_batchnorm(device)
        amp = autocast_dtype(device, cfg.precision)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
        spec = bb.get_backbone(cfg.backbone)
        depth = cfg.freeze.stages_of(spec)
        pre = preprocessing_for(spec, cfg.image_size)
        index = self._dataset()
        self._teacher = distill.read_teacher(cfg, index.classes) if cfg.teacher else None  # refused before any file is written
        rows = tuple([i for i, s in enumerate(index.samples) if s.split == split] for split in ("train", "val", "test"))
        if not rows[0] or not rows[1]:
            raise UserError(f"'{index.root}' needs images in both the training and the validation split; add images or change --val-split.")
        self._open_files(index)
        labels = np.array([s.label for s in index.samples], dtype=np.int64)
        model = self.build_model(len(index.classes))
        plan = bb.apply_freeze(model.backbone, depth, model.head)
        emit(Message(f"{spec.title}: {plan.describe()}."))
        model.to(device)
        channels_last = spec.is_cnn  # faster for CNNs on CUDA and, measured, on the CPU too (EfficientNet-Lite0: ~2x)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        batch_size = self._global_batch(cfg.batch_size or choose_batch_size(model, pre.input_size, len(index.classes), device, amp, channels_last, len(rows[0])))
        if self.ranks.active:
            emit(Message(f"{self.ranks.world} processes: each trains on {batch_size // self.ranks.world} pictures of every batch of {batch_size}, "
                         f"at the learning rate of the whole batch ({cfg.lr:g})."))
            if device.type == "cuda" and self.train_batchnorm:
                self._export_template = copy.deepcopy(model).cpu()  # what the export holds: plain BatchNorm layers
                model = distributed.synchronised_batchnorm(model)
        criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)  # replaced once the class weighting is chosen
        # The pixels are decoded after the plan (``_run``): its warnings reach the user before that time is spent.
        ctx = LoopContext(cfg, device, amp, channels_last, pre, None, labels, index.classes, model, plan, criterion, batch_size, stop, ranks=self.ranks)
        return ctx, spec, index, rows

    def _global_batch(self, batch_size: int) -> int:
        """The batch of one step over all processes; each takes an equal share. A chosen size must divide
        among them; the automatic one is one process's choice times the processes (rank 0's, so all agree)."""
        ranks = self.ranks
        if not ranks.active:
            return batch_size
        if self.config.batch_size == 0:
            return distributed.from_main(ranks, batch_size) * ranks.world
        if batch_size % ranks.world:
            raise UserError(
                f"--batch-size {batch_size} does not divide among {ranks.world} processes: each takes an equal share of "
                f"every batch. Give a multiple of {ranks.world} (for example {batch_size - batch_size % ranks.world or ranks.world})."
            )
        return batch_size

    def _refuse_unshared_batchnorm(self, device: torch.device) -> None:
        """BatchNorm statistics are synchronised over processes on CUDA only (SyncBatchNorm). On the CPU a run of several
        processes keeps them frozen, as a pretrained backbone does by default; one that must estimate them is refused."""
        if not (self.ranks.active and device.type == "cpu" and self.train_batchnorm):
            return
        if not self.pretrained:
            raise UserError(
                "a backbone trained from random weights estimates its BatchNorm statistics, which processes on the CPU cannot share: "
                "train it in one process (leave out --nproc) or on GPUs."
            )
        self._emit(Message("BatchNorm statistics stay as the backbone has them: processes on the CPU cannot share their estimates."))
        self._batchnorm_frozen = True

    def _plan(self, ctx: LoopContext, spec: bb.BackboneSpec, rows, selection: SelectionSplit) -> RunPlan:
        """Every decision of the run, before any of the work; what the user reads about it is rendered from it."""
        cfg, (train_rows, val_rows, _) = self.config, rows
        pictures = (len(train_rows), len(selection.held), len(val_rows))
        plan = plan_run(ctx, spec, cfg.batch_size == 0, pictures, self.pretrained, self.index)
        self._emit(PlanMade(plan))
        for message in plan_messages(plan, on_cpu=ctx.device.type == "cpu"):
            self._emit(message)
        return plan

    def _open_files(self, index: DatasetIndex) -> None:
        """The run's first writes, after every check that can refuse it: a refused run writes nothing."""
        if self.resuming:
            self._last = self._resume_point()
        else:
            self.files.prepare()
            self.files.write_json(self.files.config, self.config.to_dict())
        self.files.write_json(self.files.dataset, index.to_dict())
        if self._edit_record is not None:
            from tlstudio.core.quality.edits import RECORD_FILE

            self.files.write_json(self.files.root / RECORD_FILE, self._edit_record.to_dict())
        self.files.write_status(self._status)
        self._status_written = True

    def _resume_point(self) -> Optional[dict]:
        """The checkpoint to continue from; None when there is none (the run starts again with its own settings).

        A solved head has no epochs to continue: it is solved again, which gives the same head."""
        files, cfg = self.files, self.config
        last = files.load_checkpoint(files.last) if files.last.is_file() and not cfg.solved_head else None
        if last is not None:
            resumable(last, files.last)
            return last
        if self.evaluate_only and not cfg.solved_head:
            raise UserError(f"'{files.root}' ended before its first epoch was complete, so it holds nothing to evaluate or export. Resume it to train it.")
        files.prepare()
        if not cfg.solved_head:
            self._emit(Message("No epoch was complete: the run starts again from the beginning, with its own settings."))
        return None

    @staticmethod
    def _digests(index: DatasetIndex, rows: Sequence[int]) -> list[str]:
        return [index.samples[r].digest for r in rows]

    def _fine_tune_selection(self, selection: SelectionSplit, head: Optional[LinearHead], held_paths: list[str]) -> Selection:
        metric = self.config.selection_metric
        warm = ("class weighting", "L2 strength of the first head") if head is not None else ()
        if not selection.held:
            return Selection("last epoch", metric, warm, 0)
        folds = head.folds if head else 0
        return Selection("selection split", metric, ("epoch", *warm), len(selection.held), folds, selection.fraction, tuple(sorted(held_paths)))

    def _evaluate(self, ctx: LoopContext, loop: Loop, index: DatasetIndex, rows, best_epoch: Optional[int]) -> tuple[dict, np.ndarray]:
        _, val_rows, test_rows = rows
        total = len(val_rows) + len(test_rows)
        self._emit(PhaseStarted("evaluating", total))
        raw_val = loop.predict_rows(val_rows, cached_val=True)
        self._calibration = calibration.calibrate(*self._calibration_fit, calibration.logits_of(raw_val), ctx.labels[val_rows], self._threshold)
        val_probs = self._calibrated(raw_val)
        self._emit(Progress(len(val_rows), total))
        metrics = classification_metrics(ctx.labels[val_rows], val_probs.argmax(1), ctx.classes)
        if best_epoch is not None:
            metrics["best_epoch"] = best_epoch
        predictions = self._predictions(index, val_rows, "val", val_probs)
        if test_rows:
            test_probs = self._calibrated(loop.predict_rows(test_rows, cached_val=False))
            self._emit(Progress(total, total))
            metrics["test"] = classification_metrics(ctx.labels[test_rows], test_probs.argmax(1), ctx.classes)
            predictions += self._predictions(index, test_rows, "test", test_probs)
        self.files.write_json(self.files.metrics, metrics)
        self.files.write_json(self.files.predictions, predictions)
        return metrics, val_probs

    def _earlier_threshold(self) -> float:
        """The "not sure" threshold the user chose for this run (evaluating it again keeps it); 0 for a new run."""
        found = calibration.read_calibration(self.files.read_json(self.files.summary, {})) if self.evaluate_only else None
        return found.threshold if found is not None else 0.0

    def _fit_calibration(self, ctx: LoopContext, loop: Loop, solved: Optional[LinearHead], selection: SelectionSplit, train_rows: list[int],
                         threshold: float = 0.0) -> None:
        """The logits the temperature is fitted on (``engine.calibration``), where the run's choices were made:
        a solved head's out-of-fold ones, else the kept epoch's on the selection split; never the validation pictures."""
        if solved is not None:
            fit = (calibration.logits_of(solved.oof_probs), ctx.labels[train_rows], "cross-validation (out-of-fold)")
        elif selection.held:
            fit = (loop.selection_logits(), ctx.labels[[train_rows[i] for i in selection.held]], "selection split")
        else:
            fit = (np.zeros((0, len(ctx.classes))), np.zeros(0, dtype=np.int64), calibration.NO_FIT)
        self._calibration_fit, self._threshold = fit, threshold

    def _calibrated(self, probs: np.ndarray) -> np.ndarray:
        """The network's probabilities at the run's temperature (the arg-max is unchanged)."""
        return calibration.scaled_probs(calibration.logits_of(probs), self._calibration.temperature).astype(np.float32)

    def _summary(self, ctx: LoopContext, spec, history: list[dict], best_epoch, metrics: dict, head: Optional[LinearHead], chosen_on: Selection, started: float) -> dict:
        freeze, cfg = ctx.freeze, self.config
        # The last history line's training accuracy: a fine-tune's last epoch, or the solved head's own line.
        diagnosis = diagnose(history[-1]["train_acc"], metrics["accuracy"], head.chosen.accuracy if head is not None else None)
        state = self._fit_state
        # A stopped run evaluated as it is: every figure of it is marked with how far it got.
        incomplete = state.epoch < state.epochs and state.stop_reason is None
        stopped_after = f"stopped after epoch {state.epoch} of {state.epochs}" if incomplete else None
        return {
            "backbone": spec.name,
            "pretrained": self.pretrained,
            "freeze_depth": cfg.freeze_depth,
            "frozen_stages": freeze.frozen,
            "trainable_params": freeze.trainable_params,
            "total_params": freeze.total_params,
            "epochs": len(history),
            "epochs_planned": state.epochs,
            "stopped_early": state.stop_reason,
            "stopped_after": stopped_after,
            "best_epoch": best_epoch,
            "val_accuracy": metrics["accuracy"],
            "val_balanced_accuracy": metrics["balanced_accuracy"],
            "classes": ctx.classes,
            "device": describe_device(ctx.device),
            "processes": ctx.ranks.world,
            "precision": precision_name(ctx.amp),
            "image_size": ctx.pre.input_size,
            "seconds": round(time.perf_counter() - started, 2),
            "feature_cache": self.plan.feed == FEATURES,
            "prefix_cache": self.plan.feed == PREFIX,
            "cache_reused": self.cache_reused,
            "plan": self.plan.to_dict(),
            "class_weighting": self._weighting,
            "selection": chosen_on.to_dict(),
            "head_fit": head.to_summary() if head is not None else None,
            "diagnosis": diagnosis.to_dict(),
            "origin": self._source_run().origin() if cfg.start_from else None,  # the finished run this one started from
            "teacher": self._teacher_record,  # the run a distilled student learnt from (engine.distill)
            "data_edits": self._edit_record.to_dict() if self._edit_record is not None else None,  # pictures left out or relabelled
        }

    def _loop(self, ctx: LoopContext, spec: bb.BackboneSpec, index: DatasetIndex, train_rows: list[int], val_rows: list[int],
              selection: SelectionSplit, plan: RunPlan) -> tuple[Loop, Optional[LinearHead]]:
        """The feed the plan chose, and the head solved on frozen features where the plan fits one."""
        cfg, model = self.config, ctx.model
        cache = self._cacher(ctx, spec, train_rows, val_rows)
        if plan.feed == FEATURES:
            feats = self.features = cache("all", model.backbone, plan.views, cfg.augment)
            if not ctx.ranks.is_main:
                return None, None  # the head is fitted once, on rank 0
            head = self._fit_head(ctx, feats.train, train_rows, self._digests(index, train_rows))
            return CachedLoop(ctx, (), train_rows, val_rows, feats.train, feats.val), head
        fit_rows = [train_rows[i] for i in selection.fit]
        if plan.feed == PREFIX:
            split = split_chain(spec, ctx.freeze.depth)
            outputs = cache(split.key, lambda x: run_chain(model.backbone, split.prefix, x), plan.views, cfg.augment)
            loop = CachedLoop(ctx, split.suffix, train_rows, val_rows, outputs.train, outputs.val, fit=selection.fit, held=selection.held)
        else:
            loop = ImageLoop(ctx, fit_rows, val_rows, [train_rows[i] for i in selection.held])
            if plan.compile:
                loop.compile()
        head = None
        if plan.warm_start:
            # The evaluation crops only: every view's pooled features (a pass of the trainable stages over each)
            # gave no better fine-tune on hymenoptera over 3 seeds, for 3x the cost.
            probe = loop.pooled_features() if isinstance(loop, CachedLoop) else cache("all", model.backbone, 1, "none").train[0]
            head = self._fit_head(ctx, [probe[np.asarray(selection.fit, dtype=np.int64)]], fit_rows, self._digests(index, fit_rows))
            self._head_converged = True
        else:
            self._use_weighting(ctx, rule_weighting(cfg.class_weights, ctx.labels[fit_rows], len(ctx.classes)), fit_rows)
        return loop, head

    def _cacher(self, ctx: LoopContext, spec: bb.BackboneSpec, train_rows: list[int], val_rows: list[int]):
        """``cache(layers, network, views, augment)``: the cached outputs of frozen layers, run once (or reused)."""
        cfg, model = self.config, ctx.model

        def cache(layers: str, network, views: int, augment: str):
            request = FeatureRequest(spec.name, self._weights_id(spec, model.backbone), ctx.pre, augment, cfg.seed, precision_name(ctx.amp), layers)
            model.backbone.eval()
            outputs = cached_features(
                request, network, views, ctx.store, train_rows, val_rows, ctx.device, embedding_batch(ctx.device, ctx.batch_size),
                ctx.amp, ctx.channels_last, self.cache_dir, self._emit, self._stop, ranks=ctx.ranks,
            )
            if outputs.fully_reused:
                self.cache_reused = True
                self._emit(Message("Reused the cached output of the frozen layers from an earlier run."))
            return outputs

        return cache

    def _fit_head(self, ctx: LoopContext, views: Sequence[np.ndarray], rows: list[int], digests: list[str]) -> LinearHead:
        """The convex head: cross-validated on ``rows`` (every view a row), refitted on all of them, loaded into the model."""
        cfg, emit = self.config, self._emit
        refuse_non_finite_features(views, self.config.backbone)
        emit(PhaseStarted("fitting the head", 0))
        head = fit_linear_head(
            views, ctx.labels[rows], digests, len(ctx.classes), class_weights=cfg.class_weights, metric=cfg.selection_metric,
            seed=cfg.seed, device=ctx.device, stop=self._stop, on_progress=lambda done, total: emit(Progress(done, total, "fits")),
        )
        head.load_into(ctx.model.head[-1])
        # The solved head fits plain targets: label smoothing would first pull it towards softer ones,
        # undoing the fit before the backbone learns anything (measured on hymenoptera: one point lower).
        self._use_weighting(ctx, head.weighting, rows, label_smoothing=0.0)
        return head

    def _use_weighting(self, ctx: LoopContext, weighting: str, rows: list[int], label_smoothing: Optional[float] = None) -> None:
        """Train (and report losses) with the chosen class weighting."""
        self._weighting = weighting
        smoothing = self.config.label_smoothing if label_smoothing is None else label_smoothing
        ctx.criterion = training_loss(weighting, ctx.labels[rows], len(ctx.classes), smoothing, ctx.device)

    def _record_head_fit(self, ctx: LoopContext, loop: CachedLoop, head: LinearHead, pictures: int):
        """A frozen head has no epochs: its fit is the run's one history line, and its state the best one."""
        ctx.criterion = nn.CrossEntropyLoss()  # losses shown are the plain log-loss of the fitted head
        train = loop.score_positions(np.arange(pictures))
        val = loop.validate()
        row = {
            "epoch": 1, "train_loss": train.loss, "train_acc": train.accuracy, "val_loss": val.loss, "val_acc": val.accuracy,
            "val_balanced_acc": val.balanced_accuracy, "lr": 0.0, "seconds": round(head.seconds, 3),
            "images_per_s": round(head.rows / max(1e-9, head.seconds), 1),
        }
        state = self._fit_state = FitState(epochs=1, epoch=1, history=[row], best_key=(1,), best_epoch=1, best_state=cpu_state(ctx.model), last_is_best=True)
        self._save_last(ctx, None, state)
        self._save_best(ctx, state)
        self.files.append_history(row)
        # is_best stays False: no epoch was chosen over another (the head's settings were, by cross-validation).
        self._emit(EpochEnded(1, 1, train.loss, train.accuracy, val.loss, val.accuracy, 0.0, row["images_per_s"], head.seconds, 0.0, False))
        return state.best_state, None, [row]

    def _dataset(self) -> DatasetIndex:
        if self.index is None:
            from tlstudio.core.data.scan import scan_folder

            cfg = self.config
            self.index = scan_folder(cfg.data_dir, cfg.val_split, cfg.test_split, cfg.seed, self._emit, self._stop)
        if self.config.data_edits and self._edit_record is None:  # the user's decisions about single pictures, once
            from tlstudio.core.quality import edits

            saved = self.files.read_json(self.files.root / edits.RECORD_FILE, None) if self._index_is_the_runs else None
            if saved is not None:  # a resumed run's dataset.json has them applied already
                self._edit_record = edits.EditRecord.from_dict(saved)
            else:
                self.index, self._edit_record = edits.apply_edits(self.index, edits.edits_of_config(self.config.data_edits))
        return self.index

    def build_model(self, num_classes: int) -> Classifier:
        """The model before its first step: the backbone with ImageNet weights when pretrained, else a random
        initialisation seeded by ``config.seed`` (the same seed gives the same weights), and a new head."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        source = self._source_run()
        if source is not None and source.model.backbone != cfg.backbone:
            raise UserError(f"--start-from '{cfg.start_from}' is a {source.model.backbone} run, not {cfg.backbone}: leave out --backbone, it comes from that run.")
        loader = source.state_dict_loader() if source is not None else self.state_dict_loader
        backbone = build_backbone(cfg.backbone, self.pretrained, loader)
        return Classifier(backbone, num_classes, cfg.dropout)

    def _source_run(self):
        """The finished run this one starts from (``config.start_from``), read once; None: the catalog's weights."""
        if not self.config.start_from:
            return None
        if getattr(self, "_source", None) is None:
            from tlstudio.core.catalog.my_models import read_source_run

            self._source = read_source_run(self.config.start_from)
        return self._source

    @property
    def train_batchnorm(self) -> bool:
        """A random backbone has no ImageNet BatchNorm statistics worth keeping: it always estimates its own."""
        if self._batchnorm_frozen:
            return False  # several processes on the CPU: see _refuse_unshared_batchnorm
        return self.config.train_batchnorm or not self.pretrained

    def _weights_id(self, spec: bb.BackboneSpec, backbone: Optional[nn.Module] = None) -> str:
        """What the backbone's weights are, for the feature cache key: the weights file, or the random
        initialisation (its seed and a digest of the tensors, so another library version's init never matches)."""
        if self.config.start_from:
            return self._source_run().weights_id  # a digest of the source run's kept backbone tensors
        if not self.pretrained:
            return f"random:{self.config.seed}:{state_digest(backbone.state_dict()) if backbone is not None else 'unknown'}"
        if self.state_dict_loader is not None:
            return f"custom:{getattr(self.state_dict_loader, '__name__', 'loader')}"
        from tlstudio.core.catalog.weights import file_weights_id, weights_file

        return file_weights_id(weights_file(spec))

    def _fit(self, ctx: LoopContext, loop: Loop) -> FitState:
        """Gradient descent over the epochs (from the last checkpoint when resuming); the epoch kept is chosen on the selection split."""
        cfg = self.config
        opt = self._optimisation(ctx, loop)
        state = self._fit_state = self._restore(ctx, opt) or FitState(cfg.epochs)
        steps = loop.steps_per_epoch()
        self._emit(PhaseStarted("training", steps * cfg.epochs))
        if state.epoch:
            self._emit(Progress(state.epoch * steps, steps * cfg.epochs, f"epoch {state.epoch}/{cfg.epochs}"))
        if self.evaluate_only:
            return state
        loop.share_gradients()
        patience = default_patience(cfg.epochs) if cfg.patience is None else cfg.patience
        callbacks = [
            NonFiniteGuard(cfg.lr, check_gradients=not opt.scaler.is_enabled()),
            KeepBest(ctx.model, cfg.selection_metric),
            EarlyStopping(patience),
            Checkpointing(lambda s: self._save_last(ctx, opt, s), lambda s: self._save_best(ctx, s)),
            HistoryLog(self.files.append_history),
            ProgressReport(self._emit, steps),
        ]
        if not ctx.ranks.is_main:
            callbacks = callbacks[:3]  # the same choices as rank 0's (the same scores); rank 0 writes and reports
        return fit(ctx, loop, opt, callbacks, state, lambda: self._train_mode(ctx))

    def _optimisation(self, ctx: LoopContext, loop: Loop) -> Optimisation:
        cfg = self.config
        optimizer = torch.optim.AdamW(param_groups(ctx.model, cfg.lr, cfg.backbone_lr_scale, cfg.weight_decay, self._head_converged))
        steps_per_epoch = loop.steps_per_epoch()
        total_steps = steps_per_epoch * cfg.epochs
        warmup = min(total_steps // 10, int(round(cfg.warmup_epochs * steps_per_epoch)))  # short runs must not spend a third warming up
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, warmup))
        return Optimisation(optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=ctx.amp == torch.float16))

    def _restore(self, ctx: LoopContext, opt: Optimisation) -> Optional[FitState]:
        """A resumed run's fit state, with the model and optimisation as its last checkpoint left them (None: start afresh)."""
        if self._last is None:
            return None
        files = self.files
        best = files.load_checkpoint(files.best) if files.best.is_file() else None
        state = restore_training(self._last, best, ctx.model, opt, files.last)
        files.write_history(state.history)  # from the checkpoint: a run killed before its epoch's history line gets the line back
        self._emit(Message(f"Resumed after epoch {state.epoch} of {state.epochs}."))
        return state

    def _train_mode(self, ctx: LoopContext) -> None:
        bb.set_train_mode(ctx.model.backbone, ctx.freeze, self.train_batchnorm)
        ctx.model.head.train()

    def _save_last(self, ctx: LoopContext, opt: Optional[Optimisation], state: FitState) -> None:
        self.files.save_checkpoint(self.files.last, training_checkpoint(ctx.model, opt, state, self.config.to_dict(), ctx.classes))

    def _save_best(self, ctx: LoopContext, state: FitState) -> None:
        self.files.save_checkpoint(self.files.best, best_checkpoint(state, self.config.to_dict(), ctx.classes))

    @staticmethod
    def _predictions(index: DatasetIndex, rows: Sequence[int], split: str, probs: np.ndarray) -> list[dict]:
        return [
            {"path": index.samples[r].path, "split": split, "label": int(index.samples[r].label), "pred": int(p.argmax()), "probs": [round(float(v), 6) for v in p]}
            for r, p in zip(rows, probs)
        ]

    def _export(self, ctx: "LoopContext", val_rows: Sequence[int], val_probs: np.ndarray, summary: dict) -> dict:
        """Export, then check in a fresh process that the file gives what the trained model gave.

        The file is fed the decoded squares training evaluated (side resize_size, so its own resize
        is a no-op and its crop, normalisation, network and class order are what is compared):
        the same input must give the same answer. Feeding the original files would also compare
        two resize filters (Pillow's and torch's), which flips near-ties of an unsure model (a
        from-scratch baseline disagreed on 2 of 153 hymenoptera images that way); that path is
        checked by tests on any image size and on the full-size hymenoptera files instead.
        """
        fmt = formats.export_format(self.export_format)
        held = list(range(min(VERIFY_IMAGES, len(val_rows))))
        self._emit(PhaseStarted("exporting", len(held)))
        network = self._exported_network(ctx)
        dest, unverified = self.files.root / fmt.file_name, fmt.unverified(self.files.root)
        fmt.write(network, ctx.pre, ctx.classes, summary, unverified)
        images = [np.asarray(ctx.store[val_rows[i]]) for i in held]
        try:
            self._stop.check()
            result = fmt.verify(unverified, images, val_probs[held], stop=self._stop, on_progress=lambda done: self._emit(Progress(done, len(held), "pictures checked")))
        except BaseException:
            unverified.unlink(missing_ok=True)  # stopped or broken before its check ended: no unchecked file stays
            raise
        self._emit(Progress(len(held), len(held), "pictures checked"))
        report = {"path": str(dest), "verified": result.ok, "agreement": result.agreement, "images": result.n, "max_abs_diff": result.max_abs_diff, "message": result.message}
        if not result.ok:
            raise RuntimeError(f"the exported model disagreed with the trained model ({result.message}); it was kept as {unverified} for inspection")
        unverified.replace(dest)
        self._emit(Message(f"Exported {dest}: a fresh {fmt.runtime} process agreed on {result.agreement:.1%} of {result.n} validation images."))
        return report

    def _exported_network(self, ctx: LoopContext) -> nn.Module:
        """The trained network on the CPU in float32; its BatchNorm layers plain ones where training synchronised them."""
        template = self._export_template
        if template is None:
            network = copy.deepcopy(ctx.model)
        else:
            network = copy.deepcopy(template)
            network.load_state_dict({k: v.cpu() for k, v in ctx.model.state_dict().items()})
        return network.float().cpu().eval().to(memory_format=torch.contiguous_format)

    def _earlier_exports(self) -> dict:
        """The export reports in summary.json before this run rewrites it (read first: a solved head's folder is prepared anew)."""
        previous = self.files.read_json(self.files.summary, {}) if self.evaluate_only else {}
        return {fmt.summary_key: previous[fmt.summary_key] for fmt in formats.FORMATS.values() if isinstance(previous, dict) and fmt.summary_key in previous}

    def _other_exports(self, summary: dict, previous: dict) -> None:
        """The verified files of the formats not exported now. Evaluating the kept epoch again changes no model, so
        their reports stay; after training, an ONNX file is an older model's and goes (model.pt is rewritten by the export)."""
        for fmt in formats.FORMATS.values():
            path = self.files.root / fmt.file_name
            if fmt.summary_key in summary or not path.is_file():
                continue
            if fmt.summary_key in previous:
                summary[fmt.summary_key] = previous[fmt.summary_key]
            elif not self.evaluate_only and fmt.name == formats.ONNX:
                path.unlink()


def refuse_adapted(run_dir: str | Path) -> None:
    """An adapted run (``core.adapt``) holds weights no training produced: training or evaluating it again would undo them."""
    summary = RunFiles(run_dir).read_json(RunFiles(run_dir).summary, {})
    if isinstance(summary, dict) and isinstance(summary.get("adaptation"), dict):
        raise UserError(
            f"'{run_dir}' was adapted to new pictures: training or evaluating it again would undo that. "
            "Export it as it is (tlstudio export, or the Export step), or adapt its source run again."
        )


def refuse_non_finite_features(views: Sequence[np.ndarray], backbone: str) -> None:
    """Features with a NaN or an infinity come from damaged weights: no head fitted on them means anything."""
    bad = max(int((~np.isfinite(np.asarray(v))).any(axis=tuple(range(1, np.ndim(v)))).sum()) for v in views)
    if bad:
        raise UserError(
            f"the frozen backbone ({backbone}) gave features that are not finite numbers for {bad} of {len(views[0])} pictures: "
            "its weights are damaged. Import its weights file again (Model step, or 'tlstudio weights import')."
        )
