"""Training in two CPU processes (gloo on loopback) gives what one process gives, and every rank ends together.

The runs are real: the bundled EfficientNet-Lite0, its last stages fine-tuned with the frozen stages run
every batch, on a generated two-class folder hard enough that the loss is far from zero.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from PIL import Image

from tests.ranks import run_ranks
from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.events import StopToken
from tlstudio.core.runs.files import FAILED, FINISHED, STOPPED, RunFiles

REPO = Path(__file__).resolve().parents[2]
PER_CLASS = 210  # half of them validate: 210 validation pictures


@pytest.fixture(scope="module")
def close_colours(tmp_path_factory) -> Path:
    """Two classes of noisy pictures whose colours differ a little: about 80% can be told apart."""
    root = tmp_path_factory.mktemp("close_colours")
    rng = np.random.default_rng(0)
    for name, colour in (("a", (130, 110, 100)), ("b", (115, 120, 110))):
        (root / name).mkdir()
        for i in range(PER_CLASS):
            pixels = np.array(colour, np.float32) + rng.normal(0, 45, (48, 48, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / name / f"{i:03d}.png")
    return root


def train_args(data: Path, out: Path, cache: Path, epochs: int = 2) -> list[str]:
    return [
        "train", str(data), "--out", str(out), "--cache", str(cache), "--epochs", str(epochs), "--freeze-depth", "7",
        "--image-size", "64", "--batch-size", "16", "--workers", "0", "--val-split", "0.5", "--no-cache", "--no-export",
    ]


def tlstudio(*args: str, timeout: float = 300, threads: Optional[int] = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    return subprocess.run([sys.executable, "-m", "tlstudio", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def files_of(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and p.name != ".lock"}


def test_two_processes_write_the_run_one_process_writes_with_the_same_validation_loss(close_colours, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    alone = tlstudio(*train_args(close_colours, one, tmp_path / "c1"))
    assert alone.returncode == 0, alone.stderr
    shared = tlstudio(*train_args(close_colours, two, tmp_path / "c2"), "--nproc", "2")
    assert shared.returncode == 0, shared.stderr
    assert files_of(two) == files_of(one)
    one_val, two_val = (RunFiles(r).read_history()[-1]["val_loss"] for r in (one, two))
    assert abs(two_val - one_val) <= 0.02 * one_val
    summary = json.loads((two / "summary.json").read_text())
    assert summary["epochs"] == 2 and RunFiles(two).read_status().state == FINISHED


def faulty_run(data: Path, tmp_path: Path, fault: str) -> tuple[subprocess.CompletedProcess, Path, float]:
    """Two ranks under torchrun; rank 1 meets ``fault`` at its 15th step (in epoch 2). Returns the seconds from the fault to the end."""
    out, mark = tmp_path / fault, tmp_path / f"{fault}.mark"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
        "-m", "tests.faults.rank_faults", fault, "1", "15", str(mark), *train_args(data, out, tmp_path / "cache", epochs=3),
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    return done, out, time.time() - float(mark.read_text())


def test_a_poisoned_loss_on_one_rank_fails_both_at_once_naming_that_rank(close_colours, tmp_path):
    done, out, seconds = faulty_run(close_colours, tmp_path, "nan")
    assert done.returncode != 0
    assert seconds < 10
    status = RunFiles(out).read_status()
    assert status.state == FAILED and status.epochs_completed == 1
    assert "rank 1 of 2" in status.message
    assert done.stderr.count("tlstudio: error:") == 1  # rank 0 reports it; rank 1 does not repeat it


def test_a_stop_on_one_rank_stops_both_resumably(close_colours, tmp_path):
    done, out, seconds = faulty_run(close_colours, tmp_path, "stop")
    assert seconds < 10
    status = RunFiles(out).read_status()
    assert status.state == STOPPED and status.epochs_completed == 1 and status.resumable
    assert RunFiles(out).last.is_file()


def uninterrupted_or_resumed(ranks, data: str, out: str, stop_after: int) -> list[dict]:
    """Train 3 epochs; with ``stop_after``, stop once that many epochs are done (resumed later, in another process count)."""
    config = TrainConfig(
        data_dir=data, freeze_depth="7", epochs=3, batch_size=16, image_size=64, workers=0, val_split=0.5,
        feature_cache=False, export=False, dropout=0.0,
    )
    stop = StopToken()
    events = (lambda e: stop.stop() if type(e).__name__ == "EpochEnded" and e.epoch == stop_after else None) if stop_after else None
    trainer = Trainer(config, out, cache_dir=Path(out).parent / "cache", ranks=ranks)
    trainer.run(events or (lambda e: None), stop)
    return RunFiles(out).read_history()


def resume(ranks, out: str) -> list[dict]:
    Trainer.resume(out, cache_dir=Path(out).parent / "cache", ranks=ranks).run()
    return RunFiles(out).read_history()


def test_a_two_process_run_resumed_in_one_process_has_the_history_of_an_uninterrupted_one(close_colours, tmp_path):
    from tlstudio.core.distributed import SINGLE

    whole = run_ranks(uninterrupted_or_resumed, 2, str(close_colours), str(tmp_path / "whole"), 0)[0]
    run_ranks(uninterrupted_or_resumed, 2, str(close_colours), str(tmp_path / "cut"), 1)
    assert RunFiles(tmp_path / "cut").read_status().state == STOPPED
    resumed = resume(SINGLE, str(tmp_path / "cut"))
    assert len(resumed) == len(whole) == 3
    for a, b in zip(resumed, whole):
        for key in ("train_loss", "val_loss", "sel_loss"):
            assert abs(a[key] - b[key]) <= 1e-4, (key, a, b)


def frozen_args(data: Path, out: Path, cache: Path) -> list[str]:
    return ["train", str(data), "--out", str(out), "--cache", str(cache), "--freeze-depth", "all", "--image-size", "64",
            "--workers", "0", "--val-split", "0.5", "--no-export", "--json"]


def test_a_frozen_run_caches_its_features_in_two_processes_and_fits_the_head_once_to_the_same_answers(close_colours, tmp_path):
    # One thread, as each of two processes has on two cores: the same kernels give the same float16 features.
    alone = tlstudio(*frozen_args(close_colours, tmp_path / "one", tmp_path / "c1"), threads=1)
    assert alone.returncode == 0, alone.stderr
    shared = tlstudio(*frozen_args(close_colours, tmp_path / "two", tmp_path / "c2"), "--nproc", "2")
    assert shared.returncode == 0, shared.stderr
    one, two = (json.loads((tmp_path / r / "predictions.json").read_text()) for r in ("one", "two"))
    assert [p["pred"] for p in two] == [p["pred"] for p in one]
    assert np.allclose([p["probs"] for p in two], [p["probs"] for p in one], atol=1e-5)
    pixels = [sorted((tmp_path / c / "pixels").glob("*.u8")) for c in ("c1", "c2")]
    assert [p.name for p in pixels[0]] == [p.name for p in pixels[1]]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(*pixels))  # the decoded store, byte for byte
    features = [sorted((tmp_path / c / "features").glob("*.npy")) for c in ("c1", "c2")]
    assert [p.name for p in features[0]] == [p.name for p in features[1]] and features[0]
    for a, b in zip(*features):
        assert np.abs(np.load(a).astype(np.float64) - np.load(b).astype(np.float64)).max() <= 1e-6
    again = tlstudio(*frozen_args(close_colours, tmp_path / "again", tmp_path / "c1"), "--nproc", "2")
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again" / "summary.json").read_text())["cache_reused"] is True  # the one-process cache, reused
