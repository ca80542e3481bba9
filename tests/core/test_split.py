"""The split: stratified per class, reproducible from a seed, identical files never straddling two splits."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.core.messy_folder import make_tree
from tlstudio.core.data.scan import scan_folder, stratified_split

SIZES = {"a": 2, "b": 3, "c": 5, "d": 7, "e": 10, "f": 13, "g": 20, "h": 51, "i": 101}


def unique_items(sizes: dict[str, int]) -> tuple[list[str], list[str]]:
    """(class names, digests) with every item distinct."""
    names = [name for name, n in sizes.items() for _ in range(n)]
    return names, [f"{name}-{i}" for i, name in enumerate(names)]


@pytest.mark.parametrize("val_split, test_split", [(0.2, 0.0), (0.2, 0.1), (0.15, 0.15), (0.5, 0.3)])
def test_each_class_is_split_within_one_image_of_the_fractions(val_split, test_split):
    names, digests = unique_items(SIZES)
    splits = stratified_split(names, digests, val_split, test_split, seed=0)
    per_class = Counter(zip(names, splits))
    for name, n in SIZES.items():
        assert abs(per_class[name, "val"] - n * val_split) <= 1, name
        assert abs(per_class[name, "test"] - n * test_split) <= 1, name
        assert per_class[name, "val"] >= 1 and per_class[name, "train"] >= 1, name


def test_exact_counts_follow_rounding():
    names, digests = unique_items({"a": 10, "b": 25, "c": 3})
    per_class = Counter(zip(names, stratified_split(names, digests, 0.2, 0.0, seed=7)))
    assert [per_class[c, "val"] for c in "abc"] == [2, 5, 1]  # 2.5 rounds up; 0.6 rounds to 1


def test_every_class_with_two_images_gets_a_val_image_even_for_a_tiny_fraction():
    names, digests = unique_items({"a": 2, "b": 4, "c": 1})
    splits = stratified_split(names, digests, 0.05, 0.0, seed=1)
    per_class = Counter(zip(names, splits))
    assert per_class["a", "val"] == 1 and per_class["b", "val"] == 1
    assert per_class["c", "train"] == 1  # a single image trains


def test_some_training_images_are_always_left():
    names, digests = unique_items({"a": 2, "b": 3})
    per_class = Counter(zip(names, stratified_split(names, digests, 0.5, 0.45, seed=0)))
    assert per_class["a", "train"] == 1 and per_class["b", "train"] == 1


def test_no_held_out_images_without_fractions():
    names, digests = unique_items(SIZES)
    assert set(stratified_split(names, digests, 0.0, 0.0, seed=0)) == {"train"}


def test_same_seed_same_split_other_seed_other_split():
    names, digests = unique_items(SIZES)
    first = stratified_split(names, digests, 0.2, 0.1, seed=42)
    assert stratified_split(names, digests, 0.2, 0.1, seed=42) == first
    assert stratified_split(names, digests, 0.2, 0.1, seed=43) != first


def test_the_split_depends_on_content_not_on_listing_order():
    names, digests = unique_items(SIZES)
    splits = dict(zip(digests, stratified_split(names, digests, 0.2, 0.1, seed=5)))
    order = list(range(len(names)))
    random.Random(0).shuffle(order)
    shuffled = stratified_split([names[i] for i in order], [digests[i] for i in order], 0.2, 0.1, seed=5)
    assert dict(zip((digests[i] for i in order), shuffled)) == splits


def test_identical_files_always_land_in_one_split():
    names, digests = unique_items({"a": 30, "b": 30})
    digests[1] = digests[2] = digests[3] = digests[0]  # four copies in a
    digests[40] = digests[5]  # one picture in a and in b
    for seed in range(20):
        splits = stratified_split(names, digests, 0.3, 0.2, seed=seed)
        assert len({splits[i] for i in (0, 1, 2, 3)}) == 1
        assert splits[40] == splits[5]


def test_a_class_made_of_copies_still_gets_a_val_image():
    names = ["a"] * 5 + ["b"] * 5
    digests = ["x", "x", "y", "y", "z", "b0", "b1", "b2", "b3", "b4"]
    per_class = Counter(zip(names, stratified_split(names, digests, 0.2, 0.0, seed=0)))
    assert per_class["a", "val"] >= 1 and per_class["a", "train"] >= 1


def test_scan_draws_a_seeded_split_reproducibly(tmp_path):
    make_tree(tmp_path, {"a": 12, "b": 9})
    first = scan_folder(tmp_path, val_split=0.25, seed=1)
    assert first.split_source == "seeded" and first.counts() == {"a": {"train": 9, "val": 3, "test": 0}, "b": {"train": 7, "val": 2, "test": 0}}
    assert scan_folder(tmp_path, val_split=0.25, seed=1).samples == first.samples
    assert [s.split for s in scan_folder(tmp_path, val_split=0.25, seed=2).samples] != [s.split for s in first.samples]


def test_scan_respects_existing_split_folders_whatever_the_seed(tmp_path):
    make_tree(tmp_path, {"train/a": 5, "train/b": 4, "valid/a": 2, "valid/b": 1})
    for seed, val_split in ((0, 0.2), (9, 0.5)):
        index = scan_folder(tmp_path, val_split=val_split, seed=seed)
        assert index.split_source == "folders"
        assert {s.path: s.split for s in index.samples} == {s.path: s.path.split("/")[0].replace("valid", "val") for s in index.samples}
