"""Augmentation of whole batches on the training device (the GPU): crop, flip and colour jitter.

DataLoader workers then only copy stored squares, and the per-image work of
``Augmenter.train_view`` runs as a few batched kernels. The random draws are the same as
``train_view``'s for the same generator, so a seed gives the same crop box, flip and
jitter on either path; only the resampling differs (roi_align averaging a bilinear grid
here, antialiased bicubic there) by a few grey levels.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import roi_align

from tlstudio.core.data.augment import AugmentPreset, random_crop_box

PARAMS = 8  # top, left, height, width, flip, brightness, contrast, saturation
_GREY = (0.2989, 0.587, 0.114)  # the weights torchvision's rgb_to_grayscale uses


def draw_params(preset: AugmentPreset, size: int, input_size: int, rng: np.random.Generator) -> np.ndarray:
    """One image's crop box, flip and jitter factors (float32, ``PARAMS`` values), drawn like ``train_view``."""
    params = np.array([0, 0, size, size, 0, 1, 1, 1], dtype=np.float32)
    if preset.changes_nothing:  # train_view gives the evaluation crop
        top = (size - input_size) // 2
        params[:4] = (top, top, input_size, input_size)
        return params
    params[:4] = random_crop_box(size, preset.scale, rng)
    if preset.flip:
        params[4] = rng.random() < 0.5
    if preset.jitter > 0:
        lo, hi = 1 - preset.jitter, 1 + preset.jitter
        params[5:8] = [rng.uniform(lo, hi) for _ in range(3)]
    return params


def _grey(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    return (_GREY[0] * r + _GREY[1] * g + _GREY[2] * b).unsqueeze(1)


@torch.no_grad()
def augment_batch(squares: torch.Tensor, params: torch.Tensor, input_size: int) -> torch.Tensor:
    """uint8 (N, 3, S, S) stored squares and (N, PARAMS) draws, on the device -> float (N, 3, s, s) in 0..255."""
    x = squares.float()
    top, left, height, width = params[:, 0], params[:, 1], params[:, 2], params[:, 3]
    index = torch.arange(len(x), device=x.device, dtype=x.dtype)
    boxes = torch.stack([index, left, top, left + width, top + height], 1)
    # sampling_ratio=-1: each output pixel averages a grid as dense as the shrink factor, which antialiases.
    out = roi_align(x, boxes, output_size=input_size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    flip = params[:, 4].view(-1, 1, 1, 1) > 0.5
    out = torch.where(flip, out.flip(-1), out)
    if bool((params[:, 5:8] != 1).any()):
        brightness, contrast, saturation = (params[:, i].view(-1, 1, 1, 1) for i in (5, 6, 7))
        out = (out * brightness).clamp_(0, 255)
        mean = _grey(out).mean(dim=(-3, -2, -1), keepdim=True)
        out = (contrast * out + (1 - contrast) * mean).clamp_(0, 255)
        out = (saturation * out + (1 - saturation) * _grey(out)).clamp_(0, 255)
    return out
