"""Feature caching for a frozen backbone: embed every image once per view, train the head on the embeddings.

Embeddings are stored as float16 in the cache folder. The key covers everything that
changes them: the decoded pixels (file identities and size), the backbone and its weights
file, the preprocessing, the augmentation preset, its number of views and the seed, and
the numeric precision. Change any of these and the cache misses; nothing stale is served.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from tlstudio.core import atomic
from tlstudio.core.augment import Augmenter, normalize_batch
from tlstudio.core.backbones import Backbone
from tlstudio.core.events import EventCallback, PhaseStarted, Progress, StopToken
from tlstudio.core.pixel_store import PixelStore
from tlstudio.core.preprocess import Preprocessing
from tlstudio.core.throttle import Throttle

FEATURES_VERSION = 1


@dataclass(frozen=True)
class FeatureRequest:
    backbone: str
    weights_id: str  # identifies the weights file (name, size, mtime) or "random:<seed>"
    preprocessing: Preprocessing
    augment: str
    views: int  # augmented views per training image (1 = the evaluation crop only)
    seed: int
    precision: str  # "fp32" | "bf16" | "fp16"

    def key(self, store_key: str, rows: Sequence[int]) -> str:
        h = hashlib.blake2b(digest_size=12)
        h.update(json.dumps({"v": FEATURES_VERSION, "store": store_key, **self.__dict__, "preprocessing": self.preprocessing.to_dict()}, sort_keys=True).encode())
        h.update(np.asarray(rows, dtype=np.int64).tobytes())
        return h.hexdigest()


def view_seed(seed: int, view: int, row: int) -> np.random.Generator:
    return np.random.default_rng([seed, view, row])


@torch.inference_mode()
def embed(
    backbone: Backbone,
    make_input: Callable[[int], torch.Tensor],
    count: int,
    preprocessing: Preprocessing,
    device: torch.device,
    batch_size: int,
    autocast_dtype: Optional[torch.dtype],
    channels_last: bool,
    on_step: Callable[[int], None],
    stop: StopToken,
) -> np.ndarray:
    """Run the frozen backbone over ``count`` inputs (``make_input(i)`` gives uint8 CHW) -> float16 (count, D)."""
    backbone.eval()
    out = np.empty((count, backbone.feature_dim), dtype=np.float16)
    for start in range(0, count, batch_size):
        stop.check()
        stop_i = min(count, start + batch_size)
        batch = torch.stack([make_input(i) for i in range(start, stop_i)]).to(device, non_blocking=True)
        x = normalize_batch(batch, preprocessing.mean, preprocessing.std, channels_last)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            feats = backbone(x)
        out[start:stop_i] = feats.float().cpu().numpy().astype(np.float16)
        on_step(stop_i - start)
    return out


@dataclass
class CachedFeatures:
    train: np.ndarray  # (views, n_train, D) float16
    val: np.ndarray  # (n_eval, D) float16: evaluation crops of the evaluation rows
    reused: bool
    path: Optional[Path]


def cached_features(
    request: FeatureRequest,
    backbone: Backbone,
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
) -> CachedFeatures:
    key = request.key(store.key, [*train_rows, -1, *eval_rows])
    path = Path(cache_dir) / "features" / f"{key}.npz" if cache_dir is not None else None
    if path is not None and path.exists():
        with np.load(path) as data:
            return CachedFeatures(data["train"], data["val"], reused=True, path=path)

    aug = Augmenter(request.augment, request.preprocessing.input_size, request.preprocessing.interpolation)
    total = request.views * len(train_rows) + len(eval_rows)
    on_event(PhaseStarted("caching features", total))
    throttle, done = Throttle(), [0]

    def on_step(n: int) -> None:
        done[0] += n
        if throttle.ready() or done[0] == total:
            on_event(Progress(done[0], total))

    def run(fn: Callable[[int], torch.Tensor], count: int) -> np.ndarray:
        return embed(backbone, fn, count, request.preprocessing, device, batch_size, autocast_dtype, channels_last, on_step, stop)

    views = []
    for v in range(request.views):
        if v == 0:  # the first view is always the plain evaluation crop
            views.append(run(lambda i: aug.eval_view(store[train_rows[i]]), len(train_rows)))
        else:
            views.append(run(lambda i, v=v: aug.train_view(store[train_rows[i]], view_seed(request.seed, v, train_rows[i])), len(train_rows)))
    train = np.stack(views)
    val = run(lambda i: aug.eval_view(store[eval_rows[i]]), len(eval_rows))
    if path is not None:
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, train=train, val=val)
    return CachedFeatures(train, val, reused=False, path=path)
