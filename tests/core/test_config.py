import pytest

from tlstudio.core.config import SCHEMA_VERSION, TrainConfig
from tlstudio.core.errors import UserError


def test_json_round_trip_keeps_every_setting():
    cfg = TrainConfig(data_dir="/data/x", backbone="resnet18", freeze_depth="3", epochs=7, image_size=160, augment="strong", seed=5)
    assert TrainConfig.from_json(cfg.to_json()) == cfg


def test_unknown_keys_from_older_files_are_dropped_and_version_migrates():
    cfg = TrainConfig.from_dict({"data_dir": "d", "freeze_depth": 2, "schema_version": 1, "removed_setting": True})
    assert cfg.freeze_depth == "2" and cfg.schema_version == SCHEMA_VERSION


def test_schema_1_config_without_pretrained_migrates_to_pretrained():
    old = {"schema_version": 1, "data_dir": "d", "backbone": "resnet18", "freeze_depth": "all", "epochs": 5}
    cfg = TrainConfig.from_dict(old)
    assert cfg.pretrained is True and cfg.schema_version == SCHEMA_VERSION == 7
    assert cfg.selection_metric == "balanced_accuracy" and cfg.selection_split == 0.15
    assert (cfg.backbone, cfg.freeze_depth, cfg.epochs) == ("resnet18", "all", 5)
    assert TrainConfig.from_dict({"data_dir": "d"}).pretrained is True  # no version at all: the oldest files


def test_pretrained_false_round_trips_and_is_not_overwritten_by_migration():
    cfg = TrainConfig(data_dir="d", pretrained=False, freeze_depth="none", backbone_lr_scale=1.0)
    again = TrainConfig.from_json(cfg.to_json())
    assert again == cfg and again.pretrained is False
    assert '"pretrained": false' in cfg.to_json()


@pytest.mark.parametrize("depth", ["all", "3"])
def test_a_frozen_random_backbone_is_refused(depth):
    with pytest.raises(UserError, match="--from-scratch.*Omit --freeze-depth"):
        TrainConfig(pretrained=False, freeze_depth=depth).validate()
    TrainConfig(pretrained=False, freeze_depth="none").validate()
    TrainConfig(pretrained=False, freeze_depth="0").validate()


def test_newer_schema_is_refused_with_advice():
    with pytest.raises(UserError, match="newer tlstudio"):
        TrainConfig.from_dict({"schema_version": SCHEMA_VERSION + 1})


@pytest.mark.parametrize(
    "change, setting",
    [({"epochs": 0}, "--epochs"), ({"lr": 0}, "--lr"), ({"augment": "wild"}, "--augment"), ({"val_split": 0.6, "test_split": 0.5}, "--val-split"), ({"device": "tpu"}, "--device")],
)
def test_bad_settings_name_the_setting(change, setting):
    with pytest.raises(UserError, match=setting):
        TrainConfig(**change).validate()


def test_runs_from_before_early_stopping_keep_training_every_epoch_when_resumed():
    old = {"schema_version": 3, "data_dir": "d", "epochs": 30}
    assert TrainConfig.from_dict(old).patience == 0
    assert TrainConfig(data_dir="d").patience is None  # new runs: the automatic patience
