"""My models: a finished run as the start of a new one (its kept backbone, a new head), its origin recorded, bad sources refused."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tests.synthetic import make_colour_dataset
from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.catalog.my_models import BACKBONE_PREFIX, read_my_model, read_source_run, start_config, state_digest
from tlstudio.core.config import SCHEMA_VERSION, TrainConfig, migrate
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.errors import UserError
from tlstudio.core.inference.export import read_export_info
from tlstudio.core.runs.files import RunFiles


class RecordingTrainer(Trainer):
    """Keeps a copy of the backbone weights the run really started from (before its first step)."""

    def build_model(self, num_classes):
        model = super().build_model(num_classes)
        self.initial = {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}
        return model


def tiny(data: Path, **kw) -> TrainConfig:
    base = dict(data_dir=str(data), backbone="efficientnet_lite0", epochs=1, batch_size=8, image_size=64, augment="none", patience=0)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A fine-tuned source run on three colours, then a run on two other colour classes started from it."""
    root = tmp_path_factory.mktemp("my_models")
    source_data = make_colour_dataset(root / "three", ("red", "green", "blue"), per_class=8)
    target_data = make_colour_dataset(root / "two", ("yellow", "green"), per_class=8, seed=1)
    cache = root / "cache"
    source = Trainer(tiny(source_data, freeze_depth="3", export=False), root / "source", cache_dir=cache)
    source.run()
    model = read_my_model(root / "source")
    started = RecordingTrainer(start_config(tiny(target_data, freeze_depth="all", image_size=None), model), root / "started", cache_dir=cache)
    started.run()
    imagenet = Trainer(tiny(target_data, freeze_depth="all"), root / "imagenet", cache_dir=cache, index=started.index)
    return dict(root=root, cache=cache, source=source, started=started, imagenet=imagenet, target_data=target_data)


def kept_backbone(run_dir: Path) -> dict:
    files = RunFiles(run_dir)
    state = files.load_checkpoint(files.best)["model"]
    return {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}  # as model.backbone names them


def test_the_new_run_starts_from_the_source_runs_kept_backbone_not_imagenets(pair):
    initial = pair["started"].initial
    source = kept_backbone(pair["root"] / "source")
    imagenet = build_backbone("efficientnet_lite0", pretrained=True).state_dict()
    assert initial.keys() == source.keys()
    assert all(torch.equal(initial[k], source[k]) for k in source)
    # The source fine-tuned its last stages: they moved away from ImageNet's weights.
    assert not all(torch.equal(initial[k], imagenet[k]) for k in imagenet)


def test_the_new_head_is_new_and_the_run_takes_the_source_image_size(pair):
    started = pair["started"]
    summary = json.loads((pair["root"] / "started" / "summary.json").read_text())
    assert summary["classes"] == ["green", "yellow"]
    assert summary["image_size"] == 64 and started.config.image_size == 64
    assert started.config.backbone == "efficientnet_lite0"


def test_the_origin_is_recorded_in_the_summary_and_the_export(pair):
    root = pair["root"]
    summary = json.loads((root / "started" / "summary.json").read_text())
    origin = summary["origin"]
    assert origin["run_folder"] == str((root / "source").resolve())
    assert origin["run_id"] == "source"
    assert origin["classes"] == ["blue", "green", "red"]
    assert origin["backbone"] == "efficientnet_lite0"
    assert origin["data_dir"] == str(root / "three")
    assert origin["val_accuracy"] == json.loads((root / "source" / "summary.json").read_text())["val_accuracy"]
    source = kept_backbone(root / "source")
    assert origin["weights_digest"] == state_digest({k[len(BACKBONE_PREFIX) - len("backbone."):]: v for k, v in source.items()})
    info = read_export_info(root / "started" / "model.pt")
    assert info["summary"]["origin"] == origin
    source_summary = json.loads((root / "source" / "summary.json").read_text())
    assert source_summary["origin"] is None  # an ImageNet start records none


def test_cache_keys_differ_from_an_imagenet_start(pair):
    spec = bb.get_backbone("efficientnet_lite0")
    started_id = pair["started"]._weights_id(spec)
    imagenet_id = pair["imagenet"]._weights_id(spec)
    assert started_id != imagenet_id and started_id.startswith("run:")
    # The same task from ImageNet in the same cache folder must compute its own features, not the started run's.
    result = pair["imagenet"].run()
    assert result.summary["cache_reused"] is False and result.summary["origin"] is None


def test_a_source_from_another_fine_tune_gets_another_key(pair, tmp_path):
    source = read_source_run(pair["root"] / "source")
    changed = {k: v.clone() for k, v in source.backbone_state.items()}
    name = next(k for k, v in changed.items() if v.is_floating_point())
    changed[name] += 1e-3
    assert state_digest(changed) != source.digest


def test_a_missing_or_non_run_folder_is_refused(tmp_path):
    with pytest.raises(UserError, match="nowhere"):
        read_my_model(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(UserError, match="plain"):
        read_my_model(tmp_path / "plain")


def copy_run(src: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


def test_an_unfinished_run_is_refused(pair, tmp_path):
    run = copy_run(pair["root"] / "source", tmp_path / "stopped")
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "stopped"}))
    with pytest.raises(UserError, match="stopped"):
        read_my_model(run)


def test_a_run_with_no_kept_epoch_is_refused(pair, tmp_path):
    run = copy_run(pair["root"] / "source", tmp_path / "no_best")
    (run / "checkpoints" / "best.pt").unlink()
    with pytest.raises(UserError, match="best.pt"):
        read_my_model(run)


def test_a_run_of_a_backbone_not_in_the_catalog_is_refused(pair, tmp_path):
    run = copy_run(pair["root"] / "source", tmp_path / "other")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "backbone": "no_such_net"}))
    with pytest.raises(UserError, match="no_such_net"):
        read_my_model(run)


def test_a_start_from_a_run_and_from_scratch_together_are_refused(pair):
    with pytest.raises(UserError, match="--start-from"):
        replace(tiny(pair["target_data"]), start_from=str(pair["root"] / "source"), pretrained=False, freeze_depth="none").validate()


def test_a_backbone_other_than_the_sources_is_refused_before_training(pair, tmp_path):
    cfg = replace(start_config(tiny(pair["target_data"]), read_my_model(pair["root"] / "source")), backbone="mobilenet_v3_small")
    with pytest.raises(UserError, match="efficientnet_lite0"):
        Trainer(cfg, tmp_path / "run").build_model(2)


def test_start_from_round_trips_and_older_configs_migrate_to_none():
    cfg = TrainConfig(start_from="/somewhere/runs/abc")
    assert TrainConfig.from_json(cfg.to_json()).start_from == "/somewhere/runs/abc"
    old = migrate({"schema_version": 4, "backbone": "efficientnet_lite0"})
    assert old["start_from"] == "" and old["schema_version"] == SCHEMA_VERSION == 7
    assert TrainConfig.from_dict({"schema_version": 4}).start_from == ""


def test_the_cli_starts_from_a_run_and_refuses_a_bad_one(pair, tmp_path, capsys):
    from tlstudio.cli import main

    out = tmp_path / "cli_run"
    args = ["train", str(pair["target_data"]), "--out", str(out), "--start-from", str(pair["root"] / "source"), "--epochs", "1",
            "--batch-size", "8", "--no-export", "--cache", str(pair["cache"]), "--json"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["origin"]["run_id"] == "source" and summary["image_size"] == 64
    bad = ["train", str(pair["target_data"]), "--out", str(tmp_path / "bad"), "--start-from", str(tmp_path / "nowhere")]
    assert main(bad) != 0
    assert not (tmp_path / "bad").exists()
