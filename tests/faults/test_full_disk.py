"""A full volume: every write of tlstudio fails with one line that names the file and its folder and the space
it needs (exit 2), never an internal error, an abort of torch's writer (rc 134) or a SIGBUS (rc 135); no
temporary is left, and the files written before stay as they were."""

from __future__ import annotations

import errno
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.faults.conftest import cli, no_space, temporaries, tiny_export, train_args
from tests.faults.readable import assert_readable
from tlstudio.cli import main
from tlstudio.core.data.index import Sample
from tlstudio.core.data.pixel_store import build_pixel_store
from tlstudio.core.disk import DiskError, disk_error, reserve
from tlstudio.core.runs.files import FAILED, RunFiles

EARLIER = b"an earlier good model.pt\n"


def one_line(err: str) -> str:
    assert_readable(err)
    errors = [line for line in err.splitlines() if line.startswith("tlstudio: error:")]
    assert len(errors) == 1, err
    return errors[0]


def samples_of(data: Path) -> list[Sample]:
    files = sorted(p for p in data.rglob("*.jpg"))
    return [Sample(p.relative_to(data).as_posix(), i % 2, "train", p.stat().st_size, p.stat().st_mtime_ns, f"d{i}", 64, 64) for i, p in enumerate(files)]


# ----------------------------------------------------------------- a real full volume (a small tmpfs)
def test_train_out_on_a_full_volume_exits_2_naming_the_folder(colours, volume, tmp_path):
    disk = volume(size="4m")
    out = disk / "run"
    out.mkdir()
    (out / "model.pt").write_bytes(EARLIER)
    proc = cli(*train_args(colours, out, tmp_path / "cache"))
    assert proc.returncode == 2, proc.stderr  # not 1 (internal error), not 134 (torch's writer aborting)
    line = one_line(proc.stderr)
    assert str(out) in line and "MB" in line  # the folder, and how much space the checkpoint needs
    assert temporaries(disk) == []
    assert (out / "model.pt").read_bytes() == EARLIER
    assert RunFiles(out).read_status().state == FAILED  # resumable once there is space


def test_an_export_to_a_full_volume_is_a_disk_error_not_an_abort(volume):
    disk = volume(size="1m")
    script = (
        "import sys; from pathlib import Path; from tests.faults.conftest import tiny_export; from tlstudio.core.disk import DiskError\n"
        "try:\n    tiny_export(Path(sys.argv[1]), hidden=100_000)\nexcept DiskError as exc:\n    print(exc, file=sys.stderr); sys.exit(2)\n"
    )
    import subprocess

    proc = subprocess.run([sys.executable, "-c", script, str(disk / "model.pt")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr  # 134 was torch.jit.save's C++ writer aborting the process
    assert_readable(proc.stderr)
    assert str(disk) in proc.stderr and "MB" in proc.stderr
    assert list(disk.iterdir()) == []


def test_cache_on_a_full_volume_exits_2_not_sigbus(colours, volume, tmp_path):
    disk = volume(size="100k")  # less than the decoded pixels need
    proc = cli(*train_args(colours, tmp_path / "run", disk / "cache"))
    assert proc.returncode == 2, (proc.returncode, proc.stderr)  # -7 / 135 was SIGBUS in the memory-mapped store
    line = one_line(proc.stderr)
    assert str(disk / "cache") in line and "KB" in line
    assert temporaries(disk) == []
    assert not [p for p in disk.rglob("*") if p.is_file()]  # no store without its description


# ----------------------------------------------------------------- injected ENOSPC: runs everywhere
def test_train_out_with_no_space_injected(colours, tmp_path, capsys, full_disk):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.pt").write_bytes(EARLIER)
    full_disk(out / "checkpoints")
    code = main(train_args(colours, out, tmp_path / "cache"))
    line = one_line(capsys.readouterr().err)
    assert code == 2
    assert str(out / "checkpoints") in line
    assert temporaries(out) == []
    assert (out / "model.pt").read_bytes() == EARLIER
    assert json.loads((out / "config.json").read_text())["epochs"] == 1  # written before the disk filled: whole


def test_a_new_run_folder_too_full_for_its_first_files_is_removed(colours, tmp_path, capsys, full_disk):
    out = tmp_path / "new" / "run"
    full_disk(tmp_path / "new")
    assert main(train_args(colours, out, tmp_path / "cache")) == 2
    assert str(out) in one_line(capsys.readouterr().err)
    assert not (tmp_path / "new").exists()


def test_an_atomic_write_on_a_full_disk_keeps_the_earlier_file(tmp_path, full_disk):
    history = RunFiles(tmp_path).history
    history.write_text('{"epoch": 1}\n')
    full_disk(tmp_path)
    with pytest.raises(DiskError) as caught:
        RunFiles(tmp_path).append_history({"epoch": 2})
    assert caught.value.folder == tmp_path and caught.value.errno == errno.ENOSPC and caught.value.needed > 0
    assert history.read_text() == '{"epoch": 1}\n'
    assert temporaries(tmp_path) == []


def test_a_checkpoint_on_a_full_disk_names_its_size(tmp_path, full_disk):
    import torch

    files = RunFiles(tmp_path)
    full_disk(tmp_path)
    with pytest.raises(DiskError) as caught:
        files.save_checkpoint(files.last, {"model": {"w": torch.zeros(1000)}})
    assert caught.value.needed >= 4000 and caught.value.path == files.last
    assert temporaries(tmp_path) == [] and not files.last.exists()


def test_an_export_on_a_full_disk_keeps_the_earlier_model(tmp_path, full_disk):
    dest = tmp_path / "model.pt"
    dest.write_bytes(EARLIER)
    full_disk(tmp_path)
    with pytest.raises(DiskError) as caught:
        tiny_export(dest)
    assert caught.value.path == dest and str(tmp_path) in str(caught.value)
    assert dest.read_bytes() == EARLIER and temporaries(tmp_path) == []


def test_the_pixel_store_reserves_its_space_before_writing(colours, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", no_space, raising=False)
    samples = samples_of(colours)
    with pytest.raises(DiskError) as caught:
        build_pixel_store(colours, samples, 32, tmp_path / "cache", workers=1)
    assert caught.value.needed == len(samples) * 32 * 32 * 3
    assert str(tmp_path / "cache" / "pixels") in str(caught.value)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


@pytest.mark.parametrize("how", ["missing", "unsupported"])
def test_without_fallocate_the_store_is_reserved_by_writing_zeros(colours, tmp_path, monkeypatch, how):
    samples = samples_of(colours)
    expected = build_pixel_store(colours, samples, 32, None, workers=1).pixels
    if how == "missing":  # macOS, Windows
        monkeypatch.delattr(os, "posix_fallocate", raising=False)
    else:  # a file system without it
        def unsupported(*args):
            raise OSError(errno.EOPNOTSUPP, "Operation not supported")

        monkeypatch.setattr(os, "posix_fallocate", unsupported, raising=False)
    store = build_pixel_store(colours, samples, 32, tmp_path / "cache", workers=1, ram_budget=0)
    assert np.array_equal(np.asarray(store.pixels), expected)


def test_reserve_gives_the_file_its_size_without_touching_what_is_before(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"header")
    reserve(path, 1 << 20, start=6)
    assert path.stat().st_size == 1 << 20 and path.read_bytes()[:6] == b"header"
    if hasattr(os.stat_result, "st_blocks"):
        assert path.stat().st_blocks * 512 >= 1 << 20  # real blocks, not a sparse hole


def test_the_feature_cache_reserves_its_space(tmp_path, monkeypatch):
    import torch

    from tlstudio.core.catalog import backbones as bb
    from tlstudio.core.data.pixel_store import PixelStore
    from tlstudio.core.data.preprocess import preprocessing_for
    from tlstudio.core.engine.features import FeatureRequest, cached_features
    from tlstudio.core.events import StopToken, ignore_events

    pre = preprocessing_for(bb.get_backbone("efficientnet_lite0"), 32)
    store = PixelStore(np.zeros((4, pre.resize_size, pre.resize_size, 3), np.uint8), "k", pre.resize_size)
    request = FeatureRequest("tiny", "random:0", pre, "none", 0, "fp32")
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    monkeypatch.setattr(os, "posix_fallocate", no_space, raising=False)
    with pytest.raises(DiskError) as caught:
        cached_features(request, net, 1, store, [0, 1], [2, 3], torch.device("cpu"), 2, None, False, tmp_path, ignore_events, StopToken())
    assert str(tmp_path / "features") in str(caught.value)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_the_cli_turns_an_unwrapped_full_disk_into_one_line(colours, tmp_path, capsys, monkeypatch):
    from tlstudio.core.engine.trainer import Trainer

    where = str(tmp_path / "somewhere" / "file.bin")

    def fails(self, on_event=None, stop=None):
        raise OSError(errno.ENOSPC, "No space left on device", where)

    monkeypatch.setattr(Trainer, "run", fails)
    assert main(train_args(colours, tmp_path / "run", tmp_path / "cache")) == 2
    assert where in one_line(capsys.readouterr().err)

    def short_write(self, on_event=None, stop=None):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1932224 vs 1932120")

    monkeypatch.setattr(Trainer, "run", short_write)
    assert main(train_args(colours, tmp_path / "run", tmp_path / "cache")) == 2
    one_line(capsys.readouterr().err)


def test_disk_errors_are_typed_and_other_errors_are_left_alone(tmp_path):
    err = disk_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "a.json", needed=10)
    assert isinstance(err, DiskError) and err.folder == tmp_path and err.needed == 10
    assert disk_error(OSError(errno.ENOENT, "No such file", str(tmp_path / "a")), tmp_path / "a") is None
    assert disk_error(ValueError("nope"), tmp_path) is None
    # A picture that cannot be read is not the folder being written refusing a write.
    assert disk_error(PermissionError(errno.EACCES, "Permission denied", "/data/cat.jpg"), tmp_path / "out" / "a.u8") is None
    assert disk_error(PermissionError(errno.EACCES, "Permission denied", str(tmp_path)), tmp_path / "a.u8") is not None


def test_a_big_write_that_cannot_fit_is_refused_before_it_fills_the_disk(tmp_path, monkeypatch):
    from tlstudio.core import atomic, disk

    monkeypatch.setattr(disk, "free_bytes", lambda path: 1000)
    dest = tmp_path / "big.bin"
    with pytest.raises(DiskError) as caught:
        atomic.write_bytes(dest, bytes(2 << 20))
    assert caught.value.needed == 2 << 20 and str(tmp_path) in str(caught.value)
    assert list(tmp_path.iterdir()) == []
    atomic.write_bytes(dest, b"small")  # small writes are not checked: no statvfs for every JSON file
    assert dest.read_bytes() == b"small"
