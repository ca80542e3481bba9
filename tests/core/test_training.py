"""The training engine on small generated data: files, events, caches, freezing, stopping."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.recorder import Recorder
from tests.synthetic import colour_image, make_colour_dataset
from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.config import TrainConfig
from tlstudio.core.events import EpochEnded, Finished, StepEnded, StopToken
from tlstudio.core.catalog.classifier import Classifier
from tlstudio.core.engine.class_balance import PriorCorrectedLoss, rule_weighting, training_loss
from tlstudio.core.engine.trainer import Trainer, param_groups, warmup_cosine


@pytest.fixture
def colours(tmp_path) -> Path:
    return make_colour_dataset(tmp_path / "colours", per_class=12)


def frozen_config(data: Path, **kw) -> TrainConfig:
    base = dict(data_dir=str(data), backbone="efficientnet_lite0", freeze_depth="all", epochs=3, batch_size=8, image_size=64, export=False)
    return TrainConfig(**{**base, **kw})


def test_frozen_run_learns_writes_every_file_and_exports_a_verified_model(colours, tmp_path):
    events = Recorder()
    result = Trainer(frozen_config(colours, epochs=10, export=True), tmp_path / "run", cache_dir=tmp_path / "cache").run(events)

    # A frozen backbone's head is solved, not trained for epochs: one fit, one history line.
    assert events.phases() == ["scanning", "decoding", "caching features", "fitting the head", "evaluating", "exporting"]
    assert [e.epoch for e in events.of(EpochEnded)] == [1]
    assert isinstance(events[-1], Finished) and not events[-1].cancelled
    run = tmp_path / "run"
    history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in history] == [1]
    assert set(history[0]) >= {"train_loss", "train_acc", "val_loss", "val_acc", "val_balanced_acc", "lr", "seconds"}
    head = result.summary["head_fit"]
    assert head["converged"] and head["views"] == 5 and head["rows"] == 5 * (36 - result.metrics["n"])  # every view of every training picture
    assert result.summary["selection"]["method"] == "cross-validation"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["classes"] == ["blue", "green", "red"]
    assert metrics["accuracy"] >= 0.9
    assert np.array(metrics["confusion_matrix"]).sum() == metrics["n"] == len(json.loads((run / "predictions.json").read_text()))
    assert TrainConfig.from_json((run / "config.json").read_text()).epochs == 10
    assert (run / "checkpoints" / "best.pt").exists() and (run / "checkpoints" / "last.pt").exists()
    assert json.loads((run / "summary.json").read_text())["export"]["verified"]
    export = result.summary["export"]
    assert export["verified"] and export["agreement"] >= 0.99
    assert torch.jit.load(str(run / "model.pt")).class_names == ["blue", "green", "red"]
    assert not (run / "model.unverified.pt").exists()


def test_checkpoints_load_safely_and_hold_what_resuming_needs(colours, tmp_path):
    Trainer(frozen_config(colours, freeze_depth="7", epochs=2), tmp_path / "run", cache_dir=tmp_path / "cache").run()
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == 2
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "history", "config", "classes"} <= set(last)


def test_second_run_reuses_decoded_pixels_and_features_with_identical_results(colours, tmp_path):
    first, second = Recorder(), Recorder()
    r1 = Trainer(frozen_config(colours), tmp_path / "run1", cache_dir=tmp_path / "cache").run(first)
    r2 = Trainer(frozen_config(colours), tmp_path / "run2", cache_dir=tmp_path / "cache").run(second)
    assert "decoding" in first.phases() and "caching features" in first.phases()
    assert "decoding" not in second.phases() and "caching features" not in second.phases()
    assert r2.summary["cache_reused"] and not r1.summary["cache_reused"]
    assert r1.metrics["confusion_matrix"] == r2.metrics["confusion_matrix"]
    h1 = [json.loads(x)["val_loss"] for x in (tmp_path / "run1" / "history.jsonl").read_text().splitlines()]
    h2 = [json.loads(x)["val_loss"] for x in (tmp_path / "run2" / "history.jsonl").read_text().splitlines()]
    assert h1 == pytest.approx(h2)


def test_a_changed_image_or_backbone_invalidates_the_caches(colours, tmp_path):
    cache = tmp_path / "cache"
    Trainer(frozen_config(colours), tmp_path / "run1", cache_dir=cache).run()

    victim = sorted((colours / "red").iterdir())[0]
    colour_image(np.random.default_rng(99), (10, 10, 10)).save(victim, "JPEG")
    changed = Recorder()
    Trainer(frozen_config(colours), tmp_path / "run2", cache_dir=cache).run(changed)
    assert "decoding" in changed.phases() and "caching features" in changed.phases()

    other_backbone = Recorder()
    Trainer(frozen_config(colours, backbone="mobilenet_v3_small"), tmp_path / "run3", cache_dir=cache, pretrained=False).run(other_backbone)
    assert "caching features" in other_backbone.phases()


class StopInEpochTwo(StopToken):
    """Asks for a stop just before the 3rd batch of epoch 2, the way a Stop button press lands between batches."""

    def __init__(self):
        super().__init__()
        self.armed, self.calls, self.calls_after_stop = False, 0, 0

    def __call__(self, event) -> None:  # also the run's listener
        if isinstance(event, EpochEnded) and event.epoch == 1:
            self.armed = True

    def check(self) -> None:
        if self.armed:
            self.calls += 1
            if self.calls == 3:
                self.stop()
        if self.stopped:
            self.calls_after_stop += 1
        super().check()


def test_stop_mid_epoch_returns_within_one_batch_and_keeps_the_last_checkpoint(colours, tmp_path):
    cfg = frozen_config(colours, backbone="mobilenet_v3_small", freeze_depth="none", epochs=5, batch_size=4, augment="none")
    stop, events = StopInEpochTwo(), Recorder()
    result = Trainer(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", pretrained=False).run(lambda e: (stop(e), events(e)), stop)

    assert result.cancelled and isinstance(events[-1], Finished) and events[-1].cancelled
    assert stop.calls_after_stop == 1  # the very next check ended the run: no further batch ran
    assert [e.epoch for e in events.of(EpochEnded)] == [1]
    assert all(e.epoch == 1 or e.step <= 2 for e in events.of(StepEnded))
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert len((tmp_path / "run" / "history.jsonl").read_text().splitlines()) == 1
    assert not (tmp_path / "run" / "model.pt").exists()


def test_partial_freeze_trains_the_last_stages_with_a_lower_learning_rate():
    backbone = build_backbone("resnet18", pretrained=False)
    model = Classifier(backbone, 3, 0.2)
    plan = bb.apply_freeze(backbone, 3, model.head)
    assert plan.frozen == ["stem", "stage 1", "stage 2"] and plan.trainable == ["stage 3", "stage 4"]
    groups = param_groups(model, 1e-3, 0.1, 0.05)
    head_ids = {id(p) for p in model.head.parameters()}
    for g in groups:
        expected = 1e-3 if id(g["params"][0]) in head_ids else 1e-4
        assert g["lr"] == pytest.approx(expected)
        assert all(p.requires_grad for p in g["params"])
    trained = {id(p) for g in groups for p in g["params"]}
    assert trained == {id(p) for p in model.parameters() if p.requires_grad}
    assert not any(id(p) in trained for p in backbone.body.layer2.parameters())


def test_without_a_probe_the_weighting_follows_the_setting_or_the_imbalance_rule():
    assert rule_weighting("auto", np.array([0] * 10 + [1] * 9), 2) == "none"
    assert rule_weighting("auto", np.array([0] * 30 + [1] * 10), 2) == "balanced"
    assert rule_weighting("none", np.array([0] * 30 + [1] * 10), 2) == "none"
    loss = training_loss("balanced", np.array([0] * 30 + [1] * 10), 2, 0.0)
    assert loss.weight[1] == pytest.approx(3 * loss.weight[0])


def test_the_prior_corrected_loss_is_minimal_where_the_logits_carry_no_prior():
    labels = np.array([0] * 90 + [1] * 10)
    loss = training_loss("prior", labels, 2, 0.0)
    assert isinstance(loss, PriorCorrectedLoss)
    y = torch.from_numpy(labels)
    flat = loss(torch.zeros(100, 2), y)  # no preference: the loss adds the prior back, which is the best constant
    shifted = loss(torch.tensor([[0.5, -0.5]]).repeat(100, 1), y)
    assert flat < shifted


def test_learning_rate_warms_up_then_decays_to_the_floor():
    f = warmup_cosine(total_steps=100, warmup_steps=10)
    values = [f(s) for s in range(100)]
    assert values[0] < values[5] < values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[-1] == pytest.approx(0.01, abs=0.01)


def test_a_test_split_gets_its_own_metrics_and_predictions(colours, tmp_path):
    result = Trainer(frozen_config(colours, test_split=0.25, val_split=0.25), tmp_path / "run", cache_dir=tmp_path / "cache").run()
    assert result.metrics["test"]["n"] > 0
    splits = {p["split"] for p in json.loads((tmp_path / "run" / "predictions.json").read_text())}
    assert splits == {"val", "test"}


def test_partial_fine_tune_starts_from_a_head_fitted_on_frozen_features(colours, tmp_path):
    events = Recorder()
    cfg = frozen_config(colours, freeze_depth="7", epochs=1)
    result = Trainer(cfg, tmp_path / "run", cache_dir=tmp_path / "cache").run(events)
    head = result.summary["head_fit"]
    assert head is not None and head["converged"] and head["views"] == 1
    assert result.summary["class_weighting"] == head["class_weighting"]
    first_epoch = events.of(EpochEnded)[0]
    assert first_epoch.train_acc >= 0.8  # a random head would start near chance (1/3)
    selection = result.summary["selection"]
    assert selection["method"] == "selection split" and "epoch" in selection["chose"] and selection["pictures"] >= 6
    assert len(selection["held"]) == selection["pictures"]  # the run records which pictures it chose on
    train = {s["path"] for s in json.loads((tmp_path / "run" / "dataset.json").read_text())["samples"] if s["split"] == "train"}
    assert set(selection["held"]) <= train

    off = Trainer(frozen_config(colours, freeze_depth="7", epochs=1, warm_start_head=False), tmp_path / "run2", cache_dir=tmp_path / "cache").run()
    assert off.summary["head_fit"] is None
