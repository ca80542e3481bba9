"""The fit loop's callbacks on typed epochs: the epoch kept, early stopping, the non-finite guard; JSON without NaN."""

from __future__ import annotations

import json

import pytest
import torch

from tlstudio.core import atomic
from tlstudio.core.engine.callbacks import EarlyStopping, KeepBest, NonFiniteGuard, NonFiniteTraining, default_patience
from tlstudio.core.engine.fit import EpochResult, FitState, StepInfo, TrainScores, history_row
from tlstudio.core.engine.feeds import Scores


def epoch(n: int, sel_acc: float, sel_loss: float = 0.5) -> EpochResult:
    return EpochResult(n, TrainScores(0.4, 0.9, 10, 1.0), Scores(sel_loss, sel_acc, sel_acc), Scores(0.5, 0.8, 0.8), 1e-3, 1.0)


def run_epochs(state: FitState, results, callbacks) -> None:
    for result in results:
        if state.stop_reason is not None:
            break
        state.epoch = result.epoch
        state.history.append(history_row(result))
        for callback in callbacks:
            callback.after_epoch(state, result)


def test_early_stopping_counts_from_the_epoch_kept_on_the_selection_split():
    state = FitState(epochs=10)
    scores = [0.6, 0.8, 0.7, 0.8, 0.9, 0.85, 0.9, 0.9, 0.9, 0.9]
    run_epochs(state, [epoch(i + 1, s) for i, s in enumerate(scores)], [KeepBest(torch.nn.Linear(1, 1), "balanced_accuracy"), EarlyStopping(3)])
    # Epoch 4 ties epoch 2 (same score and loss): not better. Epoch 5 is, and three epochs without better end the run.
    assert state.best_epoch == 5
    assert state.stop_reason == {"kind": "early stopping", "epoch": 8, "best_epoch": 5, "patience": 3}


def test_early_stopping_never_ends_the_last_epoch_nor_a_run_without_a_selection_split():
    state = FitState(epochs=3)
    plain = [EpochResult(i, TrainScores(0.4, 0.9, 10, 1.0), None, Scores(0.5, 0.8, 0.8), 1e-3, 1.0) for i in (1, 2, 3)]
    run_epochs(state, plain, [KeepBest(torch.nn.Linear(1, 1), "accuracy"), EarlyStopping(1)])
    assert state.stop_reason is None and state.best_epoch == 3  # no selection split: the last epoch is kept
    assert default_patience(5) == 3 and default_patience(30) == 10


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_the_guard_stops_before_a_non_finite_step(where):
    model = torch.nn.Linear(2, 2)
    loss = torch.tensor(float("nan")) if where == "loss" else torch.tensor(0.3)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    if where == "gradient":
        model.weight.grad[0, 0] = float("inf")
    with pytest.raises(NonFiniteTraining) as stopped:
        NonFiniteGuard(1e-3, check_gradients=True).after_backward(FitState(5), StepInfo(3, 7, 10, loss, 8, 1.0), model)
    assert (stopped.value.epoch, stopped.value.step, stopped.value.what) == (3, 7, where)


def test_json_files_never_hold_nan_or_infinity(tmp_path):
    atomic.write_json(tmp_path / "m.json", {"loss": float("nan"), "rows": [1.0, float("inf")], "ok": 0.5})
    assert json.loads((tmp_path / "m.json").read_text()) == {"loss": None, "rows": [1.0, None], "ok": 0.5}
    assert "NaN" not in atomic.json_line({"x": float("-inf")})
