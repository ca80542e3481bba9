"""Shifted copies of pictures: the generated "new domain" of the adaptation tests and benchmark.

``write_shifted(pictures, dest, shift)`` writes each picture (a path and its class name) as
``dest/<class>/<n>.jpg`` (quality 95, or the shift's own), changed by one fixed shift:

- ``none``: the picture as it is;
- ``grey``: luminance only, in three equal channels;
- ``colour-cast``: a warm cast (red x1.25, green x1.0, blue x0.7, plus 20 on red);
- ``blur``: Gaussian blur of radius 2 px at the picture's own size;
- ``jpeg``: JPEG quality 10;
- ``hue``: a stain-like hue rotation by 0.3 of the circle (HSV), saturation and value kept.

The class sub-folders are there to measure accuracy afterwards; an adaptation reads the folder
without them (it searches its sub-folders and never reads their names).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, ImageFilter

SHIFTS = ("none", "grey", "colour-cast", "blur", "jpeg", "hue")


def shifted(image: Image.Image, shift: str) -> Image.Image:
    """``image`` (RGB) with ``shift`` applied."""
    if shift in ("none", "jpeg"):
        return image
    if shift == "grey":
        return image.convert("L").convert("RGB")
    if shift == "colour-cast":
        x = np.asarray(image, dtype=np.float32) * np.array([1.25, 1.0, 0.7], dtype=np.float32) + np.array([20, 0, 0], dtype=np.float32)
        return Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))
    if shift == "blur":
        return image.filter(ImageFilter.GaussianBlur(2))
    if shift == "hue":
        hsv = np.asarray(image.convert("HSV")).copy()
        hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(0.3 * 256)) % 256).astype(np.uint8)
        return Image.fromarray(hsv, "HSV").convert("RGB")
    raise ValueError(f"unknown shift '{shift}': use one of {', '.join(SHIFTS)}")


def write_shifted(pictures: Iterable[tuple[Path, str]], dest: Path, shift: str) -> Path:
    """``dest/<class>/<n>.jpg`` for each ``(path, class name)``, shifted; returns ``dest``."""
    quality = 10 if shift == "jpeg" else 95
    for n, (path, class_name) in enumerate(pictures):
        folder = dest / class_name
        folder.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            shifted(im.convert("RGB"), shift).save(folder / f"{n:05d}.jpg", "JPEG", quality=quality)
    return dest
