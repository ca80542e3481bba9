"""One writer per run folder: a second one is refused before it touches a file; a dead one's lock is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.synthetic import make_colour_dataset
from tlstudio.core.config import TrainConfig
from tlstudio.core.runs.files import FINISHED, RunFiles
from tlstudio.core.runs.lock import LOCK_NAME, RunFolderBusy, RunLock, is_locked
from tlstudio.core.engine.trainer import Trainer


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return make_colour_dataset(tmp_path_factory.mktemp("lock") / "colours", per_class=8)


def test_a_second_lock_on_a_held_folder_is_refused_and_names_the_holder(tmp_path):
    with RunLock(tmp_path) as first:
        assert first.taken_over is None and is_locked(tmp_path)
        with pytest.raises(RunFolderBusy) as refused:
            RunLock(tmp_path).acquire()
        assert refused.value.holder["pid"] == os.getpid()
    assert not is_locked(tmp_path)
    assert RunLock(tmp_path).acquire().taken_over is None  # a clean release leaves nothing to take over


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path, colours):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / LOCK_NAME).write_text(json.dumps({"pid": 2**22 + 17, "host": "lab-pc", "started": "2026-01-01 10:00:00"}))
    lock = RunLock(tmp_path / "run").acquire()
    assert lock.taken_over["pid"] == 2**22 + 17
    lock.release()

    (tmp_path / "run" / LOCK_NAME).write_text(json.dumps({"pid": 2**22 + 17}))
    cfg = TrainConfig(data_dir=str(colours), epochs=1, batch_size=8, image_size=64, export=False)
    Trainer(cfg, tmp_path / "run", cache_dir=tmp_path / "cache").run()
    assert RunFiles(tmp_path / "run").read_status().state == FINISHED


def test_a_trainer_on_a_held_folder_writes_nothing(tmp_path, colours):
    run = tmp_path / "run"
    cfg = TrainConfig(data_dir=str(colours), epochs=1, batch_size=8, image_size=64, export=False)
    with RunLock(run):
        with pytest.raises(RunFolderBusy):
            Trainer(cfg, run, cache_dir=tmp_path / "cache").run()
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX")
def test_two_processes_on_one_out_folder_the_second_exits_2_and_the_first_completes_untouched(tmp_path, colours):
    run, cache = tmp_path / "run", tmp_path / "cache"
    common = ["--batch-size", "8", "--image-size", "64", "--no-export", "--cache", str(cache), "--out", str(run)]
    first = subprocess.Popen([sys.executable, "-m", "tlstudio", "train", str(colours), "--epochs", "3", "--freeze-depth", "5", "--no-cache", *common],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (run / "status.json").is_file():  # written under the lock
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGSTOP)  # hold it mid-run while the second one tries
        second = subprocess.run([sys.executable, "-m", "tlstudio", "train", str(colours), "--epochs", "7", *common], capture_output=True, text=True)
        os.kill(first.pid, signal.SIGCONT)
        assert second.returncode == 2
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and str(run) in lines[0] and str(first.pid) in lines[0]
        assert first.wait(timeout=240) == 0, first.stderr.read().decode()
    finally:
        if first.poll() is None:
            first.kill()
    files = RunFiles(run)
    assert TrainConfig.from_json(files.config.read_text()).epochs == 3
    assert [row["epoch"] for row in files.read_history()] == [1, 2, 3]
    assert files.read_status().state == FINISHED
