"""Knowledge distillation on small generated data: the loss, the teacher checks, a distilled run and its report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tests.recorder import Recorder
from tests.synthetic import make_colour_dataset
from tlstudio.cli import main
from tlstudio.core.config import SCHEMA_VERSION, TrainConfig, migrate
from tlstudio.core.engine.distill import Distillation, compare_distillation, distill_config, distillation_loss
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.errors import UserError

SMALL = dict(freeze_depth="7", epochs=2, batch_size=8, image_size=64, export=False)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Generated colours, a finished teacher run (a Lite1 partial fine-tune) and a Lite0 trained alone, for the whole module."""
    root = tmp_path_factory.mktemp("distill")
    data = make_colour_dataset(root / "colours", per_class=10)
    cache = root / "cache"
    teacher = root / "teacher"
    Trainer(TrainConfig(data_dir=str(data), backbone="efficientnet_lite1", **SMALL), teacher, cache_dir=cache).run()
    Trainer(student_config(data), root / "alone", cache_dir=cache).run()
    return root, data, cache, teacher


def student_config(data: Path, **kw) -> TrainConfig:
    return TrainConfig(data_dir=str(data), backbone="efficientnet_lite0", workers=0, **{**SMALL, **kw})


def history(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in rows]  # all but the clock


def test_the_loss_is_hintons_formula_by_hand():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    teacher = torch.tensor([[1.5, 1.0, -2.0], [-1.0, 0.0, 2.0]])
    labels = torch.tensor([0, 2])
    t, a = 4.0, 0.9

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    s, q = logits.numpy().astype(np.float64), teacher.numpy().astype(np.float64)
    ce = -np.mean(np.log(softmax(s)[[0, 1], labels.numpy()]))
    p_t, p_s = softmax(q / t), softmax(s / t)
    kl = np.sum(p_t * (np.log(p_t) - np.log(p_s))) / 2  # summed over classes, averaged over the batch
    expected = (1 - a) * ce + a * t * t * kl
    got = distillation_loss(nn.CrossEntropyLoss(), logits, labels, teacher, Distillation(t, a))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # weight 0 is the label loss exactly, weight 1 the teacher's part only
    assert float(distillation_loss(nn.CrossEntropyLoss(), logits, labels, teacher, Distillation(t, 0.0))) == pytest.approx(ce, rel=1e-6)
    assert float(distillation_loss(nn.CrossEntropyLoss(), logits, labels, teacher, Distillation(t, 1.0))) == pytest.approx(t * t * kl, rel=1e-5)


@pytest.mark.parametrize("cached", [True, False], ids=["prefix cache", "images"])
def test_weight_zero_gives_exactly_the_history_of_no_teacher(world, tmp_path, cached):
    root, data, cache, teacher = world
    cfg = student_config(data, feature_cache=cached)
    alone = root / "alone" if cached else tmp_path / "alone"
    if not cached:
        Trainer(cfg, alone, cache_dir=cache).run()
    events = Recorder()
    result = Trainer(replace(cfg, teacher=str(teacher), distill_weight=0.0), tmp_path / "zero", cache_dir=cache).run(events)
    record = result.summary["teacher"]
    assert record["weight"] == 0.0 and record["pictures"] > 0
    assert ("running the teacher" in events.phases()) != record["outputs_from_cache"]  # its outputs were computed, or read from the cache
    assert history(tmp_path / "zero") == history(alone)


def test_a_distilled_run_learns_from_its_teacher_records_it_and_exports(world, tmp_path, capsys):
    root, data, cache, teacher = world
    out = tmp_path / "student"
    code = main(["distill", str(teacher), "--backbone", "efficientnet_lite0", "--image-size", "64", "--out", str(out), "--cache", str(cache), "--json"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["student"]["run_dir"] == str(out) and printed["alone"] is None
    report = compare_distillation(out, teacher, root / "alone").to_dict()
    assert report["student"]["backbone"] == "efficientnet_lite0" and report["teacher"]["backbone"] == "efficientnet_lite1"
    assert report["alone"]["run_dir"] == str(root / "alone") and report["same_validation"]
    assert report["student"]["params"] < report["teacher"]["params"] and report["student"]["megabytes"] < report["teacher"]["megabytes"]
    assert all(report[arm]["images_per_s"] > 0 for arm in ("student", "alone", "teacher"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["teacher"]["run_id"] == "teacher" and summary["teacher"]["backbone"] == "efficientnet_lite1"
    assert summary["teacher"]["validation_pictures_it_trained_on"] == 0  # the student took the teacher's split
    assert summary["export"]["verified"] and (out / "model.pt").is_file()
    assert json.loads((root / "alone" / "summary.json").read_text())["teacher"] is None
    assert [r["train_loss"] for r in history(out)] != [r["train_loss"] for r in history(root / "alone")]  # it learnt from another loss
    config = TrainConfig.from_json((out / "config.json").read_text())
    assert config.teacher == str(teacher) and (config.distill_temperature, config.distill_weight) == (4.0, 0.9)


def test_a_teacher_with_other_classes_is_refused_before_any_file(world, tmp_path):
    root, _, cache, teacher = world
    other = make_colour_dataset(tmp_path / "two", classes=("red", "yellow"), per_class=6)
    cfg = TrainConfig(data_dir=str(other), backbone="efficientnet_lite0", teacher=str(teacher), **SMALL)
    with pytest.raises(UserError, match="--teacher"):
        Trainer(cfg, tmp_path / "run", cache_dir=cache).run()
    assert not (tmp_path / "run").exists()


def test_settings_are_validated_and_a_frozen_student_is_refused(world, tmp_path):
    _, data, _, teacher = world
    for bad, setting in (({"distill_temperature": 0.0}, "--temperature"), ({"distill_weight": 1.5}, "--distill-weight"),
                         ({"teacher": str(teacher), "freeze_depth": "all"}, "--teacher")):
        with pytest.raises(UserError, match=setting):
            TrainConfig(data_dir=str(data), **bad).validate()
    with pytest.raises(UserError, match="not a training run"):
        distill_config(TrainConfig(), tmp_path, "efficientnet_lite0", "7")


def test_distill_config_takes_the_teachers_pictures_and_split(world):
    _, data, _, teacher = world
    cfg = distill_config(TrainConfig(seed=9, val_split=0.3), teacher, "efficientnet_lite0", "6")
    assert (cfg.data_dir, cfg.seed, cfg.val_split, cfg.backbone, cfg.freeze_depth, cfg.teacher) == (str(data), 0, 0.2, "efficientnet_lite0", "6", str(teacher))


def test_an_older_config_migrates_without_a_teacher():
    old = migrate({"schema_version": 5, "backbone": "efficientnet_lite0"})
    assert old["teacher"] == "" and old["schema_version"] == SCHEMA_VERSION == 7
    assert TrainConfig.from_dict({"schema_version": 5}).teacher == ""


def test_compare_refuses_an_unfinished_run(world, tmp_path):
    _, _, _, teacher = world
    with pytest.raises(UserError):
        compare_distillation(tmp_path, teacher)
