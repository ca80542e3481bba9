"""`tlstudio evaluate RUN_DIR`: the epoch a run kept, measured on its validation (and test) pictures.

For a run that was stopped, crashed or failed after at least one epoch: its best checkpoint is a
result too. The figures are marked "stopped after epoch k of n" everywhere they are shown.
"""

from __future__ import annotations

import json
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate the epoch a stopped or crashed run kept", description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="the folder a run wrote (the --out of 'tlstudio train')")
    p.add_argument("--cache", metavar="DIR", default=None, help="cache for decoded images and features (default: the per-user cache)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.set_defaults(func=run, export=False)


def run(args) -> int:
    from tlstudio.commands.train import report
    from tlstudio.core.errors import UserError
    from tlstudio.core.paths import cache_dir
    from tlstudio.core.engine.trainer import Trainer

    if not Path(args.run_dir).is_dir():
        raise UserError(f"'{args.run_dir}' is not a folder. Give the run folder (the --out of 'tlstudio train').")
    from tlstudio.core.adapt.export_kept import export_kept_model, is_adapted

    if args.export and is_adapted(args.run_dir):  # its weights are not a training's: exported as they are
        report = export_kept_model(args.run_dir, getattr(args, "format", "torchscript"), args.cache or cache_dir())
        print(json.dumps(report, indent=2) if args.json else f"exported and verified: {report['path']} ({report['message']})")
        return 0
    trainer = Trainer.resume(args.run_dir, cache_dir=args.cache or cache_dir(), evaluate_only=True, export=args.export, export_format=getattr(args, "format", "torchscript"))
    return report(trainer, args)
