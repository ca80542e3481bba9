"""The export formats of a run: what each writes, where in the run folder, and how it is checked.

TorchScript (``model.pt``) runs in plain PyTorch and is what training exports; ONNX (``model.onnx``)
runs without Python code and is made on request (``tlstudio export RUN --format onnx``, the Export
step). Each module is imported only when its format is used: onnx and onnxruntime stay unloaded
for a TorchScript export.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tlstudio.core.errors import UserError

TORCHSCRIPT, ONNX = "torchscript", "onnx"


def _write_torchscript(network, pre, classes, summary, dest) -> Path:
    from tlstudio.core.inference.export import export_torchscript

    return export_torchscript(network, pre, classes, summary, dest)


def _verify_torchscript(path, images, expected, **follow):
    from tlstudio.core.inference.export import verify_in_fresh_process

    return verify_in_fresh_process(path, images, expected, **follow)


def _write_onnx(network, pre, classes, summary, dest) -> Path:
    from tlstudio.core.inference.onnx_export import export_onnx

    return export_onnx(network, pre, classes, summary, dest)


def _verify_onnx(path, images, expected, **follow):
    from tlstudio.core.inference.onnx_export import verify_onnx_in_fresh_process

    return verify_onnx_in_fresh_process(path, images, expected, **follow)


@dataclass(frozen=True)
class ExportFormat:
    name: str  # as --format spells it
    title: str  # as the user reads it
    file_name: str  # in the run folder
    summary_key: str  # its verification report in summary.json
    runtime: str  # what the fresh process that checks it runs
    write: Callable  # (network, preprocessing, classes, summary, dest) -> Path
    verify: Callable[..., object]  # (path, images, expected probabilities, stop=, on_progress=) -> VerifyResult

    def unverified(self, run_root: Path) -> Path:
        """Where the file is written until a fresh process has agreed with the trained model."""
        name, dot, ext = self.file_name.rpartition(".")
        return Path(run_root) / f"{name}.unverified{dot}{ext}"


FORMATS = {
    TORCHSCRIPT: ExportFormat(TORCHSCRIPT, "TorchScript", "model.pt", "export", "PyTorch", _write_torchscript, _verify_torchscript),
    ONNX: ExportFormat(ONNX, "ONNX", "model.onnx", "export_onnx", "onnxruntime", _write_onnx, _verify_onnx),
}


def export_format(name: str) -> ExportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise UserError(f"unknown export format '{name}': use {' or '.join(FORMATS)}.") from None
