"""Suspected wrong labels: confident learning on out-of-fold probabilities of the frozen-feature head.

The probabilities are the linear head's (``engine.linear_head``) out-of-fold ones: each training
picture is scored by a head fitted on the folds it is not in (stratified, seeded, identical files
kept in one fold), with the L2 strength and class weighting that cross-validation chooses.

``find_label_issues`` is confident learning (Northcutt et al., 2021) as cleanlab's
``filter.find_label_issues`` computes it by default (``filter_by="prune_by_noise_rate"``), so that a
test can show the two select the same pictures:

1. per-class thresholds: the mean probability of class k over the pictures labelled k;
2. the confident joint: each picture whose probability reaches the threshold of some class counts
   under (its label, that class; the arg-max when several reach theirs), calibrated to the label counts;
3. prune by noise rate: for each off-diagonal count (given k, true j), that many pictures labelled k
   with the largest margin p(j) - p(k) are issues; a picture whose own label is the arg-max never is;
4. ranked by self-confidence, p(given label), lowest first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from tlstudio.core.engine.linear_head import fit_linear_head
from tlstudio.core.events import StopToken

EPS = 1e-6  # cleanlab's floating point comparison
THRESHOLD_FLOOR = 2 * EPS


@dataclass(frozen=True)
class Suspect:
    """A training picture whose folder label the model doubts."""

    path: str
    label: str  # the folder it is in
    predicted: str  # the model's answer
    confidence: float  # the model's probability of its answer
    label_probability: float  # the model's probability of the folder label (the ranking key)

    def to_dict(self) -> dict:
        return asdict(self)


def out_of_fold_probs(
    features: np.ndarray, labels: np.ndarray, digests: Sequence[str], num_classes: int, seed: int = 0,
    stop: Optional[StopToken] = None, on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> np.ndarray:
    """(pictures, classes): each picture's probabilities from the head fitted without its fold."""
    head = fit_linear_head([features], labels, digests, num_classes, seed=seed, stop=stop, on_progress=on_progress)
    return head.oof_probs


def confident_thresholds(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    k = probs.shape[1]
    means = [probs[labels == c, c].mean() if np.any(labels == c) else 2.0 for c in range(k)]
    return np.clip(np.asarray(means, dtype=np.float64), THRESHOLD_FLOOR, None)


def confident_joint(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """(given, true) counts of the confidently counted pictures, calibrated to the label counts; integers."""
    k = probs.shape[1]
    above = probs >= confident_thresholds(labels, probs) - EPS
    confident = above.sum(1)
    guess = np.where(confident > 1, probs.argmax(1), above.argmax(1))
    counted = confident > 0
    joint = np.zeros((k, k), dtype=np.int64)
    np.add.at(joint, (labels[counted], guess[counted]), 1)
    np.fill_diagonal(joint, np.maximum(joint.diagonal(), 1))
    counts = np.bincount(labels, minlength=k)
    calibrated = joint / np.clip(joint.sum(1), 1e-100, None)[:, None] * counts[:, None]
    calibrated = calibrated / max(calibrated.sum(), 1e-100) * counts.sum()
    return _round_rows(calibrated)


def _round_preserving_sum(row: np.ndarray) -> np.ndarray:
    ints = row.round()
    target = np.sum(row).round()
    total = np.sum(ints).round()
    while abs(total - target) > EPS:
        diff = np.round(target - total)
        step = -1 if diff < 0 else 1
        changes = min(int(abs(diff)), len(row))
        for i in np.argsort(row - ints)[::-step][:changes]:
            ints[i] += step
        total = np.sum(ints).round()
    return ints.astype(np.int64)


def _round_rows(matrix: np.ndarray) -> np.ndarray:
    return np.stack([_round_preserving_sum(np.asarray(r, dtype=float)) for r in matrix])


def _prune_counts(joint: np.ndarray, min_per_class: int = 1) -> np.ndarray:
    """(true, given) pictures to prune: the joint transposed, each class keeping at least ``min_per_class``."""
    m = joint.T.astype(float)
    diagonal = m.diagonal().copy()
    raised = np.maximum(diagonal, min_per_class)
    off_diagonal = np.maximum(np.count_nonzero(m, axis=0) - 1.0, 1.0)
    m = m - (raised - diagonal) / off_diagonal
    m[m < 0] = 0
    np.fill_diagonal(m, raised)
    return _round_rows(m.astype(int))


def find_label_issues(labels: np.ndarray, probs: np.ndarray, min_per_class: int = 1) -> np.ndarray:
    """Positions of the suspected wrong labels, the least confident in their label first."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    prune = _prune_counts(confident_joint(labels, probs), min_per_class)
    issue = np.zeros(len(labels), dtype=bool)
    for given in range(probs.shape[1]):
        members = np.flatnonzero(labels == given)
        if len(members) <= min_per_class:
            continue
        for true in range(probs.shape[1]):
            n = int(prune[true, given])
            if true != given and n > 0:
                margin = probs[members, true] - probs[members, given]
                issue[members[np.argsort(-margin)[:n]]] = True
    bumped = probs.copy()
    bumped[np.arange(len(labels)), labels] += EPS
    issue[bumped.argmax(1) == labels] = False  # the model agrees with the folder: never a suspect
    found = np.flatnonzero(issue)
    return found[np.argsort(probs[found, labels[found]], kind="stable")]


def suspects(paths: Sequence[str], labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> list[Suspect]:
    """The suspected wrong labels among ``paths``, ranked (least confident in their label first)."""
    out = []
    for i in find_label_issues(labels, probs):
        answer = int(probs[i].argmax())
        out.append(Suspect(paths[i], classes[int(labels[i])], classes[answer], float(probs[i, answer]), float(probs[i, labels[i]])))
    return out
