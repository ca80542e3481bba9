"""Atomic writes: a failure keeps the old file, and new files get the same permissions as a plain open()."""

import os

import pytest

from tlstudio.core.atomic import atomic_path, write_text


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "metrics.json"
    write_text(dest, "good")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert dest.read_text() == "good" and [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_writes_honour_the_umask_like_open(tmp_path):
    write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == os.stat(tmp_path / "b.txt").st_mode & 0o777
