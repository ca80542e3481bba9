"""One writer per run folder: ``RunLock(root)`` holds an exclusive OS lock on ``root/.lock``.

The operating system drops the lock when its process dies, however it dies (``kill -9``, a power
cut ends every process anyway), so a lock file whose lock can be taken belongs to a dead process:
it is taken over, and the new holder learns whose it was. The file names the holder (pid, host,
start time) for the message a refused second writer prints.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from tlstudio.core import disk
from tlstudio.core.errors import UserError

LOCK_NAME = ".lock"

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def lock_fd(fd: int, wait: bool = False) -> bool:
        """Take the OS lock on ``fd``: True when held; False when another holds it (``wait`` False)."""
        try:
            msvcrt.locking(fd, msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)  # LK_LOCK retries for about 10 s
            return True
        except OSError:
            if wait:
                raise
            return False

    def unlock_fd(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def lock_fd(fd: int, wait: bool = False) -> bool:
        """Take the OS lock on ``fd``: True when held; False when another holds it (``wait`` False)."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def unlock_fd(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def waiting_lock(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive OS lock on ``lock_file``, waiting for another holder; the OS drops it if the process dies."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        lock_fd(fd, wait=True)
        try:
            yield
        finally:
            unlock_fd(fd)
    finally:
        os.close(fd)


class RunFolderBusy(UserError):
    def __init__(self, root: Path, holder: dict):
        self.holder = holder
        who = f"process {holder.get('pid', '?')}" + (f" on {holder['host']}" if holder.get("host") else "")
        since = f", since {holder['started']}" if holder.get("started") else ""
        super().__init__(
            f"'{root}' is being written by another tlstudio run ({who}{since}). "
            "Wait for it to finish, stop it, or give this run another folder."
        )


class RunLock:
    """``with RunLock(root) as lock:`` holds the folder; ``lock.taken_over`` is the dead holder's record, if any."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self.taken_over: Optional[dict] = None
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        """Refused with ``RunFolderBusy`` while another process holds it, with a ``DiskError`` where the folder cannot be written."""
        with disk.writing(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        if not lock_fd(fd):
            holder = _read_record(fd)
            os.close(fd)
            raise RunFolderBusy(self.root, holder)
        previous = _read_record(fd)
        self.taken_over = previous or None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            with disk.writing(self.root):
                os.ftruncate(fd, 0)
                os.pwrite(fd, json.dumps(record).encode(), 0)
        except BaseException:
            unlock_fd(fd)
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        """Empties the record (a clean end) and drops the lock; the file stays, so no second writer races a deleted one."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            unlock_fd(fd)
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_record(fd: int) -> dict:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data) if data.strip() else {}
    except (OSError, ValueError):
        return {}


def is_locked(root: str | Path) -> bool:
    """Whether a live process holds the run folder (a run still marked running without one was cut short)."""
    path = Path(root) / LOCK_NAME
    if not path.is_file():
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False  # a read-only volume (a run copied to a DVD, a read-only share) has no live writer
    try:
        if lock_fd(fd):
            unlock_fd(fd)
            return False
        return True
    finally:
        os.close(fd)


def remove_stale_temporaries(root: str | Path) -> list[Path]:
    """Delete what a crashed writer left half-written (``tlstudio.core.atomic``'s ``.NAME.*.tmp``) in a run folder.

    Only under the run's lock: a live writer's temporaries are never touched."""
    root = Path(root)
    removed = []
    for folder in (root, root / "checkpoints"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed
