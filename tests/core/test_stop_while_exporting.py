"""The export's check in a fresh process follows Stop and Pause: a run stopped while exporting is a stopped
run with no unchecked file left, exported later; the verifying child is killed at once and held while paused."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from tests.synthetic import make_colour_dataset
from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.events import Cancelled, PhaseStarted, StopToken
from tlstudio.core.inference.child_run import PROGRESS_MARK, run_followed
from tlstudio.core.runs.files import FINISHED, STOPPED, RunFiles

# A child that checks 40 "pictures", 50 ms each, and reports each one the way the export's checks do.
SLOW_CHILD = [
    sys.executable, "-c",
    f"import sys, time\nfor i in range(1, 41):\n    time.sleep(0.05)\n    print('{PROGRESS_MARK}', i, file=sys.stderr, flush=True)\nprint('done')",
]


def test_a_stop_kills_the_verifying_child_at_once():
    token, seen = StopToken(), []

    def on_progress(done):
        seen.append(done)
        if done >= 3:
            token.stop()

    started = time.monotonic()
    with pytest.raises(Cancelled):
        run_followed(SLOW_CHILD, timeout=60, stop=token, on_progress=on_progress)
    assert time.monotonic() - started < 1.8  # the whole child would take 2 s or more
    assert seen == sorted(seen) and 3 <= seen[-1] < 40


def test_a_pause_holds_the_child_and_its_output_is_whole_after_continue():
    if not hasattr(__import__("signal"), "SIGSTOP"):
        pytest.skip("holding a process needs POSIX signals")
    token, calls = StopToken(), []

    def on_progress(done):
        calls.append((time.monotonic(), done))
        if done == 5 and not token.paused and len(calls) < 10:
            token.pause()
            threading.Timer(1.0, token.resume).start()

    out = run_followed(SLOW_CHILD, timeout=60, stop=token, on_progress=on_progress)
    assert out.returncode == 0 and out.stdout.strip() == "done" and PROGRESS_MARK not in out.stderr
    gaps = [b[0] - a[0] for a, b in zip(calls, calls[1:])]
    assert max(gaps) > 0.9  # nothing was checked while held
    assert calls[-1][1] == 40


def fast_config(data: Path) -> TrainConfig:
    return TrainConfig(data_dir=str(data), image_size=64, epochs=1, batch_size=8, export=True)


def leftovers(run: Path) -> list[str]:
    return sorted(p.name for p in run.rglob("*") if ".tmp" in p.name or "unverified" in p.name)


def test_a_run_stopped_while_its_file_is_checked_is_stopped_and_exported_later(tmp_path):
    data = make_colour_dataset(tmp_path / "colours", per_class=12)
    run = tmp_path / "run"
    token, checking = StopToken(), []

    def on_event(event):
        if isinstance(event, PhaseStarted) and event.name == "exporting":
            checking.append(event.total)
            token.stop()  # the file is being written: the run stops before a fresh process checks it

    result = Trainer(fast_config(data), run, cache_dir=tmp_path / "cache").run(on_event, token)

    assert result.cancelled and checking
    status = RunFiles(run).read_status()
    assert status.state == STOPPED and status.evaluable and status.resumable
    assert not (run / "model.pt").exists() and leftovers(run) == []

    later = Trainer.resume(run, cache_dir=tmp_path / "cache", evaluate_only=True, export=True).run()
    assert later.summary["export"]["verified"] and (run / "model.pt").is_file()
    assert RunFiles(run).read_status().state == FINISHED and leftovers(run) == []
