"""The code-free export: one ONNX file that runs in plain onnxruntime, with its preprocessing inside.

Contract (DESIGN.md): input ``images``, RGB uint8 [N, 3, H, W] of any size; output ``probabilities``,
float [N, classes]. Inside, what the TorchScript file does: the short side resized to
``resize_size`` (antialiased bilinear), the same centre crop, normalisation, the network, softmax.
Standard ai.onnx operators only, opset 18 (the first whose Resize antialiases), IR version 8 (or
the network exporter's, if newer), the weights inside the file (no external data). The metadata
entry ``tlstudio.json`` holds what the TorchScript file's extra file holds, plus the opset; the entries
``temperature`` and ``not_sure_below`` repeat the calibration (the logits are divided by the temperature
before the softmax, a constant of the graph). ``set_not_sure_below`` rewrites only the metadata, and
refuses unless the graph it writes is byte for byte the verified one.

The network (normalised crop -> logits, fixed size, any batch) comes from torch's TorchScript-based
ONNX exporter (``dynamo=False``): torch 2.14 still has it (deprecated), and it exports every catalog
backbone 4-6x faster than the torch.export-based one (``dynamo=True``, onnxscript), which takes what
it cannot translate. The preprocessing before it is written here as ONNX nodes, because its sizes
depend on the picture's: ``Shape`` -> the resize size -> ``Resize`` -> ``Slice``, checked against the
TorchScript file's F.interpolate number for number.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from tlstudio import __version__
from tlstudio.core.atomic import json_line, write_bytes
from tlstudio.core.data.preprocess import Preprocessing
from tlstudio.core.errors import UserError
from tlstudio.core.events import StopToken
from tlstudio.core.inference.child_run import CHILD_PROGRESS_LINE
from tlstudio.core.inference.export import FORMAT, VerifyResult, calibration_of, child_command, compare_in_child, refuse_non_finite, run_child_code
from tlstudio.core.inference.onnx_file import INFO_KEY, checked_model, file_problem, read_model_bytes

OPSET = 18
IR_VERSION = 8  # the IR version of opset 18 (unless the network's exporter wrote a newer one): onnxruntime 1.14 on reads it
INPUT, OUTPUT = "images", "probabilities"
_NET_IN, _NET_OUT = "tlstudio/normalised", "tlstudio/logits"


@contextmanager
def onnx_quietly():
    # The TorchScript-based exporter announces its deprecation on every call; nothing a user can act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", message=r".*(legacy TorchScript-based ONNX export|will be removed).*")
        yield


def network_model(network: nn.Module, input_size: int) -> onnx.ModelProto:
    """``network`` (normalised [N, 3, size, size] -> logits) as ONNX, with any batch size.

    The TorchScript-based exporter first (fast); the torch.export-based one for what it cannot
    translate (adaptive pooling to a size that does not divide the input's, for one) and once torch
    no longer has it."""
    example = torch.zeros(2, 3, input_size, input_size)
    try:
        return _torchscript_based(network, example)
    except Exception as first:  # noqa: BLE001 - its errors are of many types; the second exporter gets its chance
        try:
            return _export_based(network, example)
        except Exception as second:  # noqa: BLE001
            raise UserError(
                f"this network cannot be written as ONNX ({type(first).__name__}: {_first_line(first)}; then {type(second).__name__}: "
                f"{_first_line(second)}). Export it as TorchScript instead."
            ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _torchscript_based(network: nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    buf = io.BytesIO()
    with torch.no_grad(), onnx_quietly():
        torch.onnx.export(
            network, (example,), buf, dynamo=False, opset_version=OPSET, input_names=[_NET_IN], output_names=[_NET_OUT],
            dynamic_axes={_NET_IN: {0: "n"}, _NET_OUT: {0: "n"}}, do_constant_folding=True,
        )
    return onnx.load_model_from_string(buf.getvalue())


def _export_based(network: nn.Module, example: torch.Tensor) -> onnx.ModelProto:
    with torch.no_grad(), onnx_quietly(), redirect_stdout(io.StringIO()):  # it reports its steps on stdout
        program = torch.onnx.export(
            network, (example,), None, dynamo=True, opset_version=OPSET, input_names=[_NET_IN], output_names=[_NET_OUT],
            dynamic_shapes=({0: torch.export.Dim("n")},), external_data=False, verbose=False,
        )
    return program.model_proto


def _const(name: str, value, dtype) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), f"tlstudio/{name}")


def _node(op: str, inputs: Sequence[str], output: str, **attrs) -> onnx.NodeProto:
    """A preprocessing node; its names get the prefix ``tlstudio/``, so none meets a name of the network's."""
    names = [name if name in ("", INPUT) else f"tlstudio/{name}" for name in inputs]
    out = output if output == _NET_IN else f"tlstudio/{output}"
    return helper.make_node(op, names, [out], name=out, **attrs)


def preprocessing_graph(pre: Preprocessing) -> tuple[list[onnx.NodeProto], list[TensorProto]]:
    """Nodes from ``images`` (uint8 NCHW, any H, W) to the network's input, as ExportedClassifier.forward computes it."""
    r, size = pre.resize_size, pre.input_size
    consts = [
        _const("255", 255.0, np.float32), _const("zero", 0.0, np.float32), _const("one", 1.0, np.float32),
        _const("resize", float(r), np.float64), _const("r", [r], np.int64), _const("size", [size], np.int64),
        _const("margin", [(r - size) // 2], np.int64), _const("i0", [0], np.int64), _const("i1", [1], np.int64),
        _const("i2", [2], np.int64), _const("i4", [4], np.int64), _const("axes", [2, 3], np.int64),
        _const("mean", np.reshape(pre.mean, (1, 3, 1, 1)), np.float32), _const("std", np.reshape(pre.std, (1, 3, 1, 1)), np.float32),
    ]
    nodes = [
        _node("Cast", [INPUT], "x8", to=TensorProto.FLOAT), _node("Div", ["x8", "255"], "x"),
        _node("Shape", [INPUT], "shape"), _node("Slice", ["shape", "i2", "i4"], "hw"), _node("Slice", ["shape", "i0", "i2"], "nc"),
        _node("ReduceMin", ["hw"], "short", keepdims=1),
        # new side = round(side * resize / short) in float64 with ties to even, as Python's round in the TorchScript file
        _node("Cast", ["hw"], "hw_d", to=TensorProto.DOUBLE), _node("Cast", ["short"], "short_d", to=TensorProto.DOUBLE),
        _node("Mul", ["hw_d", "resize"], "hw_r"), _node("Div", ["hw_r", "short_d"], "hw_s"), _node("Round", ["hw_s"], "hw_round"),
        _node("Cast", ["hw_round"], "hw_i", to=TensorProto.INT64), _node("Max", ["hw_i", "i1"], "hw_long"),
        _node("Equal", ["hw", "short"], "is_short"), _node("Where", ["is_short", "r", "hw_long"], "new_hw"),
        _node("Concat", ["nc", "new_hw"], "sizes", axis=0),
        # exclude_outside=1 renormalises the filter at the borders, as torch's antialiased interpolate does
        _node("Resize", ["x", "", "", "sizes"], "resized", mode="linear", antialias=1, exclude_outside=1, coordinate_transformation_mode="half_pixel"),
        _node("Clip", ["resized", "zero", "one"], "clipped"),
        _node("Sub", ["new_hw", "r"], "extra"), _node("Div", ["extra", "i2"], "half"), _node("Add", ["half", "margin"], "start"),
        _node("Add", ["start", "size"], "end"), _node("Slice", ["clipped", "start", "end", "axes"], "crop"),
        _node("Sub", ["crop", "mean"], "centred"), _node("Div", ["centred", "std"], _NET_IN),
    ]
    return nodes, consts


def classifier_model(net: onnx.ModelProto, pre: Preprocessing, classes: Sequence[str], info: dict) -> onnx.ModelProto:
    """The network's graph between the preprocessing and a softmax, with tlstudio's metadata."""
    nodes, consts = preprocessing_graph(pre)
    temperature = float(info.get("temperature", 1.0))
    consts.append(_const("temperature", temperature, np.float32))
    scale = helper.make_node("Div", [_NET_OUT, "tlstudio/temperature"], ["tlstudio/scaled_logits"], name="tlstudio/scaled_logits")
    softmax = helper.make_node("Softmax", ["tlstudio/scaled_logits"], [OUTPUT], name="tlstudio/softmax", axis=1)
    graph = helper.make_graph(
        nodes + list(net.graph.node) + [scale, softmax], "tlstudio_classifier",
        [helper.make_tensor_value_info(INPUT, TensorProto.UINT8, ["n", 3, "height", "width"])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["n", len(classes)])],
        initializer=consts + list(net.graph.initializer), value_info=list(net.graph.value_info),
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=max(IR_VERSION, net.ir_version), producer_name="tlstudio", producer_version=__version__,
        doc_string="RGB uint8 images [N, 3, H, W] of any size -> class probabilities [N, classes]; class names in metadata 'tlstudio.json'.",
    )
    helper.set_model_props(model, _props(info))
    return model


def _props(info: dict) -> dict:
    return {INFO_KEY: json_line(info), "temperature": repr(float(info.get("temperature", 1.0))), "not_sure_below": repr(float(info.get("not_sure_below", 0.0)))}


def set_not_sure_below(path: str | os.PathLike, threshold: float, summary: dict) -> Path:
    """Rewrite the ONNX file at ``path`` with ``threshold`` in its metadata (and ``summary``), atomically; the graph stays."""
    path = Path(path)
    data = read_model_bytes(path)
    model, info = checked_model(data, path)
    graph = model.graph.SerializeToString()
    info.update(not_sure_below=float(threshold), summary=summary)
    del model.metadata_props[:]
    helper.set_model_props(model, _props(info))
    out = model.SerializeToString()
    if onnx.load_model_from_string(out).graph.SerializeToString() != graph:
        raise RuntimeError(f"rewriting '{path}' changed more than its threshold; it was left as it was")
    write_bytes(path, out)
    return path


def export_onnx(network: nn.Module, pre: Preprocessing, classes: Sequence[str], summary: dict, dest: str | os.PathLike) -> Path:
    """Write ``network`` (normalised images -> logits) as a self-contained ONNX file at ``dest``.

    Refuses a network with a tensor that is not finite: it would give NaN for every picture."""
    network = network.float().cpu().eval()
    refuse_non_finite(network)
    temperature, not_sure_below = calibration_of(summary)
    info = {
        "format": FORMAT, "class_names": list(map(str, classes)), "preprocessing": pre.to_dict(), "summary": summary, "torch": torch.__version__, "opset": OPSET,
        "temperature": temperature, "not_sure_below": not_sure_below,
    }
    model = classifier_model(network_model(network, pre.input_size), pre, classes, info)
    onnx.checker.check_model(model)
    problem = file_problem(model)
    if problem is not None:  # what OnnxModel.load would refuse must never be written
        raise RuntimeError(f"the ONNX export is not self-contained: {problem}")
    dest = Path(dest)
    write_bytes(dest, model.SerializeToString())
    return dest


# The child imports nothing but onnxruntime and numpy: it is what a user's machine has.
_CHILD = r"""
import json, sys
import numpy as np, onnxruntime as ort
model_path, images_path = sys.argv[-2:]
session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
names = json.loads(session.get_modelmeta().custom_metadata_map["tlstudio.json"])["class_names"]
held = np.load(images_path, allow_pickle=False)
images = [held[f"image{i}"] for i in range(len(held.files))]
probs = []
for img in images:
    probs.append(session.run(None, {"images": np.ascontiguousarray(img.transpose(2, 0, 1)[None])})[0][0].tolist())
    PROGRESS_LINE
print(json.dumps({"class_names": names, "probs": probs}))
""".replace("PROGRESS_LINE", CHILD_PROGRESS_LINE)

CHILD_FLAG = "--verify-onnx-child"


def run_child() -> int:
    """``tlstudio --verify-onnx-child MODEL IMAGES``."""
    return run_child_code(_CHILD, "<verify-onnx>")


def verify_onnx_in_fresh_process(
    model_path: str | os.PathLike, images: Sequence[np.ndarray], expected_probs: np.ndarray, min_agreement: float = 0.99, timeout: float = 600,
    stop: Optional[StopToken] = None, on_progress: Callable[[int], None] = lambda _done: None,
) -> VerifyResult:
    """Run ``model_path`` in a new process with onnxruntime on CPU on ``images`` (HxWx3 uint8, any sizes) and compare."""
    if len(images) == 0:
        return VerifyResult(True, 1.0, 0, 0.0, "no held images to compare")
    with tempfile.TemporaryDirectory(prefix="tlstudio-verify-") as tmp:
        held = Path(tmp) / "images.npz"
        np.savez(held, **{f"image{i}": np.ascontiguousarray(a, dtype=np.uint8) for i, a in enumerate(images)})
        return compare_in_child(child_command(_CHILD, CHILD_FLAG, model_path, held), expected_probs, min_agreement, timeout, stop, on_progress)

