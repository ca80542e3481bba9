"""The one gradient-descent loop: ``fit(feed, optimisation, callbacks, state)``.

Every trainer that takes gradient steps (a fine-tune, a from-scratch baseline) runs it. The loop
only steps and measures; what happens around it (keeping the best weights, checkpoints, the
history file, early stopping, progress and ETA, the non-finite guard) is a ``Callback`` on typed
moments: after each backward pass, after each step, after each epoch. ``FitState`` is everything
the loop has learnt so far, so a resumed run hands the loop the state a checkpoint saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch

from tlstudio.core.engine.distill import distillation_loss
from tlstudio.core.distributed import Together, all_sum
from tlstudio.core.engine.feeds import Loop, LoopContext, Scores
from tlstudio.core.errors import UserError
from tlstudio.core.eta import ActiveTimer


@dataclass
class Optimisation:
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler


@dataclass(frozen=True)
class TrainScores:
    loss: float
    accuracy: float
    seen: int
    seconds: float  # the gradient steps only, pauses left out, for images/s


@dataclass(frozen=True)
class StepInfo:
    epoch: int
    step: int
    steps_per_epoch: int
    loss: torch.Tensor  # the batch's loss, still on the device
    seen: int  # images trained on so far this epoch
    seconds: float  # since the epoch began, pauses left out


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    train: TrainScores
    held: Optional[Scores]  # the selection split (None when classes are too small to hold pictures back)
    val: Scores  # only ever measured
    lr: float
    seconds: float


@dataclass
class FitState:
    """What the loop has done: completed epochs, their history lines, the epoch kept and its weights."""

    epochs: int  # planned
    epoch: int = 0  # completed
    history: list[dict] = field(default_factory=list)
    best_key: Optional[tuple] = None
    best_epoch: int = 0
    best_state: Optional[dict] = None
    last_is_best: bool = False
    stop_reason: Optional[dict] = None  # set by a callback to end the fit after this epoch (early stopping)


class NonFiniteTraining(UserError):
    """The loss or a gradient stopped being a finite number: the run stops before the step is taken."""

    def __init__(self, epoch: int, step: int, what: str, lr: float):
        self.epoch, self.step, self.what = epoch, step, what
        super().__init__(
            f"training stopped at epoch {epoch}, step {step}: the {what} is not a finite number, so the network "
            f"would stop learning and give nonsense. Try a lower learning rate than {lr:g} (for example {lr / 10:g}); "
            "if it happens at the very first step, the backbone's weights file is damaged: import it again."
        )


class Callback:
    def after_backward(self, state: FitState, info: StepInfo, model: torch.nn.Module) -> None:
        """Before the optimiser steps: a callback may raise to keep the step from being taken."""

    def after_step(self, state: FitState, info: StepInfo) -> None: ...

    def after_epoch(self, state: FitState, result: EpochResult) -> None: ...


def fit(ctx: LoopContext, feed: Loop, opt: Optimisation, callbacks: Sequence[Callback], state: FitState, train_mode) -> FitState:
    """Epochs ``state.epoch + 1 .. state.epochs``, unless a callback sets ``state.stop_reason``.

    ``train_mode()`` puts the network in training mode (frozen stages stay in eval mode)."""
    while state.epoch < state.epochs and state.stop_reason is None:
        epoch = state.epoch + 1
        clock = active_timer(ctx)
        train = _train_epoch(ctx, feed, opt, callbacks, state, epoch, train_mode)
        held, val = feed.score_selection(), feed.validate()
        result = EpochResult(epoch, train, held, val, opt.optimizer.param_groups[0]["lr"], clock.seconds())
        state.epoch = epoch
        state.history.append(history_row(result))
        for callback in callbacks:
            callback.after_epoch(state, result)
    return state


def _train_epoch(ctx: LoopContext, feed: Loop, opt: Optimisation, callbacks: Sequence[Callback], state: FitState, epoch: int, train_mode) -> TrainScores:
    steps_per_epoch = feed.steps_per_epoch()
    train_mode()
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
    correct = torch.zeros((), dtype=torch.int64, device=ctx.device)
    seen, clock = 0, active_timer(ctx)
    batches = iter(feed.train_batches(epoch))
    for step in range(1, steps_per_epoch + 1):
        with Together(ctx.ranks, ctx.stop):  # among several processes: one stopped or failed ends all, before the gradients are shared
            x, y, *teacher = next(batches)
            ctx.stop.check()
            logits, loss = _forward(ctx, feed, x, y, teacher)
            if ctx.ranks.active and not bool(torch.isfinite(loss)):
                raise NonFiniteTraining(epoch, step, "loss", ctx.cfg.lr)
        opt.optimizer.zero_grad(set_to_none=True)
        opt.scaler.scale(loss).backward()
        seen += y.shape[0]
        info = StepInfo(epoch, step, steps_per_epoch, loss.detach(), seen * ctx.ranks.world, clock.seconds())
        for callback in callbacks:
            callback.after_backward(state, info, ctx.model)
        opt.scaler.step(opt.optimizer)
        opt.scaler.update()
        opt.scheduler.step()
        loss_sum += loss.detach().double() * y.shape[0]
        correct += (logits.detach().argmax(1) == y).sum()
        for callback in callbacks:
            callback.after_step(state, info)
    seconds = clock.seconds()
    total_loss, total_correct, total_seen = all_sum(ctx.ranks, [float(loss_sum), float(correct), float(seen)])  # every process's share
    return TrainScores(total_loss / max(1, total_seen), total_correct / max(1, total_seen), int(total_seen), seconds)


def _forward(ctx: LoopContext, feed: Loop, x: torch.Tensor, y: torch.Tensor, teacher: list) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.autocast(ctx.device.type, dtype=ctx.amp, enabled=ctx.amp is not None):
        logits = feed.forward_train(x)
        if teacher and ctx.distill is not None:
            return logits, distillation_loss(ctx.criterion, logits.float(), y, teacher[0], ctx.distill)
        return logits, ctx.criterion(logits.float(), y)


def active_timer(ctx: LoopContext) -> ActiveTimer:
    """Seconds of work from now on: a pause (the user's Pause button) is not part of an epoch's time or speed."""
    stop = ctx.stop
    return ActiveTimer(lambda: getattr(stop, "paused_seconds", 0.0))


def history_row(result: EpochResult) -> dict:
    """The epoch's line of history.jsonl."""
    train, held, val = result.train, result.held, result.val
    row = {"epoch": result.epoch, "train_loss": train.loss, "train_acc": train.accuracy}
    if held is not None:
        row.update(sel_loss=held.loss, sel_acc=held.accuracy, sel_balanced_acc=held.balanced_accuracy)
    row.update(val_loss=val.loss, val_acc=val.accuracy, val_balanced_acc=val.balanced_accuracy, lr=result.lr)
    row.update(seconds=round(result.seconds, 3), images_per_s=round(train.seen / max(1e-9, train.seconds), 1))
    return row
