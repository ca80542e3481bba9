"""Stress the GUI's threads: run the GUI tests that start several workers at once, again and again, under CPU load.

    python -m tests.stress_gui            # 20 runs beside two busy-loop processes
    python -m tests.stress_gui --runs 2   # what CI does

Each run is a fresh ``pytest`` process, so a crash (a segmentation fault, an abort) ends
that run with a signal instead of hiding in one long process. Exit status 0 only when every
run passed; the failing run's output is printed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODULES = [
    "tests/gui/test_threads.py",
    "tests/gui/test_errors.py",
    "tests/gui/test_data_panel.py",
    "tests/gui/test_model_panel.py",
]


def busy_loop() -> None:  # pragma: no cover - runs in a child process until it is terminated
    while True:
        pass


def run_once(python: str) -> subprocess.CompletedProcess:
    cmd = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *MODULES]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONFAULTHANDLER": "1"}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)


def describe(rc: int) -> str:
    return f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.stress_gui", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="how many times to run the tests (default 20)")
    parser.add_argument("--load", type=int, default=2, help="busy-loop processes beside them (default 2)")
    args = parser.parse_args(argv)

    load = [multiprocessing.Process(target=busy_loop, daemon=True) for _ in range(args.load)]
    for p in load:
        p.start()
    try:
        for n in range(1, args.runs + 1):
            t0 = time.monotonic()
            done = run_once(sys.executable)
            last = (done.stdout.strip().splitlines() or [""])[-1]
            print(f"run {n}/{args.runs}: {describe(done.returncode)} in {time.monotonic() - t0:.0f} s  {last}", flush=True)
            if done.returncode != 0:
                print(done.stdout[-20_000:], done.stderr[-20_000:], sep="\n")
                return 1
    finally:
        for p in load:
            p.terminate()
    print(f"{args.runs} of {args.runs} runs passed with {args.load} busy-loop processes beside them")
    return 0


if __name__ == "__main__":
    sys.exit(main())
