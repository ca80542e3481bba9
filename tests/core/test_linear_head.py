"""The frozen head as the convex problem it is: solved to the reference optimum, chosen by grouped cross-validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tlstudio.core.events import Cancelled, StopToken
from tlstudio.core.engine.linear_head import fit_linear_head
from tlstudio.core.report.metrics import accuracy_scores


def blobs(rng, counts, d=16, spread=1.0, offset=0.0):
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    centres = np.eye(len(counts), d) * 2.0
    return (centres[labels] * spread + offset + rng.normal(size=(len(labels), d))).astype(np.float32), labels


def predict(head, x):
    return x @ head.weight.T + head.bias


def test_the_fit_reaches_the_optimum_a_reference_solver_finds():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    x, y = blobs(rng, [120, 90, 60], offset=3.0)  # raw features off-centre: the standardisation must be folded in right
    l2 = 0.01
    head = fit_linear_head([x], y, [str(i) for i in range(len(y))], 3, class_weights="none", grid=(l2,), folds=3)
    mean, std = x.mean(0), x.std(0)
    ref = sklearn.LogisticRegression(C=1 / (l2 * len(y)), tol=1e-10, max_iter=10_000).fit((x - mean) / std, y)
    ours = torch.softmax(torch.from_numpy(predict(head, x)), 1).numpy()
    assert np.abs(ours - ref.predict_proba((x - mean) / std)).max() < 2e-3
    assert head.converged and head.weighting == "none" and head.l2 == l2

    linear = nn.Linear(16, 3)
    head.load_into(linear)  # the exported head gives the same logits on raw features
    assert torch.allclose(linear(torch.from_numpy(x)), torch.from_numpy(predict(head, x)), atol=1e-4)


def test_on_imbalanced_classes_balanced_accuracy_chooses_a_correction_that_pays_off():
    rng = np.random.default_rng(1)
    x, y = blobs(rng, [400, 20], spread=0.6)
    test_x, test_y = blobs(rng, [2000, 2000], spread=0.6)
    digests = [str(i) for i in range(len(y))]
    auto = fit_linear_head([x], y, digests, 2)
    plain = fit_linear_head([x], y, digests, 2, class_weights="none")
    assert auto.weighting in ("balanced", "prior") and {c.weighting for c in auto.candidates} == {"none", "balanced", "prior"}
    _, auto_bal = accuracy_scores(test_y, predict(auto, test_x).argmax(1))
    _, plain_bal = accuracy_scores(test_y, predict(plain, test_x).argmax(1))
    assert auto_bal > plain_bal + 0.03


def test_the_views_of_a_picture_are_never_on_both_sides_of_a_fold():
    rng = np.random.default_rng(2)
    x, y = blobs(rng, [60, 60])
    y[0] = 1  # a class-0 picture filed under class 1
    views = [x] + [x + 0.01 * rng.normal(size=x.shape).astype(np.float32) for _ in range(4)]  # near-copies of each picture
    head = fit_linear_head(views, y, [str(i) for i in range(len(y))], 2, class_weights="none", grid=(1e-4,))
    assert head.rows == 5 * 120
    # Had its other views been in the training part of its fold, the weakly regularised head would have
    # learnt the wrong label from them; out of fold, it is told the picture looks like class 0.
    assert head.oof_probs[0, 1] < 0.5


def test_a_stop_request_ends_the_fit():
    rng = np.random.default_rng(3)
    x, y = blobs(rng, [30, 30])
    stop = StopToken()
    stop.stop()
    with pytest.raises(Cancelled):
        fit_linear_head([x], y, [str(i) for i in range(len(y))], 2, stop=stop)
