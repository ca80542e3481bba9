"""The export formats of a run: what each writes, where in the run folder, and how it is checked.

TorchScript (``model.pt``) runs in plain PyTorch and is what training exports; ONNX (``model.onnx``)
runs without Python code and is made on request (``tlstudio export RUN --format onnx``, the Export
step). Each module is imported only when its format is used: onnx and onnxruntime stay unloaded
for a TorchScript export.

``apply_threshold`` carries a new "not sure" threshold into a run's summary.json and every export it
has, each file rewritten atomically and checked to hold the very network that was verified.
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


def _threshold_torchscript(path, threshold, summary) -> Path:
    from tlstudio.core.inference.export import set_not_sure_below

    return set_not_sure_below(path, threshold, summary)


def _threshold_onnx(path, threshold, summary) -> Path:
    from tlstudio.core.inference.onnx_export import set_not_sure_below

    return set_not_sure_below(path, threshold, summary)


@dataclass(frozen=True)
class ExportFormat:
    name: str  # as --format spells it
    title: str  # as the user reads it
    file_name: str  # in the run folder
    summary_key: str  # its verification report in summary.json
    runtime: str  # what the fresh process that checks it runs
    write: Callable  # (network, preprocessing, classes, summary, dest) -> Path
    verify: Callable[..., object]  # (path, images, expected probabilities, stop=, on_progress=) -> VerifyResult
    set_threshold: Callable  # (path, threshold, summary) -> Path: the same network, another "not sure" threshold

    def unverified(self, run_root: Path) -> Path:
        """Where the file is written until a fresh process has agreed with the trained model."""
        name, dot, ext = self.file_name.rpartition(".")
        return Path(run_root) / f"{name}.unverified{dot}{ext}"


FORMATS = {
    TORCHSCRIPT: ExportFormat(TORCHSCRIPT, "TorchScript", "model.pt", "export", "PyTorch", _write_torchscript, _verify_torchscript, _threshold_torchscript),
    ONNX: ExportFormat(ONNX, "ONNX", "model.onnx", "export_onnx", "onnxruntime", _write_onnx, _verify_onnx, _threshold_onnx),
}


def export_format(name: str) -> ExportFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise UserError(f"unknown export format '{name}': use {' or '.join(FORMATS)}.") from None


def apply_threshold(run_dir: str | Path, threshold: float) -> list[Path]:
    """Answer "not sure" below ``threshold`` in the run's summary and in each of its exported files; the files rewritten."""
    from tlstudio.core.engine.calibration import check_threshold
    from tlstudio.core.runs.files import RunFiles

    threshold, files = check_threshold(threshold), RunFiles(run_dir)
    summary = files.read_json(files.summary, None)
    if not isinstance(summary, dict) or not isinstance(summary.get("calibration"), dict):
        raise UserError(f"'{files.root}' has no calibrated model (its summary.json has no calibration): train or export the run again first.")
    summary["calibration"]["threshold"] = threshold
    written = []
    with files.lock():
        for fmt in FORMATS.values():
            path = files.root / fmt.file_name
            if path.is_file():
                written.append(fmt.set_threshold(path, threshold, summary))
        files.write_json(files.summary, summary)
    return written
