"""Runs that resume exactly: killed with kill -9, stopped, or crashed, a run continues from its last
checkpoint and ends as the uninterrupted run ends (history without timings, and every weight)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.recorder import Recorder
from tests.synthetic import make_colour_dataset
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.events import EpochEnded, PhaseStarted, StopToken
from tlstudio.core.inference.export import read_export_info
from tlstudio.core.runs.files import CRASHED, FINISHED, STOPPED, RunFiles
from tlstudio.core.engine.trainer import Trainer

TIMINGS = ("seconds", "images_per_s")


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return make_colour_dataset(tmp_path_factory.mktemp("resume") / "colours", per_class=16)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "tlstudio", *args]


def history(run: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in RunFiles(run).read_history()]


def weights(run: Path, name: str = "last.pt") -> dict:
    return torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)["model"]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key  # bit-identical on the CPU


def partial_args(data: Path, out: Path, cache: Path) -> list[str]:
    # The frozen stages run every epoch (--no-cache): the data loader path, with augmentation and dropout.
    return [str(data), "--out", str(out), "--freeze-depth", "5", "--epochs", "5", "--batch-size", "8", "--image-size", "64",
            "--no-export", "--no-cache", "--patience", "0", "--cache", str(cache)]


def kill_after_epoch(cmd: list[str], run: Path, epochs: int, timeout: float = 240) -> None:
    """Start ``cmd``, SIGKILL it as soon as its history holds ``epochs`` lines."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while len(RunFiles(run).read_history()) < epochs:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 is POSIX")
def test_a_run_killed_after_epoch_2_then_resumed_equals_the_uninterrupted_run(colours, tmp_path):
    cache = tmp_path / "cache"
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(cli("train", *partial_args(colours, whole, cache)), check=True, capture_output=True)

    kill_after_epoch(cli("train", *partial_args(colours, killed, cache)), killed, epochs=2)
    done = len(RunFiles(killed).read_history())
    assert 2 <= done < 5
    assert RunFiles(killed).read_status().state == CRASHED  # marked running, held by no live process
    # What a crash mid-write leaves behind: the next start removes it.
    for leftover in (killed / ".history.jsonl.x1y2.tmp", killed / "checkpoints" / ".last.pt.z3w4.tmp"):
        leftover.write_bytes(b"")

    resumed = subprocess.run(cli("train", "--resume", str(killed), "--cache", str(cache)), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert history(killed) == history(whole)
    assert_same_weights(weights(killed), weights(whole))
    assert_same_weights(weights(killed, "best.pt"), weights(whole, "best.pt"))
    assert json.loads((killed / "metrics.json").read_text()) == json.loads((whole / "metrics.json").read_text())
    assert not list(killed.rglob("*.tmp"))
    status = RunFiles(killed).read_status()
    assert (status.state, status.epochs_completed, status.starts) == (FINISHED, 5, 2)


def test_resume_refuses_other_settings_and_a_finished_run(colours, tmp_path):
    run = tmp_path / "run"
    other = subprocess.run(cli("train", "--resume", str(run), "--epochs", "9"), capture_output=True, text=True)
    assert other.returncode == 2 and "--epochs" in other.stderr and len(other.stderr.strip().splitlines()) == 1

    cfg = TrainConfig(data_dir=str(colours), freeze_depth="5", epochs=2, batch_size=8, image_size=64, export=False)
    Trainer(cfg, run, cache_dir=tmp_path / "cache").run()
    with pytest.raises(UserError):
        Trainer.resume(run, cache_dir=tmp_path / "cache").run()
    assert RunFiles(run).read_status().state == FINISHED  # the refusal changed nothing


def stop_after(epoch: int):
    stop = StopToken()
    events = Recorder()

    def on_event(event):
        events(event)
        if isinstance(event, EpochEnded) and event.epoch == epoch:
            stop.stop()

    return on_event, stop, events


def test_a_stopped_run_is_a_result_evaluated_as_it_is_then_resumed_to_the_end(colours, tmp_path):
    """Prefix-cached partial fine-tune: stop after epoch 2, evaluate the kept epoch, resume, match the whole run."""
    cfg = TrainConfig(data_dir=str(colours), freeze_depth="5", epochs=4, batch_size=8, image_size=64, export=False, patience=0)
    cache = tmp_path / "cache"
    Trainer(cfg, tmp_path / "whole", cache_dir=cache).run()
    run = tmp_path / "run"
    on_event, stop, _ = stop_after(2)
    assert Trainer(cfg, run, cache_dir=cache).run(on_event, stop).cancelled
    status = RunFiles(run).read_status()
    assert (status.state, status.epochs_completed, status.resumable, status.evaluable) == (STOPPED, 2, True, True)

    evaluated = Trainer.resume(run, cache_dir=cache, evaluate_only=True, export=True).run()
    summary = evaluated.summary
    assert summary["stopped_after"] == "stopped after epoch 2 of 4" and summary["epochs"] == 2
    assert summary["best_epoch"] in (1, 2) and summary["export"]["verified"]
    assert read_export_info(run / "model.pt")["summary"]["stopped_after"] == "stopped after epoch 2 of 4"  # the file says so too
    assert RunFiles(run).read_status().state == STOPPED  # still resumable

    events = Recorder()
    Trainer.resume(run, cache_dir=cache).run(events)
    assert [e.epoch for e in events.of(EpochEnded)] == [3, 4]
    assert history(run) == history(tmp_path / "whole")
    assert_same_weights(weights(run), weights(tmp_path / "whole"))
    assert RunFiles(run).read_status().state == FINISHED


def test_a_run_stopped_before_its_first_epoch_holds_nothing_to_evaluate_and_resumes_from_the_start(colours, tmp_path):
    cfg = TrainConfig(data_dir=str(colours), freeze_depth="5", epochs=2, batch_size=8, image_size=64, export=False)
    run, cache = tmp_path / "run", tmp_path / "cache"
    stop = StopToken()
    stop.stop()
    assert Trainer(cfg, run, cache_dir=cache).run(stop=stop).cancelled
    assert not run.exists()  # stopped while scanning, before its first file: the run leaves nothing

    stop = StopToken()

    def stop_when_decoding(event):  # after the run's files are written, before its first epoch
        if isinstance(event, PhaseStarted) and event.name == "decoding":
            stop.stop()

    assert Trainer(cfg, run, cache_dir=cache).run(stop_when_decoding, stop).cancelled
    status = RunFiles(run).read_status()
    assert status.state == STOPPED and not status.evaluable
    with pytest.raises(UserError):
        Trainer.resume(run, cache_dir=cache, evaluate_only=True).run()
    events = Recorder()
    Trainer.resume(run, cache_dir=cache).run(events)
    assert [e.epoch for e in events.of(EpochEnded)] == [1, 2]
    assert RunFiles(run).read_status().state == FINISHED


def test_evaluate_and_export_commands_take_a_stopped_run_and_refuse_what_is_not_a_run(colours, tmp_path, capsys):
    from tlstudio.cli import main

    cfg = TrainConfig(data_dir=str(colours), freeze_depth="5", epochs=3, batch_size=8, image_size=64, export=False, patience=0)
    run, cache = tmp_path / "run", tmp_path / "cache"
    on_event, stop, _ = stop_after(1)
    assert Trainer(cfg, run, cache_dir=cache).run(on_event, stop).cancelled
    capsys.readouterr()

    assert main(["evaluate", str(run), "--cache", str(cache), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["stopped_after"] == "stopped after epoch 1 of 3" and "export" not in summary
    assert (run / "metrics.json").is_file() and not (run / "model.pt").exists()

    assert main(["export", str(run), "--cache", str(cache)]) == 0
    assert read_export_info(run / "model.pt")["summary"]["stopped_after"] == "stopped after epoch 1 of 3"
    assert RunFiles(run).read_status().state == STOPPED

    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert main(["export", str(colours)]) == 2  # a folder of pictures, not a run
    assert len(capsys.readouterr().err.strip().splitlines()) == 2
