"""The Export step's ONNX part: the run's verified model.onnx, made when the run has none, copied where the user wants.

No widgets here: ``export_onnx_copy`` is a job's work (plain callables in, plain data out), and the
snippet is text. Making the file is ``tlstudio export RUN --format onnx``: the kept epoch is
evaluated again and the file is kept only once a fresh onnxruntime process agreed with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from tlstudio.core.events import Cancelled
from tlstudio.core.inference.formats import FORMATS, ONNX

ONNX_FILE = FORMATS[ONNX].file_name
REPORT_KEY = FORMATS[ONNX].summary_key

# The README's code too.
ONNX_SNIPPET = '''\
import json

import numpy as np
import onnxruntime as ort  # pip install onnxruntime pillow: no PyTorch, no tlstudio
from PIL import Image, ImageOps


def read_picture(path):
    """A picture as tlstudio reads it: upright (EXIF), RGB, transparent pixels on white; uint8, 1 x 3 x H x W."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode.startswith("I"):  # 16-bit grey: scaled to 8 bits (Pillow's own conversion clips it)
            im = Image.fromarray(np.clip(np.asarray(im) / 257, 0, 255).round().astype(np.uint8))
        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
            im = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im.convert("RGBA"))
        return np.ascontiguousarray(np.asarray(im.convert("RGB")).transpose(2, 0, 1)[None])


session = ort.InferenceSession("{name}", providers=["CPUExecutionProvider"])
info = json.loads(session.get_modelmeta().custom_metadata_map["tlstudio.json"])
probs = session.run(None, {{"images": read_picture("photo.jpg")}})[0][0]  # resizing and normalising happen inside
best = int(probs.argmax())
print(info["class_names"][best], f"{{float(probs[best]):.1%}}")
'''


def verified_report(run_root: Path, summary: dict) -> Optional[dict]:
    """The run's ONNX verification report, when its model.onnx is there and was verified; else None."""
    report = summary.get(REPORT_KEY) or {}
    return report if report.get("verified") and (Path(run_root) / ONNX_FILE).is_file() else None


def export_onnx_copy(run_root: Path, summary: dict, cache_dir: Path, dest: Path, on_event, stop) -> tuple[Path, dict, dict, Optional[dict]]:
    """``(dest, info, report, new_summary)``: the run's verified model.onnx copied to ``dest``.

    ``new_summary`` is the run's summary when the file had to be made (None when it was there)."""
    from tlstudio.core.atomic import write_bytes
    from tlstudio.core.inference.onnx_file import read_model_bytes, read_onnx_info

    report, new_summary = verified_report(run_root, summary), None
    if report is None:
        from tlstudio.core.engine.trainer import Trainer

        trainer = Trainer.resume(run_root, cache_dir=cache_dir, evaluate_only=True, export=True, export_format=ONNX)
        result = trainer.run(on_event, stop)
        if result.cancelled:
            raise Cancelled()
        new_summary = result.summary
        report = new_summary[REPORT_KEY]
    write_bytes(dest, read_model_bytes(Path(run_root) / ONNX_FILE))  # a full disk is a DiskError naming dest
    return dest, read_onnx_info(dest), report, new_summary
