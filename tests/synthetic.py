"""Small generated image folders for fast tests: each class has its own colour and texture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200), "yellow": (220, 200, 40)}


def colour_image(rng: np.random.Generator, colour: tuple[int, int, int], size: int = 64) -> Image.Image:
    base = np.array(colour, dtype=np.float32)
    pixels = base + rng.normal(0, 25, size=(size, size, 3))
    y, x = rng.integers(0, size // 2, size=2)
    pixels[y : y + size // 3, x : x + size // 3] *= 0.6  # a darker patch at a random place
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_colour_dataset(root: Path, classes=("red", "green", "blue"), per_class: int = 12, size: int = 64, seed: int = 0, fmt: str = "JPEG") -> Path:
    """root/<class>/<n>.jpg, ``per_class`` images each."""
    rng = np.random.default_rng(seed)
    ext = ".jpg" if fmt == "JPEG" else ".png"
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            colour_image(rng, COLOURS[name], size).save(folder / f"{name}_{i:03d}{ext}", fmt)
    return root
