"""Domain adaptation, distillation and ensembles measured, in one command (issue: the seeds' advanced transfer).

    .venv/bin/python -m tests.bench.bench_transfer            # every set, 3 seeds each (hours on a 2-core CPU)
    .venv/bin/python -m tests.bench.bench_transfer --quick    # one set, one seed of each
    .venv/bin/python -m tests.bench.bench_transfer --only ensemble,adapt

Runs, in turn, ``tests.bench.transfer_adapt`` (target accuracy without adaptation, with AdaBN and with
feature alignment, on generated shifts of held-out pictures), ``tests.bench.transfer_distill`` (a Lite0
student distilled from a Lite2 teacher against the same student trained alone) and
``tests.bench.transfer_ensemble`` (Lite0 + Lite1 + Lite2 combined against the best of them); each prints
its own table, and this prints the wall time of each. Needs ../shared/datasets (beside the repository);
a part whose sets are absent says so and is skipped. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PARTS = {"adapt": "tests.bench.transfer_adapt", "distill": "tests.bench.transfer_distill", "ensemble": "tests.bench.transfer_ensemble"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one set and one seed of each part")
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts: {', '.join(PARTS)}")
    args = parser.parse_args(argv)
    chosen = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        parser.error(f"--only {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    seconds, codes = {}, {}
    for part in chosen:
        print(f"\n=== {part} ({PARTS[part]}){' --quick' if args.quick else ''}", flush=True)
        started = time.perf_counter()
        codes[part] = importlib.import_module(PARTS[part]).main(["--quick"] if args.quick else [])
        seconds[part] = time.perf_counter() - started
    print("\n=== wall time")
    for part in chosen:
        print(f"{part:<10} {seconds[part]:8.0f} s   exit code {codes[part]}")
    print(f"{'total':<10} {sum(seconds.values()):8.0f} s")
    return max(codes.values(), default=0)


if __name__ == "__main__":
    sys.exit(main())
