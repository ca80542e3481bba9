"""What a checkpoint holds, and how a run is put back exactly where its last checkpoint left it.

``last.pt`` holds everything the next epoch depends on: the weights, the optimiser, the schedule,
the AMP loss scaler, every random generator torch draws from, and the fit state (history, the epoch
kept and its comparison key, an early stop). The feed has no position of its own to save: each
epoch's order, views and augmentations are drawn from ``(seed, epoch)``, so epoch k+1 of a resumed
run gets exactly the batches of the uninterrupted run's epoch k+1.

Everything is plain tensors, numbers, strings, lists and dicts, so ``torch.load(weights_only=True)``
reads it: a checkpoint is data, never a pickle that could run code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch

from tlstudio.core.engine.fit import FitState, Optimisation
from tlstudio.core.errors import UserError

FORMAT = "tlstudio-checkpoint-2"  # 1 had no scaler, random generators of CUDA or fit state: it cannot resume


def cpu_state(model: torch.nn.Module, copy: bool = True) -> dict:
    """The model's tensors on the CPU; ``copy`` False only where they are saved at once (on the CPU they are the model's own)."""
    return {k: (v.detach().cpu().clone() if copy else v.detach().cpu()) for k, v in model.state_dict().items()}


def training_checkpoint(model: torch.nn.Module, opt: Optional[Optimisation], state: FitState, config: dict, classes: list[str]) -> dict:
    """``last.pt``: the run after ``state.epoch`` completed epochs (``opt`` None: a solved head, nothing to resume)."""
    return {
        "format": FORMAT,
        "epoch": state.epoch,
        "epochs": state.epochs,
        "best_epoch": state.best_epoch,
        "best_key": list(state.best_key) if state.best_key is not None else None,
        "stop_reason": state.stop_reason,
        "history": state.history,
        "model": cpu_state(model, copy=False),
        "optimizer": opt.optimizer.state_dict() if opt is not None else None,
        "scheduler": opt.scheduler.state_dict() if opt is not None else None,
        "scaler": opt.scaler.state_dict() if opt is not None else None,
        "rng": random_states(),
        "config": config,
        "classes": classes,
    }


def best_checkpoint(state: FitState, config: dict, classes: list[str]) -> dict:
    return {"format": FORMAT, "epoch": state.best_epoch, "model": state.best_state, "config": config, "classes": classes}


def random_states() -> dict:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def resumable(last: dict, where: Path) -> None:
    """Refuse, with what to do, a checkpoint this run cannot continue from."""
    if last.get("format") != FORMAT:
        raise UserError(f"'{where}' was written by an older tlstudio and cannot be continued; start the run again.")
    if last.get("optimizer") is None:
        raise UserError(f"'{where}' holds a head solved in one fit, not an epoch to continue from: the run is complete.")


def restore_training(last: dict, best: Optional[dict], model: torch.nn.Module, opt: Optimisation, where: Path) -> FitState:
    """Load ``last`` (and the kept epoch's weights from ``best``) into the model and optimisation; return the fit state."""
    resumable(last, where)
    model.load_state_dict(last["model"])
    opt.optimizer.load_state_dict(last["optimizer"])
    opt.scheduler.load_state_dict(last["scheduler"])
    if last.get("scaler"):
        opt.scaler.load_state_dict(last["scaler"])
    restore_random_states(last["rng"])
    state = FitState(int(last["epochs"]), int(last["epoch"]), list(last["history"]), None, int(last["best_epoch"]))
    state.best_key = tuple(last["best_key"]) if last.get("best_key") is not None else None
    state.stop_reason = last.get("stop_reason")
    state.best_state = kept_weights(last, best, where)
    return state


def kept_weights(last: dict, best: Optional[dict], where: Path) -> dict:
    """The kept epoch's weights: ``last.pt``'s own when it is the kept epoch (``best.pt`` is written after it)."""
    if last["best_epoch"] == last["epoch"]:
        return last["model"]
    if best is None or best.get("epoch") != last["best_epoch"]:
        raise UserError(f"'{where.parent / 'best.pt'}' does not hold epoch {last['best_epoch']}, the one kept; start the run again.")
    return best["model"]
