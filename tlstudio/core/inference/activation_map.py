""""Where did the model look?": class activation heat maps over the crop the network saw.

The method is HiResCAM (Draelos & Carin, 2020): the gradient of the explained class's log-probability
times the activation, element by element, summed over channels, positive part kept, scaled to [0, 1].
For a network that ends in global pooling and a linear head this shows exactly the places that raised
the class's score, which Grad-CAM's channel-averaged gradient does not guarantee. The log-probability
rather than the logit makes evidence that every class shares (background texture) cancel out.

It is taken at the last feature map of stride 16 (14x14 at 224 px), not the final 7x7 one, which is
too coarse to point at a small object: on a generated set where a small coloured patch decides the
class, Grad-CAM on the final map put the peak on the patch for about half the validation images and
this for all of them (tests/core/test_activation_map.py).

When a picture would mislead (a backbone without a convolutional feature map, a map under 3x3
cells, no positive evidence at all) the answer says so in a sentence instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.inference.trained_model import TrainedModel


MIN_GRID = 3  # a 2x2 map only names a quadrant: drawn over the image it would look like more than it is


@dataclass(frozen=True, eq=False)  # eq=False: comparing numpy arrays field by field has no single truth value
class ActivationMap:
    supported: bool
    reason: str  # when not supported: a plain sentence for the user; else ""
    image: np.ndarray  # the input_size x input_size x 3 uint8 crop the network saw
    heat: Optional[np.ndarray]  # same H x W, float32 in [0, 1]; None when not supported
    class_index: int  # the class explained (default: the predicted one)
    probs: np.ndarray
    grid: tuple[int, int] = (0, 0)  # rows x columns of the feature map explained; (0, 0) when not supported


def explain(trained: TrainedModel, path: str | os.PathLike, class_index: Optional[int] = None) -> ActivationMap:
    """The heat map for the image file at ``path``, on exactly the crop training's evaluation used."""
    return explain_crop(trained, trained.eval_crop(path), class_index)


def explain_crop(trained: TrainedModel, crop: np.ndarray, class_index: Optional[int] = None) -> ActivationMap:
    """The heat map for one input_size x input_size x 3 uint8 crop."""
    if not trained.spec.is_cnn:
        probs = trained.probabilities(crop)
        chosen = _chosen_class(trained, probs, class_index)
        reason = f"{trained.spec.title} has no convolutional feature map, so a heat map of where it looked would be misleading."
        return ActivationMap(False, reason, crop, None, chosen, probs)

    activation, logits = _explained_feature_map(trained, crop)
    probs = torch.softmax(logits.detach().float(), dim=1)[0].numpy()
    chosen = _chosen_class(trained, probs, class_index)
    if activation is None or min(activation.shape[2:]) < MIN_GRID:
        cells = "a single cell" if activation is None else f"only {activation.shape[2]}x{activation.shape[3]} cells"
        reason = (
            f"At {trained.pre.input_size} px the feature map of {trained.spec.title} is {cells}, too coarse "
            "to show where the model looked. Train at a larger image size to see one."
        )
        return ActivationMap(False, reason, crop, None, chosen, probs)

    (gradient,) = torch.autograd.grad(torch.log_softmax(logits.float(), dim=1)[0, chosen], activation)
    cam = (gradient * activation).sum(dim=1, keepdim=True).detach().float()
    cam = F.interpolate(cam, size=crop.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    heat = torch.relu(cam)
    top = float(heat.max())
    # Relative to the map's own scale: float noise a hair above zero must not be stretched into a picture.
    if not torch.isfinite(cam).all() or not top > 1e-6 * float(cam.abs().max()):
        reason = f"Nothing in this image counts as evidence for '{trained.classes[chosen]}', so there is no heat map to show."
        return ActivationMap(False, reason, crop, None, chosen, probs)
    grid = (int(activation.shape[2]), int(activation.shape[3]))
    return ActivationMap(True, "", crop, (heat / top).numpy().astype(np.float32), chosen, probs, grid)


def _chosen_class(trained: TrainedModel, probs: np.ndarray, class_index: Optional[int]) -> int:
    if class_index is None:
        return int(probs.argmax())
    if not 0 <= class_index < len(trained.classes):
        raise ValueError(f"class_index {class_index} is out of range for {len(trained.classes)} classes")
    return int(class_index)


def _explained_feature_map(trained: TrainedModel, crop: np.ndarray) -> tuple[Optional[torch.Tensor], torch.Tensor]:
    """(the last feature map of stride 16 or finer, with its graph to the logits, or None when there is none; the logits).

    Every module of every stage is hooked, so outputs arrive in execution order whatever a stage
    ends with (ConvNeXt's and MobileNet's last stages end in modules that pool). Each candidate map
    is handed on as a leaf of its own that requires grad: the graph to the logits then starts at the
    last one, the map explained, rather than at the stem; parameters may all be frozen, and
    ``autograd.grad`` leaves no ``.grad`` on any of them.
    """
    model = trained.model
    body = model.backbone.body
    modules = [bb.resolve(body, path) for stage in trained.spec.stages for path in stage.paths]
    min_rows, min_cols = crop.shape[0] // 16, crop.shape[1] // 16
    candidates: list[torch.Tensor] = []

    def capture(_module, _inputs, output):
        if isinstance(output, torch.Tensor) and output.ndim == 4:
            rows, cols = output.shape[2:]
            if rows * cols > 1 and rows >= min_rows and cols >= min_cols:  # a pooled 1x1 output is no map
                leaf = output.detach().requires_grad_(True)
                candidates.append(leaf)
                return leaf.clone()  # not the leaf itself: the next layer may work in place (ResNet's ReLU)
        return None

    modes = {m: m.training for m in model.modules()}
    handles = [m.register_forward_hook(capture) for m in modules if isinstance(m, nn.Module)]
    try:
        model.eval()
        with torch.inference_mode(False), torch.enable_grad():
            logits = model(trained.network_input(crop))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    return (candidates[-1] if candidates else None), logits


# Matplotlib's "inferno" (perceptually uniform, readable in grey and by colour-blind users),
# sampled every 8th of its 256 entries; linear interpolation stays within 1.5/255 of the full table.
_INFERNO = np.array(
    [
        [0, 0, 4], [4, 3, 18], [11, 7, 36], [21, 11, 55], [33, 12, 74], [47, 10, 91], [61, 9, 101], [74, 12, 107],
        [87, 16, 110], [100, 21, 110], [113, 25, 110], [125, 30, 109], [138, 34, 106], [151, 39, 102], [163, 44, 97],
        [176, 49, 91], [188, 55, 84], [199, 62, 76], [210, 70, 68], [219, 80, 59], [228, 90, 49], [235, 102, 40],
        [241, 115, 29], [246, 128, 19], [249, 142, 9], [251, 157, 7], [252, 172, 17], [251, 188, 33], [249, 203, 53],
        [245, 219, 76], [242, 234, 105], [243, 246, 138], [252, 255, 164],
    ],
    dtype=np.float32,
)
_INFERNO_AT = np.append(np.arange(0, 256, 8), 255) / 255.0


def heat_colours(heat: np.ndarray) -> np.ndarray:
    """H x W values in [0, 1] -> H x W x 3 uint8 inferno colours (dark = no evidence, pale yellow = most)."""
    values = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0.0, 1.0)
    channels = [np.interp(values, _INFERNO_AT, _INFERNO[:, c]) for c in range(3)]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The image with the heat map's colours blended over it: H x W x 3 uint8 RGB."""
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != heat.shape:
        raise ValueError(f"image {image.shape} and heat map {heat.shape} must be H x W x 3 and H x W of the same size")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * heat_colours(heat).astype(np.float32)
    return np.rint(blended).clip(0, 255).astype(np.uint8)
