"""The project folder: create, open, save, runs; atomic and versioned. No Qt."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tlstudio.core.runs import comparison, project as pj
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.runs.project import Project


def test_create_adds_the_suffix_and_lays_out_the_folder(tmp_path):
    p = Project.create(tmp_path / "Bees")
    assert p.root == tmp_path / "Bees.tlstudio"
    assert p.name == "Bees"
    assert (p.root / "project.json").is_file() and p.runs_dir.is_dir() and p.cache_dir.is_dir()
    d = json.loads(p.file.read_text())
    assert d["schema_version"] == pj.SCHEMA_VERSION and d["runs"] == []
    assert pj.is_project(p.root)


def test_settings_and_runs_survive_reopening(tmp_path):
    p = Project.create(tmp_path / "P")
    p.set_data(tmp_path / "data", 0.25, 0.1, 7)
    cfg = p.train_config()
    cfg.epochs, cfg.freeze_depth = 5, "3"
    files = p.new_run(cfg, now=datetime(2026, 11, 24, 14, 3, 22))
    assert files.root.name == "2026-11-24_14-03-22_efficientnet_lite0"
    files.append_history({"epoch": 1, "train_loss": 1.0, "val_loss": 1.1, "train_acc": 0.5, "val_acc": 0.4})
    files.write_json(files.metrics, {"accuracy": 0.9, "balanced_accuracy": 0.85, "classes": ["a", "b"]})
    files.write_json(files.config, cfg.to_dict())
    p.finish_run(files.root.name, pj.FINISHED, {"val_accuracy": 0.9})

    again = Project.open(p.root)
    assert (again.data_dir, again.val_split, again.test_split, again.seed) == (str(tmp_path / "data"), 0.25, 0.1, 7)
    restored = again.train_config()
    assert restored.epochs == 5 and restored.freeze_depth == "3" and restored.val_split == 0.25 and restored.seed == 7
    [run] = again.list_runs()
    assert run.record.status == pj.FINISHED and run.record.summary == {"val_accuracy": 0.9}
    assert [h["epoch"] for h in run.history] == [1]
    assert run.metrics["accuracy"] == 0.9 and run.config.epochs == 5
    assert "90.0%" in run.title()
    assert not run.has_model

    p.finish_run(files.root.name, pj.CANCELLED, {})  # stopped: the run list says it as Compare runs does
    [stopped] = Project.open(p.root).list_runs()
    assert comparison.STOPPED in stopped.title() and pj.CANCELLED not in stopped.title()


def test_open_accepts_the_project_file_and_refuses_other_folders(tmp_path):
    p = Project.create(tmp_path / "P.tlstudio")
    assert Project.open(p.file).root == p.root
    with pytest.raises(UserError, match="not a tlstudio project"):
        Project.open(tmp_path)


def test_create_refuses_an_existing_project_or_a_non_empty_folder(tmp_path):
    Project.create(tmp_path / "P")
    with pytest.raises(UserError, match="already a tlstudio project"):
        Project.create(tmp_path / "P")
    (tmp_path / "Busy.tlstudio").mkdir()
    (tmp_path / "Busy.tlstudio" / "x.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        Project.create(tmp_path / "Busy")


def test_same_second_runs_get_distinct_ids(tmp_path):
    p = Project.create(tmp_path / "P")
    now = datetime(2026, 1, 1, 0, 0, 0)
    a, b = p.new_run(TrainConfig(), now=now), p.new_run(TrainConfig(), now=now)
    assert a.root != b.root and b.root.name.endswith("-2")


def test_a_run_not_remembered_leaves_the_projects_settings_alone(tmp_path):
    p = Project.create(tmp_path / "P")
    p.new_run(TrainConfig(epochs=7))
    p.new_run(TrainConfig(epochs=3, pretrained=False, freeze_depth="none"), remember=False)  # e.g. a from-scratch baseline
    again = Project.open(p.root)
    assert again.train_config().epochs == 7 and again.train_config().pretrained
    assert len(again.runs) == 2


def test_a_run_left_running_by_a_crash_reads_as_interrupted(tmp_path):
    p = Project.create(tmp_path / "P")
    files = p.new_run(TrainConfig())
    (p.runs_dir / "2020-01-01_00-00-00_resnet18").mkdir()
    (p.runs_dir / "2020-01-01_00-00-00_resnet18" / "config.json").write_text(TrainConfig(backbone="resnet18").to_json())
    again = Project.open(p.root)
    statuses = {r.id: r.status for r in again.runs}
    assert statuses == {files.root.name: pj.INTERRUPTED, "2020-01-01_00-00-00_resnet18": pj.INTERRUPTED}
    assert json.loads(again.file.read_text())["runs"][0]["status"] == pj.INTERRUPTED


def test_a_newer_or_damaged_project_file_is_a_clear_error(tmp_path):
    p = Project.create(tmp_path / "P")
    p.file.write_text(json.dumps({"schema_version": pj.SCHEMA_VERSION + 1}))
    with pytest.raises(UserError, match="newer tlstudio"):
        Project.open(p.root)
    p.file.write_text("{not json")
    with pytest.raises(UserError, match="could not be read"):
        Project.open(p.root)


def test_save_writes_atomically_and_save_as_copies_runs_without_the_cache(tmp_path):
    p = Project.create(tmp_path / "P")
    files = p.new_run(TrainConfig())
    (files.root / "model.pt").write_bytes(b"model")
    (p.cache_dir / "big.bin").write_bytes(b"x" * 100)
    p.save()
    assert [f.name for f in p.root.iterdir() if f.name.startswith(".")] == []  # no temp files left behind
    copy = p.save_as(tmp_path / "Copy")
    assert copy.root == tmp_path / "Copy.tlstudio"
    assert (copy.runs_dir / files.root.name / "model.pt").read_bytes() == b"model"
    assert copy.cache_dir.is_dir() and not (copy.cache_dir / "big.bin").exists()
    assert [r.id for r in copy.runs] == [files.root.name]


def test_project_module_stays_headless():
    import ast
    from pathlib import Path

    tree = ast.parse(Path(pj.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not any(n.startswith(("PySide6", "pyqtgraph", "tlstudio.gui")) for n in names)


def test_a_renamed_run_shows_its_name_keeps_its_folder_and_survives_reopening(tmp_path):
    p = Project.create(tmp_path / "P")
    files = p.new_run(TrainConfig())
    run_id = files.root.name
    assert p.rename_run(run_id, "  frozen, 10 epochs  ") == "frozen, 10 epochs"
    again = Project.open(p.root)
    [run] = again.list_runs()
    assert run.record.name == "frozen, 10 epochs" and run.id == run_id and files.root.is_dir()
    assert run.title().startswith("frozen, 10 epochs") and run_id not in run.title()
    assert [f.name for f in p.root.iterdir() if f.name.startswith(".")] == []  # written atomically: no temp file left


@pytest.mark.parametrize("name", ["", "   ", "x" * (pj.MAX_NAME + 1), "two\nlines", "tab\there", "bell\x07"])
def test_a_bad_run_name_is_refused_and_the_old_name_stays(tmp_path, name):
    p = Project.create(tmp_path / "P")
    run_id = p.new_run(TrainConfig()).root.name
    p.rename_run(run_id, "kept")
    with pytest.raises(UserError):
        p.rename_run(run_id, name)
    assert Project.open(p.root).record(run_id).name == "kept"


def test_a_project_written_before_run_names_still_opens(tmp_path):
    p = Project.create(tmp_path / "P")
    run_id = p.new_run(TrainConfig()).root.name
    d = json.loads(p.file.read_text())
    for r in d["runs"]:
        del r["name"]
    p.file.write_text(json.dumps(d))
    [run] = Project.open(p.root).list_runs()
    assert run.record.name == "" and run.title().startswith(run_id)


def test_a_from_scratch_run_is_marked_in_its_title_and_a_pretrained_one_is_not(tmp_path):
    from tlstudio.core.runs.baseline import baseline_config

    p = Project.create(tmp_path / "P")
    pretrained = TrainConfig(epochs=3)
    for cfg in (pretrained, baseline_config(pretrained)):
        files = p.new_run(cfg, remember=False)
        files.write_json(files.config, cfg.to_dict())
    pre, scratch = p.list_runs()
    assert not pre.from_scratch and pj.FROM_SCRATCH not in pre.title()
    assert scratch.from_scratch and pj.FROM_SCRATCH in scratch.title()


def test_the_new_pictures_folder_survives_reopening_and_a_file_is_refused(tmp_path):
    p = Project.create(tmp_path / "P")
    new = tmp_path / "from the second microscope"
    new.mkdir()
    p.set_new_pictures(new)
    p.save()
    assert Project.open(p.root).new_pictures_dir == str(new)
    (tmp_path / "a.jpg").write_bytes(b"x")
    with pytest.raises(UserError, match="a.jpg"):
        p.set_new_pictures(tmp_path / "a.jpg")
    assert p.new_pictures_dir == str(new)  # the refused choice left the old one
    p.set_new_pictures("")
    p.save()
    assert Project.open(p.root).new_pictures_dir == ""
