"""Crops and augmentation on decoded uint8 squares, driven by an explicit random generator.

The same code serves live training (a fresh seed per item and epoch) and the feature
cache (a fixed seed per view and item, so cached views are reproducible). Output stays
uint8 CHW at the network's input size; normalisation happens on the device, per batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.transforms.v2 import functional as TF

from tlstudio.core.config import AUGMENT_PRESETS


@dataclass(frozen=True)
class AugmentPreset:
    name: str
    scale: tuple[float, float]  # area fraction of the stored square kept by the random crop
    flip: bool
    jitter: float  # brightness/contrast/saturation strength; 0 = off
    views: int  # augmented views embedded once each by the feature cache

    @property
    def changes_nothing(self) -> bool:
        """No crop, flip or jitter: a training view is the evaluation crop."""
        return self.scale == (1.0, 1.0) and not self.flip and self.jitter == 0


PRESETS = {
    "none": AugmentPreset("none", (1.0, 1.0), False, 0.0, 1),
    "light": AugmentPreset("light", (0.55, 1.0), True, 0.0, 5),
    "strong": AugmentPreset("strong", (0.25, 1.0), True, 0.3, 10),
}
assert tuple(PRESETS) == AUGMENT_PRESETS


def _interpolation(name: str) -> TF.InterpolationMode:
    return TF.InterpolationMode.BICUBIC if name == "bicubic" else TF.InterpolationMode.BILINEAR


class Augmenter:
    def __init__(self, preset: str, input_size: int, interpolation: str = "bilinear"):
        self.preset = PRESETS[preset]
        self.input_size = input_size
        self.interpolation = _interpolation(interpolation)

    def eval_view(self, square: np.ndarray) -> torch.Tensor:
        """The evaluation input: the centre crop of the stored square."""
        size = square.shape[0]
        top = (size - self.input_size) // 2
        crop = square[top : top + self.input_size, top : top + self.input_size]
        return torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)

    def train_view(self, square: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        p = self.preset
        if p.changes_nothing:
            return self.eval_view(square)
        img = torch.from_numpy(np.ascontiguousarray(square)).permute(2, 0, 1)
        top, left, h, w = random_crop_box(square.shape[0], p.scale, rng)
        img = TF.resized_crop(img, top, left, h, w, [self.input_size, self.input_size], interpolation=self.interpolation, antialias=True)
        if p.flip and rng.random() < 0.5:
            img = TF.horizontal_flip(img)
        if p.jitter > 0:
            lo, hi = 1 - p.jitter, 1 + p.jitter
            img = TF.adjust_brightness(img, float(rng.uniform(lo, hi)))
            img = TF.adjust_contrast(img, float(rng.uniform(lo, hi)))
            img = TF.adjust_saturation(img, float(rng.uniform(lo, hi)))
        return img.contiguous()


def random_crop_box(size: int, scale: tuple[float, float], rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A RandomResizedCrop box (aspect ratio 3/4..4/3) inside a size x size square."""
    area = size * size
    for _ in range(10):
        target = area * rng.uniform(*scale)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w = int(round(math.sqrt(target * ratio)))
        h = int(round(math.sqrt(target / ratio)))
        if 0 < w <= size and 0 < h <= size:
            return int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1)), h, w
    return 0, 0, size, size


def normalize_batch(batch_u8: torch.Tensor, mean, std, channels_last: bool = False) -> torch.Tensor:
    """uint8 (or float in 0..255) NCHW on the device -> normalised float32."""
    x = batch_u8.float().div_(255.0)
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    x = x.sub_(m).div_(s)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x
