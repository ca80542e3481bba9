"""Near-duplicates: pairs of pictures whose frozen features point the same way (cosine similarity).

The features are centred on the folder's mean before the cosine: a pooled CNN feature is all
positive, so two unrelated pictures of one folder already share most of their direction, and the
mean is what they share. ``THRESHOLD`` comes from measurement (tests/bench/bench_quality.py):
generated copies of hymenoptera pictures (resized to 70%, JPEG quality 40, 5% crop) against every
pair of distinct pictures of hymenoptera and of the blood cells.

A pair is reported as one of three kinds: in one class and split (a duplicate that weighs twice),
across classes (a label conflict: one of the two labels is wrong) or across splits (leakage: the
validation picture was seen in training). Across classes and splits at once counts as a conflict
and as leakage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

THRESHOLD = 0.90  # centred cosine similarity at or above which two pictures are near-duplicates
BLOCK = 2048  # rows compared at once: memory stays at BLOCK x pictures floats

DUPLICATE, CONFLICT, LEAKAGE = "duplicate", "label conflict", "leakage"


@dataclass(frozen=True)
class NearDuplicate:
    first: str  # paths, relative to the data folder
    second: str
    similarity: float
    first_label: str
    second_label: str
    first_split: str
    second_split: str
    identical: bool  # the same bytes (the scan already named these)

    @property
    def cross_class(self) -> bool:
        return self.first_label != self.second_label

    @property
    def cross_split(self) -> bool:
        return self.first_split != self.second_split

    @property
    def kinds(self) -> tuple[str, ...]:
        kinds = ((CONFLICT,) if self.cross_class else ()) + ((LEAKAGE,) if self.cross_split else ())
        return kinds or (DUPLICATE,)

    def to_dict(self) -> dict:
        return {**asdict(self), "kinds": list(self.kinds)}


def unit_rows(features: np.ndarray) -> np.ndarray:
    """The features centred on their mean and scaled to length 1 (a zero row stays zero)."""
    x = np.asarray(features, dtype=np.float32)
    x = x - x.mean(0, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


def similar_pairs(features: np.ndarray, threshold: float = THRESHOLD) -> list[tuple[int, int, float]]:
    """Every (i, j, similarity) with i < j and a centred cosine similarity >= ``threshold``, most similar first."""
    x = unit_rows(features)
    out: list[tuple[int, int, float]] = []
    for start in range(0, len(x), BLOCK):
        sims = x[start : start + BLOCK] @ x.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows, cols):
            i = start + int(r)
            if int(c) > i:
                out.append((i, int(c), float(sims[r, c])))
    return sorted(out, key=lambda p: (-p[2], p[0], p[1]))


def max_similarity_to_others(features: np.ndarray) -> np.ndarray:
    """Each picture's highest centred cosine similarity to any other picture (for measurement)."""
    x = unit_rows(features)
    best = np.full(len(x), -1.0, dtype=np.float32)
    for start in range(0, len(x), BLOCK):
        sims = x[start : start + BLOCK] @ x.T
        sims[np.arange(len(sims)), start + np.arange(len(sims))] = -1.0
        best[start : start + len(sims)] = sims.max(1)
    return best


def near_duplicates(
    features: np.ndarray, paths: Sequence[str], labels: Sequence[int], splits: Sequence[str], digests: Sequence[str],
    classes: Sequence[str], threshold: float = THRESHOLD,
) -> list[NearDuplicate]:
    return [
        NearDuplicate(
            paths[i], paths[j], round(s, 4), classes[int(labels[i])], classes[int(labels[j])], splits[i], splits[j], digests[i] == digests[j]
        )
        for i, j, s in similar_pairs(features, threshold)
    ]
