"""What happens around the fit loop, one job each: the non-finite guard, the epoch kept, early
stopping, checkpoints, the history file and progress with its ETA.

Order matters and is the order ``Trainer`` passes them in: the epoch kept is known before early
stopping counts from it, and the checkpoint of an epoch is on disk before its history line, so
the history never runs ahead of what a resume can restore.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from tlstudio.core.engine.checkpoint import cpu_state
from tlstudio.core.engine.fit import Callback, EpochResult, FitState, NonFiniteTraining, StepInfo
from tlstudio.core.events import EpochEnded, EventCallback, Progress, StepEnded
from tlstudio.core.throttle import Throttle


class NonFiniteGuard(Callback):
    """Checks the loss, and (without a loss scaler, which skips such steps itself) the gradients."""

    def __init__(self, lr: float, check_gradients: bool):
        self.lr, self.check_gradients = lr, check_gradients

    def after_backward(self, state: FitState, info: StepInfo, model: torch.nn.Module) -> None:
        grads = [p.grad for p in model.parameters() if p.grad is not None] if self.check_gradients else []
        finite_loss = torch.isfinite(info.loss)
        # One fused norm per tensor: any NaN or infinity in a gradient makes its norm non-finite.
        finite_grads = torch.isfinite(torch.stack(torch._foreach_norm(grads))).all() if grads else finite_loss
        if bool(finite_loss & finite_grads):
            return
        what = "loss" if not bool(finite_loss) else "gradient"
        raise NonFiniteTraining(info.epoch, info.step, what, self.lr)


def selection_key(held, metric: str, epoch: int) -> tuple:
    """How epochs compare: the selection metric, then the lower loss; without a selection split, the later epoch."""
    return (held.get(metric), -held.loss) if held is not None else (epoch,)


class KeepBest(Callback):
    """The epoch kept is the best on the selection split (never on validation); its weights are copied to the CPU."""

    def __init__(self, model: torch.nn.Module, metric: str):
        self.model, self.metric = model, metric

    def after_epoch(self, state: FitState, result: EpochResult) -> None:
        key = selection_key(result.held, self.metric, result.epoch)
        state.last_is_best = state.best_key is None or key > tuple(state.best_key)
        if state.last_is_best:
            state.best_key, state.best_epoch = key, result.epoch
            state.best_state = cpu_state(self.model)


def default_patience(epochs: int) -> int:
    """Epochs without a better selection score before the run stops: a third of the run, at least 3.

    Long enough that the cosine schedule's last, low-rate epochs still get their chance (they often
    give the best epoch), short enough that a 100-epoch run on a small folder does not idle for 90."""
    return max(3, math.ceil(epochs / 3))


class EarlyStopping(Callback):
    def __init__(self, patience: int):
        self.patience = patience

    def after_epoch(self, state: FitState, result: EpochResult) -> None:
        if result.held is None or self.patience <= 0 or state.epoch >= state.epochs:
            return
        if state.epoch - state.best_epoch >= self.patience:
            state.stop_reason = {
                "kind": "early stopping", "epoch": state.epoch, "best_epoch": state.best_epoch, "patience": self.patience,
            }


class Checkpointing(Callback):
    """``last.pt`` (everything a resume needs) every epoch, then ``best.pt`` when the epoch is the one kept."""

    def __init__(self, save_last: Callable[[FitState], None], save_best: Callable[[FitState], None]):
        self.save_last, self.save_best = save_last, save_best

    def after_epoch(self, state: FitState, result: EpochResult) -> None:
        self.save_last(state)
        if state.last_is_best:
            self.save_best(state)


class HistoryLog(Callback):
    def __init__(self, append: Callable[[dict], None]):
        self.append = append

    def after_epoch(self, state: FitState, result: EpochResult) -> None:
        self.append(state.history[-1])


class ProgressReport(Callback):
    """StepEnded and Progress at most ten times a second, EpochEnded with an ETA from the last three epochs."""

    def __init__(self, emit: EventCallback, steps_per_epoch: int, interval_s: float = 0.1):
        self.emit, self.steps_per_epoch = emit, steps_per_epoch
        self.throttle = Throttle(interval_s)

    def after_step(self, state: FitState, info: StepInfo) -> None:
        if not (self.throttle.ready() or info.step == info.steps_per_epoch):
            return
        self.emit(StepEnded(info.epoch, info.step, info.steps_per_epoch, float(info.loss), info.seen / max(1e-9, info.seconds)))
        total = self.steps_per_epoch * state.epochs
        self.emit(Progress((info.epoch - 1) * self.steps_per_epoch + info.step, total, f"epoch {info.epoch}/{state.epochs}"))

    def after_epoch(self, state: FitState, result: EpochResult) -> None:
        row = state.history[-1]
        recent = [h["seconds"] for h in state.history[-3:]]
        left = 0 if state.stop_reason is not None else state.epochs - state.epoch
        eta = sum(recent) / len(recent) * left
        self.emit(EpochEnded(
            result.epoch, state.epochs, row["train_loss"], row["train_acc"], result.val.loss, result.val.accuracy,
            result.lr, row["images_per_s"], result.seconds, eta, state.last_is_best,
        ))

