"""`tlstudio adapt RUN_DIR NEW_PICTURES_DIR --out DIR`: a finished run adapted to new, unlabelled pictures.

The new pictures come from another microscope, camera or season than the run's training pictures; no
labels are needed. The source run is left as it is: the adapted run is a new run folder (--out) with its
own verified model.pt, used like any run's ('tlstudio predict DIR/model.pt ...').

--method adabn re-estimates the BatchNorm statistics on the training and the new pictures together;
--method coral (the default) aligns the training pictures' features to the new pictures' and refits the head;
--method adabn+coral does both. --labelled DIR (one sub-folder per class) measures the
accuracy on a few labelled new pictures before and after; they are never used to adapt.
"""

from __future__ import annotations

import json

from tlstudio.commands.progress import TerminalProgress
from tlstudio.core.names import printable


def register(subparsers) -> None:
    from tlstudio.core.adapt.adapt_run import DEFAULT_METHOD, METHODS

    p = subparsers.add_parser("adapt", help="adapt a finished run to new, unlabelled pictures (a new run folder)", description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="a finished run's folder (the --out of 'tlstudio train')")
    p.add_argument("new_pictures", metavar="NEW_PICTURES_DIR", help="a folder of new pictures, no labels needed (searched with its sub-folders)")
    p.add_argument("--out", metavar="DIR", required=True, help="a new (or empty) folder for the adapted run")
    p.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD, help=f"how to adapt (default {DEFAULT_METHOD})")
    p.add_argument("--labelled", metavar="DIR", default=None, help="optional: a few labelled new pictures (one sub-folder per class), measured before and after")
    p.add_argument("--cache", metavar="DIR", default=None, help="cache for decoded images and features (default: the per-user cache)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--no-export", action="store_true", help="skip the verified model.pt")
    p.add_argument("--json", action="store_true", help="print the adaptation's figures as JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from tlstudio.core.adapt.adapt_run import adapt_run
    from tlstudio.core.paths import cache_dir

    result = adapt_run(
        args.run_dir, args.new_pictures, args.out, method=args.method, labelled_dir=args.labelled, cache_dir=args.cache or cache_dir(),
        on_event=TerminalProgress(), export=not args.no_export, device=args.device,
    )
    if args.json:
        print(json.dumps(result.summary["adaptation"], indent=2))
        return 0
    before, after = result.before, result.after
    print(f"adapted with {result.method} to {result.pictures} new pictures" + (f" ({result.skipped} unreadable, skipped)" if result.skipped else ""))
    print(f"before: {before.gap.describe()}")
    print(f"after:  {after.gap.describe()}")
    print(f"source validation accuracy {before.source_val_accuracy:.4f} -> {after.source_val_accuracy:.4f}")
    if before.labelled_accuracy is not None:
        print(f"labelled new pictures ({result.labelled_pictures}): accuracy {before.labelled_accuracy:.4f} -> {after.labelled_accuracy:.4f}")
    print(f"BatchNorm statistics: {result.batchnorm}")
    if result.export:
        print(f"model: {printable(result.export['path'])}")
    return 0
