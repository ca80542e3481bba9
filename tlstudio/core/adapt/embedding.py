"""Pooled features of pictures through a backbone, the way training computed them.

The run's training views go through the feature cache (``engine.features``) with the request the
trainer made, so a frozen run's own cached features are reused; an adapted backbone gets a key of its
own (a digest of its tensors), so no stale feature is ever served.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn

from tlstudio.core.catalog.checksum import state_digest
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.augment import PRESETS, Augmenter, normalize_batch
from tlstudio.core.data.pixel_store import PixelStore
from tlstudio.core.data.preprocess import Preprocessing
from tlstudio.core.engine.device import embedding_batch, precision_name
from tlstudio.core.engine.features import CachedFeatures, FeatureRequest, cached_features, embed
from tlstudio.core.events import EventCallback, PhaseStarted, Progress, StopToken
from tlstudio.core.throttle import Throttle


@dataclass
class Embedder:
    """Where and how features are computed: one per adaptation."""

    config: TrainConfig
    backbone_name: str
    pre: Preprocessing
    device: torch.device
    amp: Optional[torch.dtype]
    channels_last: bool
    cache_dir: Optional[Path]
    on_event: EventCallback
    stop: StopToken

    @property
    def batch(self) -> int:
        return embedding_batch(self.device, self.config.batch_size or 32)

    @property
    def views(self) -> int:
        """The augmented views training cached per picture (the head is refitted on as many)."""
        return min(PRESETS[self.config.augment].views, self.config.epochs)

    def prepare(self, batch_u8: torch.Tensor) -> torch.Tensor:
        return normalize_batch(batch_u8.to(self.device), self.pre.mean, self.pre.std, self.channels_last)

    def eval_view(self, square: np.ndarray) -> torch.Tensor:
        return Augmenter(self.config.augment, self.pre.input_size, self.pre.interpolation).eval_view(square)

    def run_features(self, network: nn.Module, weights_id: str, store: PixelStore, train_rows: Sequence[int], val_rows: Sequence[int]) -> CachedFeatures:
        """The training views and validation crops of the run's pictures (cached)."""
        cfg = self.config
        request = FeatureRequest(self.backbone_name, weights_id, self.pre, cfg.augment, cfg.seed, precision_name(self.amp), "all")
        network.eval()
        return cached_features(request, network, self.views, store, train_rows, val_rows, self.device, self.batch, self.amp,
                               self.channels_last, self.cache_dir, self.on_event, self.stop)

    def squares(self, network: nn.Module, squares: np.ndarray, phase: str = "embedding new pictures") -> np.ndarray:
        """Features (float32) of the evaluation crops of ``squares`` (n, s, s, 3) uint8."""
        network.eval()
        total, done, throttle = len(squares), [0], Throttle()
        self.on_event(PhaseStarted(phase, total))

        def on_step(n: int) -> None:
            done[0] += n
            if throttle.ready() or done[0] == total:
                self.on_event(Progress(done[0], total))

        out = embed(network, lambda i: self.eval_view(squares[i]), total, self.pre, self.device, self.batch, self.amp, self.channels_last,
                    lambda shape: np.empty(shape, dtype=np.float16), on_step, self.stop)
        return np.asarray(out, dtype=np.float32)


def weights_id(config: TrainConfig, spec, backbone: nn.Module, pretrained: bool) -> str:
    """The trainer's key for a frozen run on the catalog's weights (its cache is reused); else a digest of the tensors.

    ``pretrained`` is what the run really used (its summary's), not what its config asked for."""
    if config.solved_head and pretrained and not config.start_from:
        from tlstudio.core.catalog.weights import file_weights_id, weights_file

        path = weights_file(spec)
        if path is not None and path.is_file():
            return file_weights_id(path)
    return f"run:{state_digest(backbone.state_dict())}"
