"""Every decision of a run, made before any training and kept with its reason: the ``RunPlan``.

What each epoch is fed (cached features of a frozen backbone, a frozen prefix's cached output, or
images), how many augmented views are cached, whether the head is first solved on frozen features,
the batch size, precision, compile, where augmentation runs, the selection split and early stopping,
and what the run does about each thing the scan warned of (``warnings``: see ``engine.dataset_actions``).
The messages the user reads are rendered from it (``plan_messages``), the run summary records it,
and tests read its fields instead of the sentences.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from typing import Optional

from tlstudio.core.data.augment import PRESETS
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.index import DatasetIndex
from tlstudio.core.engine.dataset_actions import SHOWN_PER_KIND, PlannedWarning, plan_warnings
from tlstudio.core.engine.device import compile_decision, describe_device, precision_name
from tlstudio.core.engine.feeds import LoopContext, steps_per_epoch
from tlstudio.core.events import Message
from tlstudio.core.catalog.frozen_prefix import prefix_cache_fits, split_chain

# What each epoch is fed.
FEATURES, PREFIX, IMAGES = "features", "prefix", "images"
# Why: the backbone is frozen / a frozen prefix is cached / the cache is off / nothing is frozen (or the
# backbone has no chain to split) / the prefix's output would not fit or not pay (``feed_detail`` says which).
FROZEN_BACKBONE, FROZEN_PREFIX, CACHE_OFF, NO_PREFIX, PREFIX_NOT_CACHED = "frozen backbone", "frozen prefix", "cache off", "no frozen prefix", "prefix not cached"
# Whether the head is first solved on frozen features before fine-tuning, and why (not).
WARM_START, HEAD_ONLY, WARM_START_OFF, RANDOM_BACKBONE = "fitted on frozen features", "head only", "off", "random backbone"


@dataclass(frozen=True)
class RunPlan:
    device: str  # in words: "CPU (2 cores)", "NVIDIA H200 (139 GiB)"
    precision: str
    channels_last: bool
    batch_size: int
    batch_size_found: bool  # probed on the GPU (batch size 0: the largest that fits)
    feed: str
    feed_reason: str
    feed_detail: str  # the user's sentence for PREFIX_NOT_CACHED ("" otherwise)
    views: int  # augmented views cached per training picture (0: nothing cached)
    warm_start: bool
    warm_start_reason: str
    compile: bool
    compile_detail: str
    device_augment: bool
    held: int  # pictures of the selection split (0: none, the last epoch is kept)
    steps_per_epoch: int
    from_scratch: bool
    seed: int
    warnings: tuple[PlannedWarning, ...] = ()  # the dataset's warnings, each with what this run does about it

    def warning_kinds(self) -> tuple[str, ...]:
        return tuple(w.kind for w in self.warnings)

    @property
    def solved_head(self) -> bool:
        """A frozen backbone's head is solved once, not trained for epochs."""
        return self.feed == FEATURES

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PlanMade:
    """The event that the run's plan is made, before any of its work: listeners show its warnings from it."""

    plan: RunPlan


def plan_run(ctx: LoopContext, spec, batch_found: bool, pictures: tuple[int, int, int], pretrained: bool, index: Optional[DatasetIndex] = None) -> RunPlan:
    """The plan for training ``pictures`` = (training, of them held back to choose on, validation) pictures.

    ``ctx`` holds the settings, the device and the built model with its frozen stages (the prefix's
    output size is measured on it); ``index``, the scanned pictures, brings their warnings."""
    cfg, (n_train, n_held, n_val) = ctx.cfg, pictures
    views = min(PRESETS[cfg.augment].views, cfg.epochs)  # later views would never be trained on
    feed, reason, detail = _feed(ctx, spec, views * n_train + n_val)
    warm, warm_reason = _warm_start(cfg, ctx.freeze, ctx.model, pretrained, feed)
    steps = steps_per_epoch(n_train if feed == FEATURES else n_train - n_held, ctx.batch_size)
    use_compile, compile_detail = compile_decision(cfg.torch_compile, ctx.device, steps * cfg.epochs) if feed == IMAGES else (False, "")
    warnings = plan_warnings(index, cfg.class_weights, cross_validated=feed == FEATURES or warm) if index is not None else ()
    return RunPlan(
        device=describe_device(ctx.device), precision=precision_name(ctx.amp), channels_last=ctx.channels_last,
        batch_size=ctx.batch_size, batch_size_found=batch_found,
        feed=feed, feed_reason=reason, feed_detail=detail, views=views if feed != IMAGES else 0, warm_start=warm,
        warm_start_reason=warm_reason, compile=use_compile, compile_detail=compile_detail,
        device_augment=feed == IMAGES and cfg.device_augment and cfg.augment != "none",
        held=0 if feed == FEATURES else n_held, steps_per_epoch=steps, from_scratch=not pretrained, seed=cfg.seed, warnings=warnings,
    )


def _feed(ctx: LoopContext, spec, items: int) -> tuple[str, str, str]:
    if not ctx.cfg.feature_cache:
        return IMAGES, CACHE_OFF, ""
    if ctx.freeze.backbone_frozen:
        return FEATURES, FROZEN_BACKBONE, ""
    split = split_chain(spec, ctx.freeze.depth)
    if split is None:
        return IMAGES, NO_PREFIX, ""
    fits, why = prefix_cache_fits(ctx.model.backbone, split, ctx.pre.input_size, items, ctx.device)
    return (PREFIX, FROZEN_PREFIX, "") if fits else (IMAGES, PREFIX_NOT_CACHED, why)


def _warm_start(cfg: TrainConfig, freeze, model, pretrained: bool, feed: str) -> tuple[bool, str]:
    if feed == FEATURES:
        return False, HEAD_ONLY  # the head is solved on the features: there is nothing after it to fine-tune
    head_params = sum(p.numel() for p in model.head.parameters())
    if not cfg.warm_start_head or freeze.trainable_params <= head_params:
        return False, WARM_START_OFF
    if not cfg.feature_cache:
        return False, CACHE_OFF
    if not pretrained:
        return False, RANDOM_BACKBONE  # random features say nothing yet: a head fitted on them is only a worse random start
    return True, WARM_START


def plan_messages(plan: RunPlan, on_cpu: bool) -> list[Message]:
    """What the user reads about the plan before the work starts: the dataset's warnings first."""
    out = warning_messages(plan.warnings)
    if plan.from_scratch:
        out.append(Message(
            f"From scratch: the backbone starts from random weights (seed {plan.seed}), without anything learnt on ImageNet; "
            "BatchNorm statistics are estimated from your images."
        ))
    out.append(Message(f"Device: {plan.device}."))
    if plan.batch_size_found:
        out.append(Message(f"Batch size: {plan.batch_size} (the largest that fits)." if not on_cpu else f"Batch size: {plan.batch_size}."))
    if plan.feed == PREFIX:
        views = f"{plan.views} view{'s' if plan.views > 1 else ''}"
        out.append(Message(f"The frozen stages run once, on {views} of each image, and their output is cached: each epoch runs only the trainable stages and the new head."))
    elif plan.feed_reason == PREFIX_NOT_CACHED:
        out.append(Message(f"The frozen stages run every epoch: {plan.feed_detail}"))
    if plan.warm_start:
        out.append(Message("The new head is first fitted to convergence on frozen features, so fine-tuning starts from a sensible head."))
    if plan.compile_detail:
        out.append(Message(plan.compile_detail))
    if plan.device_augment:
        out.append(Message(f"Augmentation runs on the {'CPU' if on_cpu else 'GPU'}, on whole batches."))
    if on_cpu and plan.from_scratch and plan.feed == IMAGES:
        out.append(Message("Training from scratch on the CPU is slow: every layer learns from every image.", "warning"))
    elif on_cpu and plan.feed == IMAGES:
        out.append(Message("Fine-tuning backbone stages on the CPU is slow. Freezing more stages, or the whole backbone (feature extractor), trains in seconds.", "warning"))
    return out



def warning_messages(warnings: tuple[PlannedWarning, ...]) -> list[Message]:
    """Each warning with what the run does about it (said once where two warnings share it, as a class with
    one picture and no validation folder does); past ``SHOWN_PER_KIND`` of one kind, one line sums up the rest."""
    out, shown, said = [], Counter(), set()
    for w in warnings:
        shown[w.kind] += 1
        if shown[w.kind] <= SHOWN_PER_KIND:
            out.append(Message(w.detail if w.action_text in said else f"{w.detail} {w.action_text}", "warning"))
            said.add(w.action_text)
    for kind, n in shown.items():
        if n > SHOWN_PER_KIND:
            out.append(Message(f"{n - SHOWN_PER_KIND} more warning(s) of the kind '{kind}', handled the same way; the scan report lists them all.", "warning"))
    return out
