"""What an ONNX file must be for tlstudio to run it: one self-contained file of standard operators, made by tlstudio.

An ONNX file is data, not a program, only while it stays so: external-data references would make
the runtime read other files named inside it, and an operator from another domain is code the
standard runtime does not define. Both are refused before any session is created, and so is a file
without the metadata a tlstudio export carries.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, Optional

import onnx
from onnx import AttributeProto, GraphProto, ModelProto, TensorProto

from tlstudio.core.errors import UserError
from tlstudio.core.inference import export

INFO_KEY = "tlstudio.json"  # the metadata_props entry: the same JSON as the TorchScript file's extra file
STANDARD_DOMAINS = ("", "ai.onnx")


def _graphs(graph: GraphProto) -> Iterator[GraphProto]:
    """``graph`` and every subgraph inside its nodes (If, Loop, Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            for sub in ([attr.g] if attr.type == AttributeProto.GRAPH else list(attr.graphs)):
                yield from _graphs(sub)


def _tensors(graph: GraphProto) -> Iterator[TensorProto]:
    """Every tensor stored in ``graph``: initializers, sparse initializers and node attributes."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attr in node.attribute:
            yield from ([attr.t] if attr.type == AttributeProto.TENSOR else list(attr.tensors))
            for sparse in [attr.sparse_tensor] if attr.type == AttributeProto.SPARSE_TENSOR else list(attr.sparse_tensors):
                yield from (sparse.values, sparse.indices)


def file_problem(model: ModelProto) -> Optional[str]:
    """Why ``model`` may not be run (external data, a non-standard operator domain, local functions), or None."""
    for opset in model.opset_import:
        if opset.domain not in STANDARD_DOMAINS:
            return f"it uses operators of the non-standard domain '{opset.domain}'"
    if len(model.functions):
        return "it defines its own functions (operators outside the standard ai.onnx domain)"
    for graph in _graphs(model.graph):
        for node in graph.node:
            if node.domain not in STANDARD_DOMAINS:
                return f"its node '{node.name or node.op_type}' is an operator of the non-standard domain '{node.domain}'"
        for tensor in _tensors(graph):
            if tensor.data_location == TensorProto.EXTERNAL or len(tensor.external_data):
                return f"its tensor '{tensor.name}' refers to data in another file (external data)"
    return None


def parse_model(data: bytes, path: Path) -> ModelProto:
    """The ModelProto in ``data``, never following external-data references."""
    why = "empty" if not data else ""
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf's decoder raises its own error types
        model, why = None, type(exc).__name__
    if model is not None and (model.ir_version == 0 or not model.HasField("graph")):
        why = why or "no graph"  # protobuf reads many short byte strings as an empty message
    if why:
        raise UserError(f"'{path}' is not an ONNX model file ({why}). Pass the model.onnx that tlstudio exported.")
    return model


def tlstudio_info(model: ModelProto, path: Path) -> dict:
    """The export's information (class names, preprocessing, training summary); refuses a file tlstudio did not make."""
    meta = {p.key: p.value for p in model.metadata_props}
    try:
        info = json.loads(meta[INFO_KEY])
        names, pre = info["class_names"], info["preprocessing"]
        ok = isinstance(names, list) and bool(names) and int(pre["resize_size"]) > 0
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise UserError(f"'{path}' is an ONNX file but not one tlstudio exported (its metadata has no valid {INFO_KEY}).")
    return info


def checked_model(data: bytes, path: Path) -> tuple[ModelProto, dict]:
    """The parsed file and its information, after every refusal above."""
    model = parse_model(data, path)
    problem = file_problem(model)
    if problem is not None:
        raise UserError(f"'{path}' is refused: {problem}. tlstudio only runs self-contained ONNX files of standard operators, as it exports them.")
    return model, tlstudio_info(model, path)


def read_model_bytes(path: str | os.PathLike) -> bytes:
    return export.read_model_bytes(path, "Pass the model.onnx that 'tlstudio export --format onnx' wrote.")


def read_onnx_info(path: str | os.PathLike) -> dict:
    """The information a tlstudio ONNX file carries (class names, preprocessing, training summary, opset)."""
    return checked_model(read_model_bytes(path), Path(path))[1]
