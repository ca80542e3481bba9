"""The code-free export: model.onnx has the TorchScript file's preprocessing inside, its class names in its
metadata, standard operators only, and is checked in a fresh process that has only onnxruntime and numpy."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from tests.core.test_export import CLASSES, network, photo
from tests.synthetic import make_colour_dataset
from tlstudio.core.catalog import backbones as bb
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.preprocess import Preprocessing, preprocessing_for
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.errors import UserError
from tlstudio.core.inference import onnx_export
from tlstudio.core.inference.export import ExportedClassifier
from tlstudio.core.inference.model_file import open_model_file
from tlstudio.core.inference.onnx_export import OPSET, export_onnx, verify_onnx_in_fresh_process
from tlstudio.core.inference.onnx_file import INFO_KEY, file_problem, read_onnx_info
from tlstudio.core.inference.onnx_model import OnnxModel
from tlstudio.core.runs.files import RunFiles

# Odd and even sides, landscape and portrait, smaller than the resize (upscaled), exactly at it, a tie in the rounding.
SIZES = [(300, 451), (110, 110), (50, 80), (1000, 700), (111, 400), (3, 7), (105, 100), (109, 110)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    net = network()
    pre = preprocessing_for(bb.get_backbone("efficientnet_lite0"), 96)
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(net, pre, CLASSES, {"val_accuracy": 0.5}, path)
    return net, pre, path


def reference(net, pre, images: torch.Tensor) -> np.ndarray:
    """The TorchScript export's forward, run eagerly: the PyTorch path the ONNX file must reproduce."""
    with torch.no_grad():
        return ExportedClassifier(net, pre, CLASSES)(images).numpy()


@pytest.fixture(scope="module")
def session(exported) -> ort.InferenceSession:
    return ort.InferenceSession(str(exported[2]), providers=["CPUExecutionProvider"])


def test_one_self_contained_file_of_standard_operators_with_its_information(exported, session):
    _, pre, path = exported
    model = onnx.load(str(path), load_external_data=False)
    assert [(o.domain, o.version) for o in model.opset_import] == [("", OPSET)] and OPSET >= 18  # Resize's antialias
    assert not model.functions and {n.domain for n in model.graph.node} == {""}
    assert file_problem(model) is None and sorted(p.name for p in path.parent.iterdir()) == ["model.onnx"]
    info = json.loads({p.key: p.value for p in model.metadata_props}[INFO_KEY])
    assert info["class_names"] == CLASSES and Preprocessing.from_dict(info["preprocessing"]) == pre and info["summary"] == {"val_accuracy": 0.5}
    assert info == read_onnx_info(path) and info["opset"] == OPSET
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.type, inp.shape[1]) == ("images", "tensor(uint8)", 3) and isinstance(inp.shape[2], str) and isinstance(inp.shape[3], str)
    assert (out.name, out.shape[1]) == ("probabilities", len(CLASSES))


@pytest.mark.parametrize("h, w", SIZES)
def test_any_size_uint8_batch_gives_what_the_pytorch_export_gives(exported, session, h, w):
    net, pre, _ = exported
    img = torch.from_numpy(photo(h, w, seed=h)).permute(2, 0, 1)
    batch = torch.stack([img, img.flip(-1)])
    got = session.run(None, {"images": batch.numpy()})[0]
    assert got.shape == (2, len(CLASSES)) and np.allclose(got.sum(1), 1, atol=1e-5)
    assert np.abs(got - reference(net, pre, batch)).max() < 1e-5


def test_a_fresh_onnxruntime_process_agrees_and_needs_no_torch(exported, tmp_path):
    net, pre, path = exported
    images = [photo(h, w, seed=h) for h, w in SIZES[:4]]
    expected = np.concatenate([reference(net, pre, torch.from_numpy(a).permute(2, 0, 1)[None]) for a in images])
    result = verify_onnx_in_fresh_process(path, images, expected)
    assert result.ok and result.agreement == 1.0 and result.n == 4 and result.max_abs_diff < 1e-5
    assert not verify_onnx_in_fresh_process(path, images, expected[:, ::-1]).ok  # a wrong answer is caught

    # The child script with torch and tlstudio made unimportable: what a machine with only onnxruntime runs.
    held = tmp_path / "held.npz"
    np.savez(held, image0=images[0])
    blocked = "import sys; sys.modules['torch'] = sys.modules['tlstudio'] = None; exec(sys.argv.pop(1))"
    proc = subprocess.run([sys.executable, "-c", blocked, onnx_export._CHILD, str(path), str(held)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["class_names"] == CLASSES and np.allclose(out["probs"], expected[:1], atol=1e-5)


def test_a_network_with_a_non_finite_weight_is_refused_and_nothing_is_written(tmp_path):
    net = network()
    with torch.no_grad():
        next(net.parameters()).view(-1)[0] = float("nan")
    pre = preprocessing_for(bb.get_backbone("efficientnet_lite0"), 96)
    with pytest.raises(UserError):
        export_onnx(net, pre, CLASSES, {}, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_what_the_torchscript_based_exporter_cannot_translate_goes_through_the_torch_export_based_one(tmp_path):
    """Adaptive pooling of 15x15 cells to 4x4 has no ONNX translation in the first exporter."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(64, 3)).eval()
    pre = Preprocessing(32, 36, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "bilinear")
    with pytest.raises(Exception):
        onnx_export._torchscript_based(net, torch.zeros(2, 3, 32, 32))
    path = export_onnx(net, pre, CLASSES, {}, tmp_path / "model.onnx")
    img = torch.from_numpy(photo(50, 41)).permute(2, 0, 1)[None]
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": img.numpy()})[0]
    assert np.abs(got - reference(net, pre, img)).max() < 1e-5


def test_a_network_neither_exporter_translates_is_a_user_error_and_nothing_is_written(tmp_path, monkeypatch):
    def refuse(network, example):
        raise RuntimeError("no translation for this operator")

    monkeypatch.setattr(onnx_export, "_torchscript_based", refuse)
    monkeypatch.setattr(onnx_export, "_export_based", refuse)
    with pytest.raises(UserError):
        export_onnx(network(), preprocessing_for(bb.get_backbone("efficientnet_lite0"), 96), CLASSES, {}, tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


def test_onnx_model_predicts_files_like_the_exported_model_interface(exported, tmp_path):
    net, pre, path = exported
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i, (h, w) in enumerate(SIZES[:3]):
        Image.fromarray(photo(h, w, seed=i)).save(folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"not a picture")
    model = open_model_file(path)  # no trust question: an ONNX file runs no code
    assert isinstance(model, OnnxModel) and model.path == path
    assert model.class_names == CLASSES and model.resize_size == pre.resize_size and model.info == read_onnx_info(path)
    predictions = model.predict_paths([folder])
    assert [Path(p.path).name for p in predictions] == ["0.png", "1.png", "2.png", "broken.jpg"]
    assert [p.ok for p in predictions] == [True, True, True, False]
    single = model.predict_file(folder / "0.png")
    assert single.probs == predictions[0].probs and sum(single.probs) == pytest.approx(1, abs=1e-5)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx-run")
    data = make_colour_dataset(root / "colours", per_class=8)
    cfg = TrainConfig(data_dir=str(data), freeze_depth="all", epochs=1, batch_size=8, image_size=64, export=True)
    Trainer(cfg, root / "run", cache_dir=root / "cache").run()
    return root, data


def test_export_command_writes_a_verified_model_onnx_and_keeps_the_torchscript_report(small_run, capsys):
    from tlstudio.cli import main

    root, data = small_run
    run = root / "run"
    torchscript = json.loads((run / "summary.json").read_text())["export"]
    assert main(["export", str(run), "--format", "onnx", "--cache", str(root / "cache"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    report = summary["export_onnx"]
    assert report["verified"] and report["agreement"] == 1.0 and report["images"] == json.loads((run / "metrics.json").read_text())["n"]
    assert Path(report["path"]) == run / "model.onnx" and not (run / "model.unverified.onnx").exists()
    assert summary["export"] == torchscript and RunFiles(run).read_json(RunFiles(run).summary) == summary
    assert read_onnx_info(run / "model.onnx")["class_names"] == ["blue", "green", "red"]

    assert main(["predict", str(run / "model.onnx"), str(data / "red")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 8 and all(line.split("\t")[1].split()[0] == "red" for line in lines)


def test_training_again_removes_an_older_model_onnx(small_run, tmp_path):
    """Training makes a new model: a model.onnx left from before would pass for it."""
    root, data = small_run
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.onnx").write_bytes((root / "run" / "model.onnx").read_bytes())
    cfg = TrainConfig(data_dir=str(data), freeze_depth="all", epochs=1, batch_size=8, image_size=64, export=False)
    summary = Trainer(cfg, run, cache_dir=root / "cache").run().summary
    assert not (run / "model.onnx").exists() and "export_onnx" not in summary


def test_an_unknown_format_is_a_usage_error(small_run, capsys):
    from tlstudio.cli import main

    root, _ = small_run
    assert main(["export", str(root / "run"), "--format", "tflite"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
