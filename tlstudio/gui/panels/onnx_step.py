"""The Export step's ONNX part: the run's verified model.onnx, made when the run has none, copied where the user wants.

No widgets here: ``export_onnx_copy`` is a job's work (plain callables in, plain data out), and the
snippet is text. Making the file is ``tlstudio export RUN --format onnx``: the kept epoch is
evaluated again and the file is kept only once a fresh onnxruntime process agreed with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from tlstudio.core.events import Cancelled
from tlstudio.core.runs.files import RunFiles
from tlstudio.core.inference.formats import FORMATS, ONNX

ONNX_FILE = FORMATS[ONNX].file_name
REPORT_KEY = FORMATS[ONNX].summary_key


def verified_report(run_root: Path, summary: dict) -> Optional[dict]:
    """The run's ONNX verification report, when its model.onnx is there and was verified; else None."""
    report = summary.get(REPORT_KEY) or {}
    return report if report.get("verified") and (Path(run_root) / ONNX_FILE).is_file() else None


def export_onnx_copy(run_root: Path, summary: dict, cache_dir: Path, dest: Path, on_event, stop) -> tuple[Path, dict, dict, Optional[dict]]:
    """``(dest, info, report, new_summary)``: the run's verified model.onnx copied to ``dest``.

    ``new_summary`` is the run's summary when the file had to be made (None when it was there)."""
    from tlstudio.core.atomic import write_bytes
    from tlstudio.core.inference.onnx_file import read_model_bytes, read_onnx_info

    from tlstudio.core.adapt.export_kept import export_kept_model, is_adapted

    report, new_summary = verified_report(run_root, summary), None
    if report is None and is_adapted(run_root):  # an adapted run's weights are exported as they are, never solved again
        report = export_kept_model(run_root, ONNX, cache_dir, on_event, stop)
        new_summary = RunFiles(run_root).read_json(RunFiles(run_root).summary, {})
    elif report is None:
        from tlstudio.core.engine.trainer import Trainer

        trainer = Trainer.resume(run_root, cache_dir=cache_dir, evaluate_only=True, export=True, export_format=ONNX)
        result = trainer.run(on_event, stop)
        if result.cancelled:
            raise Cancelled()
        new_summary = result.summary
        report = new_summary[REPORT_KEY]
    write_bytes(dest, read_model_bytes(Path(run_root) / ONNX_FILE))  # a full disk is a DiskError naming dest
    return dest, read_onnx_info(dest), report, new_summary
