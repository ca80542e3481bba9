"""Volumes that refuse writes: a small real tmpfs (full, or read-only) where the machine lets us mount one,
and injected errors (ENOSPC, EROFS at the write itself) that run everywhere."""

from __future__ import annotations

import errno
import os
import pathlib
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from tests.synthetic import make_colour_dataset


def _mount(where: Path, options: str) -> bool:
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return proc.returncode == 0


@pytest.fixture
def volume(tmp_path) -> Callable[..., Path]:
    """``volume(size="3m")`` or ``volume(read_only=True)``: a fresh tmpfs, unmounted after the test.

    Skips where mounting is not allowed (no root, no CAP_SYS_ADMIN: most CI runners)."""
    mounted: list[Path] = []

    def make(size: str = "4m", read_only: bool = False) -> Path:
        where = tmp_path / f"volume{len(mounted)}"
        where.mkdir()
        if not _mount(where, f"size={size}" + (",ro" if read_only else "")):
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
        mounted.append(where)
        return where

    yield make
    for where in reversed(mounted):
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    """2 classes x 6 generated 64 px JPEGs: the smallest set a run accepts."""
    return make_colour_dataset(tmp_path_factory.mktemp("faults") / "colours", classes=("red", "blue"), per_class=6)


def train_args(data: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    """The cheapest real run: the bundled backbone frozen, a solved head, 64 px."""
    return ["train", str(data), "--out", str(out), "--epochs", "1", "--image-size", "64", "--cache", str(cache), *extra]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``tlstudio`` in its own process: a signal (SIGBUS) or an abort shows as its return code, not as a dead test run."""
    env = {**os.environ, "TLSTUDIO_DEBUG": ""}
    return subprocess.run([sys.executable, "-m", "tlstudio", *args], capture_output=True, text=True, timeout=timeout, env=env)


def temporaries(*roots: Path) -> list[Path]:
    """Every temporary an atomic write (``.NAME.*.tmp``) left under ``roots``."""
    return [p for root in roots if root.exists() for p in root.rglob("*.tmp")]


def _under(path, root: Path) -> bool:
    try:
        return Path(os.fsdecode(path)).resolve().is_relative_to(root.resolve())
    except (TypeError, ValueError, OSError):
        return False


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def full_disk(monkeypatch) -> Callable[[Path], None]:
    """``full_disk(root)``: every file write under ``root`` fails with ENOSPC, as on a full volume.

    Injected where bytes reach a file in an atomic write (``Path.write_bytes``); creating files and folders
    still works. A memory-mapped store reserves its space with ``os.posix_fallocate``: patch that with ``no_space``."""

    def fill(root: Path) -> None:
        write_bytes = pathlib.Path.write_bytes

        def refuse_bytes(self, data):
            if _under(self, root):
                no_space()
            return write_bytes(self, data)

        monkeypatch.setattr(pathlib.Path, "write_bytes", refuse_bytes)

    return fill


@pytest.fixture
def read_only(monkeypatch) -> Callable[[Path], None]:
    """``read_only(root)``: creating, opening for writing, renaming or removing anything under ``root`` fails with EROFS."""

    def freeze(root: Path) -> None:
        def refuse(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

        real_open, real_mkdir, real_replace, real_unlink = os.open, os.mkdir, os.replace, os.unlink
        writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

        def open_(path, flags, *a, **kw):
            if flags & writes and _under(path, root):
                refuse(path)
            return real_open(path, flags, *a, **kw)

        def mkdir(path, *a, **kw):
            if _under(path, root) and not os.path.isdir(path):
                refuse(path)
            return real_mkdir(path, *a, **kw)

        def replace(src, dst, *a, **kw):
            if _under(dst, root):
                refuse(dst)
            return real_replace(src, dst, *a, **kw)

        def unlink(path, *a, **kw):
            if _under(path, root):
                refuse(path)
            return real_unlink(path, *a, **kw)

        monkeypatch.setattr(os, "open", open_)
        monkeypatch.setattr(os, "mkdir", mkdir)
        monkeypatch.setattr(os, "replace", replace)
        monkeypatch.setattr(os, "unlink", unlink)

    return freeze


CLASSES = ["red", "blue"]


def tiny_network(hidden: int = 16):
    """Normalised images -> 2 logits; ``hidden`` sets the file's size (4 bytes a weight, ``10 * hidden`` weights)."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 2)).eval()


def tiny_export(dest: Path, hidden: int = 16) -> Path:
    """A real exported model.pt (what ``tlstudio train`` writes), made from a tiny network in a second or so."""
    from tlstudio.core.catalog import backbones as bb
    from tlstudio.core.data.preprocess import preprocessing_for
    from tlstudio.core.inference.export import export_torchscript

    pre = preprocessing_for(bb.get_backbone("efficientnet_lite0"), 64)
    return export_torchscript(tiny_network(hidden), pre, CLASSES, {"note": "fault test"}, dest)
