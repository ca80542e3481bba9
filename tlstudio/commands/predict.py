"""`tlstudio predict MODEL_PT PATH...`: classify images with an exported model file, using nothing but that file.

A picture whose top probability is below the file's threshold (``tlstudio threshold RUN 0.9``) is printed
as "not sure", with its probabilities."""

from __future__ import annotations

import sys

from tlstudio.commands.progress import TerminalProgress
from tlstudio.core.errors import UserError
from tlstudio.core.events import ignore_events
from tlstudio.core.names import printable
from tlstudio.core.inference.model_file import open_model_file
from tlstudio.core.inference.predict import NOT_SURE, write_predictions_csv


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="classify images with an exported model.pt", description=__doc__)
    p.add_argument("model", metavar="MODEL_PT", help="the model.pt that 'tlstudio train' exported")
    p.add_argument("paths", metavar="PATH", nargs="+", help="image files, or folders searched recursively")
    p.add_argument("--csv", metavar="OUT", help="also write the predictions to this CSV file")
    p.add_argument("--top-k", type=int, default=1, metavar="K", help="how many classes to show per image (default 1)")
    p.add_argument(
        "--trust",
        action="store_true",
        help="run a TorchScript file this tlstudio did not make (it is a program: only if you trust who sent it); remembered for that file",
    )
    p.set_defaults(func=run)


def run(args) -> int:
    if args.top_k < 1:
        raise UserError(f"--top-k {args.top_k} must be at least 1.")
    model = open_model_file(args.model, trust=args.trust)
    names = model.class_names
    k = min(args.top_k, len(names))
    on_event = TerminalProgress(sys.stderr) if sys.stderr.isatty() else ignore_events
    predictions = model.predict_paths(args.paths, on_event=on_event)
    if not predictions:
        raise UserError("no image files found in " + ", ".join(f"'{printable(p)}'" for p in args.paths) + ".")
    for p in predictions:
        shown = "  ".join(f"{printable(name)} {prob:.3f}" for name, prob in p.top(k, names)) if p.ok else f"skipped: {printable(p.error)}"
        if p.not_sure:
            shown = f"{NOT_SURE} (below {model.not_sure_below:.2f})  {shown}"
        print(f"{printable(p.path)}\t{shown}")
    if args.csv:
        write_predictions_csv(args.csv, predictions, names, k)
        print(f"wrote {args.csv}", file=sys.stderr)
    failed = sum(not p.ok for p in predictions)
    if failed:
        print(f"{failed} of {len(predictions)} files could not be read as images (listed above as skipped).", file=sys.stderr)
    return 0 if failed < len(predictions) else 1
