"""`tlstudio check DATA_DIR`: find the pictures that cost accuracy, before training.

Suspected wrong labels (the frozen-feature head's out-of-fold answers, by confident learning),
near-duplicates within a class, across classes (a label conflict) and across splits (leakage),
and outliers (pictures far from every class). Nothing in the folder is changed.
"""

from __future__ import annotations

import json
import sys

from tlstudio.commands.progress import TerminalProgress
from tlstudio.core.data.scan import check_fractions, scan_folder
from tlstudio.core.events import ignore_events
from tlstudio.core.names import printable, printable_json
from tlstudio.core.quality.embeddings import DEFAULT_BACKBONE


def register(subparsers) -> None:
    p = subparsers.add_parser("check", help="find suspected wrong labels, near-duplicates, leakage and outliers in a folder", description=__doc__)
    p.add_argument("data_dir", metavar="DATA_DIR", help="folder with one sub-folder per class, or with train/ and val/ folders")
    p.add_argument("--val-split", type=float, default=0.2, metavar="F", help="validation fraction when the folder has no val/ folder (default 0.2, as 'tlstudio train')")
    p.add_argument("--test-split", type=float, default=0.0, metavar="F", help="test fraction (default 0)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the split and the folds (default 0, as 'tlstudio train')")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help=f"backbone whose frozen features are compared (default {DEFAULT_BACKBONE})")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--cache", metavar="DIR", default=None, help="cache for decoded images and features, shared with 'tlstudio train' (default: the per-user cache)")
    p.add_argument("--top", type=int, default=10, metavar="N", help="items shown of each kind (default 10; --json gives all)")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from tlstudio.core.paths import cache_dir
    from tlstudio.core.quality.check import check_dataset

    check_fractions(args.val_split, args.test_split, names=("--val-split", "--test-split"))
    on_event = TerminalProgress(sys.stderr) if sys.stderr.isatty() else ignore_events
    index = scan_folder(args.data_dir, val_split=args.val_split, test_split=args.test_split, seed=args.seed, on_event=on_event)
    report = check_dataset(index, args.cache or cache_dir(), args.backbone, args.seed, args.device, on_event)
    if args.json:
        print(printable_json(json.dumps(report.to_dict(), indent=2, ensure_ascii=False)))
    else:
        print_report(report, max(0, args.top))
    return 0


def print_report(report, top: int) -> None:
    counts = report.counts()
    print(f"{report.pictures} pictures checked ({report.training_pictures} in training) with {report.backbone} features.")
    print(f"suspected wrong labels: {counts['suspected_wrong_labels']}")
    for s in report.suspects[:top]:
        print(f"  {printable(s.path)}: in '{printable(s.label)}', looks like '{printable(s.predicted)}' ({s.confidence:.0%} sure)")
    print(f"near-duplicates: {counts['near_duplicates']} pairs ({counts['label_conflicts']} across classes, {counts['leakage']} across splits)")
    for p in report.near_duplicates[:top]:
        where = ", ".join(p.kinds)
        print(f"  {printable(p.first)} ~ {printable(p.second)}: similarity {p.similarity:.3f} ({where}{', identical files' if p.identical else ''})")
    print(f"outliers (far from every class): {counts['outliers']}")
    for o in report.flagged_outliers[:top]:
        print(f"  {printable(o.path)}: in '{printable(o.label)}', distance {o.distance:.3f} to the nearest class ('{printable(o.nearest_class)}')")
    for note in report.notes:
        print(note)
