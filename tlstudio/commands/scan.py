"""`tlstudio scan DATA_DIR`: check a folder of images before training: classes, split, every skipped file and why."""

from __future__ import annotations

import sys

from tlstudio.commands.progress import TerminalProgress
from tlstudio.core.data.scan import check_fractions, scan_folder
from tlstudio.core.events import ignore_events
from tlstudio.core.data.scan_report import format_report


def register(subparsers) -> None:
    p = subparsers.add_parser("scan", help="check a folder of images: classes, split, skipped files, warnings", description=__doc__)
    p.add_argument("data_dir", metavar="DATA_DIR", help="folder with one sub-folder per class, or with train/ and val/ folders")
    p.add_argument("--val-split", type=float, default=0.2, metavar="F", help="fraction of each class held out for validation (default 0.2)")
    p.add_argument("--test-split", type=float, default=0.0, metavar="F", help="fraction of each class held out for a final test (default 0)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the split; the same seed gives the same split (default 0)")
    p.add_argument("--json", action="store_true", help="print the dataset index as JSON instead of the report")
    p.set_defaults(func=run)


def run(args) -> int:
    check_fractions(args.val_split, args.test_split, names=("--val-split", "--test-split"))
    on_event = TerminalProgress(sys.stderr) if sys.stderr.isatty() else ignore_events
    index = scan_folder(args.data_dir, val_split=args.val_split, test_split=args.test_split, seed=args.seed, on_event=on_event)
    sys.stdout.write(index.to_json() + "\n" if args.json else format_report(index))
    return 0
