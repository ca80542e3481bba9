"""The engine on real photographs (ants vs bees): the figures a user would see, and a model file that runs anywhere.

Slow (about a minute on 2 CPU cores) and skipped when ../shared/datasets/hymenoptera is absent.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.trainer import Trainer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def frozen_run(tmp_path_factory):
    from tests.conftest import HYMENOPTERA

    if not (HYMENOPTERA / "train").is_dir():
        pytest.skip("../shared/datasets/hymenoptera is not present")
    root = tmp_path_factory.mktemp("hymenoptera")
    cfg = TrainConfig(data_dir=str(HYMENOPTERA), backbone="efficientnet_lite0", freeze_depth="all", epochs=20, device="cpu")
    result = Trainer(cfg, root / "frozen", cache_dir=root / "cache").run()
    return cfg, root, result


def test_feature_extractor_reaches_95_percent(frozen_run):
    _, root, result = frozen_run
    metrics = json.loads((root / "frozen" / "metrics.json").read_text())
    assert metrics["classes"] == ["ants", "bees"] and metrics["n"] == 153
    assert metrics["accuracy"] >= 0.95, metrics["accuracy"]
    assert result.summary["feature_cache"] and result.summary["export"]["verified"]


def test_temperature_scaling_lowers_the_validation_log_loss_and_ece(frozen_run):
    from tests.core.test_calibration import check_calibration_improves

    check_calibration_improves(frozen_run[2].summary, "hymenoptera")


def test_the_same_run_again_reuses_the_feature_cache_with_the_same_result(frozen_run):
    cfg, root, first = frozen_run
    again = Trainer(TrainConfig(**{**cfg.to_dict(), "export": False}), root / "again", cache_dir=root / "cache").run()
    assert again.summary["cache_reused"] and not first.summary["cache_reused"]
    assert again.summary["val_accuracy"] == first.summary["val_accuracy"]


def test_partial_fine_tune_of_the_last_two_stages_reaches_93_percent(frozen_run):
    from tests.conftest import HYMENOPTERA

    _, root, _ = frozen_run
    cfg = TrainConfig(data_dir=str(HYMENOPTERA), backbone="efficientnet_lite0", freeze_depth="7", epochs=3, image_size=160, device="cpu", export=False)
    result = Trainer(cfg, root / "partial", cache_dir=root / "cache").run()
    assert result.summary["frozen_stages"][-1] == "stage 6" and len(result.summary["frozen_stages"]) == 7
    assert result.summary["val_accuracy"] >= 0.93, result.summary["val_accuracy"]


def test_model_file_in_plain_torch_agrees_with_the_app_on_read_image(frozen_run):
    """What a user does on another machine: torch.jit.load, torchvision.io.read_image, top-1."""
    from tests.conftest import HYMENOPTERA

    _, root, _ = frozen_run
    run = root / "frozen"
    predictions = json.loads((run / "predictions.json").read_text())
    paths = [str(Path(HYMENOPTERA) / p["path"]) for p in predictions]
    code = (
        "import json, sys, torch, torchvision\n"
        "from torchvision.io import read_image, ImageReadMode\n"
        "m = torch.jit.load(sys.argv[1], map_location='cpu')\n"
        "paths = json.load(sys.stdin)\n"
        "with torch.no_grad():\n"
        "    top = [int(m(read_image(p, ImageReadMode.RGB).unsqueeze(0)).argmax(1)) for p in paths]\n"
        "print(json.dumps({'class_names': list(m.class_names), 'top': top}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(run / "model.pt")], input=json.dumps(paths), capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["class_names"] == ["ants", "bees"]
    agree = sum(t == p["pred"] for t, p in zip(got["top"], predictions, strict=True)) / len(predictions)
    print(f"\nplain-torch read_image top-1 agreement with the app: {agree:.1%} of {len(predictions)}")
    assert agree >= 0.99


def test_onnx_export_agrees_with_the_trained_model_on_every_val_image_in_a_fresh_onnxruntime_process(frozen_run, capsys):
    """`tlstudio export --format onnx`, then what a user does with no PyTorch: Pillow, uint8 NCHW, onnxruntime."""
    from tests.conftest import HYMENOPTERA
    from tlstudio.cli import main

    _, root, _ = frozen_run
    run = root / "frozen"
    assert main(["export", str(run), "--format", "onnx", "--cache", str(root / "cache"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["export_onnx"]
    assert report["verified"] and report["images"] == 153 and report["agreement"] == 1.0
    print(f"\nONNX export check (fresh onnxruntime process, the decoded val squares): {report['agreement']:.1%} of {report['images']}, largest probability difference {report['max_abs_diff']:.1e}")

    predictions = [p for p in json.loads((run / "predictions.json").read_text()) if p["split"] == "val"]
    code = (
        "import sys; sys.modules['torch'] = None\n"  # nothing of PyTorch on this machine
        "import json, numpy as np, onnxruntime as ort\n"
        "from PIL import Image, ImageOps\n"
        "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n"
        "names = json.loads(s.get_modelmeta().custom_metadata_map['tlstudio.json'])['class_names']\n"
        "def read(p):\n"
        "    with Image.open(p) as im:\n"
        "        return np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(im).convert('RGB')).transpose(2, 0, 1)[None])\n"
        "probs = [s.run(None, {'images': read(p)})[0][0].tolist() for p in json.load(sys.stdin)]\n"
        "print(json.dumps({'class_names': names, 'probs': probs}))\n"
    )
    paths = [str(Path(HYMENOPTERA) / p["path"]) for p in predictions]
    out = subprocess.run([sys.executable, "-c", code, str(run / "model.onnx")], input=json.dumps(paths), capture_output=True, text=True, check=True)
    got = json.loads(out.stdout)
    assert got["class_names"] == ["ants", "bees"]
    top = [max(range(len(p)), key=p.__getitem__) for p in got["probs"]]
    agree = sum(t == p["pred"] for t, p in zip(top, predictions, strict=True)) / len(predictions)
    diff = max(abs(a - b) for g, p in zip(got["probs"], predictions) for a, b in zip(g, p["probs"]))
    print(f"ONNX on the full-size files (Pillow, resized inside the file): {agree:.1%} of {len(predictions)} agree with the app, largest probability difference {diff:.3f}")
    assert agree >= 0.99
