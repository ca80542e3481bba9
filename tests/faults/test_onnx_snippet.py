"""The Export step's plain-onnxruntime code gives tlstudio's answer, also for the pictures a naive read gets wrong
(EXIF rotated, transparent, 16-bit): run as it is shown (only the two file names replaced), with torch unimportable."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.faults.test_plain_pytorch_snippet import SIDE, pictures, spatial_network
from tlstudio.core.data.preprocess import Preprocessing
from tlstudio.core.inference.onnx_export import export_onnx
from tlstudio.core.inference.onnx_model import OnnxModel
from tlstudio.gui.snippets import ONNX_SNIPPET  # text only: the module imports no Qt


THRESHOLD = 0.5  # some of the pictures fall below it (their top probabilities: 0.39 to 0.59)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    pre = Preprocessing(SIDE, SIDE, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "bilinear")
    return export_onnx(spatial_network(), pre, ["ants", "bees", "wasps"], {"calibration": {"temperature": 1.0, "threshold": THRESHOLD}}, tmp_path_factory.mktemp("onnx-snippet") / "model.onnx")


def test_the_onnxruntime_code_gives_tlstudios_answer_without_torch(model, tmp_path):
    found = pictures(tmp_path)
    code = ONNX_SNIPPET.format(name="MODEL").replace('"MODEL"', repr(str(model)))
    runner = (
        "import json, sys\n"
        "sys.modules['torch'] = sys.modules['tlstudio'] = None\n"  # a machine with onnxruntime and Pillow only
        "out = {}\n"
        "for name, path in json.loads(sys.argv[2]).items():\n"
        "    scope = {}\n"
        "    exec(sys.argv[1].replace('\"photo.jpg\"', repr(path)), scope)\n"
        "    out[name] = [scope['probs'].tolist(), scope['sure']]\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", runner, code, json.dumps({k: str(v) for k, v in found.items()})], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    tlstudio = OnnxModel.load(model)
    assert {sure for _, sure in got.values()} == {True, False}  # the threshold sends some pictures to "not sure"
    for name, picture in found.items():
        expected = np.asarray(tlstudio.predict_file(picture).probs)
        probs, sure = got[name]
        assert np.abs(np.asarray(probs) - expected).max() < 1e-3, (name, probs, expected)
        assert sure == (max(expected) >= THRESHOLD)


def test_the_readme_shows_the_same_code():
    from tests.faults.test_plain_pytorch_snippet import README

    assert ONNX_SNIPPET.format(name="model.onnx") in README.read_text(encoding="utf-8"), "README.md's onnxruntime code is not the Export step's"
