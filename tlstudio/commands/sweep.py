"""`tlstudio sweep DATA_DIR --out SWEEP_DIR [--skip frozen,partial,full,scratch or member names] [--epochs N] [--image-size N] [--json]`.

Trains each way of transferring (frozen bundled backbones, two partial fine-tunes, a full fine-tune, from
scratch) as a run of the project at SWEEP_DIR (created when missing), cheapest first. Prints the estimate
first, then progress, then the table and the recommendation, and writes the sweep's HTML report.
Ctrl+C stops the current member cleanly (its run stays, resumable); the finished ones are kept.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tlstudio.commands.progress import TerminalProgress
from tlstudio.commands.train import _positive_int
from tlstudio.core.errors import UserError
from tlstudio.core.names import printable


def register(subparsers) -> None:
    from tlstudio.core.runs.sweep import KINDS, SWEEP_EPOCHS

    p = subparsers.add_parser("sweep", help="which way of transferring works best on a folder of images", description=__doc__)
    p.add_argument("data_dir", metavar="DATA_DIR", help="folder with one sub-folder per class (or train/ and val/ folders)")
    p.add_argument("--out", metavar="SWEEP_DIR", required=True, help="the project the sweep's runs go into (created when missing)")
    p.add_argument("--skip", default="", help=f"comma-separated kinds ({', '.join(KINDS)}) or member names (frozen:NAME, partial:K) to leave out")
    p.add_argument("--epochs", type=_positive_int, default=SWEEP_EPOCHS, help=f"epochs of each fine-tune (default {SWEEP_EPOCHS})")
    p.add_argument("--image-size", type=_positive_int, default=None, help="input size in pixels (default: each backbone's own)")
    p.add_argument("--val-split", type=float, default=0.2)
    p.add_argument("--test-split", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print the sweep record as JSON on stdout")
    p.set_defaults(func=run)


def open_project(out: Path, args):
    from tlstudio.core.runs import project as pj

    suffixed = out.with_name(out.name + pj.SUFFIX)
    existing = next((p for p in (out, suffixed) if pj.is_project(p)), None)
    project = pj.Project.open(existing) if existing is not None else pj.Project.create(out)
    project.set_data(Path(args.data_dir), args.val_split, args.test_split, args.seed)
    project.save()
    return project


def run(args) -> int:
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.data.scan import scan_folder
    from tlstudio.core.runs import sweep
    from tlstudio.core.runs.sweep_report import COLUMNS, table_rows, write_report

    data = Path(args.data_dir)
    if not data.is_dir():
        raise UserError(f"'{printable(data)}' is not a folder. Give the folder that holds one sub-folder per class.")
    config = TrainConfig(data_dir=str(data), image_size=args.image_size, val_split=args.val_split, test_split=args.test_split,
                         seed=args.seed, device=args.device).validate()
    members = sweep.plan_sweep(config, args.skip.split(","), epochs=args.epochs)  # a bad --skip fails here, before any work
    project = open_project(Path(args.out), args)
    progress = TerminalProgress()
    index = scan_folder(config.data_dir, config.val_split, config.test_split, config.seed, progress)
    estimates = sweep.estimate_sweep(members, sweep.split_sizes(index), len(index.classes))
    err = sys.stderr
    print(f"sweep of {len(members)} member(s) into '{printable(project.root)}'; estimated time (an estimate from a short trial):", file=err)
    for m, e in zip(members, estimates):
        print(f"  {m.title:<48} about {e.seconds:8.0f} s", file=err)
    print(f"  {'total':<48} about {sum(e.seconds for e in estimates):8.0f} s", file=err)

    def on_event(event) -> None:
        if isinstance(event, sweep.MemberStarted):
            print(f"[{event.index + 1}/{event.total}] {event.name}", file=err)
        elif isinstance(event, sweep.MemberEnded):
            r = event.result
            print(f"  {r.name}: {r.status}, {r.seconds or 0:.1f} s", file=err)
        else:
            progress(event)

    record = sweep.run_sweep(project, members, on_event, index=index, estimates=estimates)
    report = write_report(record, sweep.record_path(project, record.id).with_name("report.html"))
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
    else:
        rows = [COLUMNS, *table_rows(record.members)]
        widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
        for row in rows:
            print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        print(sweep.recommendation_sentence(record.recommendation, record.members))
        print(f"report: {printable(report)}")
    return 130 if record.stopped else 0
