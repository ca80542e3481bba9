"""Strategy sweep benchmark: `tlstudio sweep` on hymenoptera with its defaults, frozen and partial members, timed.

    .venv/bin/python -m tests.bench.bench_sweep [--out DIR] [--skip full,scratch]

The issue's goal: the frozen and partial members finish within 10 minutes on a 2-core CPU with the
sweep's default epochs and image size. Prints each member's seconds (estimated and measured), its
selection score and validation accuracies, and the total wall time. Needs ../shared/datasets/hymenoptera
(beside the repository); not collected by pytest (its name does not start with test_).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HYMENOPTERA = REPO.parent / "shared" / "datasets" / "hymenoptera"
GOAL_S = 600.0


def main() -> int:
    from tlstudio.cli import main as cli

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=None, help="the sweep's project folder (default: a temporary one, removed)")
    parser.add_argument("--skip", default="full,scratch")
    args = parser.parse_args()
    if not HYMENOPTERA.is_dir():
        print(f"skipped: {HYMENOPTERA} is absent")
        return 0
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    out = work / "sweep"
    started = time.perf_counter()
    code = cli(["sweep", str(HYMENOPTERA), "--out", str(out), "--skip", args.skip, "--json"])
    wall = time.perf_counter() - started
    record = json.loads(next((work).glob("sweep*.tlstudio/sweeps/*/sweep.json")).read_text())
    print(f"\n{'member':<28} {'est s':>7} {'s':>7} {'select':>7} {'val acc':>8} {'val bal':>8}", file=sys.stderr)
    for m in record["members"]:
        def pct(v):
            return f"{100 * v:.1f}" if v is not None else "-"
        print(f"{m['name']:<28} {m['estimated_seconds'] or 0:7.0f} {m['seconds'] or 0:7.1f} {pct(m['selection_score']):>7} "
              f"{pct(m['val_accuracy']):>8} {pct(m['val_balanced_accuracy']):>8}", file=sys.stderr)
    print(f"total wall {wall:.0f} s (goal {GOAL_S:.0f} s: {'met' if wall <= GOAL_S else 'missed'}); exit code {code}", file=sys.stderr)
    print(f"recommendation: {record['recommendation']}", file=sys.stderr)
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if code == 0 else code


if __name__ == "__main__":
    sys.exit(main())
