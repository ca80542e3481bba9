"""Near-duplicates: pairs of pictures that are one shot (resized, recompressed or slightly cropped copies).

Two signals, averaged into one similarity: the cosine of the frozen features, centred on the
folder's mean (a pooled CNN feature is all positive, so unrelated pictures of one folder share
most of their direction, and the mean is that share), and the correlation of 16 x 16 grey
thumbnails of the stored squares (what a copy keeps best: the layout of light and dark).

Measured (tests/bench/bench_quality.py) on generated copies of 50 hymenoptera pictures (resized
to 70%, JPEG quality 40, 5% cropped), no fixed level of similarity separates copies from distinct
pictures: a copy of a wide picture shares only part of the centre square the features see, and
distinct blood cells (one stain, one layout) are as alike as such a copy. What does separate them
is how far a pair stands above each picture's usual neighbours: the similarity minus the mean of
the picture's 2nd to 6th most similar pictures, the smaller of the two pictures' figures. Copies
stood at least 0.30 above, distinct pictures at most 0.19: ``MARGIN`` sits between. In a small
folder a picture's usual neighbours are few and far, so a pair must also reach ``FLOOR`` (copies
measured 0.66 or more). Byte-identical files and pairs above ``SIMILAR`` (a picture with many copies,
whose neighbours are all copies) are reported whatever their margin.

A pair is one of three kinds: in one class and split (a duplicate that weighs twice), across
classes (a label conflict: one of the two labels is wrong) or across splits (leakage: the
validation picture was seen in training). Across classes and splits at once is both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

MARGIN = 0.25  # above the picture's 2nd to 6th neighbours: copies >= 0.30, distinct <= 0.19 (measured)
FLOOR = 0.6  # and at least this similar: in a folder of 50 copies of distinct pictures, two stood 0.25 above at 0.45 and 0.52
SIMILAR = 0.9  # always a near-duplicate: distinct pictures reached 0.78 at most (blood cells)
NEIGHBOURS = (1, 6)  # the ranks (0 = the most similar) whose mean is a picture's usual neighbourhood
BLOCK = 1024  # rows compared at once: memory stays at BLOCK x pictures floats

DUPLICATE, CONFLICT, LEAKAGE = "duplicate", "label conflict", "leakage"


@dataclass(frozen=True)
class NearDuplicate:
    first: str  # paths, relative to the data folder
    second: str
    similarity: float  # the averaged similarity, 1 for identical pictures
    margin: float  # how far above both pictures' usual neighbours
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
    """The rows centred on their mean and scaled to length 1 (a constant row becomes zero)."""
    x = np.asarray(features, dtype=np.float32)
    x = x - x.mean(0, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


def _centred_per_row(thumbs: np.ndarray) -> np.ndarray:
    t = np.asarray(thumbs, dtype=np.float32)
    t = t - t.mean(1, keepdims=True)
    norms = np.linalg.norm(t, axis=1, keepdims=True)
    return t / np.where(norms > 0, norms, 1)


class Similarity:
    """The averaged similarity of every pair, computed by blocks of rows."""

    def __init__(self, features: np.ndarray, thumbnails: np.ndarray):
        self.f = unit_rows(features)
        self.t = _centred_per_row(thumbnails)

    def __len__(self) -> int:
        return len(self.f)

    def block(self, start: int) -> np.ndarray:
        stop = min(len(self), start + BLOCK)
        return 0.5 * (self.f[start:stop] @ self.f.T) + 0.5 * (self.t[start:stop] @ self.t.T)

    def blocks(self):
        for start in range(0, len(self), BLOCK):
            sims = self.block(start)
            sims[np.arange(len(sims)), start + np.arange(len(sims))] = -np.inf  # not one's own neighbour
            yield start, sims


def usual_neighbours(sim: Similarity) -> np.ndarray:
    """Each picture's mean similarity to its 2nd to 6th most similar pictures (fewer when the folder is small)."""
    lo, hi = NEIGHBOURS
    out = np.zeros(len(sim), dtype=np.float32)
    for start, sims in sim.blocks():
        k = min(hi, sims.shape[1] - 1)
        if k <= lo:
            continue
        top = -np.sort(-np.partition(sims, -k, axis=1)[:, -k:], axis=1)
        out[start : start + len(sims)] = top[:, lo:k].mean(1)
    return out


def similar_pairs(
    features: np.ndarray, thumbnails: np.ndarray, digests: Sequence[str] = (), margin: float = MARGIN, floor: float = FLOOR
) -> list[tuple[int, int, float, float]]:
    """Every (i, j, similarity, margin), i < j, that is a near-duplicate; the most similar first."""
    sim = Similarity(features, thumbnails)
    usual = usual_neighbours(sim)
    by_digest: dict[str, list[int]] = {}
    for i, d in enumerate(digests):
        by_digest.setdefault(d, []).append(i)
    identical = {(a, b) for group in by_digest.values() for k, a in enumerate(group) for b in group[k + 1 :]}
    out = []
    for start, sims in sim.blocks():
        above = sims - np.maximum(usual[start : start + len(sims), None], usual[None, :])
        rows, cols = np.nonzero(((above >= margin) & (sims >= floor)) | (sims >= SIMILAR))
        found = {(start + int(r), int(c)) for r, c in zip(rows, cols) if int(c) > start + int(r)}
        found |= {(a, b) for a, b in identical if start <= a < start + len(sims)}
        for i, j in found:
            s, m = float(sims[i - start, j]), float(above[i - start, j])
            out.append((i, j, 1.0 if (i, j) in identical else s, m))
    return sorted(out, key=lambda p: (-p[2], p[0], p[1]))


def near_duplicates(
    features: np.ndarray, thumbnails: np.ndarray, paths: Sequence[str], labels: Sequence[int], splits: Sequence[str], digests: Sequence[str],
    classes: Sequence[str], margin: float = MARGIN,
) -> list[NearDuplicate]:
    return [
        NearDuplicate(
            paths[i], paths[j], round(s, 4), round(m, 4), classes[int(labels[i])], classes[int(labels[j])], splits[i], splits[j], digests[i] == digests[j]
        )
        for i, j, s, m in similar_pairs(features, thumbnails, digests, margin)
    ]
