"""Full and read-only volumes: one clear error (``DiskError``) instead of a bug report, and space reserved up front.

``disk_error`` turns the ``OSError`` of a full disk, a used-up quota, a read-only volume or a refused
permission into a ``DiskError`` that names the file and its folder, the space needed when known, and what
to do. ``writing(path)`` applies it around a write. ``reserve`` allocates a file's blocks before it is
memory-mapped: a store written through a map with no space behind it dies of SIGBUS, far from any
``except``; reserved first, a full disk is a ``DiskError`` before the first pixel is written.
"""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from tlstudio.core.errors import UserError

FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
READ_ONLY = {errno.EROFS}
DENIED = {errno.EACCES, errno.EPERM}
# What torch's C++ writer says when a write to a file came up short (a full disk); seen as RuntimeError.
TORCH_SHORT_WRITE = ("unexpected pos", "PytorchStreamWriter failed writing file", "file write failed")
_CHUNK = 16 << 20


class DiskError(UserError):
    """A write refused by the volume: ``path`` (in ``folder``) could not be written; ``needed`` bytes when known."""

    def __init__(self, message: str, path: Path, code: int, needed: Optional[int] = None):
        super().__init__(message)
        self.path, self.errno, self.needed = path, code, needed
        self.folder = path if path.is_dir() else path.parent


def size_text(n: float) -> str:
    if n < 1000:
        return f"{n:.0f} bytes"
    for unit in ("KB", "MB", "GB"):
        n /= 1000
        if n < 1000:
            break
    return f"{n:.1f} {unit}"


def free_bytes(path: Path) -> Optional[int]:
    """Free space on the volume holding ``path`` (its nearest existing folder); None when it cannot be told."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def _full_message(path: Path, code: int, needed: Optional[int]) -> str:
    free = free_bytes(path)
    known = [f"it needs about {size_text(needed)}" if needed else "", f"{size_text(free)} is free" if free is not None else ""]
    detail = "; ".join(k for k in known if k)
    what = "your disk quota is used up" if code != errno.ENOSPC else "the disk is full"
    return (
        f"cannot write '{path}': {what}" + (f" ({detail})" if detail else "")
        + ". Free some space there, or choose a folder on another disk."
    )


def disk_error(exc: BaseException, path: Optional[str | os.PathLike] = None, needed: Optional[int] = None, writing: bool = True) -> Optional[DiskError]:
    """The ``DiskError`` that ``exc`` means while writing ``path`` (default: the file the error names), or None when it is none.

    A refused permission counts only when it names the file being written (or its folder): an unreadable
    input picture is another error, not a write to blame on the folder. ``writing`` False (the CLI's last
    resort, which cannot tell a read from a write) words a refused permission for either."""
    if isinstance(exc, DiskError):
        return exc
    if not isinstance(exc, OSError) or exc.errno not in FULL | READ_ONLY | DENIED:
        return None
    named = Path(os.fsdecode(exc.filename)) if exc.filename else None
    ours = path is not None and (named is None or _same_write(named, Path(path)))
    if exc.errno in DENIED and writing and path is not None and not ours:
        return None
    where = Path(path) if ours else named  # the file being written, not its temporary
    if where is None:
        return None  # no file to name: not a message a user could act on
    if exc.errno in FULL:
        return DiskError(_full_message(where, exc.errno, needed), where, exc.errno, needed)
    if exc.errno in READ_ONLY:
        return DiskError(f"cannot write '{where}': it is on a read-only volume. Choose a folder you can write to.", where, exc.errno)
    verb = "write" if writing else "use"
    return DiskError(f"cannot {verb} '{where}': permission denied. Choose a folder you can write to, or ask for permission there.", where, exc.errno)


def _same_write(named: Path, path: Path) -> bool:
    """Whether an error naming ``named`` is about writing ``path``: the file, its temporary beside it, a folder
    above it, or (``path`` a folder) a file in it."""
    return named == path or named.parent == path.parent or named in path.parents or path in named.parents


def ensure_space(path: str | os.PathLike, needed: int) -> None:
    """Refuse a write of ``needed`` bytes to ``path`` that cannot fit, before it fills the disk (and fails anyway)."""
    free = free_bytes(Path(path).parent)
    if free is not None and free < needed:
        raise DiskError(_full_message(Path(path), errno.ENOSPC, needed), Path(path), errno.ENOSPC, needed)


def torch_short_write(exc: BaseException) -> bool:
    """Whether ``exc`` is torch's C++ writer reporting a write that came up short (a full disk)."""
    return isinstance(exc, RuntimeError) and any(mark in str(exc) for mark in TORCH_SHORT_WRITE)


@contextmanager
def writing(path: str | os.PathLike, needed: Optional[int] = None) -> Iterator[None]:
    """Inside, an ``OSError`` of a full, read-only or forbidden volume becomes a ``DiskError`` naming ``path``."""
    try:
        yield
    except OSError as exc:
        err = disk_error(exc, path, needed)
        if err is None:
            raise
        raise err from exc


def reserve(path: str | os.PathLike, size: int, start: int = 0, shown: Optional[str | os.PathLike] = None) -> None:
    """Give the file at ``path`` real blocks for its bytes ``start`` to ``size`` (it grows to ``size`` if shorter).

    ``os.posix_fallocate`` where the platform and file system have it; elsewhere the range is
    written with zeros, which costs a pass over the disk but reserves the space just as surely.
    A refusal is a ``DiskError`` naming ``shown`` (the file the temporary ``path`` will become)."""
    path = Path(path)
    if size <= start:
        return
    with writing(shown if shown is not None else path, needed=size), open(path, "r+b") as fh:
        if hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fh.fileno(), start, size - start)
                return
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
                    raise
        _write_zeros(fh, start, size)


def _write_zeros(fh, start: int, end: int) -> None:
    fh.seek(start)
    zeros = bytes(min(_CHUNK, end - start))
    while fh.tell() < end:
        fh.write(zeros[: end - fh.tell()])
    fh.flush()
    os.fsync(fh.fileno())
