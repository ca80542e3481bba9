"""ONNX files tlstudio must not run: one that makes the runtime read another file (external data), one with an
operator outside the standard domain, one tlstudio did not export. Each is refused before a session exists:
exit 2 and one readable line from `tlstudio predict`, a UserError from OnnxModel.load."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from tests.faults.readable import assert_readable
from tlstudio.cli import main
from tlstudio.core.errors import UserError
from tlstudio.core.inference.onnx_file import INFO_KEY
from tlstudio.core.inference.onnx_model import OnnxModel

INFO = {"format": "tlstudio-model-1", "class_names": ["a", "b", "c"], "summary": {},
        "preprocessing": {"input_size": 8, "resize_size": 8, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bilinear"}}


def crafted(nodes, initializers=(), domains=(("", 18),), functions=(), info=INFO) -> onnx.ModelProto:
    """uint8 images [N, 3, H, W] -> their mean colour through ``nodes`` (input 'x', float) -> 'probabilities' [N, 3]."""
    head = [helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT)]
    tail = [helper.make_node("GlobalAveragePool", ["y"], ["m"]), helper.make_node("Flatten", ["m"], ["probabilities"])]
    graph = helper.make_graph(
        head + list(nodes) + tail, "crafted",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["n", 3])],
        initializer=list(initializers),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in domains], ir_version=8, functions=list(functions))
    if info is not None:
        helper.set_model_props(model, {INFO_KEY: json.dumps(info)})
    return model


def save(model: onnx.ModelProto, path):
    path.write_bytes(model.SerializeToString())  # as is: onnx.save would resolve or rewrite external data
    return path


@pytest.fixture
def picture(tmp_path):
    path = tmp_path / "picture.png"
    Image.fromarray(np.full((12, 10, 3), 120, np.uint8)).save(path)
    return path


def refused(path, picture, capsys) -> str:
    """The one stderr line of `tlstudio predict` and OnnxModel.load's message, after checking both refuse ``path``."""
    with pytest.raises(UserError) as caught:
        OnnxModel.load(path)
    assert str(path) in str(caught.value)
    capsys.readouterr()
    assert main(["predict", str(path), str(picture)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and captured.out == ""
    assert_readable(captured.err)
    return lines[0]


def test_a_well_formed_crafted_file_runs(tmp_path, picture, capsys):
    """The control: the crafted files below differ from this one only in what is refused."""
    path = save(crafted([helper.make_node("Identity", ["x"], ["y"])]), tmp_path / "plain.onnx")
    assert OnnxModel.load(path).predict_file(picture).ok
    assert main(["predict", str(path), str(picture)]) == 0


def test_an_initializer_with_external_data_is_refused_before_the_runtime_reads_it(tmp_path, picture, capsys):
    weights = np.ones((1, 3, 1, 1), np.float32)
    (tmp_path / "weights.bin").write_bytes(weights.tobytes())
    tensor = numpy_helper.from_array(weights, "w")
    onnx.external_data_helper.set_external_data(tensor, location="weights.bin", offset=0, length=weights.nbytes)
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    path = save(crafted([helper.make_node("Add", ["x", "w"], ["y"])], [tensor]), tmp_path / "external.onnx")
    # onnxruntime alone would open weights.bin beside the file: the reference is real.
    out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": np.zeros((1, 3, 2, 2), np.uint8)})[0]
    assert np.allclose(out, 1.0)
    refused(path, picture, capsys)


@pytest.mark.parametrize("where", ["graph", "subgraph"])
def test_an_operator_of_another_domain_is_refused(tmp_path, picture, capsys, where):
    if where == "graph":  # declared in the opset imports, as a real custom-op file is
        nodes, domains = [helper.make_node("Backdoor", ["x"], ["y"], domain="com.example.evil")], (("", 18), ("com.example.evil", 1))
    else:  # hidden in an If's branch, undeclared
        branch = helper.make_graph([helper.make_node("Backdoor", ["x"], ["b"], domain="com.example.evil")], "branch", [],
                                   [helper.make_tensor_value_info("b", TensorProto.FLOAT, None)])
        cond = numpy_helper.from_array(np.array(True), "cond")
        nodes = [helper.make_node("Constant", [], ["c"], value=cond), helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch)]
        domains = (("", 18),)
    refused(save(crafted(nodes, domains=domains), tmp_path / f"custom-{where}.onnx"), picture, capsys)


def test_a_runtime_contrib_operator_is_refused_too(tmp_path, picture, capsys):
    """com.microsoft operators run in onnxruntime, but are not the standard: a tlstudio export never has them."""
    nodes = [helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")]
    path = save(crafted(nodes, domains=(("", 18), ("com.microsoft", 1))), tmp_path / "contrib.onnx")
    ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])  # it would run
    refused(path, picture, capsys)


def test_a_local_function_is_refused(tmp_path, picture, capsys):
    body = helper.make_function("local.fn", "Twice", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])], [helper.make_opsetid("", 18)])
    nodes = [helper.make_node("Twice", ["x"], ["y"], domain="local.fn")]
    refused(save(crafted(nodes, domains=(("", 18), ("local.fn", 1)), functions=[body]), tmp_path / "function.onnx"), picture, capsys)


@pytest.mark.parametrize("info", [None, {"format": "tlstudio-model-1"}, "not json"])
def test_an_onnx_file_tlstudio_did_not_export_is_refused(tmp_path, picture, capsys, info):
    model = crafted([helper.make_node("Identity", ["x"], ["y"])], info=None)
    if info is not None:
        helper.set_model_props(model, {INFO_KEY: info if isinstance(info, str) else json.dumps(info)})
    refused(save(model, tmp_path / "foreign.onnx"), picture, capsys)


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage that is no protobuf \xff\xff\xff", b"PK\x03\x04 a zip"])
def test_a_file_that_is_not_onnx_or_is_missing_is_refused(tmp_path, picture, capsys, content):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    refused(path, picture, capsys)
    refused(tmp_path / "missing.onnx", picture, capsys)
