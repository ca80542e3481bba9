"""The selection split and the cross-validation folds: inside the training pictures, stratified, seeded, copies kept together."""

from collections import Counter

import numpy as np

from tlstudio.core.engine.selection import grouped_folds, selection_split


def labels_and_digests(counts, duplicates=()):
    labels = [c for c, n in enumerate(counts) for _ in range(n)]
    digests = [f"d{i}" for i in range(len(labels))]
    for a, b in duplicates:  # identical files: the same digest
        digests[b] = digests[a]
    return np.array(labels), digests


def test_selection_holds_back_15_percent_of_each_class_at_least_two_and_never_the_last_two():
    labels, digests = labels_and_digests([100, 20, 4, 3])
    split = selection_split(labels, digests, seed=0)
    held = Counter(labels[list(split.held)].tolist())
    assert held == {0: 15, 1: 3, 2: 2, 3: 1}  # 15%, 15%, the minimum of 2, and a class of 3 keeps 2 to learn from
    assert sorted(split.fit + split.held) == list(range(len(labels)))


def test_selection_is_seeded_and_keeps_identical_files_together():
    labels, digests = labels_and_digests([40, 40], duplicates=[(0, 1), (0, 2), (50, 51)])
    a, b = selection_split(labels, digests, seed=3), selection_split(labels, digests, seed=3)
    assert a == b and a != selection_split(labels, digests, seed=4)
    for group in ((0, 1, 2), (50, 51)):
        sides = {i in a.held for i in group}
        assert len(sides) == 1  # a picture and its copies are all held back or all trained on


def test_folds_are_stratified_and_copies_share_a_fold():
    labels, digests = labels_and_digests([50, 10, 5], duplicates=[(3, 4), (60, 61)])
    fold_of = grouped_folds(labels, digests, seed=0, folds=5)
    assert fold_of[3] == fold_of[4] and fold_of[60] == fold_of[61]
    for c in range(3):
        per_fold = np.bincount(fold_of[labels == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= 2  # each fold holds about a fifth of each class
    assert (grouped_folds(labels, digests, seed=0, folds=5) == fold_of).all()

