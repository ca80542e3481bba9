"""The from-scratch baseline: its config, its random (seeded) start, caches kept apart, and the uplift read from run files."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from pathlib import Path

import pytest
import torch

from tests.recorder import Recorder
from tests.synthetic import make_colour_dataset
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.runs.baseline import SHARED_SETTINGS, baseline_config, baseline_pairs, uplift
from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.plan import PREFIX, RANDOM_BACKBONE
from tlstudio.core.errors import UserError
from tlstudio.core.engine.trainer import Trainer



class RecordingTrainer(Trainer):
    """Keeps a copy of the backbone weights the run really started from (epoch 0)."""

    def build_model(self, num_classes):
        model = super().build_model(num_classes)
        self.initial = {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}
        return model


def frozen_config(data: Path, **kw) -> TrainConfig:
    base = dict(data_dir=str(data), backbone="efficientnet_lite0", freeze_depth="all", epochs=2, batch_size=8, image_size=64, export=False, augment="none")
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def bundled() -> dict:
    return build_backbone("efficientnet_lite0", pretrained=True).state_dict()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, bundled):
    """A pretrained frozen run and its from-scratch baseline on one tiny data set, sharing one cache folder."""
    root = tmp_path_factory.mktemp("baseline")
    data = make_colour_dataset(root / "colours", per_class=8)
    cache = root / "cache"
    cfg = frozen_config(data)
    pre_events, scratch_events = Recorder(), Recorder()
    pre = RecordingTrainer(cfg, root / "pretrained", cache_dir=cache)
    pre.run(pre_events)
    scratch = RecordingTrainer(replace(baseline_config(cfg), epochs=1), root / "scratch", cache_dir=cache)
    scratch.run(scratch_events)
    return dict(root=root, data=data, cache=cache, cfg=cfg, pre=pre, scratch=scratch, pre_events=pre_events, scratch_events=scratch_events)


def feature_files(cache: Path) -> set[str]:
    folder = cache / "features"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


# ------------------------------------------------------------------ baseline_config
def test_baseline_config_keeps_the_experiment_and_changes_only_the_start():
    cfg = TrainConfig(
        data_dir="/data/x", backbone="resnet18", freeze_depth="3", epochs=7, batch_size=16, image_size=160, augment="strong",
        class_weights="none", val_split=0.25, test_split=0.1, seed=5, lr=3e-3, backbone_lr_scale=0.1, device="cpu",
    )
    base = baseline_config(cfg)
    assert base.pretrained is False
    assert base.freeze_depth == "none" and base.backbone_lr_scale == 1.0
    assert base.train_batchnorm is True and base.warm_start_head is False
    changed = {f.name for f in fields(TrainConfig) if getattr(base, f.name) != getattr(cfg, f.name)}
    assert changed == {"pretrained", "freeze_depth", "backbone_lr_scale", "train_batchnorm", "warm_start_head"}
    assert all(getattr(base, s) == getattr(cfg, s) for s in SHARED_SETTINGS)
    assert cfg.pretrained is True and cfg.freeze_depth == "3"  # the original is untouched
    assert TrainConfig.from_json(base.to_json()) == base


def test_baseline_of_a_baseline_is_the_same_config():
    base = baseline_config(TrainConfig(data_dir="d"))
    assert baseline_config(base) == base


# ------------------------------------------------------------------ the random start
def test_pretrained_run_starts_from_the_bundled_weights_and_scratch_from_random_ones(runs, bundled):
    pre, scratch = runs["pre"].initial, runs["scratch"].initial
    assert set(pre) == set(scratch) == set(bundled)
    assert all(torch.equal(pre[k], v) for k, v in bundled.items())
    weights = [k for k, v in bundled.items() if v.is_floating_point() and v.ndim > 1]  # conv and linear weights
    assert len(weights) > 40
    assert not any(torch.equal(scratch[k], bundled[k]) for k in weights)
    assert runs["pre"].pretrained and not runs["scratch"].pretrained


def test_the_same_seed_gives_the_same_random_start_and_another_seed_another(tmp_path):
    cfg = baseline_config(frozen_config(tmp_path))
    a = Trainer(cfg, tmp_path / "a").build_model(3).state_dict()
    b = Trainer(cfg, tmp_path / "b").build_model(3).state_dict()
    c = Trainer(replace(cfg, seed=1), tmp_path / "c").build_model(3).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["backbone.body.conv_stem.weight"], c["backbone.body.conv_stem.weight"])
    assert not torch.equal(a["head.1.weight"], c["head.1.weight"])


def test_scratch_run_trains_everything_without_a_feature_cache_or_warm_start(runs):
    events, summary = runs["scratch_events"], json.loads((runs["root"] / "scratch" / "summary.json").read_text())
    assert "caching features" not in events.phases()
    plan = summary["plan"]
    assert not summary["cache_reused"] and not plan["warm_start"] and plan["from_scratch"]
    assert summary["pretrained"] is False and summary["feature_cache"] is False
    assert summary["trainable_params"] == summary["total_params"]
    assert json.loads((runs["root"] / "scratch" / "config.json").read_text())["pretrained"] is False
    assert json.loads((runs["root"] / "pretrained" / "summary.json").read_text())["pretrained"] is True


def test_feature_cache_is_never_shared_between_pretrained_and_random_weights(runs):
    cache, cfg, root = runs["cache"], runs["cfg"], runs["root"]
    assert "caching features" in runs["pre_events"].phases()
    assert len(feature_files(cache)) == 2  # one view of the training images and the validation crops; the scratch baseline added none

    random_frozen = Recorder()  # the same frozen config on random weights (the tests' constructor override)
    result = Trainer(replace(cfg, epochs=1), root / "random_frozen", cache_dir=cache, pretrained=False).run(random_frozen)
    assert not result.summary["cache_reused"] and "caching features" in random_frozen.phases()
    assert len(feature_files(cache)) == 4

    again = Recorder()  # the pretrained config once more: its own features come back
    result = Trainer(replace(cfg, epochs=1), root / "again", cache_dir=cache).run(again)
    assert result.summary["cache_reused"] and "caching features" not in again.phases()
    random_again = Recorder()
    result = Trainer(replace(cfg, epochs=1), root / "random_again", cache_dir=cache, pretrained=False).run(random_again)
    assert result.summary["cache_reused"]  # seeded: the same random start, so its cache is valid
    assert len(feature_files(cache)) == 4
    assert json.loads((root / "random_frozen" / "summary.json").read_text())["pretrained"] is False


def test_random_partial_fine_tune_does_not_warm_start_the_head(runs, tmp_path):
    result = Trainer(frozen_config(runs["data"], freeze_depth="8", epochs=1), tmp_path / "run", cache_dir=tmp_path / "cache", pretrained=False).run()
    assert (result.plan.warm_start, result.plan.warm_start_reason) == (False, RANDOM_BACKBONE)
    assert result.plan.feed == PREFIX
    assert len(feature_files(tmp_path / "cache")) == 2  # the frozen prefix's output only: no features embedded for a head


# ------------------------------------------------------------------ uplift
def test_uplift_equals_the_metrics_files(runs):
    pre_dir, base_dir = runs["root"] / "pretrained", runs["root"] / "scratch"
    u = uplift(pre_dir, base_dir)
    pm = json.loads((pre_dir / "metrics.json").read_text())
    bm = json.loads((base_dir / "metrics.json").read_text())
    ps = json.loads((pre_dir / "summary.json").read_text())
    bs = json.loads((base_dir / "summary.json").read_text())
    assert u["pretrained_accuracy"] == pm["accuracy"] and u["baseline_accuracy"] == bm["accuracy"]
    assert u["pretrained_balanced_accuracy"] == pm["balanced_accuracy"] and u["baseline_balanced_accuracy"] == bm["balanced_accuracy"]
    assert u["accuracy_uplift"] == pytest.approx(pm["accuracy"] - bm["accuracy"])
    assert u["balanced_accuracy_uplift"] == pytest.approx(pm["balanced_accuracy"] - bm["balanced_accuracy"])
    assert u["pretrained_seconds"] == ps["seconds"] and u["baseline_seconds"] == bs["seconds"]
    assert u["pretrained_best_epoch"] == pm.get("best_epoch") and u["baseline_best_epoch"] == bm["best_epoch"]  # a frozen head has no epochs
    assert (u["pretrained_init"], u["baseline_init"]) == ("pretrained", "scratch")

    def history(d):
        return [json.loads(line) for line in (d / "history.jsonl").read_text().splitlines()]

    assert u["pretrained_history"] == history(pre_dir) and u["baseline_history"] == history(base_dir)
    curves = u["curves"]
    assert curves["epochs"] == [1]  # the frozen run's head is one fit, the shortened baseline one epoch
    assert curves["pretrained"]["val_acc"] == [h["val_acc"] for h in history(pre_dir)]
    assert curves["baseline"]["val_acc"] == [h["val_acc"] for h in history(base_dir)]
    assert u["mismatches"] == {"epochs": [2, 1]}  # the fixture shortened the baseline on purpose


def test_uplift_refuses_runs_without_metrics_or_the_wrong_way_round(runs, tmp_path):
    pre_dir, base_dir = runs["root"] / "pretrained", runs["root"] / "scratch"
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text(baseline_config(runs["cfg"]).to_json())
    with pytest.raises(UserError, match="train the run first"):
        uplift(pre_dir, unfinished)
    with pytest.raises(UserError, match="does not exist"):
        uplift(tmp_path / "nowhere", base_dir)
    with pytest.raises(UserError, match="trained from scratch: give the pretrained run first"):
        uplift(base_dir, pre_dir)
    (unfinished / "metrics.json").write_text("{not json")
    with pytest.raises(UserError, match="metrics.json could not be read"):
        uplift(pre_dir, unfinished)


# ------------------------------------------------------------------ which run is the baseline of which
def fake_run(folder: Path, cfg: TrainConfig, accuracy=0.5) -> Path:
    """A run folder with just the settings and final figures that ``baseline_pairs`` reads."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(cfg.to_json())
    if accuracy is not None:
        (folder / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "balanced_accuracy": accuracy}))
    return folder


def test_baseline_pairs_link_pretrained_runs_to_their_closest_finished_scratch_run(tmp_path):
    cfg = frozen_config(tmp_path / "data")
    frozen = fake_run(tmp_path / "1-frozen", cfg)
    tuned = fake_run(tmp_path / "2-tuned", replace(cfg, freeze_depth="2"))
    shorter = fake_run(tmp_path / "3-scratch-shorter", replace(baseline_config(cfg), epochs=1))
    exact = fake_run(tmp_path / "4-scratch-exact", baseline_config(cfg))
    fake_run(tmp_path / "5-scratch-stopped", baseline_config(cfg), accuracy=None)  # no final metrics: never a baseline
    fake_run(tmp_path / "6-scratch-other-data", baseline_config(replace(cfg, data_dir=str(tmp_path / "other"))))
    other_backbone = fake_run(tmp_path / "7-other-backbone", replace(cfg, backbone="resnet18"))
    runs = sorted(p for p in tmp_path.iterdir())

    pairs = baseline_pairs(runs)
    assert pairs == {frozen: exact, tuned: exact}  # one baseline serves both; the exact one beats the shorter
    assert other_backbone not in pairs

    pairs = baseline_pairs([frozen, shorter])
    assert pairs == {frozen: shorter}  # the only one, with its difference left for uplift()["mismatches"] to name
    assert baseline_pairs([frozen, tmp_path / "missing"]) == {}
