"""A read-only volume (or a folder the user may not write): one line that names the folder and says what to
do (exit 2), never "internal error: OSError: [Errno 30]"; nothing is half-written and nothing earlier is touched.

Root ignores a folder's mode bits, so a read-only volume is a real read-only mount or an injected EROFS."""

from __future__ import annotations

import errno

import pytest

from tests.faults.conftest import remount_read_only, temporaries, tiny_export, train_args
from tests.faults.readable import assert_readable
from tlstudio.cli import main
from tlstudio.core.disk import DiskError
from tlstudio.core.runs.project import Project

EARLIER = '{"epoch": 1, "val_acc": 0.9}\n'


def one_line(err: str) -> str:
    assert_readable(err)
    errors = [line for line in err.splitlines() if line.startswith("tlstudio: error:")]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def model(tmp_path_factory):
    return tiny_export(tmp_path_factory.mktemp("model") / "model.pt")


# ----------------------------------------------------------------- a real read-only mount
def test_train_out_on_a_read_only_volume_exits_2_naming_the_folder(colours, volume, tmp_path, capsys):
    disk = volume(read_only=True)
    code = main(train_args(colours, disk / "run", tmp_path / "cache"))
    line = one_line(capsys.readouterr().err)
    assert code == 2 and str(disk / "run") in line and "read-only" in line
    assert list(disk.iterdir()) == []


def test_an_earlier_run_on_a_volume_now_read_only_is_untouched(colours, volume, tmp_path, capsys):
    disk = volume(size="1m")
    out = disk / "run"
    out.mkdir()
    (out / "history.jsonl").write_text(EARLIER)
    (out / "model.pt").write_bytes(b"model")
    remount_read_only(disk)
    assert main(train_args(colours, out, tmp_path / "cache")) == 2
    assert str(out) in one_line(capsys.readouterr().err)
    assert (out / "history.jsonl").read_text() == EARLIER and (out / "model.pt").read_bytes() == b"model"
    assert sorted(p.name for p in out.iterdir()) == ["history.jsonl", "model.pt"]


def test_predict_csv_into_a_read_only_folder(model, colours, volume, capsys):
    disk = volume(read_only=True)
    code = main(["predict", str(model), str(colours / "red"), "--csv", str(disk / "predictions.csv")])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and str(disk) in line
    assert list(disk.iterdir()) == []


def test_a_cache_on_a_read_only_volume(colours, volume, tmp_path, capsys):
    disk = volume(read_only=True)
    assert main(train_args(colours, tmp_path / "run", disk / "cache")) == 2
    assert str(disk / "cache") in one_line(capsys.readouterr().err)


def test_a_project_on_a_read_only_volume(volume):
    disk = volume(read_only=True)
    with pytest.raises(DiskError) as caught:
        Project.create(disk / "Study")
    assert caught.value.errno == errno.EROFS and str(disk) in str(caught.value)


# ----------------------------------------------------------------- injected EROFS: runs everywhere
def test_train_out_read_only_injected(colours, tmp_path, capsys, read_only):
    read_only(tmp_path / "ro")
    code = main(train_args(colours, tmp_path / "ro" / "run", tmp_path / "cache"))
    line = one_line(capsys.readouterr().err)
    assert code == 2 and str(tmp_path / "ro" / "run") in line
    assert not (tmp_path / "ro").exists()


def test_predict_csv_read_only_injected(model, colours, tmp_path, capsys, read_only):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "predictions.csv").write_text("earlier\n")
    read_only(folder)
    code = main(["predict", str(model), str(colours / "red"), "--csv", str(folder / "predictions.csv")])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and str(folder) in line
    assert (folder / "predictions.csv").read_text() == "earlier\n" and temporaries(folder) == []


def test_an_export_into_a_read_only_folder_injected(tmp_path, read_only):
    read_only(tmp_path / "ro")
    with pytest.raises(DiskError) as caught:
        tiny_export(tmp_path / "ro" / "model.pt")
    assert caught.value.errno == errno.EROFS and caught.value.folder == tmp_path / "ro"


def test_the_cli_turns_an_unwrapped_read_only_error_into_one_line(colours, tmp_path, capsys, monkeypatch):
    from tlstudio.core.engine.trainer import Trainer

    where = str(tmp_path / "somewhere")

    def fails(self, on_event=None, stop=None):
        raise OSError(errno.EROFS, "Read-only file system", where)

    monkeypatch.setattr(Trainer, "run", fails)
    assert main(train_args(colours, tmp_path / "run", tmp_path / "cache")) == 2
    assert where in one_line(capsys.readouterr().err)
