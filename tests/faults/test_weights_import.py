"""Fault audit, weights import: damaged, NaN and foreign files were accepted silently, and each import replaced the last.

No official torchvision file can be downloaded here, so each test makes a real torchvision-format state dict
(random weights) and, where a file must be "the official one", makes the catalog's checksum that file's own.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from tests.faults.readable import assert_readable
from tlstudio.cli import main
from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog import weights, weights_import
from tlstudio.core.catalog.checksum import sha256_of_file
from tlstudio.core.errors import UserError

SMALL = "mobilenet_v3_small"  # the cheapest torchvision entry to save and check
FIRST_CONV = "features.0.0.weight"  # its conv1


@pytest.fixture(autouse=True)
def own_homes(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))
    return tmp_path


def random_state(seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return bb.architecture(bb.get_backbone(SMALL)).state_dict()


def save(state: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.fixture
def official(tmp_path, monkeypatch) -> Path:
    """A file saved under its torchvision name, made the catalog's official one (its sha256 prefix in the URL)."""
    raw = save(random_state(seed=7), tmp_path / "raw.pth")
    prefix = sha256_of_file(raw)[:8]
    path = raw.rename(tmp_path / f"{SMALL}-{prefix}.pth")
    spec = dataclasses.replace(bb.get_backbone(SMALL), weights_url=f"https://download.pytorch.org/models/{path.name}")
    monkeypatch.setitem(bb.catalog(), SMALL, spec)
    return path


def spec() -> bb.BackboneSpec:
    return bb.get_backbone(SMALL)


def cli_import(capsys, file: Path, *extra: str) -> tuple[int, str, str]:
    rc = main(["weights", "import", str(file), "--backbone", SMALL, *extra])
    out, err = capsys.readouterr()
    assert_readable(out + err)
    return rc, out, err


def catalog_record(capsys) -> dict:
    assert main(["backbones", "--json"]) == 0
    return {r["name"]: r for r in json.loads(capsys.readouterr().out)}[SMALL]


def catalog_line(capsys) -> str:
    assert main(["backbones"]) == 0
    return next(line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{SMALL} "))


def stored() -> Path:
    return weights.imported_path(spec())


def corrupt(source: Path, dest: Path) -> Path:
    """``source`` with 64 bytes overwritten in the middle of its tensor data (a fixed pattern: finite floats)."""
    data = bytearray(source.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\x11" * 64
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(bytes(data))
    return dest


# ---------------------------------------------------------------- the findings


def test_a_file_with_64_bytes_overwritten_is_not_official_and_needs_force(official, tmp_path, capsys):
    damaged = corrupt(official, tmp_path / "damaged" / official.name)  # still carries the official name

    rc, _, err = cli_import(capsys, damaged)
    assert rc == 2 and err.count("\n") == 1 and "--force" in err
    assert not stored().exists()
    with pytest.raises(weights_import.NotOfficialFile) as refused:
        weights_import.import_weights(damaged, spec())
    assert refused.value.record.official is False and refused.value.record.sha256 == sha256_of_file(damaged)

    rc, _, _ = cli_import(capsys, damaged, "--force")
    assert rc == 0 and stored().is_file()
    record = catalog_record(capsys)
    assert record["availability"] == weights.IMPORTED
    assert record["imported"]["official"] is False and record["imported"]["verdict"] == weights_import.NOT_OFFICIAL
    assert record["imported"]["sha256"] == sha256_of_file(damaged) and record["imported"]["source_file"] == damaged.name
    assert catalog_line(capsys).endswith(f"({weights_import.verdict_text(weights_import.NOT_OFFICIAL)})")
    assert weights_import.weights_verdict(spec()) == weights_import.NOT_OFFICIAL


def test_a_conv1_of_nan_is_refused_even_with_force(official, tmp_path, capsys):
    state = random_state(seed=7)
    state[FIRST_CONV] = torch.full_like(state[FIRST_CONV], float("nan"))
    nan_file = save(state, tmp_path / "nan" / official.name)

    for extra in ((), ("--force",)):
        rc, _, err = cli_import(capsys, nan_file, *extra)
        assert rc == 2 and err.count("\n") == 1 and FIRST_CONV in err
    with pytest.raises(UserError) as refused:
        weights_import.import_weights(nan_file, spec(), force=True)
    assert not isinstance(refused.value, weights_import.NotOfficialFile) and FIRST_CONV in str(refused.value)
    assert not stored().exists() and weights.availability(spec()) == weights.NEEDS_DOWNLOAD


def test_an_infinite_value_anywhere_is_refused_too(tmp_path):
    state = random_state()
    key = "classifier.3.bias"
    state[key][5] = float("inf")
    with pytest.raises(UserError) as refused:
        weights_import.import_weights(save(state, tmp_path / "inf.pth"), spec(), force=True)
    assert key in str(refused.value) and not stored().exists()


def test_a_random_initialisation_is_not_the_official_file_and_needs_force(official, tmp_path, capsys):
    random_file = save(random_state(seed=1), tmp_path / official.name)  # the official name, other weights

    rc, _, err = cli_import(capsys, random_file)
    assert rc == 2 and "--force" in err and not stored().exists()

    result = weights_import.import_weights(random_file, spec(), force=True)
    assert result.official is False and result.record.verdict == weights_import.NOT_OFFICIAL
    assert result.sha256 == sha256_of_file(random_file) and result.record.official_prefix == official.name[-12:-4]
    assert result.path == stored() and result.replaced is None


def test_the_official_file_renamed_is_still_official(official, tmp_path, capsys):
    renamed = tmp_path / "copied from the lab PC.pth"
    renamed.write_bytes(official.read_bytes())

    rc, _, _ = cli_import(capsys, renamed)  # no --force needed
    assert rc == 0
    record = catalog_record(capsys)
    assert record["imported"]["official"] is True and record["imported"]["source_file"] == renamed.name
    assert catalog_line(capsys).endswith(weights.IMPORTED)  # an official import needs no remark

    result = weights_import.import_weights(renamed, spec())
    assert result.official is True and result.record.verdict == weights_import.OFFICIAL


def test_a_backbone_without_an_official_checksum_imports_without_force_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(bb.catalog(), SMALL, dataclasses.replace(spec(), weights_url=""))
    rc, _, _ = cli_import(capsys, save(random_state(), tmp_path / "w.pth"))
    assert rc == 0
    record = catalog_record(capsys)
    assert record["imported"]["official"] is None and record["imported"]["verdict"] == weights_import.NO_CHECKSUM
    assert catalog_line(capsys).endswith(f"({weights_import.verdict_text(weights_import.NO_CHECKSUM)})")


def test_a_second_import_reports_what_it_replaced(official, tmp_path, capsys):
    first = weights_import.import_weights(official, spec())
    other = save(random_state(seed=2), tmp_path / "other.pth")

    second = weights_import.import_weights(other, spec(), force=True)
    assert second.replaced is not None
    assert second.replaced.sha256 == first.sha256 and second.replaced.source_file == official.name
    assert second.replaced.official is True and second.replaced.imported_at == first.record.imported_at

    rc, out, _ = cli_import(capsys, official)
    assert rc == 0 and other.name in out and second.sha256[:16] in out  # the terminal names what it replaced


def test_a_failed_import_leaves_the_previous_one_intact(official, tmp_path, monkeypatch, capsys):
    weights_import.import_weights(official, spec())
    before = stored().read_bytes()
    nan_state = random_state(seed=3)
    nan_state[FIRST_CONV][0, 0, 0, 0] = float("nan")
    wrong_shape = dict(random_state(), **{"classifier.3.weight": torch.zeros(10, 1024)})
    refusals = [
        (save(nan_state, tmp_path / "nan.pth"), ("--force",)),
        (save(random_state(seed=4), tmp_path / "random.pth"), ()),  # not official, no --force
        (save(wrong_shape, tmp_path / "wrong.pth"), ("--force",)),
        (corrupt(official, tmp_path / "damaged.pth"), ()),
    ]
    for file, extra in refusals:
        rc, _, err = cli_import(capsys, file, *extra)
        assert rc == 2 and err.count("\n") == 1
        assert stored().read_bytes() == before

    # A copy that does not read back as written (a failing disk) never replaces the import.
    from safetensors import torch as st

    real_save = st.save_file
    writes = []

    def bad_write(tensors, filename, metadata=None):
        writes.append(filename)
        real_save(tensors, filename, metadata=metadata)
        data = bytearray(Path(filename).read_bytes())
        data[-64:] = b"\xff" * 64  # the last tensor's bytes become NaN
        Path(filename).write_bytes(bytes(data))

    monkeypatch.setattr(st, "save_file", bad_write)
    rc, _, err = cli_import(capsys, save(random_state(seed=5), tmp_path / "ok.pth"), "--force")
    assert rc == 2 and len(writes) == 1  # refused on reading the copy back
    assert stored().read_bytes() == before
    assert sorted(p.name for p in stored().parent.iterdir()) == [stored().name]  # no temporary file left
    assert weights_import.read_record(stored()).official is True


def test_an_import_from_before_checksums_shows_as_not_recorded_and_is_named_when_replaced(tmp_path, capsys):
    from safetensors.torch import save_file

    stored().parent.mkdir(parents=True)
    save_file(random_state(), str(stored()), metadata={"imported_from": "old.pth"})  # what earlier versions stored
    assert weights_import.weights_verdict(spec()) == weights_import.NOT_RECORDED
    assert catalog_record(capsys)["imported"]["verdict"] == weights_import.NOT_RECORDED

    result = weights_import.import_weights(save(random_state(seed=1), tmp_path / "new.pth"), spec(), force=True)
    assert result.replaced is not None and result.replaced.source_file == "old.pth"
    assert result.replaced.verdict == weights_import.NOT_RECORDED
