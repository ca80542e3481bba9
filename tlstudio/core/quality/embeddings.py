"""The frozen features of every picture (all splits): what the checks of the data look at.

They come from the same decode-once pixel store and the same feature cache a frozen run uses,
with the same keys (``engine.features.FeatureRequest``: the store, the rows, the backbone and its
weights file, the preprocessing, the seed, the precision). A check therefore shares its work with
a later frozen run on the same folder, split and seed: the training pictures' evaluation crops and
the validation pictures' are the files that run reads, and the check reuses what a run made.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.data.index import DatasetIndex
from tlstudio.core.data.pixel_store import build_pixel_store
from tlstudio.core.data.preprocess import preprocessing_for
from tlstudio.core.engine.device import autocast_dtype, embedding_batch, precision_name, resolve_device
from tlstudio.core.engine.features import FeatureRequest, cached_features
from tlstudio.core.events import EventCallback, Message, StopToken, as_token, ignore_events

DEFAULT_BACKBONE = "efficientnet_lite0"
NO_AUGMENT = "none"  # only evaluation crops are embedded, whose cache key leaves the preset out
THUMB = 16  # side of the grey thumbnails
GREY = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass
class Embeddings:
    """One row per picture of ``index.samples``, in that order."""

    index: DatasetIndex
    features: np.ndarray  # (pictures, d) float32
    thumbnails: np.ndarray  # (pictures, THUMB * THUMB) float32: grey levels of the stored square, for near-duplicates
    backbone: str
    reused: bool  # every array came from an earlier check's or run's cache

    @property
    def labels(self) -> np.ndarray:
        return np.array([s.label for s in self.index.samples], dtype=np.int64)

    @property
    def splits(self) -> np.ndarray:
        return np.array([s.split for s in self.index.samples])

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.splits == split)


def weights_id(spec: bb.BackboneSpec) -> str:
    """The catalog weights' identity in a feature cache key: the Trainer's for a pretrained run."""
    from tlstudio.core.catalog.weights import file_weights_id, weights_file

    return file_weights_id(weights_file(spec))


def embed_dataset(
    index: DatasetIndex,
    cache_dir: Optional[str | Path],
    backbone: str = DEFAULT_BACKBONE,
    seed: int = 0,
    device: str = "auto",
    on_event: EventCallback = ignore_events,
    stop: Optional[StopToken] = None,
) -> Embeddings:
    """The pooled features of the evaluation crop of every picture of ``index``, through the caches."""
    stop = as_token(stop)
    spec = bb.get_backbone(backbone)
    pre = preprocessing_for(spec)
    dev = resolve_device(device)
    amp = autocast_dtype(dev, "auto")
    store = build_pixel_store(index.root, index.samples, pre.resize_size, cache_dir, on_event, stop)
    network = build_backbone(backbone, pretrained=True).eval().to(dev)
    if spec.is_cnn:
        network.to(memory_format=torch.channels_last)
    request = FeatureRequest(spec.name, weights_id(spec), pre, NO_AUGMENT, seed, precision_name(amp), "all")
    split_of = np.array([s.split for s in index.samples])
    train, val, test = ([int(i) for i in np.flatnonzero(split_of == name)] for name in ("train", "val", "test"))

    def run(views: int, train_rows: list[int], eval_rows: list[int]):
        return cached_features(
            request, network, views, store, train_rows, eval_rows, dev, embedding_batch(dev, 32), amp, spec.is_cnn, cache_dir, on_event, stop
        )

    # The split a frozen run makes: view 0 of the training rows, the evaluation crops of the validation rows.
    main = run(1 if train else 0, train, val)
    extra = run(0, [], test) if test else None
    features = np.zeros((len(index.samples), network.feature_dim), dtype=np.float32)
    if train:
        features[train] = main.train[0]
    if val:
        features[val] = main.val
    if extra is not None:
        features[test] = extra.val
    reused = main.fully_reused and (extra is None or extra.fully_reused)
    if reused:
        on_event(Message("Reused the cached features of the pictures from an earlier check or run."))
    return Embeddings(index, features, thumbnails(store.pixels), spec.name, reused)


def thumbnails(pixels: np.ndarray, side: int = THUMB, chunk: int = 256) -> np.ndarray:
    """(n, side * side) grey block means of the stored squares (n, s, s, 3) uint8."""
    n, size = pixels.shape[0], pixels.shape[1]
    block = size // side
    out = np.empty((n, side * side), dtype=np.float32)
    for start in range(0, n, chunk):
        part = np.asarray(pixels[start : start + chunk, : block * side, : block * side], dtype=np.float32) @ GREY
        out[start : start + len(part)] = part.reshape(len(part), side, block, side, block).mean((2, 4)).reshape(len(part), -1)
    return out
