"""Nothing is chosen on the validation pictures: changing them, or their labels, leaves the trained weights bit-identical.

The validation figure is an untouched estimate only if no choice of the run (the head's L2 strength
and class weighting, the epoch kept) ever looked at it. Here the validation labels are permuted,
and then the validation pictures are replaced by other pictures; a frozen head and a partial
fine-tune each end with exactly the weights of the original run.
"""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.synthetic import colour_image, make_colour_dataset
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.scan import scan_folder
from tlstudio.core.engine.trainer import Trainer


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    root = tmp_path_factory.mktemp("honest")
    data = make_colour_dataset(root / "colours", per_class=16)
    index = scan_folder(data, val_split=0.25, seed=0)
    val = [i for i, s in enumerate(index.samples) if s.split == "val"]

    labels = [index.samples[i].label for i in val]
    permuted = labels[1:] + labels[:1]  # every validation picture gets another one's label
    assert any(a != b for a, b in zip(labels, permuted))
    samples = list(index.samples)
    for i, label in zip(val, permuted):
        samples[i] = replace(samples[i], label=label)
    relabelled = replace(index, samples=samples)

    other = root / "other"
    shutil.copytree(data, other)
    rng = np.random.default_rng(123)
    for i in val:
        colour_image(rng, (120, 120, 120)).save(other / index.samples[i].path, "JPEG")  # grey pictures instead
    split_of = {s.path: s.split for s in index.samples}
    rescanned = scan_folder(other, val_split=0.25, seed=0)
    replaced = replace(rescanned, samples=[replace(s, split=split_of[s.path]) for s in rescanned.samples])
    assert [s.digest for s in replaced.samples if s.split == "val"] != [s.digest for s in index.samples if s.split == "val"]
    return {"original": index, "relabelled": relabelled, "replaced": replaced, "root": root}


def train(indexes, name: str, freeze_depth: str, tag: str):
    index = indexes[name]
    cfg = TrainConfig(data_dir=index.root, freeze_depth=freeze_depth, epochs=3, batch_size=8, image_size=64, export=False, seed=0)
    out = indexes["root"] / f"{tag}-{freeze_depth}-{name}"
    result = Trainer(cfg, out, cache_dir=indexes["root"] / f"cache-{tag}-{name}", index=index).run()
    weights = torch.load(out / "checkpoints" / "best.pt", weights_only=True)["model"]
    return result, weights


@pytest.mark.parametrize("freeze_depth", ["all", "7"])
def test_validation_labels_and_pictures_never_change_the_weights(indexes, freeze_depth):
    original, weights = train(indexes, "original", freeze_depth, "a")
    for other in ("relabelled", "replaced"):
        result, other_weights = train(indexes, other, freeze_depth, "a")
        assert other_weights.keys() == weights.keys()
        assert all(torch.equal(weights[k], other_weights[k]) for k in weights), other
        assert result.summary["best_epoch"] == original.summary["best_epoch"]
        assert result.summary["head_fit"]["l2"] == original.summary["head_fit"]["l2"]
        assert result.summary["class_weighting"] == original.summary["class_weighting"]
    assert original.summary["selection"]["method"] == ("cross-validation" if freeze_depth == "all" else "selection split")


def test_two_runs_with_the_same_seed_give_the_same_figures(indexes):
    first, weights = train(indexes, "original", "all", "b")
    again, weights_again = train(indexes, "original", "all", "c")
    assert first.metrics == again.metrics
    assert all(torch.equal(weights[k], weights_again[k]) for k in weights)
