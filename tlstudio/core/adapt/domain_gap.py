"""How far apart two domains' features are, in plain words: can a classifier tell the pictures apart?

The measure is a domain classifier's cross-validated balanced accuracy (the run's own convex head, solved
on the features, folds by picture): 50% means the new pictures look like the training pictures to the
network, 100% that they are told apart every time. MMD (RBF kernel, bandwidth the median distance) is
reported beside it. The larger domain is drawn down to the smaller one's size (at most ``MAX_PER_DOMAIN``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import torch

from tlstudio.core.engine.linear_head import fit_linear_head
from tlstudio.core.events import StopToken

MAX_PER_DOMAIN = 500
FOLDS = 3
GRID = (1.0, 0.1, 0.01, 0.001)  # per-row L2 strengths: a measure, not a model to keep, so a short path


@dataclass(frozen=True)
class DomainGap:
    classifier_accuracy: float  # cross-validated balanced accuracy of old vs new pictures: 0.5 alike, 1.0 apart
    mmd: float  # squared maximum mean discrepancy, RBF kernel
    pictures_per_domain: int

    def describe(self) -> str:
        acc = self.classifier_accuracy
        if acc < 0.6:
            words = "the new pictures look like the training pictures to the network"
        elif acc < 0.8:
            words = "the new pictures look somewhat different from the training pictures"
        else:
            words = "the new pictures look clearly different from the training pictures"
        return f"a classifier tells them apart {acc:.0%} of the time (50% = alike): {words}"

    def to_dict(self) -> dict:
        return asdict(self)


def _draw(x: np.ndarray, n: int, seed: int) -> np.ndarray:
    rows = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return np.asarray(x, dtype=np.float32)[rows]


def mmd_rbf(a: np.ndarray, b: np.ndarray) -> float:
    """Biased squared MMD with a Gaussian kernel whose bandwidth is the median pairwise distance of the pooled rows."""
    x = torch.from_numpy(np.concatenate([a, b])).double()
    d2 = torch.cdist(x, x).pow(2)
    median = d2[d2 > 0].median() if (d2 > 0).any() else torch.tensor(1.0, dtype=torch.float64)
    k = torch.exp(-d2 / median)
    n = len(a)
    return float(k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean())


def domain_gap(source: np.ndarray, target: np.ndarray, seed: int = 0, stop: Optional[StopToken] = None) -> DomainGap:
    """The gap between ``source`` and ``target`` features (rows: pictures)."""
    n = min(len(source), len(target), MAX_PER_DOMAIN)
    a, b = _draw(source, n, seed), _draw(target, n, seed + 1)
    scale = a.std(0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    labels = np.repeat([0, 1], n)
    head = fit_linear_head(
        [np.concatenate([a, b])], labels, [f"{d}:{i}" for d in (0, 1) for i in range(n)], 2, class_weights="none",
        metric="balanced_accuracy", seed=seed, stop=stop, folds=min(FOLDS, n), grid=GRID,
    )
    return DomainGap(float(head.chosen.balanced_accuracy), mmd_rbf(a / scale, b / scale), n)
