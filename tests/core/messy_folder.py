"""Small hostile image files, and a messy data folder built from them, with what a scan must find in it."""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tlstudio.core.data.index import EMPTY, NOT_AN_IMAGE, TOO_MANY_PIXELS, TRUNCATED, UNREADABLE

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def noise(width: int, height: int, seed: int) -> Image.Image:
    """A distinct RGB picture: every seed gives different bytes."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def truncated_jpeg(path: Path, seed: int = 0) -> Path:
    data = jpeg_bytes(noise(96, 64, seed))
    path.write_bytes(data[: len(data) * 6 // 10])
    return path


def bomb_png(path: Path, width: int, height: int) -> Path:
    """A real, decodable 1-bit PNG of ``width`` x ``height`` black pixels: a few KB on disk, gigabytes in memory."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def cmyk_jpeg(path: Path) -> Path:
    Image.new("CMYK", (32, 24), (0, 255, 255, 0)).save(path, "JPEG", quality=95)  # red ink
    return path


def gray16_png(path: Path, value: int = 32768) -> Path:
    Image.fromarray(np.full((24, 32), value, dtype=np.uint16)).save(path, "PNG")
    return path


def half_transparent_png(path: Path) -> Path:
    """Left half fully transparent black, right half opaque blue."""
    pixels = np.zeros((24, 32, 4), dtype=np.uint8)
    pixels[:, 16:] = (*BLUE, 255)
    Image.fromarray(pixels, "RGBA").save(path, "PNG")
    return path


def animated_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (32, 24), colour) for colour in (RED, GREEN, BLUE)]
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def rotated_jpeg(path: Path, orientation: int = 6) -> Path:
    """A 64x32 landscape picture, red in its top-left quarter, stored with an EXIF orientation tag.

    Orientation 6 means "rotate 90 degrees clockwise to view": upright it is 32x64 (portrait), red top-right.
    Orientation 8 means "rotate 90 degrees counter-clockwise": upright it is red bottom-left.
    """
    image = Image.new("RGB", (64, 32), GREEN)
    image.paste(RED, (0, 0, 32, 16))
    exif = Image.Exif()
    exif[0x0112] = orientation
    image.save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


@dataclass
class MessyFolder:
    root: Path
    good: set[str] = field(default_factory=set)  # sample paths the scan must use
    bad: dict[str, str] = field(default_factory=dict)  # path -> reason the scan must report
    ignored: int = 0  # entries the scan must pass over
    conflict: tuple[str, ...] = ()  # identical files in two classes
    stray: tuple[str, ...] = ()  # images outside any class folder


def build_messy_folder(root: Path) -> MessyFolder:
    """root/<class>/..., three classes (one with a non-ASCII name), every kind of trouble a real folder has."""
    root.mkdir(parents=True, exist_ok=True)
    messy = MessyFolder(root)
    seed = iter(range(1000))

    def good(rel: str, write) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        messy.good.add(rel)

    def bad(rel: str, reason: str, write) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        messy.bad[rel] = reason

    def ignored(rel: str, write) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path)
        messy.ignored += 1

    def plain_jpeg(path: Path) -> None:
        path.write_bytes(jpeg_bytes(noise(48, 40, next(seed))))

    for name in ("cats", "dogs", "ñandú"):
        for i in range(3):
            good(f"{name}/{name}_{i}.jpg", plain_jpeg)

    # good files that need care
    good("cats/cmyk.jpg", cmyk_jpeg)
    good("cats/gray16.png", gray16_png)
    good("cats/nested/deeper/inner.png", lambda p: noise(20, 30, next(seed)).save(p, "PNG"))
    good("cats/bilevel.bmp", lambda p: noise(16, 16, next(seed)).convert("1").save(p, "BMP"))
    good("dogs/rgba.png", half_transparent_png)
    good("dogs/animated.gif", animated_gif)
    good("dogs/rotated.jpg", rotated_jpeg)
    good("dogs/UPPER.JPG", plain_jpeg)
    good("ñandú/pájaro ü 日本.jpg", plain_jpeg)
    good("ñandú/gray.tif", lambda p: noise(20, 20, next(seed)).convert("L").save(p, "TIFF"))
    good("ñandú/photo.webp", lambda p: noise(20, 20, next(seed)).save(p, "WEBP"))
    duplicate = jpeg_bytes(noise(40, 40, next(seed)))
    good("cats/same.jpg", lambda p: p.write_bytes(duplicate))
    good("dogs/same copy.jpg", lambda p: p.write_bytes(duplicate))
    messy.conflict = ("cats/same.jpg", "dogs/same copy.jpg")

    # a folder outside the data folder, reached through a link: followed
    outside = root.parent / f"{root.name}-outside"
    outside.mkdir(exist_ok=True)
    noise(24, 24, next(seed)).save(outside / "extra.png", "PNG")
    (root / "ñandú" / "linked").symlink_to(outside, target_is_directory=True)
    messy.good.add("ñandú/linked/extra.png")

    # bad files: every one reported with its reason
    bad("cats/empty.jpg", EMPTY, lambda p: p.write_bytes(b""))
    bad("cats/notes.jpg", NOT_AN_IMAGE, lambda p: p.write_text("these are my notes, not a picture\n"))
    bad("dogs/truncated.jpg", TRUNCATED, truncated_jpeg)
    bad("dogs/bomb.png", TOO_MANY_PIXELS, lambda p: bomb_png(p, 20_000, 10_000))
    bad("ñandú/gone.jpg", UNREADABLE, lambda p: p.symlink_to(root / "nowhere.jpg"))
    bad("ñandú/itself", UNREADABLE, lambda p: p.symlink_to(p.name))  # a link to itself

    # passed over on purpose
    ignored(".DS_Store", lambda p: p.write_bytes(b"\0\0\0\1Bud1"))
    ignored("cats/Thumbs.db", lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0"))
    ignored("cats/._cats_0.jpg", lambda p: p.write_bytes(b"\0\5\26\7"))  # macOS resource fork
    ignored("dogs/readme.txt", lambda p: p.write_text("dogs from the shelter\n"))
    ignored("dogs/.thumbnails/dogs_0.jpg", plain_jpeg)  # a hidden folder counts once
    ignored("__MACOSX/cats/._cats_1.jpg", lambda p: p.write_bytes(b"\0\5\26\7"))
    ignored("cats/nested/loop", lambda p: p.symlink_to("..", target_is_directory=True))  # back up into cats: a loop
    ignored("stray.jpg", plain_jpeg)  # not inside a class folder
    messy.stray = ("stray.jpg",)
    return messy


def make_tree(root: Path, counts: dict[str, int], seed: int = 0, size: int = 16) -> Path:
    """root/<rel folder>/<i>.png with ``counts[rel folder]`` distinct small images each."""
    rng_seed = seed * 100_000
    for folder, n in counts.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            rng_seed += 1
            noise(size, size, rng_seed).save(root / folder / f"{i:03d}.png", "PNG")
    return root


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0
