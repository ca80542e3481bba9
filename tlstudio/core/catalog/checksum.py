"""The official checksum of a backbone's weights file, and the one test of a file against it.

torchvision names its files ``name-<first hex digits of the sha256>.pth`` (torch.hub's
HASH_REGEX), so the catalog's download address is also the official checksum. The download
and the import both compare through ``matches_official``.
"""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from pathlib import Path
from typing import Optional

from tlstudio.core.catalog.backbones import BackboneSpec

_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")
_CHUNK_BYTES = 1 << 20


def prefix_in_name(file_name: str) -> Optional[str]:
    """The sha256 prefix a torchvision-style file name carries, or None when it carries none."""
    match = _HASH_IN_NAME.search(file_name)
    return match.group(1) if match else None


def official_prefix(spec: BackboneSpec) -> Optional[str]:
    """The start of the official file's sha256, from the catalog's download address; None when the catalog has none."""
    return prefix_in_name(Path(urllib.parse.urlparse(spec.weights_url).path).name) if spec.weights_url else None


def matches_official(digest: str, prefix: Optional[str]) -> Optional[bool]:
    """True or False against the official prefix; None when there is no official checksum to compare."""
    return None if not prefix else digest.startswith(prefix)


def sha256_of_file(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            sha.update(chunk)
    return sha.hexdigest()


def state_digest(state) -> str:
    """A short digest of a state dict's tensors (names in their order, shapes, dtypes and values), computed on the CPU."""
    import torch

    h = hashlib.blake2b(digest_size=8)
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
