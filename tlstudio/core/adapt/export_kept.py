"""Export a run's kept model exactly as checkpoints/best.pt holds it (an adapted run's), verified in a fresh process.

Training's own export path (``tlstudio export RUN``: the trainer evaluating the run again) solves a
frozen run's head anew from its config, which would replace an adapted model by the unadapted one.
An adapted run is exported from its checkpoint instead: the same network, the same temperature.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tlstudio.core.data.augment import Augmenter
from tlstudio.core.data.index import DatasetIndex
from tlstudio.core.data.pixel_store import build_pixel_store
from tlstudio.core.engine import calibration
from tlstudio.core.engine.trainer import VERIFY_IMAGES
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, Message, PhaseStarted, Progress, StopToken, as_token, ignore_events
from tlstudio.core.inference import formats
from tlstudio.core.inference.trained_model import load_trained_model
from tlstudio.core.names import printable
from tlstudio.core.runs.files import RunFiles


def is_adapted(run_dir: str | Path) -> bool:
    summary = RunFiles(run_dir).read_json(RunFiles(run_dir).summary, {})
    return isinstance(summary, dict) and isinstance(summary.get("adaptation"), dict)


def export_kept_model(run_dir: str | Path, format_name: str = formats.TORCHSCRIPT, cache_dir: Optional[str | Path] = None,
                      on_event: EventCallback = ignore_events, stop: Optional[StopToken] = None) -> dict:
    """Write and verify the run's model file of ``format_name`` from its best.pt; its report is added to summary.json."""
    stop, files, fmt = as_token(stop), RunFiles(run_dir), formats.export_format(format_name)
    trained = load_trained_model(run_dir)
    summary = files.read_json(files.summary, None)
    dataset = files.read_json(files.dataset, None)
    if not isinstance(summary, dict) or not isinstance(dataset, dict):
        raise UserError(f"'{printable(files.root)}' lacks a readable summary.json or dataset.json: adapt the source run again.")
    index = DatasetIndex.from_dict(dataset)
    val_rows = [i for i, s in enumerate(index.samples) if s.split == "val"][:VERIFY_IMAGES]
    store = build_pixel_store(index.root, [index.samples[i] for i in val_rows], trained.pre.resize_size, cache_dir, on_event, stop)
    crops = Augmenter("none", trained.pre.input_size, trained.pre.interpolation)
    network = trained.model
    with torch.inference_mode():
        logits = np.concatenate([network(trained.network_input(np.asarray(crops.eval_view(store[i]).permute(1, 2, 0)))).numpy() for i in range(len(val_rows))]) \
            if val_rows else np.zeros((0, len(trained.classes)), dtype=np.float32)
    probs = calibration.scaled_probs(logits, trained.temperature)
    with files.lock():
        on_event(PhaseStarted("exporting", len(val_rows)))
        images = [np.asarray(store[i]) for i in range(len(val_rows))]
        report = write_verified(fmt, network, trained, summary, files.root, images, probs, on_event, stop)
        summary[fmt.summary_key] = report
        files.write_json(files.summary, summary)
    return report


def write_verified(fmt, network, trained, summary: dict, folder: Path, images: list, probs: np.ndarray, on_event: EventCallback, stop: StopToken) -> dict:
    """``folder``/<the format's file> of ``network``, kept only once a fresh process agreed with ``probs`` on ``images``."""
    unverified = fmt.unverified(folder)
    fmt.write(network, trained.pre, trained.classes, summary, unverified)
    try:
        result = fmt.verify(unverified, images, probs, stop=stop, on_progress=lambda done: on_event(Progress(done, len(images), "pictures checked")))
    except BaseException:
        unverified.unlink(missing_ok=True)
        raise
    if not result.ok:
        unverified.unlink(missing_ok=True)
        raise RuntimeError(f"the exported model disagreed with the run's kept model ({result.message})")
    dest = folder / fmt.file_name
    unverified.replace(dest)
    on_event(Message(f"Exported {dest}: a fresh {fmt.runtime} process agreed on {result.agreement:.1%} of {result.n} validation images."))
    return {"path": str(dest), "verified": True, "agreement": result.agreement, "images": result.n, "max_abs_diff": result.max_abs_diff, "message": result.message}
