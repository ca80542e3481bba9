"""The strategy sweep: "which way of transferring works best on my data?"

``plan_sweep`` lists the ways, cheapest first, all on the project's split and seed: a frozen backbone
(each bundled one, from the catalog), two partial fine-tunes of the default backbone, a full fine-tune
and training from scratch. ``estimate_sweep`` says about how long each would take before any starts,
so slow ones can be dropped. ``run_sweep`` trains each as its own run of the project (every cache shared,
so frozen features and frozen prefixes are computed once), stoppable at any batch, and keeps a sweep
record (``sweeps/<id>/sweep.json``, written atomically after every member).

The recommendation (``recommend``) reads each member's **selection score** only: the cross-validated score
of a frozen head's chosen candidate, or a fine-tune's kept epoch on its selection split. Both come from the
training pictures, so every member's validation figure stays an untouched estimate. It prefers the cheapest
member within ``TOLERANCE`` of the best score.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from tlstudio.core import atomic
from tlstudio.core.catalog.backbones import get_backbone, list_backbones
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.events import Cancelled, EventCallback, StopToken, as_token, ignore_events
from tlstudio.core.runs import project as pj

KINDS = ("frozen", "partial", "full", "scratch")  # cheapest to dearest
TOLERANCE = 0.01  # one point of selection score: closer than that is within the noise of a few held-back pictures
SWEEP_EPOCHS = 5  # epochs of every fine-tune in a sweep: started from a solved head, the partial ones of hymenoptera end in minutes on 2 CPU cores
TRAILING_STAGES = (1, 3)  # partial fine-tunes train the last 1 and the last 3 stages of the default backbone

# A member's status in the sweep record.
FINISHED, STOPPED, FAILED, NOT_STARTED = "finished", "stopped", "failed", "not started"


@dataclass(frozen=True)
class SweepMember:
    """One way of transferring: its name (what --skip takes), its kind and the run's settings."""

    name: str
    kind: str
    title: str
    config: TrainConfig


@dataclass(frozen=True)
class MemberEstimate:
    name: str
    seconds: float  # an estimate from a short timing trial of the member's network on this computer


@dataclass
class MemberResult:
    """What a member's run came to, read from its own summary and history."""

    name: str
    kind: str
    title: str
    status: str = NOT_STARTED
    run_id: str = ""
    seconds: Optional[float] = None  # the run's own measured seconds
    estimated_seconds: Optional[float] = None
    selection_score: Optional[float] = None
    selection_method: str = ""  # "cross-validation" or "selection split"
    val_accuracy: Optional[float] = None
    val_balanced_accuracy: Optional[float] = None
    test_accuracy: Optional[float] = None
    test_balanced_accuracy: Optional[float] = None
    message: str = ""

    @classmethod
    def from_dict(cls, d: dict) -> "MemberResult":
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass(frozen=True)
class Recommendation:
    chosen: str  # the member recommended: the cheapest within the tolerance of the best
    best: str  # the member with the highest selection score
    points_behind: float  # the chosen member's selection score below the best one's, in points (0-100 scale)
    speed_ratio: float  # the best member's seconds over the chosen one's (1: the same member)
    tolerance: float
    chosen_test_balanced_accuracy: Optional[float] = None  # the chosen member's test figure, when a test split exists


@dataclass
class SweepRecord:
    id: str
    created: str
    metric: str
    tolerance: float
    members: list[MemberResult] = field(default_factory=list)
    recommendation: Optional[Recommendation] = None
    stopped: bool = False

    def member(self, name: str) -> MemberResult:
        return next(m for m in self.members if m.name == name)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["recommendation"] = asdict(self.recommendation) if self.recommendation else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SweepRecord":
        rec = d.get("recommendation")
        return cls(
            id=d["id"], created=d.get("created", ""), metric=d.get("metric", ""), tolerance=float(d.get("tolerance", TOLERANCE)),
            members=[MemberResult.from_dict(m) for m in d.get("members", [])],
            recommendation=Recommendation(**rec) if rec else None, stopped=bool(d.get("stopped", False)),
        )


# Events a sweep sends besides its runs' own.
@dataclass(frozen=True)
class MemberStarted:
    name: str
    index: int  # 0-based position among the members that run
    total: int


@dataclass(frozen=True)
class MemberEnded:
    result: MemberResult


# ------------------------------------------------------------------ planning
def bundled_backbones() -> list[str]:
    """The backbones whose weights ship with tlstudio (the catalog decides, not this module)."""
    return [s.name for s in list_backbones() if s.source == "bundled"]


def partial_depths(backbone: str) -> list[int]:
    """Freeze depths that leave the last 1 and the last 3 stages training.

    The last stages hold the most task-specific features (the first ones are edges and textures every task
    shares), and with the frozen prefix cached the cost of an epoch grows only with the stages that train."""
    n = len(get_backbone(backbone).stages)
    return sorted({n - k for k in TRAILING_STAGES if 0 < n - k < n}, reverse=True)


def plan_sweep(config: TrainConfig, skip: Iterable[str] = (), epochs: int = SWEEP_EPOCHS) -> list[SweepMember]:
    """The sweep's members from cheapest to dearest, on ``config``'s data, split, seed and image size.

    ``skip`` holds kinds (frozen, partial, full, scratch) or member names; an unknown word is refused."""
    base = replace(config, export=False, epochs=epochs, start_from="", pretrained=True, freeze_depth="all")
    # A frozen member's head is solved on cached features; epochs=1 caches one view (the centre crop) instead of
    # five augmented ones: 3.5x less backbone work for a head whose cross-validated choice hardly moves.
    frozen = replace(base, epochs=1)
    members = [SweepMember(f"frozen:{name}", "frozen", f"Frozen {get_backbone(name).title}", replace(frozen, backbone=name))
               for name in bundled_backbones()]
    default = config.backbone if not config.start_from else TrainConfig.backbone
    title = get_backbone(default).title
    n = len(get_backbone(default).stages)
    for depth in partial_depths(default):
        members.append(SweepMember(f"partial:{depth}", "partial", f"{title}, last {n - depth} stage(s) fine-tuned",
                                   replace(base, backbone=default, freeze_depth=str(depth))))
    members.append(SweepMember("full", "full", f"{title}, fully fine-tuned", replace(base, backbone=default, freeze_depth="none")))
    members.append(SweepMember("scratch", "scratch", f"{title}, from scratch",
                               replace(base, backbone=default, freeze_depth="none", pretrained=False, backbone_lr_scale=1.0)))
    skip = {s.strip() for s in skip if s.strip()}
    unknown = skip - set(KINDS) - {m.name for m in members}
    if unknown:
        names = ", ".join([*KINDS, *(m.name for m in members)])
        raise UserError(f"--skip {', '.join(sorted(unknown))}: not a kind or member of the sweep. Choose from: {names}.")
    kept = [m for m in members if m.kind not in skip and m.name not in skip]
    if not kept:
        raise UserError("--skip leaves no member to train. Skip fewer kinds.")
    for m in kept:
        m.config.validate()
    return kept


# ------------------------------------------------------------------ estimating
FORWARD_SHARE = 1 / 3  # a forward pass costs about a third of a training step (forward + backward + update)
MEMBER_OVERHEAD_S = 5.0  # setting a run up, fitting its head and writing its files


def split_sizes(index) -> dict[str, int]:
    """{"train": n, "val": n, "test": n} of a scanned DatasetIndex: what ``estimate_sweep`` takes."""
    return {split: len(index.split(split)) for split in ("train", "val", "test")}


def cached_views(config: TrainConfig) -> int:
    """Augmented views of each training picture that frozen layers run on once (as ``engine.plan`` decides)."""
    from tlstudio.core.engine.plan import PRESETS

    return max(1, min(PRESETS[config.augment].views, config.epochs))


def estimate_sweep(members: Sequence[SweepMember], pictures: dict[str, int], num_classes: int,
                   stop: Optional[StopToken] = None, speed: Optional[Callable[[TrainConfig], float]] = None) -> list[MemberEstimate]:
    """About how many seconds each member takes, before any starts.

    ``pictures``: {"train": n, "val": n, "test": n}. The speed of training each backbone whole (images/s) is
    measured once by a short trial (``speed_probe``); a frozen backbone costs one forward pass per picture,
    a partial fine-tune one forward pass to cache its frozen prefix and then its share of the stages for
    each epoch, a full fine-tune or from scratch every stage every epoch. Decoding, the head's fit and
    early stopping are left out: an estimate, good to a factor of about two."""
    stop = as_token(stop)
    measured: dict[tuple[str, Optional[int]], float] = {}

    def images_per_s(cfg: TrainConfig) -> float:
        key = (cfg.backbone, cfg.image_size)
        if key not in measured:
            if speed is not None:
                measured[key] = speed(cfg)
            else:
                from tlstudio.core.engine.speed_probe import measure_training_speed

                measured[key] = measure_training_speed(cfg, num_classes, pictures.get("train", 0), stop).images_per_s
        return max(measured[key], 1e-6)

    train, rest = pictures.get("train", 0), pictures.get("val", 0) + pictures.get("test", 0)
    # Beyond the timed steps: decoding the pictures, fitting the head, evaluating (measured on 2 CPU cores).
    out = []
    for m in members:
        step = 1.0 / images_per_s(m.config)
        once = (cached_views(m.config) * train + rest) * step * FORWARD_SHARE
        if m.kind == "frozen":
            seconds = once
        else:
            share = 1.0
            if m.kind == "partial":
                n = len(get_backbone(m.config.backbone).stages)
                share = (n - int(m.config.freeze_depth)) / n
            epoch = train * step * share + rest * step * FORWARD_SHARE * share
            seconds = (once if m.kind == "partial" else 0.0) + m.config.epochs * epoch
        out.append(MemberEstimate(m.name, round(seconds + MEMBER_OVERHEAD_S, 1)))
    return out


# ------------------------------------------------------------------ reading a run
def selection_score(summary: dict, history: Sequence[dict]) -> tuple[Optional[float], str]:
    """The score the run's own choices were made on, and how it was measured.

    A frozen head: its chosen candidate's cross-validated score (``head_fit``). A fine-tune: the kept
    epoch's score on the selection split (that epoch's history line)."""
    selection = summary.get("selection") or {}
    method, metric = selection.get("method", ""), selection.get("metric", "balanced_accuracy")
    if method == "cross-validation":
        head = summary.get("head_fit") or {}
        value = head.get("cv_balanced_accuracy" if metric == "balanced_accuracy" else "cv_accuracy")
        return (float(value) if value is not None else None), method
    key = "sel_balanced_acc" if metric == "balanced_accuracy" else "sel_acc"
    best = summary.get("best_epoch")
    for line in history:
        if line.get("epoch") == best and line.get(key) is not None:
            return float(line[key]), method
    return None, method


def read_member(result: MemberResult, run: "pj.RunInfo") -> MemberResult:
    """``result`` filled in from its run's own files (summary in the project, history, metrics)."""
    s = run.record.summary
    result.run_id = run.id
    if s.get("seconds") is not None:
        result.seconds = float(s["seconds"])
    result.selection_score, result.selection_method = selection_score(s, run.history)
    result.val_accuracy = run.metrics.get("accuracy", s.get("val_accuracy"))
    result.val_balanced_accuracy = run.metrics.get("balanced_accuracy", s.get("val_balanced_accuracy"))
    test = run.metrics.get("test") or {}
    result.test_accuracy, result.test_balanced_accuracy = test.get("accuracy"), test.get("balanced_accuracy")
    return result


# ------------------------------------------------------------------ recommending
def recommend(results: Sequence[MemberResult], tolerance: float = TOLERANCE) -> Optional[Recommendation]:
    """The cheapest finished member within ``tolerance`` of the best selection score (None when none has one).

    ``results`` are in the plan's order, cheapest first: that order is the cost, as measured seconds depend on
    which member happened to fill the shared caches. Only selection scores (and, for the speed ratio, measured
    seconds) are read: the validation and test figures play no part."""
    scored = [(rank, r) for rank, r in enumerate(results) if r.status == FINISHED and r.selection_score is not None]
    if not scored:
        return None
    best_rank, best = max(scored, key=lambda rr: (rr[1].selection_score, -rr[0]))
    close = [(rank, r) for rank, r in scored if r.selection_score >= best.selection_score - tolerance - 1e-12]
    _, chosen = min(close, key=lambda rr: rr[0])
    ratio = best.seconds / chosen.seconds if best.seconds and chosen.seconds else 1.0
    return Recommendation(
        chosen=chosen.name, best=best.name, points_behind=round(100 * (best.selection_score - chosen.selection_score), 2),
        speed_ratio=round(ratio, 1), tolerance=tolerance, chosen_test_balanced_accuracy=chosen.test_balanced_accuracy,
    )


def recommendation_sentence(rec: Optional[Recommendation], results: Sequence[MemberResult]) -> str:
    """The recommendation in plain words, e.g. 'Frozen EfficientNet-Lite2 is within 0.4 points of the best and 30x faster.'"""
    if rec is None:
        return "No member finished with a selection score: there is nothing to recommend yet."
    titles = {r.name: r.title for r in results}
    chosen, best = titles.get(rec.chosen, rec.chosen), titles.get(rec.best, rec.best)
    if rec.chosen == rec.best:
        text = f"{chosen} scored best on the held-back training pictures; nothing cheaper came within {100 * rec.tolerance:g} point(s) of it."
    else:
        pace = f"{rec.speed_ratio:g}x faster" if rec.speed_ratio >= 1.1 else "about as fast here (the caches it shares with the others decide)"
        text = f"{chosen} is within {rec.points_behind:g} points of the best ({best}) and {pace}."
    if rec.chosen_test_balanced_accuracy is not None:
        text += f" Its balanced accuracy on the test pictures: {rec.chosen_test_balanced_accuracy:.1%}."
    return text


# ------------------------------------------------------------------ chart
@dataclass(frozen=True)
class ChartPoint:
    name: str
    title: str
    seconds: float
    val_balanced_accuracy: float
    val_accuracy: float


def chart_points(results: Sequence[MemberResult]) -> list[ChartPoint]:
    """(Balanced) validation accuracy against training time, one point per member that has both."""
    return [ChartPoint(r.name, r.title, r.seconds, r.val_balanced_accuracy, r.val_accuracy or 0.0) for r in results
            if r.seconds is not None and r.val_balanced_accuracy is not None]


# ------------------------------------------------------------------ running
def sweeps_dir(project: "pj.Project") -> Path:
    return project.root / "sweeps"


def record_path(project: "pj.Project", sweep_id: str) -> Path:
    return sweeps_dir(project) / sweep_id / "sweep.json"


def save_record(project: "pj.Project", record: SweepRecord) -> Path:
    path = record_path(project, record.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    record.recommendation = recommend(record.members, record.tolerance)
    atomic.write_json(path, record.to_dict())
    return path


def load_record(path: str | Path) -> SweepRecord:
    try:
        return SweepRecord.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"the sweep record '{path}' could not be read ({exc}). Run the sweep again.") from None


def new_record(members: Sequence[SweepMember], estimates: Sequence[MemberEstimate] = ()) -> SweepRecord:
    guess = {e.name: e.seconds for e in estimates}
    metric = members[0].config.selection_metric if members else "balanced_accuracy"
    return SweepRecord(
        id=datetime.now().strftime("%Y-%m-%d_%H-%M-%S"), created=datetime.now().isoformat(timespec="seconds"),
        metric=metric, tolerance=TOLERANCE,
        members=[MemberResult(m.name, m.kind, m.title, estimated_seconds=guess.get(m.name)) for m in members],
    )


def run_sweep(project: "pj.Project", members: Sequence[SweepMember], on_event: EventCallback = ignore_events,
              stop: Optional[StopToken] = None, index=None, estimates: Sequence[MemberEstimate] = ()) -> SweepRecord:
    """Train the members in order, each its own run of ``project``; the record is saved after every member.

    A stop (the token, or Ctrl+C) ends the current member as the Trainer's stop does (its run is kept,
    stopped and resumable); the finished members stay intact and the rest are marked not started."""
    from tlstudio.core.engine.trainer import Trainer

    stop = as_token(stop)
    record = new_record(members, estimates)
    save_record(project, record)
    for i, (member, result) in enumerate(zip(members, record.members)):
        if stop.stopped:
            record.stopped = True
            break
        on_event(MemberStarted(member.name, i, len(members)))
        files = project.new_run(member.config, remember=False)
        run_id = files.root.name
        result.run_id = run_id
        started = time.perf_counter()
        interrupted = False
        try:
            outcome = Trainer(member.config, files.root, cache_dir=project.cache_dir, index=index).run(on_event, stop)
            status = STOPPED if outcome.cancelled else FINISHED
            project.finish_run(run_id, pj.CANCELLED if outcome.cancelled else pj.FINISHED, outcome.summary)
        except (KeyboardInterrupt, Cancelled):
            interrupted, status = True, STOPPED
            project.finish_run(run_id, pj.CANCELLED, {"cancelled": True})
        except Exception as exc:  # noqa: BLE001 - one member failing (bad weights, a full disk) is recorded; the next may work
            status = FAILED
            result.message = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
            if not (isinstance(exc, UserError) and project.discard_run(run_id)):
                project.finish_run(run_id, pj.FAILED, message=result.message)
            else:
                result.run_id = ""
        result.status = status
        if status == FINISHED:
            read_member(result, project.load_run(run_id))
        else:
            result.seconds = round(time.perf_counter() - started, 2)
        save_record(project, record)
        on_event(MemberEnded(result))
        if status == STOPPED:
            record.stopped = True
            if interrupted:
                stop.stop()
            break
    save_record(project, record)
    return record
