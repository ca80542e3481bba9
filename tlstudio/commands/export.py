"""`tlstudio export RUN_DIR`: a verified TorchScript file of the epoch a run kept (model.pt in RUN_DIR).

A finished run was exported when it finished (unless trained with --no-export); a stopped or
crashed one is evaluated and exported as it is, marked "stopped after epoch k of n".
"""

from __future__ import annotations

from tlstudio.commands import evaluate


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export the model of a run, also of one that was stopped", description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="the folder a run wrote (the --out of 'tlstudio train')")
    p.add_argument("--cache", metavar="DIR", default=None, help="cache for decoded images and features (default: the per-user cache)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.set_defaults(func=evaluate.run, export=True)
