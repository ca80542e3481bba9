"""Import a weights file copied from another machine, verified in full before it replaces anything.

The file's sha256 is compared with the catalog's official checksum whatever the file is called
(a renamed official file is still official). A file that is not the official one is imported only
when the user says so (``force``) and stays marked as such. Tensors that are not finite are refused
always: no confirmation makes a NaN weight usable.

What is known about an import (source file, sha256, official or not, date) is stored in the
safetensors header of the stored file itself, so the tensors and their record are replaced by the
same ``os.replace`` and can never disagree after a crash, as a separate sidecar could.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from tlstudio.core.atomic import atomic_path
from tlstudio.core.catalog.backbones import BackboneSpec
from tlstudio.core.catalog.checksum import matches_official, official_prefix, sha256_of_file
from tlstudio.core.catalog.weights import IMPORTED, availability, check_fits, hub_checkpoint_path, imported_path, safe_load
from tlstudio.core.errors import UserError

OFFICIAL = "official"
NOT_OFFICIAL = "not official"
NO_CHECKSUM = "no official checksum"
NOT_RECORDED = "not recorded"  # imported by a tlstudio that did not record checksums, or copied in by hand

_RECORD_KEY = "tlstudio_import"
_VERDICT_TEXT = {
    OFFICIAL: "the official file",
    NOT_OFFICIAL: "not the official file",
    NO_CHECKSUM: "no official checksum to compare",
    NOT_RECORDED: "origin not recorded",
}


@dataclass(frozen=True)
class ImportRecord:
    """Where an imported weights file came from, and whether it was the official one."""

    source_file: str  # the name of the file the user imported
    sha256: str  # of that file as the user had it; "" when not recorded
    official: Optional[bool]  # None: no official checksum to compare, or not recorded
    official_prefix: Optional[str]  # the start of the official file's sha256, from the catalog
    imported_at: str  # ISO 8601, UTC; "" when not recorded

    @property
    def verdict(self) -> str:
        if not self.sha256:
            return NOT_RECORDED
        if self.official is None:
            return NO_CHECKSUM
        return OFFICIAL if self.official else NOT_OFFICIAL

    def describe(self) -> str:
        parts = [self.source_file or "an unknown file"]
        if self.sha256:
            parts.append(f"sha256 {self.sha256[:16]}…")
        parts.append(_VERDICT_TEXT[self.verdict])
        if self.imported_at:
            parts.append(f"imported {self.imported_at}")
        return ", ".join(parts)


@dataclass(frozen=True)
class ImportResult:
    backbone: str  # the catalog name
    path: Path  # the stored safetensors file
    record: ImportRecord  # what was imported now
    replaced: Optional[ImportRecord]  # the import it replaced, or None when there was none

    @property
    def sha256(self) -> str:
        return self.record.sha256

    @property
    def official(self) -> Optional[bool]:
        return self.record.official


class NotOfficialFile(UserError):
    """A good weights file that is not the catalog's official one: imported only when the user insists."""

    def __init__(self, spec: BackboneSpec, file: Path, record: ImportRecord, replaces_one: bool):
        self.backbone, self.file, self.record = spec.name, file, record
        kept = "the previous import is unchanged" if replaces_one else "nothing was imported"
        super().__init__(
            f"'{record.source_file}' is not the official {spec.title} weights file: its sha256 is {record.sha256}, "
            f"but the official file's starts with {record.official_prefix}. It may be damaged, or other weights "
            f"(fine-tuned, or from another release); {kept}."
        )


# ---------------------------------------------------------------- import


def import_weights(file: str | Path, spec: BackboneSpec, force: bool = False) -> ImportResult:
    """Verify a user's weights file (loads safely, fits the architecture, finite, official checksum) and store it.

    A file that is not the official one raises ``NotOfficialFile`` unless ``force``. The previous import
    is replaced only once the new copy has been written and read back in full; any failure leaves it as it was.
    """
    if spec.source == "bundled":
        raise UserError(f"backbone '{spec.name}' ships with its ImageNet weights; there is nothing to import.")
    source = Path(file)
    state = safe_load(source)
    _verify(state, spec, f"'{source.name}'")
    record = _record_of(source, spec)
    dest = imported_path(spec)
    replaced = read_record(dest) if dest.is_file() else None
    if record.official is False and not force:
        raise NotOfficialFile(spec, source, record, replaces_one=replaced is not None)
    _store(state, dest, record, spec)
    return ImportResult(spec.name, dest, record, replaced)


def _verify(state: dict[str, Tensor], spec: BackboneSpec, what: str) -> None:
    check_fits(state, spec, what)
    check_finite(state, what)


def check_finite(state: dict[str, Tensor], what: str) -> None:
    """Every floating-point tensor holds only finite numbers; raise UserError naming the first that does not."""
    bad = [key for key, tensor in state.items() if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]
    if not bad:
        return
    tensor = state[bad[0]]
    count = int((~torch.isfinite(tensor)).sum())
    others = len(bad) - 1
    more = f" (and {others} more tensor{'s' if others > 1 else ''})" if others else ""
    raise UserError(
        f"{what} is damaged: tensor '{bad[0]}' holds {count} of {tensor.numel()} values that are NaN or infinite{more}. "
        "Weights like these cannot be used, so it was not imported; copy the file again from a machine where it works."
    )


def _record_of(source: Path, spec: BackboneSpec) -> ImportRecord:
    digest = sha256_of_file(source)
    prefix = official_prefix(spec)
    return ImportRecord(
        source_file=source.name,
        sha256=digest,
        official=matches_official(digest, prefix),
        official_prefix=prefix,
        imported_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    )


def _store(state: dict[str, Tensor], dest: Path, record: ImportRecord, spec: BackboneSpec) -> None:
    from safetensors.torch import save_file

    # safetensors refuses tensors that share storage or are not contiguous; a clone owns its memory.
    owned = {k: v.detach().clone().contiguous() for k, v in state.items()}
    metadata = {"imported_from": record.source_file, _RECORD_KEY: json.dumps(asdict(record))}
    try:
        with atomic_path(dest) as tmp:
            save_file(owned, str(tmp), metadata=metadata)
            _check_stored(safe_load(tmp), owned, spec)
    except OSError as exc:
        raise UserError(
            f"could not write the imported weights into '{dest.parent}': {exc.strerror or exc}. "
            "The previous import, if any, is unchanged."
        ) from None


def _check_stored(stored: dict[str, Tensor], written: dict[str, Tensor], spec: BackboneSpec) -> None:
    """What was written is read back before it replaces anything: a bad write must not replace a good import."""
    if stored.keys() != written.keys() or not all(torch.equal(stored[k], written[k]) for k in written):
        raise UserError("the stored copy of the weights reads back differently from what was written (is the disk failing?); nothing was replaced.")
    _verify(stored, spec, "the stored copy")


# ---------------------------------------------------------------- what the catalog shows


def read_record(path: Path) -> ImportRecord:
    """The record in an imported file's header; one saying "not recorded" when it has none or is unreadable."""
    meta = _header_metadata(path)
    try:
        return ImportRecord(**json.loads(meta[_RECORD_KEY]))
    except (KeyError, ValueError, TypeError):
        return ImportRecord(source_file=meta.get("imported_from", ""), sha256="", official=None, official_prefix=None, imported_at="")


def _header_metadata(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return fh.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return {}


def import_record(spec: BackboneSpec) -> Optional[ImportRecord]:
    """The record of the import this machine uses for ``spec``; None when it uses no imported file."""
    return read_record(imported_path(spec)) if availability(spec) == IMPORTED else None


def weights_verdict(spec: BackboneSpec) -> str:
    """"" unless the weights in use are an import; then its verdict (OFFICIAL, NOT_OFFICIAL, NO_CHECKSUM, NOT_RECORDED)."""
    record = import_record(spec)
    return record.verdict if record else ""


def verdict_text(verdict: str) -> str:
    return _VERDICT_TEXT.get(verdict, verdict)


def describe_import(result: ImportResult, spec: BackboneSpec) -> list[str]:
    """What an import did, as sentences for the terminal and the window."""
    record = result.record
    lines = [f"Imported the weights of {spec.title} from {record.source_file} into {result.path}."]
    if record.verdict == OFFICIAL:
        lines.append(f"It is the official file: its sha256 {record.sha256} starts with {record.official_prefix}, as the catalog's.")
    elif record.verdict == NOT_OFFICIAL:
        lines.append(
            f"It is NOT the official file (its sha256 is {record.sha256}; the official one starts with {record.official_prefix}); "
            "it was imported because you asked for it, and the catalog shows it as not the official file."
        )
    else:
        lines.append(f"There is no official checksum to compare for {spec.title} (its sha256 is {record.sha256}); it loads, fits and is finite.")
    lines.append(f"It replaced the previous import: {result.replaced.describe()}." if result.replaced else "There was no previous import.")
    if hub_checkpoint_path(spec).is_file():
        lines.append(f"Note: the downloaded file {hub_checkpoint_path(spec)} is used before any import; remove it to use this one.")
    return lines
