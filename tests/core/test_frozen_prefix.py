"""The frozen-prefix cache: a partly frozen backbone runs its frozen stages once per view, then only the rest."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from torch import nn

from tests.recorder import Recorder
from tests.synthetic import colour_image, make_colour_dataset
from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.plan import CACHE_OFF, IMAGES, PREFIX, PREFIX_NOT_CACHED
from tlstudio.core.catalog.frozen_prefix import FLATTEN, prefix_cache_fits, run_chain, split_chain, stage_of
from tlstudio.core.engine import trainer as training_module
from tlstudio.core.engine.trainer import Trainer



CHAINED = [spec.name for spec in bb.list_backbones() if spec.chain]


def test_every_cnn_has_a_chain_and_vit_has_none():
    assert set(CHAINED) == {spec.name for spec in bb.list_backbones() if spec.is_cnn}
    vit = bb.get_backbone("vit_b_16")
    assert all(split_chain(vit, depth) is None for depth in range(len(vit.stages) + 1))


@pytest.mark.parametrize("name", CHAINED)
def test_the_chain_is_the_backbone_and_splits_at_every_stage_boundary(name):
    spec = bb.get_backbone(name)
    torch.manual_seed(0)
    backbone = build_backbone(name, pretrained=False).eval()
    s = max(64, spec.min_input_size)  # Inception-v3 needs 75 px
    x = torch.randn(2, 3, s, s)
    with torch.no_grad():
        assert torch.equal(run_chain(backbone, spec.chain, x), backbone(x))

    # Every parameter lives in one chain item, and the items visit the stages in order.
    # Items that are modules; a method such as Inception's _transform_input holds no parameters.
    items = [item for item in spec.chain if item != FLATTEN and isinstance(bb.resolve(backbone.body, item), nn.Module)]
    owned = {n for item in items for n, _ in bb.resolve(backbone.body, item).named_parameters(prefix=item)}
    assert owned == {n for n, _ in backbone.body.named_parameters()}
    stages = [stage_of(spec, item) for item in items if any(True for _ in bb.resolve(backbone.body, item).parameters())]
    assert None not in stages and stages == sorted(stages)

    for depth in range(1, len(spec.stages)):
        split = split_chain(spec, depth)
        assert split.prefix + split.suffix == spec.chain
        bb.apply_freeze(backbone, depth)
        params = lambda part: [p for item in part if item in items for p in bb.resolve(backbone.body, item).parameters()]  # noqa: E731
        assert params(split.prefix) and not any(p.requires_grad for p in params(split.prefix))
        assert all(p.requires_grad for p in params(split.suffix))
        with torch.no_grad():
            assert torch.equal(run_chain(backbone, split.suffix, run_chain(backbone, split.prefix, x)), backbone(x))
    assert split_chain(spec, 0) is None and split_chain(spec, len(spec.stages)) is None


def test_a_prefix_whose_output_outweighs_the_image_is_not_cached():
    backbone = build_backbone("efficientnet_lite0", pretrained=False)
    spec = backbone.spec
    stem_only, most = split_chain(spec, 1), split_chain(spec, 7)  # 32 x 112 x 112 vs 192 x 7 x 7 at 224 px
    fits, why = prefix_cache_fits(backbone, stem_only, 224, 100, torch.device("cpu"))
    assert not fits and "KiB per image" in why
    assert prefix_cache_fits(backbone, most, 224, 100, torch.device("cpu")) == (True, "")
    fits, why = prefix_cache_fits(backbone, most, 224, 10**7, torch.device("cpu"))
    assert not fits and "GiB" in why


# ------------------------------------------------------------------ through the Trainer


@pytest.fixture
def colours(tmp_path) -> Path:
    return make_colour_dataset(tmp_path / "colours", per_class=12)


def partial_config(data: Path, **kw) -> TrainConfig:
    base = dict(data_dir=str(data), backbone="efficientnet_lite0", freeze_depth="7", epochs=3, batch_size=8, image_size=64, export=False, augment="light")
    return TrainConfig(**{**base, **kw})


def feature_files(cache: Path) -> set[str]:
    return {p.name for p in (cache / "features").glob("*.npy")}


class KeepsInitialWeights(Trainer):
    def build_model(self, num_classes):
        model = super().build_model(num_classes)
        self.initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return model


def test_partial_run_trains_only_the_trainable_stages_on_the_cached_prefix_and_exports_a_verified_model(colours, tmp_path):
    events = Recorder()
    trainer = KeepsInitialWeights(partial_config(colours, epochs=8, export=True), tmp_path / "run", cache_dir=tmp_path / "cache")
    result = trainer.run(events)

    # the prefix's output cached, then the new head solved on the pooled features, then the epochs
    assert events.phases() == ["scanning", "decoding", "caching features", "fitting the head", "training", "evaluating", "exporting"]
    assert result.plan.feed == PREFIX and result.plan.views == 5 and result.plan.warm_start and result.summary["head_fit"]["converged"]
    n_train = sum(1 for s in trainer.index.samples if s.split == "train")
    n_val = sum(1 for s in trainer.index.samples if s.split == "val")
    assert events.phase_total("caching features") == 5 * n_train + n_val  # the light preset's 5 views, then the validation crops
    assert result.summary["prefix_cache"] and not result.summary["feature_cache"]
    assert result.metrics["accuracy"] >= 0.9
    assert result.summary["export"]["verified"] and result.summary["export"]["agreement"] >= 0.99

    best = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=True)["model"]
    frozen = [k for k in best if k.startswith("backbone.body.") and k.split(".")[2] in ("conv_stem", "bn1", "blocks") and not k.startswith("backbone.body.blocks.6")]
    trained = [k for k in best if k.startswith(("backbone.body.blocks.6.", "backbone.body.conv_head.")) and k.endswith("weight")]
    assert frozen and all(torch.equal(best[k], trainer.initial[k]) for k in frozen)  # BatchNorm statistics included
    assert trained and all(not torch.equal(best[k], trainer.initial[k]) for k in trained)


def test_cached_prefix_predictions_match_the_whole_network_on_images(colours, tmp_path):
    """What evaluation reports (suffix on cached float16 prefix outputs) is what the model gives on the images."""
    loops = []

    class Spy(training_module.CachedLoop):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            loops.append(self)

    with mock.patch.object(training_module, "CachedLoop", Spy):
        Trainer(partial_config(colours, epochs=2), tmp_path / "run", cache_dir=tmp_path / "cache").run()
    loop = loops[0]
    cached = loop.predict_rows(loop.val_rows, cached_val=True)
    from_images = loop.predict_rows(loop.val_rows, cached_val=False)  # the image path, the whole network
    assert cached.shape == from_images.shape == (len(loop.val_rows), 3)
    assert np.abs(cached - from_images).max() < 0.02
    assert (cached.argmax(1) == from_images.argmax(1)).all()


def test_prefix_cache_is_reused_extended_and_invalidated(colours, tmp_path):
    cache = tmp_path / "cache"
    first = Recorder()
    r1 = Trainer(partial_config(colours, epochs=2), tmp_path / "run1", cache_dir=cache).run(first)
    files = feature_files(cache)
    assert len(files) == 3  # two views (two epochs) and the validation crops; the warm start's pooled features come from view 0

    again = Recorder()  # the same run: nothing is computed again, and the result is the same
    r2 = Trainer(partial_config(colours, epochs=2), tmp_path / "run2", cache_dir=cache).run(again)
    assert "caching features" not in again.phases() and "decoding" not in again.phases()
    assert r2.summary["cache_reused"] and not r1.summary["cache_reused"]
    assert r1.metrics["confusion_matrix"] == r2.metrics["confusion_matrix"]
    assert feature_files(cache) == files

    longer = Recorder()  # more epochs: the views already cached are reused, only the new ones are computed
    index = Trainer(partial_config(colours), tmp_path / "probe", cache_dir=cache)._dataset()
    n_train = sum(1 for s in index.samples if s.split == "train")
    Trainer(partial_config(colours, epochs=4), tmp_path / "run3", cache_dir=cache).run(longer)
    assert longer.phase_total("caching features") == 2 * n_train

    deeper = Recorder()  # another freeze depth runs other layers: its own cache
    r4 = Trainer(partial_config(colours, freeze_depth="8", epochs=1), tmp_path / "run4", cache_dir=cache).run(deeper)
    assert "caching features" in deeper.phases() and r4.plan.feed == PREFIX and not r4.summary["cache_reused"]

    victim = sorted((colours / "red").iterdir())[0]  # a changed file: new pixels, new prefix outputs
    colour_image(np.random.default_rng(99), (10, 10, 10)).save(victim, "JPEG")
    changed = Recorder()
    Trainer(partial_config(colours, epochs=2), tmp_path / "run5", cache_dir=cache).run(changed)
    assert "decoding" in changed.phases() and "caching features" in changed.phases()

    other = Recorder()  # another backbone
    r6 = Trainer(partial_config(colours, backbone="mobilenet_v3_small", freeze_depth="5", epochs=1), tmp_path / "run6", cache_dir=cache, pretrained=False).run(other)
    assert "caching features" in other.phases() and r6.plan.feed == PREFIX and not r6.summary["cache_reused"]


def test_no_cache_runs_every_stage_every_epoch(colours, tmp_path):
    events = Recorder()
    result = Trainer(partial_config(colours, epochs=1, feature_cache=False), tmp_path / "run", cache_dir=tmp_path / "cache").run(events)
    assert "caching features" not in events.phases() and (result.plan.feed, result.plan.feed_reason) == (IMAGES, CACHE_OFF)
    assert not result.summary["prefix_cache"] and not feature_files(tmp_path / "cache")
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["prefix_cache"] is False


def test_a_prefix_too_large_to_cache_runs_every_epoch_and_says_why(colours, tmp_path):
    events = Recorder()
    cfg = replace(partial_config(colours, epochs=1), freeze_depth="1")  # the stem alone: its output outweighs the image
    result = Trainer(cfg, tmp_path / "run", cache_dir=tmp_path / "cache").run(events)
    assert (result.plan.feed, result.plan.feed_reason) == (IMAGES, PREFIX_NOT_CACHED) and result.plan.feed_detail
    assert not result.summary["prefix_cache"]


def test_a_damaged_cache_file_is_computed_again_and_nothing_else(colours, tmp_path):
    cache = tmp_path / "cache"
    r1 = Trainer(partial_config(colours, epochs=2), tmp_path / "run1", cache_dir=cache).run()
    index = Trainer(partial_config(colours), tmp_path / "probe", cache_dir=cache)._dataset()
    sizes = {sum(1 for s in index.samples if s.split == split) for split in ("train", "val")}

    victim = sorted((cache / "features").glob("*.npy"))[0]
    victim.write_bytes(victim.read_bytes()[:200])  # a disk that filled up, a copy cut short
    events = Recorder()
    r2 = Trainer(partial_config(colours, epochs=2), tmp_path / "run2", cache_dir=cache).run(events)
    assert events.phase_total("caching features") in sizes  # that one array only
    assert r2.metrics["confusion_matrix"] == r1.metrics["confusion_matrix"]


def test_outputs_held_on_the_device_train_exactly_like_the_memory_mapped_cache(colours, tmp_path, monkeypatch):
    """On a GPU with room, the cached outputs are uploaded once and batches are gathered there."""
    from tlstudio.core.engine import feeds as training_loops
    from tlstudio.core.engine.device import fits_on_device

    assert not fits_on_device(torch.device("cpu"), 1)  # on the CPU the memory-mapped cache is what the network reads
    mapped = Trainer(partial_config(colours, epochs=2), tmp_path / "mapped", cache_dir=tmp_path / "cache").run()
    uploaded = []
    monkeypatch.setattr(training_loops, "fits_on_device", lambda device, nbytes: uploaded.append(nbytes) or True)
    resident = Trainer(partial_config(colours, epochs=2), tmp_path / "resident", cache_dir=tmp_path / "cache").run()
    assert uploaded and uploaded[0] > 0
    history = lambda run: [json.loads(line) for line in (tmp_path / run / "history.jsonl").read_text().splitlines()]  # noqa: E731
    assert [h["train_loss"] for h in history("resident")] == pytest.approx([h["train_loss"] for h in history("mapped")])
    assert resident.metrics["confusion_matrix"] == mapped.metrics["confusion_matrix"]
