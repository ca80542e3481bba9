"""The one safe way to open an image: training, evaluation, prediction and the scan all come through here.

Every image comes out fully decoded, upright (EXIF orientation applied) and in mode RGB, or is
refused with ``ImageRejected`` whose ``reason`` is one of the ``dataset_index`` reason constants.
Refused: empty files, files that are not images, truncated files (a full decode is required;
``LOAD_TRUNCATED_IMAGES`` is never set), decompression bombs, unreadable files, and colour
modes that cannot be converted. Nothing here touches Pillow's global settings.

Pillow's own warnings (a decompression bomb, corrupt EXIF data, a malformed MPO file) never reach
the terminal: each is refused or coped with here, and tlstudio says so in its own words (an image
over ``MAX_PIXELS`` is refused with its pixel count, see ``too_many_pixels_text``).
"""

from __future__ import annotations

import io
import os
import re
import threading
import warnings
from contextlib import contextmanager
from typing import Iterator, Optional

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

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


# Warnings raised from Pillow's modules (or attributed to this one by Pillow's stacklevel=2).
_PILLOW_MODULES = r"(PIL|tlstudio\.core\.data\.images)(\.|$)"
_QUIET = threading.Lock()
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")


class ImageRejected(Exception):
    """A file that cannot be used as an image; ``reason`` is a dataset_index reason constant.

    ``pixels``: the image's pixel count when it was refused for ``TOO_MANY_PIXELS`` (0 otherwise)."""

    def __init__(self, reason: str, detail: str = "", pixels: int = 0):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.pixels = pixels


def megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.1f} megapixels"


def too_many_pixels_text(name: str, pixels: int) -> str:
    """The user's sentence for an image refused as too large."""
    size = f"is {megapixels(pixels)}" if pixels else "has too many pixels"
    return (
        f"'{name}' {size}, above the {MAX_PIXELS / 1e6:.1f}-megapixel safety limit that keeps a file from exhausting memory "
        "(a possible decompression bomb); downscale it to use it."
    )


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
    with _pillow_quiet():  # the header and the metadata: where Pillow warns
        image = _open(data)
        orientation = _orientation(image)
    with image:
        width, height = image.size
        if width * height > MAX_PIXELS:
            detail = f"{width}x{height} pixels = {megapixels(width * height)}, above the {MAX_PIXELS / 1e6:.1f}-megapixel limit"
            raise ImageRejected(TOO_MANY_PIXELS, detail, width * height)
        if orientation in _ROTATED_ORIENTATIONS:
            width, height = height, width
        if min_side and image.format in _JPEG_FORMATS:
            image.draft(None, (min_side, min_side))
        _load(image)
        return _to_rgb(_upright(image, orientation)), (width, height)


@contextmanager
def _pillow_quiet() -> Iterator[None]:
    """Pillow's warnings inside are dropped: the caller refuses the image or copes with what was warned about.

    ``catch_warnings`` swaps the process's warning filters (Python 3.11 has no per-thread ones), so the
    scan's threads take turns: only the quick header and metadata reads run inside, the long pixel
    decode stays outside and parallel. The filters match Pillow's modules only, so another thread's
    warnings meanwhile are shown as usual."""
    with _QUIET, warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=_PILLOW_MODULES)
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        yield


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # over twice Pillow's limit
        pixels = _bomb_pixels(exc)
        raise ImageRejected(TOO_MANY_PIXELS, f"{megapixels(pixels)}, above the {MAX_PIXELS / 1e6:.1f}-megapixel limit" if pixels else str(exc), pixels) from None
    except UnidentifiedImageError:
        raise ImageRejected(NOT_AN_IMAGE, "no image format recognised") from None
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed header can make a plugin raise almost anything
        raise ImageRejected(NOT_AN_IMAGE, str(exc) or type(exc).__name__) from None


def _bomb_pixels(exc: Exception) -> int:
    """The pixel count Pillow's decompression-bomb message names (0 when it names none)."""
    found = _BOMB_PIXELS.search(str(exc))
    return int(found.group(1)) if found else 0


def _load(image: Image.Image) -> None:
    """Decode every pixel of the current (first) frame; ``verify()`` alone misses truncated data."""
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageRejected(TOO_MANY_PIXELS, str(exc), _bomb_pixels(exc)) from None
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


# What ``ImageOps.exif_transpose`` does for each EXIF orientation, from the orientation already read
# (reading the EXIF block a second time would warn a second time about a corrupt one).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _upright(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    try:
        return image if method is None else image.transpose(method)
    except (ValueError, OSError):  # a mode transpose does not know: the pixels stay usable as they are
        return image


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
