"""`tlstudio report RUN_DIR [--out FILE]`: one self-contained HTML page about a run, to send to a colleague."""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("report", help="write a single-file HTML report of a training run", description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="the folder a run wrote (the --out of 'tlstudio train')")
    p.add_argument("--out", metavar="FILE", help="where to write the page (default RUN_DIR/report.html)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tlstudio.core.report.html import write_report  # imported late: 'tlstudio --help' stays quick

    out = Path(args.out) if args.out else Path(args.run_dir) / "report.html"
    print(write_report(args.run_dir, out))
    return 0
