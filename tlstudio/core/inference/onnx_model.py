"""A loaded ONNX export, run with onnxruntime on the CPU: the same interface as ``ExportedModel``.

An ONNX file of standard operators is data, so it needs no trust question; what could make it more
(external data, another operator domain) is refused by ``onnx_file.checked_model`` before a session
exists. Pictures are opened and batched by ``ExportedModel``'s own code: only the call that turns
a uint8 batch into probabilities differs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from tlstudio.core.errors import UserError
from tlstudio.core.inference.onnx_file import checked_model, read_model_bytes
from tlstudio.core.inference.predict import ExportedModel

INPUT = "images"  # onnx_export.INPUT; not imported from there, which would load the exporter (torch.onnx)


class OnnxSession:
    """A uint8 NCHW batch (torch tensor) -> probabilities (torch tensor), through onnxruntime."""

    def __init__(self, session: ort.InferenceSession):
        self.session = session

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        batch = np.ascontiguousarray(images.cpu().numpy(), dtype=np.uint8)
        return torch.from_numpy(self.session.run(None, {INPUT: batch})[0])


class OnnxModel(ExportedModel):
    """``path``, ``info``, ``class_names``, ``resize_size``, ``predict_file``, ``predict_paths``; ``module`` is an ``OnnxSession``."""

    @classmethod
    def load(cls, path: str | os.PathLike, trust: bool = False) -> "OnnxModel":
        """The ONNX file at ``path``. ``trust`` is accepted for ``ExportedModel.load``'s sake and changes nothing: an ONNX file runs no code."""
        path = Path(path)
        data = read_model_bytes(path)
        _, info = checked_model(data, path)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: onnxruntime's warnings are not the user's to act on
        try:
            # From the bytes, not the path: the session has no folder to resolve any file reference against.
            session = ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own error types for a damaged graph
            raise UserError(f"'{path}' could not be loaded by onnxruntime ({type(exc).__name__}). Export it again.") from None
        inputs = session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT or inputs[0].type != "tensor(uint8)":
            raise UserError(f"'{path}' does not take one uint8 input named '{INPUT}', as a tlstudio ONNX export does. Export it again.")
        return cls(path, info, OnnxSession(session))

    @property
    def class_names(self) -> list[str]:
        return [str(name) for name in self.info["class_names"]]

    @property
    def resize_size(self) -> int:
        return int(self.info["preprocessing"]["resize_size"])
