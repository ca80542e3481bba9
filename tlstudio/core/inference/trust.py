"""Which TorchScript files this installation may run: the ones it made, and the ones the user chose to trust.

A TorchScript file is a program: loading it and calling it run whatever code it carries
(DESIGN.md, Trust). So a file is run only when its sha256 is in this store. The store lives in
the per-user data folder, never beside a model or in a run folder, since those can come from
anyone. Entries are only added: an export records its file, and so does a "yes, trust it".
Writers take a lock and re-read the store before writing, so two processes never lose each
other's entries; a damaged store reads as empty (its files are then asked about again).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from tlstudio.core.atomic import write_json
from tlstudio.core.errors import UserError
from tlstudio.core.names import printable
from tlstudio.core.paths import data_dir
from tlstudio.core.runs.lock import waiting_lock

STORE_NAME = "trusted-models.json"
FORMAT = "tlstudio-trusted-models-1"
EXPORTED = "exported"  # this installation wrote the file
TRUSTED = "trusted"  # the user said to run it


class UntrustedModel(UserError):
    """A TorchScript file this installation did not make and the user has not trusted."""

    def __init__(self, path: str | os.PathLike, sha256: str):
        self.path = Path(path)
        self.sha256 = sha256
        super().__init__(
            f"'{printable(self.path)}' was not run: a TorchScript file is a program that can do anything on this computer, "
            "and tlstudio did not make this one; pass --trust only if you trust who sent it."
        )


def store_path() -> Path:
    return data_dir() / STORE_NAME


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_trusted(sha256: str) -> bool:
    return sha256 in _entries(store_path())


def remember(sha256: str, how: str, path: str | os.PathLike) -> None:
    """Record that the file with this hash may run (``how``: EXPORTED or TRUSTED); the first record of a hash is kept."""
    store = store_path()
    try:
        with waiting_lock(store.with_name(store.name + ".lock")):
            entries = _entries(store)
            if sha256 in entries:
                return
            entries[sha256] = {"how": how, "path": str(Path(path).absolute()), "when": time.strftime("%Y-%m-%d %H:%M:%S")}
            write_json(store, {"format": FORMAT, "models": entries})
    except OSError as exc:
        raise UserError(
            f"could not record the model file '{path}' in tlstudio's list of trusted models '{store}': {exc.strerror or exc}. "
            "Free some space or make that folder writable (TLSTUDIO_HOME chooses another)."
        ) from None


def _entries(store: Path) -> dict[str, dict]:
    """The store's entries; a missing, unreadable or damaged store is empty."""
    try:
        data = json.loads(store.read_bytes())
    except (OSError, ValueError):
        return {}
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        return {}
    return {k: v for k, v in models.items() if isinstance(k, str) and len(k) == 64 and isinstance(v, dict)}
