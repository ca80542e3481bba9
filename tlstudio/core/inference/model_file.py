"""Open an exported model file of either format: the CLI's ``predict`` and the studio's Try it come here.

Its own module, not part of ``predict``: the ONNX model reuses ``predict``'s ``Prediction``, and
``predict`` importing it back would be an import cycle.
"""

from __future__ import annotations

import os


def open_model_file(path: str | os.PathLike, trust: bool = False):
    """An ``OnnxModel`` for a ``.onnx`` file (data, no code: no trust question), else an ``ExportedModel``.

    Both offer ``path``, ``info``, ``class_names``, ``resize_size``, ``predict_file`` and ``predict_paths``.
    A TorchScript file is a program: see ``ExportedModel.load`` for when it runs."""
    if os.fspath(path).lower().endswith(".onnx"):
        from tlstudio.core.inference.onnx_model import OnnxModel  # onnxruntime is only imported for ONNX files

        return OnnxModel.load(path)
    from tlstudio.core.inference.predict import ExportedModel

    return ExportedModel.load(path, trust=trust)
