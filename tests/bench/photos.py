"""Photo-like JPEGs for the benchmarks, generated in parallel and reproducibly.

A photo-like image here is a smooth low-frequency scene (gradients and soft-edged
blobs) plus texture at several scales plus sensor noise. The texture is what makes a
JPEG of it as large, and as slow to decode, as a real photo (a 1600x1200 one at
quality 90 comes out at about 300-500 KB); a plain gradient would compress to a few KB
and decode unrealistically fast.

The texture fields are made once per worker process from a fixed seed and each image
takes a random window of one, so generation costs about one resize and one JPEG encode
per image, and the same (seed, index) gives the same file on any number of workers.
"""

from __future__ import annotations

import os
from multiprocessing import get_context
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageChops

_FIELDS: list[Image.Image] = []


def _texture_field(rng: np.random.Generator, w: int, h: int, strength: float) -> Image.Image:
    """Texture and sensor noise around 128: coarse blotches, mid and fine grain, per-pixel noise."""
    acc = np.zeros((h, w), np.float32)
    for div, amp in ((32, 14.0), (8, 9.0 * strength), (2, 5.0 * strength), (1, 3.0 * strength)):
        small = rng.standard_normal((h // div + 2, w // div + 2)).astype(np.float32)
        mode = Image.Resampling.BICUBIC if div > 1 else Image.Resampling.NEAREST
        up = np.asarray(Image.fromarray(small, mode="F").resize((small.shape[1] * div, small.shape[0] * div), mode))[:h, :w]
        acc += amp * up
    chroma = 2.0 * rng.standard_normal((h, w)).astype(np.float32)
    rgb = np.stack([acc, 0.9 * acc + chroma, 1.1 * acc], axis=-1)
    return Image.fromarray(np.clip(128 + rgb, 0, 255).astype(np.uint8))


def _init_worker(size: tuple[int, int]) -> None:
    w, h = size
    rng = np.random.default_rng(12345)
    _FIELDS[:] = [_texture_field(rng, w + w // 8, h + h // 8, s) for s in (0.5, 0.8, 1.1)]


def photo(rng: np.random.Generator, size: tuple[int, int], tint: Sequence[float]) -> Image.Image:
    """One photo-like RGB image of ``size`` (w, h); needs ``_init_worker(size)`` first."""
    w, h = size
    sw, sh = max(4, w // 8), max(4, h // 8)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    img = np.empty((sh, sw, 3), np.float32)
    for c in range(3):
        fx, fy = rng.uniform(0.5, 3) / sw, rng.uniform(0.5, 3) / sh
        img[..., c] = 128 + 60 * np.sin(2 * np.pi * (xx * fx + yy * fy) + rng.uniform(0, 6)) + tint[c]
    for _ in range(6):
        cx, cy, r = rng.uniform(0, sw), rng.uniform(0, sh), rng.uniform(0.03, 0.25) * sw
        img[((xx - cx) ** 2 + (yy - cy) ** 2) < r * r] += rng.uniform(-60, 60, 3)
    base = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).resize((w, h), Image.Resampling.BILINEAR)
    field = _FIELDS[int(rng.integers(len(_FIELDS)))]
    x0, y0 = int(rng.integers(0, field.width - w + 1)), int(rng.integers(0, field.height - h + 1))
    texture = field.crop((x0, y0, x0 + w, y0 + h))
    if rng.random() < 0.5:
        texture = texture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return ImageChops.add(base, texture, scale=1.0, offset=-128)


def _tints(classes: int) -> list[tuple[float, float, float]]:
    """A colour cast per class, so the classes are learnable."""
    angles = np.linspace(0, 2 * np.pi, classes, endpoint=False)
    return [(40 * np.cos(a), 40 * np.cos(a + 2.1), 40 * np.cos(a + 4.2)) for a in angles]


def _write_chunk(args) -> int:
    root, size, classes, quality, seed, indices = args
    tints = _tints(classes)
    total = 0
    for i in indices:
        rng = np.random.default_rng([seed, i])
        label = i % classes
        path = Path(root) / f"class_{label:02d}" / f"{i:06d}.jpg"
        photo(rng, size, tints[label]).save(path, quality=quality)
        total += path.stat().st_size
    return total


def make_photos(root: Path, count: int, size: tuple[int, int], classes: int = 2, quality: int = 90, seed: int = 0, workers: int | None = None) -> dict:
    """Write ``count`` JPEGs into ``root/class_NN/`` (round-robin over classes); returns {'files', 'bytes'}.

    A finished folder is marked and reused as is by a later call with the same settings.
    """
    root = Path(root)
    marker = root / f".complete-{count}-{size[0]}x{size[1]}-{classes}-{quality}-{seed}"
    if marker.exists():
        return {"files": count, "bytes": int(marker.read_text()), "reused": True}
    for c in range(classes):
        (root / f"class_{c:02d}").mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    chunk = max(1, min(500, count // (workers * 4) or 1))
    tasks = [(str(root), size, classes, quality, seed, range(s, min(count, s + chunk))) for s in range(0, count, chunk)]
    with get_context("fork" if os.name == "posix" else "spawn").Pool(workers, initializer=_init_worker, initargs=(size,)) as pool:
        total = sum(pool.imap_unordered(_write_chunk, tasks))
    marker.write_text(str(total))
    return {"files": count, "bytes": total, "reused": False}
