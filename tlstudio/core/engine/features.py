"""The cache of what frozen layers compute: run them once per augmented view, then train on the result.

Two things are cached this way: the pooled features of a fully frozen backbone (only the
head trains), and the output of the frozen prefix of a partly frozen one (only the
trainable stages run each epoch; see ``tlstudio.core.catalog.frozen_prefix``).

Each view of the training rows and the evaluation crops of the validation rows is one
float16 ``.npy`` file in the cache folder, memory-mapped when read, so a later run with
more epochs reuses the views it shares with an earlier one. The key covers everything
that changes the output: the decoded pixels (file identities and size), the rows, the
backbone and its weights file, the layers run, the preprocessing, the augmentation preset
(augmented views only) and seed, the view and the numeric precision. Change any of these
and the cache misses; nothing stale is served.

Several processes of one run (torchrun) compute each file together: each rank runs its own block of
whole batches (so every row meets the same batch as in one process, and gets the same values), and
rank 0 joins the blocks in rank order into the file one process writes, under the same key.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch

from tlstudio.core import atomic, disk
from tlstudio.core.data.augment import Augmenter, normalize_batch
from tlstudio.core.distributed import SINGLE, Ranks, Together, from_main, unshared_cache
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, PhaseStarted, Progress, StopToken, ignore_events
from tlstudio.core.data.pixel_store import PixelStore
from tlstudio.core.data.preprocess import Preprocessing
from tlstudio.core.inference.batches import batched_outputs
from tlstudio.core.throttle import Throttle

FEATURES_VERSION = 2  # 2: one file per view; frozen-prefix outputs
EVAL = "eval"  # the view of the validation rows: their evaluation crop

Network = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class FeatureRequest:
    backbone: str
    weights_id: str  # identifies the weights file (name, size, mtime) or "random:<seed>"
    preprocessing: Preprocessing
    augment: str
    seed: int
    precision: str  # "fp32" | "bf16" | "fp16"
    layers: str = "all"  # what runs: "all" (pooled features) or the frozen prefix's chain items (ChainSplit.key)

    def key(self, store_key: str, rows: Sequence[int], view: Union[int, str]) -> str:
        fields = {**self.__dict__, "preprocessing": self.preprocessing.to_dict()}
        if view in (EVAL, 0):
            del fields["augment"]  # evaluation crops do not depend on it
        h = hashlib.blake2b(digest_size=12)
        h.update(json.dumps({"v": FEATURES_VERSION, "store": store_key, "view": view, **fields}, sort_keys=True).encode())
        h.update(np.asarray(rows, dtype=np.int64).tobytes())
        return h.hexdigest()


def view_seed(seed: int, view: int, row: int) -> np.random.Generator:
    return np.random.default_rng([seed, view, row])


def embed(
    network: Network,
    make_input: Callable[[int], torch.Tensor],
    count: int,
    preprocessing: Preprocessing,
    device: torch.device,
    batch_size: int,
    autocast_dtype: Optional[torch.dtype],
    channels_last: bool,
    allocate: Callable[[tuple[int, ...]], np.ndarray],
    on_step: Callable[[int], None],
    stop: StopToken,
) -> np.ndarray:
    """Run ``network`` over ``count`` inputs (``make_input(i)`` gives uint8 CHW) into ``allocate(shape)``, float16."""
    out = None

    def batch(span: range) -> torch.Tensor:
        x = torch.stack([make_input(i) for i in span]).to(device, non_blocking=True)
        return normalize_batch(x, preprocessing.mean, preprocessing.std, channels_last)

    for result, span in batched_outputs(network, count, batch_size, batch, device, autocast_dtype, stop):
        if out is None:
            out = allocate((count, *result.shape[1:]))
        out[span.start : span.stop] = result.clamp(-65504, 65504).cpu().numpy()  # float16's range: never an inf
        on_step(len(span))
    return out if out is not None else allocate((0,))


@dataclass
class CachedFeatures:
    train: list[np.ndarray]  # per view: (n_train, *shape) float16; view 0 is the evaluation crop
    val: np.ndarray  # (n_eval, *shape) float16: evaluation crops of the evaluation rows
    reused: int  # how many of the views + 1 arrays came from an earlier run

    @property
    def fully_reused(self) -> bool:
        return self.reused == len(self.train) + 1


def cached_features(
    request: FeatureRequest,
    network: Network,
    views: int,
    store: PixelStore,
    train_rows: Sequence[int],
    eval_rows: Sequence[int],
    device: torch.device,
    batch_size: int,
    autocast_dtype: Optional[torch.dtype],
    channels_last: bool,
    cache_dir: Optional[Path],
    on_event: EventCallback,
    stop: StopToken,
    ranks: Ranks = SINGLE,
) -> CachedFeatures:
    """``views`` views of the training rows and the evaluation crops of ``eval_rows``, each read from the
    cache when an earlier run made it, else computed by ``network`` (in the mode the caller left it) and saved.

    With several ``ranks`` and a cache folder, rank 0's cache decides what is reused, each rank computes
    its block of batches of the rest, and only rank 0 reports progress. Without a cache folder there is no
    file to share the work through, so each rank computes every array itself."""
    shared = ranks.active and cache_dir is not None
    if not ranks.is_main:
        on_event = ignore_events
    folder = Path(cache_dir) / "features" if cache_dir is not None else None
    aug = Augmenter(request.augment, request.preprocessing.input_size, request.preprocessing.interpolation)
    jobs: list[tuple[Optional[Path], Callable[[int], torch.Tensor], int]] = []
    for v in range(views):
        if v == 0:  # the first view is always the plain evaluation crop
            make = lambda i: aug.eval_view(store[train_rows[i]])  # noqa: E731
        else:
            make = lambda i, v=v: aug.train_view(store[train_rows[i]], view_seed(request.seed, v, train_rows[i]))  # noqa: E731
        jobs.append((_file(folder, request.key(store.key, train_rows, v)), make, len(train_rows)))
    jobs.append((_file(folder, request.key(store.key, eval_rows, EVAL)), lambda i: aug.eval_view(store[eval_rows[i]]), len(eval_rows)))

    arrays = [_load(path, count) for path, _, count in jobs]
    if shared:
        arrays = _reuse_as_main_does(arrays, [path for path, _, _ in jobs], ranks, stop)
    total = sum(count for (_, _, count), arr in zip(jobs, arrays) if arr is None)
    if total:
        on_event(PhaseStarted("caching features", total))
    throttle, done = Throttle(), [0]

    def on_step(n: int) -> None:
        done[0] += n
        if throttle.ready() or done[0] == total:
            on_event(Progress(done[0], total))

    reused = sum(arr is not None for arr in arrays)
    token = from_main(ranks, secrets.token_hex(6)) if shared else ""  # this run's part files, apart from any other run's
    for i, ((path, make, count), arr) in enumerate(zip(jobs, arrays)):
        if arr is None and shared:
            arrays[i] = _compute_shared(path, token, network, make, count, request.preprocessing, device, batch_size, autocast_dtype,
                                        channels_last, on_step, stop, ranks)
        elif arr is None:
            arrays[i] = _compute(path, network, make, count, request.preprocessing, device, batch_size, autocast_dtype, channels_last, on_step, stop)
    return CachedFeatures(arrays[:-1], arrays[-1], reused=reused)


def _file(folder: Optional[Path], key: str) -> Optional[Path]:
    return folder / f"{key}.npy" if folder is not None else None


def _load(path: Optional[Path], count: int) -> Optional[np.ndarray]:
    """A cached array, or None when there is none or it cannot be read (a damaged file is computed again)."""
    if path is None or not path.exists():
        return None
    try:
        arr = np.load(path, mmap_mode="r")  # never pickles: allow_pickle stays False
    except (OSError, ValueError):
        return None
    return arr if arr.dtype == np.float16 and arr.shape[:1] == (count,) else None


def _compute(path, network, make, count, preprocessing, device, batch_size, autocast_dtype, channels_last, on_step, stop) -> np.ndarray:
    def run(allocate) -> np.ndarray:
        return embed(network, make, count, preprocessing, device, batch_size, autocast_dtype, channels_last, allocate, on_step, stop)

    if path is None:
        return run(lambda shape: np.empty(shape, dtype=np.float16))
    with atomic.atomic_path(path) as tmp:
        # Written straight into a memory-mapped file: a large prefix cache never sits whole in RAM.
        arr = run(lambda shape: _mapped(tmp, shape, path))
        arr.flush()
        del arr
    return np.load(path, mmap_mode="r")


def _reuse_as_main_does(arrays: list[Optional[np.ndarray]], paths: list[Path], ranks: Ranks, stop: StopToken) -> list[Optional[np.ndarray]]:
    """The arrays rank 0 found in the cache, on every rank; the rest all ranks compute: one decision for all ranks."""
    found = from_main(ranks, [arr is not None for arr in arrays])
    with Together(ranks, stop):
        for path, mine, theirs in zip(paths, arrays, found):
            if theirs and mine is None:
                raise _not_shared(ranks, path)
    return [arr if theirs else None for arr, theirs in zip(arrays, found)]


def _not_shared(ranks: Ranks, path: Path) -> UserError:
    return unshared_cache(ranks, path, path.parent)


def _compute_shared(path: Path, token: str, network, make, count, preprocessing, device, batch_size, autocast_dtype, channels_last,
                    on_step, stop: StopToken, ranks: Ranks) -> np.ndarray:
    """One cache file computed by every rank: each writes its block of whole batches to a part file of its
    own, then rank 0 joins the parts in rank order into the file (atomically) and every rank maps it.

    The output's shape is known only after a first batch, so the parts are ``.npy`` files that carry it."""
    blocks = [replace(ranks, rank=r).batch_block(count, batch_size) for r in range(ranks.world)]
    parts = [path.with_name(f".{path.stem}.{token}.part{r}.tmp") for r in range(ranks.world)]
    mine, part = blocks[ranks.rank], parts[ranks.rank]
    step = _share_of_steps(on_step, len(mine), count)
    try:
        with Together(ranks, stop):
            if mine:
                with atomic.atomic_path(part) as tmp:
                    arr = embed(network, lambda i: make(mine.start + i), len(mine), preprocessing, device, batch_size, autocast_dtype,
                                channels_last, lambda shape: _mapped(tmp, shape, path), step, stop)
                    arr.flush()
                    del arr
            else:
                on_step(count)  # rank 0 counts the whole file from its own block; with none, the file is its at once
        with Together(ranks, stop):
            if ranks.is_main:
                _join_parts(path, [(p, b) for p, b in zip(parts, blocks) if b], count, ranks)
    finally:
        part.unlink(missing_ok=True)
    with Together(ranks, stop):
        try:
            joined = np.load(path, mmap_mode="r")
        except FileNotFoundError:
            raise _not_shared(ranks, path) from None
    return joined


def _share_of_steps(on_step: Callable[[int], None], part: int, whole: int) -> Callable[[int], None]:
    """``on_step`` told of ``whole`` rows as this rank goes through its ``part`` of them."""
    done, told = [0], [0]

    def step(n: int) -> None:
        done[0] += n
        now = whole * done[0] // part
        on_step(now - told[0])
        told[0] = now

    return step


def _join_parts(path: Path, parts: list[tuple[Path, range]], count: int, ranks: Ranks) -> None:
    """The parts, in rank order, as the one ``.npy`` file one process writes."""
    arrays = []
    for part, block in parts:
        try:
            arrays.append(np.load(part, mmap_mode="r"))
        except FileNotFoundError:
            raise _not_shared(ranks, part) from None
    trailing = arrays[0].shape[1:] if arrays else ()
    with atomic.atomic_path(path) as tmp:
        out = _mapped(tmp, (count, *trailing) if arrays else (0,), path)
        for arr, (_, block) in zip(arrays, parts):
            out[block.start : block.stop] = arr
        out.flush()
        del out


def _mapped(tmp: Path, shape: tuple[int, ...], dest: Path) -> np.ndarray:
    """A new .npy file mapped for writing, its space reserved first: a map with no disk behind it dies of SIGBUS."""
    arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
    disk.reserve(tmp, arr.offset + arr.nbytes, start=arr.offset, shown=dest)
    return arr
