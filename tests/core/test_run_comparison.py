"""Comparing runs from their folders: every run gets a row, whatever state it is in, and curves align by epoch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.synthetic import make_colour_dataset
from tlstudio.core.runs.baseline import baseline_config
from tlstudio.core.config import TrainConfig
from tlstudio.core.events import PhaseStarted, StopToken
from tlstudio.core.runs.comparison import curves, run_table
from tlstudio.core.engine.trainer import Trainer


class StopAfterFirstBatch(StopToken):
    """Presses Stop once the first training batch has run (checks come before every batch)."""

    def __init__(self):
        super().__init__()
        self.training, self.checks = False, 0

    def __call__(self, event) -> None:  # also the run's listener
        if isinstance(event, PhaseStarted) and event.name == "training":
            self.training = True

    def check(self) -> None:
        if self.training:
            self.checks += 1
            if self.checks == 2:
                self.stop()
        super().check()


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    data = make_colour_dataset(root / "colours", per_class=8)
    cfg = TrainConfig(data_dir=str(data), freeze_depth="7", epochs=3, batch_size=4, image_size=64, export=False)  # epochs: a fine-tune
    finished = Trainer(cfg, root / "finished", cache_dir=root / "cache").run()
    assert not finished.cancelled

    stop = StopAfterFirstBatch()
    stopped = Trainer(baseline_config(cfg), root / "stopped", cache_dir=root / "cache").run(stop, stop)
    assert stopped.cancelled and stop.checks == 2

    broken = root / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(cfg.to_json())
    (broken / "history.jsonl").write_text('{"epoch": 1, "val_acc": 0.5}\n{"epoch": 2, "val_a')  # cut off mid-write
    empty = root / "empty"
    empty.mkdir()
    return {"finished": root / "finished", "stopped": root / "stopped", "broken": broken, "empty": empty, "missing": root / "missing"}


def test_every_run_gets_a_row_in_the_order_given(folders):
    rows = run_table([folders[k] for k in ("finished", "stopped", "broken", "empty", "missing")])
    assert [r["id"] for r in rows] == ["finished", "stopped", "broken", "empty", "missing"]
    assert [r["status"] for r in rows] == ["finished", "stopped", "broken", "broken", "missing"]
    assert all(set(r) >= {"id", "name", "status", "message", "missing", "backbone", "freeze_depth", "init", "epochs", "seconds", "accuracy", "balanced_accuracy", "best_epoch"} for r in rows)


def test_finished_row_matches_the_run_files(folders):
    (row,) = run_table([folders["finished"]])
    metrics = json.loads((folders["finished"] / "metrics.json").read_text())
    summary = json.loads((folders["finished"] / "summary.json").read_text())
    history = [json.loads(line) for line in (folders["finished"] / "history.jsonl").read_text().splitlines()]
    assert row["accuracy"] == metrics["accuracy"] and row["balanced_accuracy"] == metrics["balanced_accuracy"]
    assert row["best_epoch"] == metrics["best_epoch"] and row["seconds"] == summary["seconds"]
    assert (row["backbone"], row["freeze_depth"], row["pretrained"], row["init"]) == ("efficientnet_lite0", "7", True, "pretrained")
    assert row["epochs"] == row["planned_epochs"] == 3 and row["image_size"] == 64
    kept = next(h for h in history if h["epoch"] == metrics["best_epoch"])
    assert row["kept_val_acc"] == kept["val_acc"]  # the kept epoch's figure, not the best validation figure
    assert row["missing"] == [] and row["message"] == ""
    assert "efficientnet_lite0" in row["name"]


def test_stopped_run_says_so_without_metrics(folders):
    (row,) = run_table([folders["stopped"]])
    assert row["status"] == "stopped" and "before the first epoch" in row["message"]
    assert row["init"] == "scratch" and row["pretrained"] is False and row["freeze_depth"] == "none"
    assert row["epochs"] == 0 and row["planned_epochs"] == 3
    assert row["accuracy"] is None and row["balanced_accuracy"] is None and row["best_epoch"] is None and row["seconds"] is None
    assert {"metrics.json", "summary.json"} <= set(row["missing"])


def test_broken_and_missing_folders_get_rows_not_crashes(folders):
    broken, empty, missing = run_table([folders["broken"], folders["empty"], folders["missing"]])
    assert "history.jsonl could not be read" in broken["message"] and broken["backbone"] == "efficientnet_lite0"
    assert "no config.json" in empty["message"] and empty["backbone"] is None and empty["init"] == "unknown"
    assert "does not exist" in missing["message"] and missing["epochs"] == 0


def test_project_run_records_explain_failures(tmp_path):
    run = tmp_path / "P.tlstudio" / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.json").write_text(TrainConfig(data_dir="d").to_json())
    (run / "history.jsonl").write_text('{"epoch": 1, "val_acc": 0.5, "val_loss": 1.0, "seconds": 2.0}\n')
    project = {"schema_version": 1, "runs": [{"id": "r1", "status": "failed", "message": "out of memory"}]}
    (tmp_path / "P.tlstudio" / "project.json").write_text(json.dumps(project))
    (row,) = run_table([run])
    assert row["status"] == "failed" and row["message"] == "out of memory"
    assert row["epochs"] == 1 and row["seconds"] == 2.0 and row["kept_val_acc"] == 0.5
    project["runs"][0]["status"] = "interrupted"
    (tmp_path / "P.tlstudio" / "project.json").write_text(json.dumps(project))
    assert run_table([run])[0]["status"] == "interrupted"


def test_runs_with_one_folder_name_get_distinct_ids(tmp_path):
    rows = run_table([tmp_path / "a" / "run", tmp_path / "b" / "run"])
    assert [r["id"] for r in rows] == ["a/run", "b/run"]


def test_curves_align_histories_by_epoch(folders, tmp_path):
    short = tmp_path / "short"
    short.mkdir()
    (short / "config.json").write_text(TrainConfig(data_dir="d").to_json())
    (short / "history.jsonl").write_text('{"epoch": 2, "val_acc": 0.75, "val_loss": 0.5}\n')  # epoch 1 missing
    c = curves([folders["finished"], short, folders["stopped"], folders["broken"]])
    history = [json.loads(line) for line in (folders["finished"] / "history.jsonl").read_text().splitlines()]
    assert c["epochs"] == [1, 2, 3]
    finished, shorter, stopped, broken = c["runs"]
    assert finished["id"] == "finished" and finished["init"] == "pretrained"
    assert finished["val_acc"] == [h["val_acc"] for h in history] and finished["train_loss"] == [h["train_loss"] for h in history]
    assert shorter["val_acc"] == [None, 0.75, None] and shorter["train_acc"] == [None, None, None]
    assert stopped["val_acc"] == [None] * 3 and stopped["status"] == "stopped" and stopped["init"] == "scratch"
    assert broken["val_loss"] == [None] * 3 and broken["status"] == "broken"
    assert all(len(r[k]) == 3 for r in c["runs"] for k in ("val_acc", "val_loss", "train_acc", "train_loss"))
    assert curves([]) == {"epochs": [], "runs": []}
