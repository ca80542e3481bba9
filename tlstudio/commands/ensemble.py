"""`tlstudio ensemble RUN_DIR RUN_DIR [...] --out DIR`: combine finished runs into one model file.

The model averages the runs' calibrated probabilities with equal weights, each run's network with its
own preprocessing inside (members may have different backbones and input sizes). The runs must have
the same classes and the same validation pictures. The ensemble's validation figures come from the
runs' own saved validation probabilities (nothing is retrained or chosen on them); DIR/model.pt is
checked in a fresh process and runs with 'tlstudio predict' like any model file. DIR/ensemble.json
holds every figure.
"""

from __future__ import annotations

import json
import sys

from tlstudio.commands.progress import TerminalProgress
from tlstudio.core.events import ignore_events
from tlstudio.core.inference.ensemble import EnsembleResult, combine_runs
from tlstudio.core.names import printable


def register(subparsers) -> None:
    p = subparsers.add_parser("ensemble", help="combine finished runs into one model that averages their answers", description=__doc__)
    p.add_argument("runs", metavar="RUN_DIR", nargs="+", help="two or more finished runs (the --out of 'tlstudio train', or runs/<id>)")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder for the ensemble's model.pt and ensemble.json")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout instead of the table")
    p.set_defaults(func=run)


def table(result: EnsembleResult) -> str:
    """Members and the ensemble on the validation pictures, one line each."""
    width = max(len(m.run_id) for m in result.members)
    lines = [f"{'':{width}}  {'backbone':<22} {'accuracy':>9} {'balanced':>9}"]
    for m in result.members:
        best = "  (best member)" if m == result.best_member else ""
        lines.append(f"{printable(m.run_id):{width}}  {m.backbone:<22} {m.val_accuracy:>9.4f} {m.val_balanced_accuracy:>9.4f}{best}")
    lines.append(f"{'ensemble':{width}}  {'mean of ' + str(len(result.members)):<22} {result.val_accuracy:>9.4f} {result.val_balanced_accuracy:>9.4f}")
    lines.append(f"On {result.val_pictures} validation pictures: ensemble {result.gain_points:+.1f} points of accuracy against the best member.")
    lines.append(f"Wrote {printable(str(result.model_path))}: {result.verification.message}.")
    return "\n".join(lines)


def run(args) -> int:
    on_event = TerminalProgress(sys.stderr) if sys.stderr.isatty() else ignore_events
    result = combine_runs(args.runs, args.out, on_event=on_event)
    print(json.dumps(result.to_dict(), indent=2) if args.json else table(result))
    return 0
