"""`tlstudio weights download NAME` and `tlstudio weights import FILE --backbone NAME`: get ImageNet weights onto this machine."""

from __future__ import annotations

import argparse
import sys

from tlstudio.commands.progress import TerminalProgress
from tlstudio.core.catalog.backbones import get_backbone
from tlstudio.core.catalog.weights import download
from tlstudio.core.catalog.weights_import import NotOfficialFile, describe_import, import_weights
from tlstudio.core.errors import UserError


def register(subparsers) -> None:
    p = subparsers.add_parser("weights", help="download or import a backbone's ImageNet weights", description=__doc__)
    actions = p.add_subparsers(dest="weights_action", parser_class=type(p))
    get = actions.add_parser("download", help="download into the torch hub cache (progress and sha256 check)")
    get.add_argument("name", metavar="NAME", help="backbone name (see 'tlstudio backbones')")
    get.set_defaults(func=run_download)
    put = actions.add_parser("import", help="import a weights file copied from another machine (.pth state dict or .safetensors)")
    put.add_argument("file", metavar="FILE", help="a state dict saved with torch.save, or a .safetensors file")
    put.add_argument("--backbone", required=True, metavar="NAME", help="the backbone these weights belong to")
    put.add_argument(
        "--force",
        action="store_true",
        help="import a file that is not the official one (its sha256 differs); it is then shown as not the official file",
    )
    put.set_defaults(func=run_import)
    p.set_defaults(func=_usage(p))


def _usage(parser: argparse.ArgumentParser):
    def run(_args) -> int:
        parser.print_help(sys.stderr)
        return 2

    return run


def run_download(args) -> int:
    path = download(get_backbone(args.name), on_event=TerminalProgress(sys.stderr))
    print(path)
    return 0


def run_import(args) -> int:
    spec = get_backbone(args.backbone)
    try:
        result = import_weights(args.file, spec, force=args.force)
    except NotOfficialFile as exc:
        raise UserError(f"{exc} If you trust where it came from, run again with --force: it will be shown as not the official file.") from None
    print("\n".join(describe_import(result, spec)))
    return 0
