"""A trained classifier rebuilt from its run folder, on the CPU, for looking at what it does.

Only ``config.json`` and ``checkpoints/best.pt`` are read, the checkpoint with
``torch.load(weights_only=True)``: a run folder may come from someone else, so nothing in it is unpickled.
``eval_crop`` reproduces the pixels training's evaluation fed the network (the decoded square of
``pixel_store`` and the centre crop of ``augment.eval_view``), so what is explained here is what was scored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.data.augment import normalize_batch
from tlstudio.core.catalog.classifier import Classifier
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.events import StopToken
from tlstudio.core.inference.batches import batched_outputs
from tlstudio.core.data.images import ImageRejected, load_rgb_array
from tlstudio.core.data.pixel_store import centre_square
from tlstudio.core.data.preprocess import Preprocessing, preprocessing_for
from tlstudio.core.runs.files import RunFiles


@dataclass
class TrainedModel:
    model: Classifier  # eval mode, CPU, float32
    spec: bb.BackboneSpec
    pre: Preprocessing
    classes: list[str]
    temperature: float = 1.0  # the run's calibration (engine.calibration): its probabilities are softmax(logits / T)

    def eval_crop(self, path: str | os.PathLike) -> np.ndarray:
        """The input_size x input_size x 3 uint8 crop training's evaluation fed the network for this file."""
        resize, size = self.pre.resize_size, self.pre.input_size
        try:
            pixels = load_rgb_array(path, short_side=resize)
        except ImageRejected as exc:
            raise UserError(f"'{path}' cannot be used as an image ({exc.reason}). Choose another picture.") from None
        except FileNotFoundError:
            raise UserError(f"'{path}' does not exist. Choose an image file.") from None
        return np.ascontiguousarray(centre_square(centre_square(pixels, resize), size))

    def network_input(self, crop: np.ndarray) -> torch.Tensor:
        """A 1x3xHxW normalised float32 batch from one HxWx3 uint8 crop."""
        if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 image, got shape {crop.shape} and dtype {crop.dtype}")
        batch = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).unsqueeze(0)
        return normalize_batch(batch, self.pre.mean, self.pre.std)

    def probabilities(self, crop: np.ndarray) -> np.ndarray:
        """Class probabilities (in ``classes`` order) for one crop as ``eval_crop`` returns it."""
        x = self.network_input(crop)
        ((logits, _span),) = batched_outputs(self.model, 1, 1, lambda _span: x, torch.device("cpu"), None, StopToken())
        return torch.softmax(logits.float() / self.temperature, dim=1)[0].numpy()


def load_trained_model(run_dir: str | os.PathLike) -> TrainedModel:
    """The best checkpoint of the run in ``run_dir``, rebuilt without downloading anything."""
    files = RunFiles(run_dir)
    if not files.config.is_file():
        raise UserError(
            f"'{files.root}' is not a training run: it has no config.json. "
            "Choose the folder of a finished run (runs/<id> in a project, or the --out folder of 'tlstudio train')."
        )
    if not files.best.is_file():
        raise UserError(
            f"the run in '{files.root}' has no trained model (checkpoints/best.pt is missing): "
            "it stopped before its first epoch ended. Train again or choose another run."
        )
    cfg = TrainConfig.from_json(files.config.read_text(encoding="utf-8"))
    try:
        checkpoint = files.load_checkpoint(files.best)
        classes = [str(c) for c in checkpoint["classes"]]
        state = checkpoint["model"]
    except Exception as exc:  # a damaged or foreign file: anything torch.load or the lookups raise
        raise UserError(f"'{files.best}' cannot be read as a tlstudio checkpoint ({type(exc).__name__}). Train the run again.") from None

    spec = bb.get_backbone(cfg.backbone)
    model = Classifier(build_backbone(spec.name, pretrained=False), len(classes), cfg.dropout)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError:
        raise UserError(
            f"'{files.best}' does not fit backbone '{spec.name}' with {len(classes)} classes as config.json describes. "
            "The run folder was changed after training; train again."
        ) from None
    model.float().eval().requires_grad_(False)
    calibration = (files.read_json(files.summary, {}) or {}).get("calibration") or {}
    temperature = float(calibration.get("temperature", 1.0))  # a run from before calibration: 1
    return TrainedModel(model, spec, preprocessing_for(spec, cfg.image_size), classes, temperature)
