"""`tlstudio backbones [--json]`: the catalog, with where each backbone's weights stand on this machine."""

from __future__ import annotations

import json
from dataclasses import asdict

from tlstudio.core.catalog.backbones import BackboneSpec, list_backbones
from tlstudio.core.catalog.weights import availability, weights_file
from tlstudio.core.catalog.weights_import import OFFICIAL, import_record, verdict_text

_COLUMNS = (
    ("name", "<"),
    ("title", "<"),
    ("source", "<"),
    ("params M", ">"),
    ("GFLOPs", ">"),
    ("top-1 %", ">"),
    ("input", ">"),
    ("CPU img/s", ">"),
    ("stages", ">"),
    ("weights", "<"),
)


def register(subparsers) -> None:
    p = subparsers.add_parser("backbones", help="list the pretrained backbones and whether their weights are here", description=__doc__)
    p.add_argument("--json", action="store_true", help="print the catalog as a JSON list")
    p.set_defaults(func=run)


def run(args) -> int:
    specs = list_backbones()
    print(json.dumps([backbone_record(s) for s in specs], indent=2) if args.json else catalog_table(specs))
    return 0


def backbone_record(spec: BackboneSpec) -> dict:
    """The spec as plain data plus what the GUI and scripts need to choose one."""
    record = spec.to_dict()
    path = weights_file(spec)
    imported = import_record(spec)
    record.update(
        availability=availability(spec),
        weights_file=str(path) if path else None,
        # Where the imported file in use came from: source file, sha256, official (true, false or null), verdict, date.
        imported=dict(asdict(imported), verdict=imported.verdict) if imported else None,
        stage_labels=spec.stage_labels,
        stage_count=len(spec.stages),
    )
    return record


def catalog_table(specs: list[BackboneSpec]) -> str:
    rows = [[h for h, _ in _COLUMNS]] + [_row(s) for s in specs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(f"{cell:{align}{w}}" for cell, (_, align), w in zip(row, _COLUMNS, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _row(spec: BackboneSpec) -> list[str]:
    return [
        spec.name,
        spec.title,
        spec.source,
        f"{spec.params_m:.1f}",
        f"{spec.gflops:.2f}",
        f"{spec.imagenet_top1:.1f}",
        f"{spec.input_size}",
        _speed_cell(spec),
        f"{len(spec.stages)}",
        _weights_cell(spec),
    ]


def _speed_cell(spec: BackboneSpec) -> str:
    """Frozen-forward images/s measured on the 2-core development CPU (see ``BackboneSpec.cpu_images_per_s``)."""
    return f"{spec.cpu_images_per_s:.0f}" if spec.cpu_images_per_s else "-"


def _weights_cell(spec: BackboneSpec) -> str:
    """The availability, and for an import that is not known to be the official file, why."""
    imported = import_record(spec)
    if imported is None or imported.verdict == OFFICIAL:
        return availability(spec)
    return f"{availability(spec)} ({verdict_text(imported.verdict)})"
