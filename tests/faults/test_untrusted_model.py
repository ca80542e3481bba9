"""Issue 13, item 5: a TorchScript file is a program, so tlstudio runs only the ones it made or the user trusted.

The finding: ``tlstudio predict evil.pt IMAGE`` on a crafted file ran its code at load and at forward
time (it wrote a file), printed ``ants 0.500`` and exited 0.
"""

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from tests.faults.evil_model import make_evil_model, ran
from tests.faults.readable import assert_readable
from tlstudio.cli import main
from tlstudio.core.data.preprocess import Preprocessing
from tlstudio.core.errors import UserError
from tlstudio.core.inference import trust
from tlstudio.core.inference.export import export_torchscript, read_export_info
from tlstudio.core.inference.model_file import open_model_file
from tlstudio.core.inference.predict import ExportedModel

PRE = Preprocessing(32, 32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "bilinear")


def tiny_network() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "picture.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "overwritten"
    return make_evil_model(tmp_path / "evil.pt", marker), marker


def test_predict_refuses_a_file_it_did_not_make_without_running_it(evil, picture, capsys):
    model, marker = evil
    assert main(["predict", str(model), str(picture)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert str(model) in captured.err and "--trust" in captured.err
    assert_readable(captured.err)
    assert ran(marker) == set()
    assert not trust.is_trusted(sha256(model))


def test_the_refusal_is_typed_and_names_the_file_and_its_hash(evil):
    model, marker = evil
    with pytest.raises(trust.UntrustedModel) as refused:
        ExportedModel.load(model)
    assert isinstance(refused.value, UserError)
    assert (refused.value.path, refused.value.sha256) == (model, sha256(model))
    with pytest.raises(trust.UntrustedModel):
        open_model_file(model)
    assert ran(marker) == set()


def test_reading_a_files_information_never_runs_it(evil):
    model, marker = evil
    assert read_export_info(model)["class_names"] == ["ants", "bees"]
    assert ran(marker) == set()


def test_a_model_this_installation_exported_runs_without_a_question(tmp_path, picture, capsys):
    model = export_torchscript(tiny_network(), PRE, ["cats", "dogs"], {}, tmp_path / "model.pt")
    assert trust.is_trusted(sha256(model))
    assert main(["predict", str(model), str(picture)]) == 0
    assert capsys.readouterr().out.split("\t")[0] == str(picture)
    copy = tmp_path / "elsewhere" / "model.pt"  # the same bytes are the same program, wherever they are
    copy.parent.mkdir()
    copy.write_bytes(model.read_bytes())
    assert ExportedModel.load(copy).class_names == ["cats", "dogs"]


def test_trust_runs_it_once_asked_and_remembers_that_file_only(evil, picture, tmp_path, capsys):
    model, marker = evil
    assert main(["predict", str(model), str(picture), "--trust"]) == 0
    assert capsys.readouterr().out.strip().endswith("ants 0.500")
    assert ran(marker) == {"load", "forward"}  # it is a program: trusting it let it write files
    for kind in ("load", "forward"):
        (tmp_path / f"overwritten.{kind}").unlink()
    assert main(["predict", str(model), str(picture)]) == 0  # remembered: no --trust needed again
    assert ran(marker) == {"load", "forward"}
    changed = tmp_path / "changed.pt"
    changed.write_bytes(model.read_bytes() + b"\0")  # another hash is another file: asked again
    assert main(["predict", str(changed), str(picture)]) == 2


def test_a_damaged_store_reads_as_empty_and_is_rewritten(tmp_path, picture):
    model = export_torchscript(tiny_network(), PRE, ["cats", "dogs"], {}, tmp_path / "model.pt")
    store = trust.store_path()
    for damage in (b"\0garbage{", b'{"models": [1, 2]}', b"[]"):
        store.write_bytes(damage)
        assert not trust.is_trusted(sha256(model))
        with pytest.raises(trust.UntrustedModel):
            ExportedModel.load(model)
    assert ExportedModel.load(model, trust=True).class_names == ["cats", "dogs"]
    assert sha256(model) in json.loads(store.read_text())["models"]
    assert ExportedModel.load(model).predict_file(picture).ok


def test_the_store_is_in_the_user_data_folder_not_beside_the_model(tmp_path, monkeypatch):
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))
    model = export_torchscript(tiny_network(), PRE, ["cats", "dogs"], {}, tmp_path / "run" / "model.pt")
    assert trust.store_path() == tmp_path / "home" / trust.STORE_NAME and trust.store_path().is_file()
    assert sorted(p.name for p in model.parent.iterdir()) == ["model.pt"]


def test_two_processes_remembering_at_once_lose_no_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))
    code = (
        "import sys; from tlstudio.core.inference import trust\n"
        "for i in range(25): trust.remember(f'{sys.argv[1]}{i:063d}'[-64:], trust.TRUSTED, 'x.pt')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, tag]) for tag in "ab"]
    assert [p.wait(120) for p in procs] == [0, 0]
    models = json.loads(trust.store_path().read_text())["models"]
    assert len(models) == 50


def test_an_unwritable_store_is_a_user_error_not_a_crash(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("TLSTUDIO_HOME", str(blocker))
    assert not trust.is_trusted("0" * 64)
    with pytest.raises(UserError) as refused:
        trust.remember("0" * 64, trust.TRUSTED, tmp_path / "model.pt")
    assert str(blocker) in str(refused.value)
    assert_readable(str(refused.value))


def test_the_refusal_shows_a_disguised_name_as_it_is(tmp_path, capsys):
    """A right-to-left override can make 'evil\\u202ept.png' read as an image; the message escapes it."""
    model = make_evil_model(tmp_path / "evil\u202egnp.pt", tmp_path / "overwritten")
    assert main(["predict", str(model), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "\u202e" not in err and "evil" in err


def test_an_onnx_file_is_data_and_runs_without_the_trust_question(tmp_path, picture, capsys):
    onnx_export = pytest.importorskip("tlstudio.core.inference.onnx_export")
    model = onnx_export.export_onnx(tiny_network(), PRE, ["cats", "dogs"], {}, tmp_path / "model.ONNX")
    store = trust.store_path().read_bytes() if trust.store_path().exists() else b""
    assert open_model_file(model).class_names == ["cats", "dogs"]
    assert main(["predict", str(model), str(picture)]) == 0
    assert capsys.readouterr().out.split("\t")[0] == str(picture)
    assert (trust.store_path().read_bytes() if trust.store_path().exists() else b"") == store
