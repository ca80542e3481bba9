"""What to label next: the unsure pictures first, and not ten near-copies of the same one."""

from __future__ import annotations

import numpy as np
import pytest

from tlstudio.core.errors import UserError
from tlstudio.core.quality.active import rank_for_labelling


def blobs(rng, centres, n, spread=0.3):
    x = np.concatenate([c + spread * rng.standard_normal((n, len(c))) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(len(centres)), n)


def test_unsure_pictures_come_first_and_near_copies_are_picked_once():
    rng = np.random.default_rng(0)
    centres = np.eye(3, 16, dtype=np.float32) * 4
    labelled, labels = blobs(rng, centres, 8)
    clear, _ = blobs(rng, centres, 30)  # far inside a class: nothing to learn from their labels
    between = (centres[0] + centres[1]) / 2
    copies = between + 0.001 * rng.standard_normal((10, 16)).astype(np.float32)  # one unsure picture, ten times
    others = np.stack([(centres[i] + centres[j]) / 2 + 0.3 * rng.standard_normal(16) for i, j in ((0, 2), (1, 2), (0, 2), (1, 2))]).astype(np.float32)
    pool = np.concatenate([clear, copies, others])
    digests = [f"d{i}" for i in range(len(labelled))]
    ranked = rank_for_labelling(labelled, labels, digests, pool, 3, k=6)
    positions = [r.position for r in ranked]
    copy_rows = set(range(len(clear), len(clear) + len(copies)))
    other_rows = set(range(len(clear) + len(copies), len(pool)))
    assert len(positions) == len(set(positions)) == 6
    assert sum(p in copy_rows for p in positions) == 1  # the spread: one of the copies, not ten
    assert other_rows <= set(positions)  # every other unsure picture makes the top six
    assert not set(positions[:5]) & set(range(len(clear)))  # the sure ones wait


def test_one_labelled_class_is_not_enough_to_rank():
    x = np.zeros((4, 8), np.float32)
    with pytest.raises(UserError):
        rank_for_labelling(x, np.zeros(4, dtype=np.int64), ["a", "b", "c", "d"], x, 2)


def test_labels_of_new_pictures_are_kept_and_copies_never_overwrite_another_picture(tmp_path):
    from tlstudio.core.quality import new_labels as nl

    a, b = tmp_path / "day1" / "x.jpg", tmp_path / "day2" / "x.jpg"  # two pictures of the same name
    for path, content in ((a, b"first"), (b, b"second")):
        path.parent.mkdir()
        path.write_bytes(content)
    project = tmp_path / "P.tlstudio"
    project.mkdir()
    nl.save_labels(project, {str(a): "ants", str(b): "ants"})
    labels = nl.load_labels(project)
    assert labels == {str(a): "ants", str(b): "ants"}
    copies = nl.copy_labelled(project, labels)
    assert sorted(p.read_bytes() for p in copies) == [b"first", b"second"] and len(set(copies)) == 2
    assert nl.copy_labelled(project, labels) == copies  # asked again: nothing copied twice
    assert a.read_bytes() == b"first" and b.read_bytes() == b"second"
