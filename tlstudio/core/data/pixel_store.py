"""Decode once: every image decoded and resized a single time into a uint8 store.

Row ``i`` holds ``samples[i]`` as a ``size x size x 3`` uint8 square: the short side
resized to ``size`` (JPEG draft decoding, then PIL antialiasing), then centre-cropped.
``size`` is the evaluation resize of the preprocessing, so the evaluation centre crop
and every training crop come from these pixels and no epoch decodes a file again.

The store lives in the cache folder as a raw array plus a JSON description, keyed by
the identity of every file (path, size, mtime, content digest) and the size, so a
changed file, a new split or another size never gets stale pixels. When it fits the
RAM budget it is read into memory; otherwise it is memory-mapped.

Several processes of one run (torchrun) build the store together: each decodes its own block of
rows into one shared temporary file, and rank 0 puts it in place, so the file and its description
are those one process writes.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tlstudio.core import atomic, disk
from tlstudio.core.data.index import Sample
from tlstudio.core.distributed import SINGLE, Ranks, Together, from_main, unshared_cache
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
    ranks: Ranks = SINGLE,
) -> PixelStore:
    """Decode ``samples`` once (or reuse the cached store) and return it.

    With several ``ranks`` and a cache folder, every rank decodes its own block of rows into the one
    file; only rank 0 reports progress. Without a cache folder there is no file to share the work
    through, so each rank decodes every row itself."""
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
    description = {"version": STORE_VERSION, "shape": list(shape), "root": str(root), "count": len(samples)}
    built = not from_main(ranks, _cached(data_path, meta_path, nbytes))  # one decision: every rank takes the same branch
    if built and ranks.active:
        decode = lambda out, rows, events: _decode_into(out, root, [samples[i] for i in rows], size, events, stop, workers)  # noqa: E731
        _build_shared(data_path, meta_path, description, ranks, stop, decode, on_event)
    elif built:
        _build_file(data_path, shape, lambda out: _decode_into(out, root, samples, size, on_event, stop, workers))
        _describe(data_path, meta_path, description)
    elif ranks.active:
        with Together(ranks, stop):
            _must_see(data_path, nbytes, ranks)
    if nbytes <= ram_budget:
        pixels = np.fromfile(data_path, dtype=np.uint8).reshape(shape)
    else:
        pixels = np.memmap(data_path, dtype=np.uint8, mode="r", shape=shape)
    return PixelStore(pixels, key, size, path=data_path, built=built)


def _cached(data_path: Path, meta_path: Path, nbytes: int) -> bool:
    return meta_path.exists() and data_path.exists() and data_path.stat().st_size == nbytes


def _describe(data_path: Path, meta_path: Path, description: dict) -> None:
    try:
        atomic.write_json(meta_path, description)
    except BaseException:
        data_path.unlink(missing_ok=True)  # no description, no store: do not leave its space taken
        raise


def _build_shared(data_path: Path, meta_path: Path, description: dict, ranks: Ranks, stop: StopToken, decode, on_event: EventCallback) -> None:
    """The store file built by every rank at once, each decoding its own contiguous block of rows.

    Rank 0 makes the temporary file and reserves its space; every rank writes its rows through its
    own map; rank 0 then puts the file in place and writes its description. Each stage ends with
    every rank in ``Together``, so one rank's failure or stop ends them all, and rank 0 removes the
    temporary file then. The rows are the same bytes one process decodes, so is the file."""
    shape = tuple(description["shape"])
    nbytes = int(np.prod(shape))
    row_bytes = int(np.prod(shape[1:]))
    rows = ranks.batch_block(shape[0], 1)
    events = _scaled(on_event, len(rows), shape[0]) if ranks.is_main else ignore_events
    tmp: Optional[Path] = None
    try:
        with Together(ranks, stop):
            if ranks.is_main:
                tmp = _reserved_temporary(data_path, nbytes)
        tmp = data_path.with_name(from_main(ranks, tmp.name if tmp is not None else ""))  # each rank's own view of the folder
        with Together(ranks, stop):
            _must_see(tmp, nbytes, ranks, shown=data_path)
        with Together(ranks, stop):
            _fill_rows(tmp, data_path, rows, shape, row_bytes, lambda out: decode(out, rows, events))
        with Together(ranks, stop):
            if ranks.is_main:
                _put_in_place(tmp, data_path)
                _describe(data_path, meta_path, description)
    finally:
        if ranks.is_main and tmp is not None and tmp.exists():
            tmp.unlink()


def _reserved_temporary(data_path: Path, nbytes: int) -> Path:
    """A new temporary file beside ``data_path`` (the same name pattern as ``atomic``'s), its space reserved."""
    with disk.writing(data_path, nbytes):
        data_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = data_path.with_name(f".{data_path.name}.{secrets.token_hex(6)}.tmp")
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666))  # the umask applies, as for any new file
        try:
            disk.reserve(tmp, nbytes, shown=data_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return tmp


def _must_see(path: Path, nbytes: int, ranks: Ranks, shown: Optional[Path] = None) -> None:
    """Every rank reads and writes the same file: a cache folder local to one machine of a multi-machine run cannot be."""
    try:
        fd = os.open(path, os.O_RDONLY)  # an open, not a stat: network file systems check a file again at open
        try:
            seen = os.fstat(fd).st_size
        finally:
            os.close(fd)
    except FileNotFoundError:
        seen = -1
    if seen != nbytes:
        raise unshared_cache(ranks, shown or path, path.parent)


def _fill_rows(tmp: Path, data_path: Path, rows: range, shape: tuple[int, ...], row_bytes: int, fill) -> None:
    if not rows:
        return  # np.memmap cannot map nothing
    with disk.writing(data_path, int(np.prod(shape))):
        out = np.memmap(tmp, dtype=np.uint8, mode="r+", shape=(len(rows), *shape[1:]), offset=rows.start * row_bytes)
        try:
            fill(out)
            out.flush()
        finally:
            del out


def _put_in_place(tmp: Path, data_path: Path) -> None:
    with disk.writing(data_path):
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, data_path)


def _scaled(on_event: EventCallback, part: int, total: int) -> EventCallback:
    """Rank 0's events for its ``part`` of the rows, counted as if for all ``total``: the ranks go at about one pace."""

    def scaled(event) -> None:
        if isinstance(event, PhaseStarted):
            event = PhaseStarted(event.name, total)
        elif isinstance(event, Progress):
            event = Progress(total * event.done // max(part, 1), total, event.detail)
        on_event(event)

    return scaled


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

