"""Decode once: every image decoded and resized a single time into a uint8 store.

Row ``i`` holds ``samples[i]`` as a ``size x size x 3`` uint8 square: the short side
resized to ``size`` (JPEG draft decoding, then PIL antialiasing), then centre-cropped.
``size`` is the evaluation resize of the preprocessing, so the evaluation centre crop
and every training crop come from these pixels and no epoch decodes a file again.

The store lives in the cache folder as a raw array plus a JSON description, keyed by
the identity of every file (path, size, mtime, content digest) and the size, so a
changed file, a new split or another size never gets stale pixels. When it fits the
RAM budget it is read into memory; otherwise it is memory-mapped.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tlstudio.core import atomic, disk
from tlstudio.core.data.index import Sample
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, PhaseStarted, Progress, StopToken, as_token, ignore_events
from tlstudio.core.throttle import Throttle

STORE_VERSION = 1


def store_key(samples: Sequence[Sample], size: int) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(f"pixels v{STORE_VERSION} size={size}\n".encode())
    for s in samples:
        h.update(f"{s.path}\0{s.size}\0{s.mtime_ns}\0{s.digest}\n".encode())
    return h.hexdigest()


def default_ram_budget() -> int:
    """A quarter of physical memory, at most 4 GiB."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return min(total // 4, 4 << 30)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


class PixelStore:
    """Read-only access to the decoded squares; cheap to pickle into DataLoader workers when it has a cache file."""

    def __init__(self, pixels: np.ndarray, key: str, size: int, path: Optional[Path] = None, built: bool = False):
        self.pixels = pixels
        self.key = key
        self.size = size
        self.path = path
        self.built = built  # True when this call decoded the images, False when it reused the cache

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def __getitem__(self, i: int) -> np.ndarray:
        return self.pixels[i]

    @property
    def nbytes(self) -> int:
        return int(self.pixels.nbytes)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        if self.path is not None:
            # DataLoader workers started by spawn or forkserver (Windows, macOS, Python >= 3.14 on Linux)
            # receive the Dataset by pickle: send the cache file's name, not a copy of every pixel. Each
            # worker maps the same file, and the OS shares its pages between the processes.
            state["pixels"] = tuple(self.pixels.shape)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if isinstance(self.pixels, tuple):
            self.pixels = np.memmap(self.path, dtype=np.uint8, mode="r", shape=self.pixels)


def _square(path: Path, size: int) -> np.ndarray:
    from tlstudio.core.data.images import ImageRejected, load_rgb_array

    try:
        arr = load_rgb_array(path, short_side=size)
    except ImageRejected as exc:
        raise UserError(f"'{path}' can no longer be read ({exc.reason}); it changed since the scan. Scan the folder again.") from None
    except FileNotFoundError:
        raise UserError(f"'{path}' has disappeared since the scan. Scan the folder again.") from None
    return centre_square(arr, size)


def centre_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size`` x ``size`` of an image whose short side is ``size`` (or more): what a store row holds."""
    h, w = pixels.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return pixels[top : top + size, left : left + size]


def _decode_into(out: np.ndarray, root: Path, samples: Sequence[Sample], size: int, on_event: EventCallback, stop: StopToken, workers: int) -> None:
    on_event(PhaseStarted("decoding", len(samples)))
    throttle = Throttle()
    done = 0

    def work(i: int) -> int:
        stop.check()
        out[i] = _square(root / samples[i].path, size)
        return i

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(work, i) for i in range(len(samples))]
        try:
            for fut in futures:
                fut.result()
                done += 1
                if throttle.ready() or done == len(samples):
                    on_event(Progress(done, len(samples)))
        finally:
            for fut in futures:
                fut.cancel()


def build_pixel_store(
    root: str | Path,
    samples: Sequence[Sample],
    size: int,
    cache_dir: Optional[str | Path] = None,
    on_event: EventCallback = ignore_events,
    stop: Optional[StopToken] = None,
    workers: Optional[int] = None,
    ram_budget: Optional[int] = None,
) -> PixelStore:
    """Decode ``samples`` once (or reuse the cached store) and return it."""
    stop = as_token(stop)
    workers = workers or default_workers()
    ram_budget = default_ram_budget() if ram_budget is None else ram_budget
    root = Path(root)
    key = store_key(samples, size)
    shape = (len(samples), size, size, 3)
    nbytes = int(np.prod(shape))

    if cache_dir is None:
        if nbytes > ram_budget:
            raise UserError(f"the decoded images need {nbytes / 2**30:.1f} GiB, more than memory allows; use a project folder so they can live on disk.")
        pixels = np.empty(shape, dtype=np.uint8)
        _decode_into(pixels, root, samples, size, on_event, stop, workers)
        return PixelStore(pixels, key, size, built=True)

    folder = Path(cache_dir) / "pixels"
    data_path, meta_path = folder / f"{key}.u8", folder / f"{key}.json"
    built = False
    if not (meta_path.exists() and data_path.exists() and data_path.stat().st_size == nbytes):
        _build_file(data_path, shape, lambda out: _decode_into(out, root, samples, size, on_event, stop, workers))
        try:
            atomic.write_json(meta_path, {"version": STORE_VERSION, "shape": list(shape), "root": str(root), "count": len(samples)})
        except BaseException:
            data_path.unlink(missing_ok=True)  # no description, no store: do not leave its space taken
            raise
        built = True
    if nbytes <= ram_budget:
        pixels = np.fromfile(data_path, dtype=np.uint8).reshape(shape)
    else:
        pixels = np.memmap(data_path, dtype=np.uint8, mode="r", shape=shape)
    return PixelStore(pixels, key, size, path=data_path, built=built)


def _build_file(data_path: Path, shape: tuple[int, ...], fill) -> None:
    """The raw store file (no header: the shape lives in the JSON beside it), written through a memory map by ``fill``.

    Its space is reserved before the map is written: pages of a map with no disk space behind them
    kill the process with SIGBUS, while a reservation that does not fit is a DiskError at once."""
    nbytes = int(np.prod(shape))
    with atomic.atomic_path(data_path, needed=nbytes) as tmp:
        disk.reserve(tmp, nbytes, shown=data_path)
        out = np.memmap(tmp, dtype=np.uint8, mode="r+", shape=shape)
        try:
            fill(out)
            out.flush()
        finally:
            del out


def describe(store: PixelStore) -> str:
    where = "memory" if not isinstance(store.pixels, np.memmap) else f"memory-mapped from {store.path}"
    return f"{len(store)} images at {store.size}x{store.size} px ({store.nbytes / 2**20:.0f} MiB, {where})"

