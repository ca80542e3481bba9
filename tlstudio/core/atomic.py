"""Writes that never leave a half-written file in place of a good one: temp file in the same folder, then os.replace.

A full, read-only or forbidden volume is a ``tlstudio.core.disk.DiskError`` naming the file, and the
temporary is removed: the earlier file, if any, stays as it was.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Optional

from tlstudio.core import disk

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(dest: str | os.PathLike, needed: Optional[int] = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success it replaces ``dest``, on error it is removed.

    ``needed`` (bytes, when known) goes into the message of a full disk."""
    dest = Path(dest)
    with disk.writing(dest, needed):
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; a shared report must stay readable
            yield tmp_path
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp_path, dest)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


BIG = 1 << 20  # a write this large is first checked against the free space: a statvfs is cheap beside it


def write_bytes(dest: str | os.PathLike, data: bytes | memoryview) -> None:
    if len(data) >= BIG:
        disk.ensure_space(dest, len(data))
    with atomic_path(dest, needed=len(data)) as tmp:
        tmp.write_bytes(data)


def write_buffered(dest: str | os.PathLike, serialise: Callable[[BinaryIO], None]) -> None:
    """``serialise(buffer)`` in memory, then its bytes to ``dest``.

    For torch.save and torch.jit.save: their C++ writer meets a full disk as an error torch cannot
    report (``unexpected pos``) or as an abort of the whole process; a plain write of the finished
    bytes meets it as an OSError, and so as a ``DiskError`` with the exact size needed."""
    buf = io.BytesIO()
    serialise(buf)
    with buf.getbuffer() as data:
        write_bytes(dest, data)


def write_text(dest: str | os.PathLike, text: str) -> None:
    write_bytes(dest, text.encode("utf-8"))


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinity replaced by None: JSON has no such numbers, and a reader would choke on them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def json_text(obj: Any, indent: Optional[int] = 2) -> str:
    return json.dumps(finite(obj), indent=indent, ensure_ascii=False, allow_nan=False)


def json_line(obj: Any) -> str:
    return json_text(obj, indent=None)


def write_json(dest: str | os.PathLike, obj: Any) -> None:
    write_text(dest, json_text(obj) + "\n")


def append_line(dest: str | os.PathLike, line: str) -> None:
    """Append one line to a log such as history.jsonl, rewriting atomically so a crash keeps every earlier line."""
    dest = Path(dest)
    old = dest.read_bytes() if dest.exists() else b""
    write_bytes(dest, old + line.rstrip("\n").encode("utf-8") + b"\n")
