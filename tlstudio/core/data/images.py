"""The one safe way to open an image: training, evaluation, prediction and the scan all come through here.

Every image comes out fully decoded, upright (EXIF orientation applied) and in mode RGB, or is
refused with ``ImageRejected`` whose ``reason`` is one of the ``dataset_index`` reason constants.
Refused: empty files, files that are not images, truncated files (a full decode is required;
``LOAD_TRUNCATED_IMAGES`` is never set), decompression bombs, unreadable files, and colour
modes that cannot be converted. Nothing here touches Pillow's global settings or warning filters.
"""

from __future__ import annotations

import io
import os
from typing import Optional

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from tlstudio.core.data.index import EMPTY, NOT_AN_IMAGE, TOO_MANY_PIXELS, TRUNCATED, UNREADABLE, UNSUPPORTED_MODE

# Pillow's own default for Image.MAX_IMAGE_PIXELS, fixed here so a changed global cannot lift the guard.
MAX_PIXELS = 89_478_485

# Transparent pixels are composited on this one colour, everywhere, so training and prediction agree.
BACKGROUND = (255, 255, 255)

# Only plugins that decode in-process. Others (EPS runs Ghostscript) never see user files,
# whatever their extension says.
_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP")
_JPEG_FORMATS = ("JPEG", "MPO")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa")
_ROTATED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


class ImageRejected(Exception):
    """A file that cannot be used as an image; ``reason`` is a dataset_index reason constant."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def open_image(path: str | os.PathLike, min_side: Optional[int] = None) -> Image.Image:
    """The image at ``path``, fully loaded, upright, mode RGB.

    With ``min_side``, a JPEG is decoded at a reduced scale (``Image.draft``) whose short side is
    still at least ``min_side``. A missing file raises FileNotFoundError, as ``open`` does.
    """
    image, _ = _decode(_read(path), min_side)
    return image


def load_rgb_array(path: str | os.PathLike, short_side: int) -> np.ndarray:
    """HxWx3 uint8 pixels, resized so the short side is exactly ``short_side`` (aspect kept)."""
    image = open_image(path, min_side=short_side)
    width, height = image.size
    if width <= height:
        size = (short_side, max(1, round(height * short_side / width)))
    else:
        size = (max(1, round(width * short_side / height)), short_side)
    if size != image.size:
        image = image.resize(size, Image.Resampling.BILINEAR)  # Pillow's bilinear antialiases when shrinking
    return np.array(image, dtype=np.uint8)


def probe(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the upright image at full resolution, after a full decode proved it usable."""
    return probe_bytes(_read(path))


def probe_bytes(data: bytes) -> tuple[int, int]:
    """``probe`` for a file already read, so the scan can hash and validate the same bytes."""
    _, size = _decode(data, min_side=1)
    return size


def _read(path: str | os.PathLike) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ImageRejected(UNREADABLE, str(exc)) from None


def _decode(data: bytes, min_side: Optional[int]) -> tuple[Image.Image, tuple[int, int]]:
    """The RGB image and the upright full-resolution (width, height) of an encoded file."""
    if not data:
        raise ImageRejected(EMPTY)
    with _open(data) as image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageRejected(TOO_MANY_PIXELS, f"{width}x{height} pixels, more than {MAX_PIXELS}")
        if _orientation(image) in _ROTATED_ORIENTATIONS:
            width, height = height, width
        if min_side and image.format in _JPEG_FORMATS:
            image.draft(None, (min_side, min_side))
        _load(image)
        _exif_transpose(image)
        return _to_rgb(image), (width, height)


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # the warning when filters make it an error
        raise ImageRejected(TOO_MANY_PIXELS, str(exc)) from None
    except UnidentifiedImageError:
        raise ImageRejected(NOT_AN_IMAGE, "no image format recognised") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed header can make a plugin raise almost anything
        raise ImageRejected(NOT_AN_IMAGE, str(exc) or type(exc).__name__) from None


def _load(image: Image.Image) -> None:
    """Decode every pixel of the current (first) frame; ``verify()`` alone misses truncated data."""
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageRejected(TOO_MANY_PIXELS, str(exc)) from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt pixel data surfaces as OSError, SyntaxError, ValueError, ...
        detail = str(exc) or type(exc).__name__
        unsupported = any(word in detail for word in ("not available", "not supported", "unsupported", "unknown"))
        raise ImageRejected(NOT_AN_IMAGE if unsupported else TRUNCATED, detail) from None


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # noqa: BLE001 - broken metadata does not make the pixels unusable
        return 1


def _exif_transpose(image: Image.Image) -> None:
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:  # noqa: BLE001 - broken metadata does not make the pixels unusable
        pass


def _to_rgb(image: Image.Image) -> Image.Image:
    try:
        if image.mode.startswith("I;16") or image.mode in ("I", "F"):
            image = _high_depth_to_l(image)
        if image.mode in _ALPHA_MODES or "transparency" in image.info:
            return _flatten(image.convert("RGBA"))
        return image if image.mode == "RGB" else image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageRejected(UNSUPPORTED_MODE, f"mode {image.mode}: {exc}") from None


def _high_depth_to_l(image: Image.Image) -> Image.Image:
    """16-bit and float pixels scaled into 0-255 (Pillow's own conversion clips them, turning mid-gray white)."""
    values = np.asarray(image)
    if image.mode == "F":
        values = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if values.min() >= 0.0 and values.max() <= 1.0:
            scaled = values * 255.0
        else:
            scaled = _stretch(values)
    elif image.mode.startswith("I;16") or (values.min() >= 0 and values.max() <= 0xFFFF):
        scaled = values.astype(np.float64) / 257.0  # 65535 -> 255: the full 16-bit range maps onto 8 bits
    else:  # 32-bit integers beyond the 16-bit range
        scaled = _stretch(values.astype(np.float64))
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def _stretch(values: np.ndarray) -> np.ndarray:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values)
    return (values - low) * (255.0 / (high - low))


def _flatten(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGB", rgba.size, BACKGROUND)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background
