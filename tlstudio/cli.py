"""`tlstudio` opens the desktop studio; its sub-commands drive the same core from a terminal.

Each sub-command lives in ``tlstudio/commands/<name>.py`` and provides
``register(subparsers)``, which adds its parser and sets ``func`` to a callable
``run(args) -> int``. A ``tlstudio.core.errors.UserError`` anywhere becomes one clear line on stderr and exit code 2,
and so does an ``OSError`` of a full, read-only or forbidden volume that reached this far.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from typing import Optional, Sequence

from tlstudio import __version__
from tlstudio.core.errors import UserError

COMMANDS = ("scan", "backbones", "weights", "train", "evaluate", "predict", "export", "report", "sweep", "threshold", "ensemble", "distill", "adapt", "check")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit 2
        self.exit(2, f"tlstudio: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tlstudio", description="No-code transfer learning on images. Without a command, opens the desktop studio.")
    parser.add_argument("--version", action="version", version=f"tlstudio {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"tlstudio.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"tlstudio.commands.{name}":
                continue  # not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--verify-export-child"]:  # the export check's fresh process, in a frozen bundle
        from tlstudio.core.inference.export import run_child

        return run_child()
    if argv[:1] == ["--verify-onnx-child"]:  # the ONNX export's check, in a frozen bundle
        from tlstudio.core.inference.onnx_export import run_child as run_onnx_child

        return run_onnx_child()
    if argv[:1] == ["--verify-ensemble-child"]:  # the ensemble export's check, in a frozen bundle
        from tlstudio.core.inference.ensemble_export import run_child as run_ensemble_child

        return run_ensemble_child()
    if not argv or argv[0].startswith("--gui"):
        from tlstudio.gui.app import run_app  # imported late: the CLI must work without a display

        return run_app(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version and usage errors (already printed as one line)
        return int(exc.code or 0)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    args.argv = argv  # 'train --nproc N' starts N processes with the same command
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        if not _reported_by_rank_0(exc):
            print(f"tlstudio: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tlstudio: interrupted", file=sys.stderr)
        return 130
    except (OSError, RuntimeError) as exc:
        return _disk_or_bug(exc)
    except Exception as exc:  # a bug, not bad input: one readable line; the traceback on request
        return _bug(exc)


def _reported_by_rank_0(exc: UserError) -> bool:
    """In a run of several processes, a failure every rank knows of is printed once, by rank 0."""
    from tlstudio.core import distributed

    return getattr(exc, "settled", False) and not distributed.from_environment().is_main


def _disk_or_bug(exc: BaseException) -> int:
    """The last line of defence for a write the core did not wrap: a full or read-only volume is the user's to fix, not a bug."""
    from tlstudio.core import disk

    err = disk.disk_error(exc, writing=False)
    if err is not None:
        print(f"tlstudio: error: {err}", file=sys.stderr)
        return 2
    if disk.torch_short_write(exc):  # torch's C++ writer names no file
        print("tlstudio: error: a file could not be written completely: the disk is full. Free some space, or choose a folder on another disk.", file=sys.stderr)
        return 2
    return _bug(exc)


def _bug(exc: BaseException) -> int:
    """A bug, not bad input: one readable line; the traceback on request."""
    print(f"tlstudio: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
    if os.environ.get("TLSTUDIO_DEBUG"):
        traceback.print_exception(exc)
    else:
        print("tlstudio: this is a bug in tlstudio; run again with TLSTUDIO_DEBUG=1 to see the traceback for a report.", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
