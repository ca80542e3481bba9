"""A run that is refused (an empty class, too few pictures) writes nothing: no run folder, no config.json, no
checkpoints/; into an existing folder, the earlier run's files stay exactly as they were."""

from __future__ import annotations

import shutil

import pytest

from tests.faults.conftest import train_args
from tests.faults.readable import assert_readable
from tlstudio.cli import main


@pytest.fixture
def empty_class(colours, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(colours, data)
    (data / "green").mkdir()  # a class folder with no pictures
    return data


def snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_refused_run_leaves_nothing(empty_class, tmp_path, capsys):
    out = tmp_path / "new" / "run"
    assert main(train_args(empty_class, out, tmp_path / "cache")) == 2
    err = capsys.readouterr().err
    assert_readable(err)
    assert "green" in err
    assert not (tmp_path / "new").exists()  # the folders it would have made, too


def test_a_refused_run_into_an_earlier_run_folder_touches_none_of_its_files(colours, empty_class, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(colours, out, tmp_path / "cache", "--no-export")) == 0
    before = snapshot(out)
    assert {"config.json", "history.jsonl", "status.json", "checkpoints/best.pt"} <= before.keys()
    capsys.readouterr()
    assert main(train_args(empty_class, out, tmp_path / "cache", "--no-export")) == 2
    assert_readable(capsys.readouterr().err)
    assert snapshot(out) == before  # the lock file is emptied again on release, as after every run
