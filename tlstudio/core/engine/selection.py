"""Where choices are made: the selection split and the cross-validation folds, both inside the training pictures.

The validation (and test) pictures are only ever measured. Every choice a run makes (the
epoch kept, the L2 strength and the class weighting of a head, later a temperature or a
threshold) is made on pictures held back from the training split, so the validation
figure stays an untouched estimate:

- the **selection split**: a stratified, seeded slice of the training pictures (15% by
  default, at least 2 per class, identical files kept together) that a fine-tune does not
  train on and picks its best epoch on;
- **cross-validation folds**: the training pictures of a frozen head's fit in k groups,
  stratified and seeded, every view of a picture (and every copy of an identical file) in
  the same fold.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tlstudio.core.data.scan import identical_groups_by_class

SELECTION_FRACTION = 0.15
SELECTION_MIN_PER_CLASS = 2
FOLDS = 5


@dataclass(frozen=True)
class SelectionSplit:
    """Positions (into the training rows) that train, and those held back to choose on."""

    fit: tuple[int, ...]
    held: tuple[int, ...]
    fraction: float
    seed: int


def _groups_by_class(labels: Sequence[int], digests: Sequence[str]) -> dict[int, list[list[int]]]:
    return identical_groups_by_class([int(label) for label in labels], digests)


def _shuffled(groups: list[list[int]], seed: int, purpose: str, label: int) -> list[list[int]]:
    out = list(groups)
    random.Random(f"{purpose}/{seed}/{label}").shuffle(out)  # str seeds hash with SHA-512: stable everywhere
    return out


def selection_split(labels: Sequence[int], digests: Sequence[str], seed: int, fraction: float = SELECTION_FRACTION) -> SelectionSplit:
    """Hold back ``fraction`` of each class (at least 2 images, never the class's last 2) to choose on."""
    held: list[int] = []
    for label, groups in sorted(_groups_by_class(labels, digests).items()):
        total = sum(len(g) for g in groups)
        want = max(SELECTION_MIN_PER_CLASS, int(np.floor(total * fraction + 0.5)))
        want = min(want, total - SELECTION_MIN_PER_CLASS)  # a class keeps at least 2 images to learn from
        taken = 0
        for group in _shuffled(groups, seed, "selection", label):
            if taken + len(group) <= want:
                held += group
                taken += len(group)
    held_set = set(held)
    fit = tuple(i for i in range(len(labels)) if i not in held_set)
    return SelectionSplit(fit=fit, held=tuple(sorted(held)), fraction=fraction, seed=seed)


def grouped_folds(labels: Sequence[int], digests: Sequence[str], seed: int, folds: int = FOLDS) -> np.ndarray:
    """The fold (0..folds-1) of each position: per class, its groups of identical files dealt round-robin
    after a seeded shuffle, so every fold holds about 1/folds of each class."""
    fold_of = np.zeros(len(labels), dtype=np.int64)
    start = 0  # rotate where each class starts dealing, so small classes do not all pile into fold 0
    for label, groups in sorted(_groups_by_class(labels, digests).items()):
        for j, group in enumerate(_shuffled(groups, seed, "folds", label)):
            fold_of[group] = (start + j) % folds
        start += len(groups)
    return fold_of
