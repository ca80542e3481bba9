"""AdaBN (Li et al. 2016): BatchNorm running statistics re-estimated on pictures of the new domain.

Only BatchNorm buffers change: every BatchNorm layer runs in train mode with ``momentum=None`` (a
cumulative average over the batches), everything else in eval mode, with no gradient. Works at any
freeze depth: it re-estimates the statistics of every stage, frozen or not.

Which statistics the adapted model carries: pooled ones. Each batch holds as many of the run's training
pictures as new pictures, so the statistics are those of the two domains together, weighed equally. One
exported model then serves both the old and the new pictures (target-only statistics would move every
source picture's features away from what the head was fitted on).
"""

from __future__ import annotations

from typing import Callable, Iterable, Optional

import numpy as np
import torch
from torch import nn

from tlstudio.core.events import StopToken, as_token

BATCH = 32  # half old pictures, half new ones


def batchnorm_layers(network: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in network.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def reestimate_batchnorm(network: nn.Module, batches: Iterable[torch.Tensor], stop: Optional[StopToken] = None,
                         on_batch: Callable[[int], None] = lambda n: None) -> int:
    """Replace every BatchNorm layer's running statistics by the cumulative average over ``batches``; the pictures seen."""
    stop, layers = as_token(stop), batchnorm_layers(network)
    momenta = [bn.momentum for bn in layers]
    was_training = network.training
    network.eval()
    for bn in layers:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    seen = 0
    try:
        for x in batches:
            stop.check()
            network(x)
            seen += len(x)
            on_batch(len(x))
    finally:
        for bn, momentum in zip(layers, momenta):
            bn.momentum = momentum
        network.train(was_training)
        if not was_training:
            network.eval()
    return seen


def pooled_order(source_count: int, target_count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Equal numbers of old and new pictures (as many as the smaller domain has), each batch half of each.

    Returns the rows of each domain in batch order: batch k holds ``source[k*h:(k+1)*h]`` and ``target[k*h:(k+1)*h]``."""
    n = min(source_count, target_count)
    rng = np.random.default_rng([seed, 1])
    return rng.permutation(source_count)[:n], rng.permutation(target_count)[:n]


def pooled_batches(source_input: Callable[[int], torch.Tensor], target_input: Callable[[int], torch.Tensor], source_rows: np.ndarray,
                   target_rows: np.ndarray, prepare: Callable[[torch.Tensor], torch.Tensor], batch: int = BATCH) -> Iterable[torch.Tensor]:
    """Batches of ``batch`` inputs, half from each domain (``prepare`` normalises a uint8 batch onto the device)."""
    half = max(1, batch // 2)
    for start in range(0, len(source_rows), half):
        items = [source_input(int(i)) for i in source_rows[start : start + half]] + [target_input(int(i)) for i in target_rows[start : start + half]]
        if len(items) > 1:  # a BatchNorm in train mode needs two values per channel
            yield prepare(torch.stack(items))
