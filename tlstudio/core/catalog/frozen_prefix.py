"""A partly frozen backbone as two runs of its chain: the frozen prefix and the trainable rest.

Frozen stages stay in eval mode (``backbones.set_train_mode``), so for a given input their
output never changes during training. When the backbone's forward is a plain chain of
modules (``BackboneSpec.chain``), that output can be computed once per augmented view,
cached, and each epoch then runs only the trainable stages on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from tlstudio.core.catalog.backbones import Backbone, BackboneSpec, resolve
from tlstudio.core.data.pixel_store import default_ram_budget

FLATTEN = "flatten"


def _within(path: str, stage_path: str) -> bool:
    return path == stage_path or path.startswith(stage_path + ".")


def stage_of(spec: BackboneSpec, item: str) -> Optional[int]:
    """The index of the stage a chain item belongs to; None for parameter-free glue (relu, pooling)."""
    for i, stage in enumerate(spec.stages):
        if any(_within(item, p) for p in stage.paths):
            return i
    return None


@dataclass(frozen=True)
class ChainSplit:
    prefix: tuple[str, ...]  # every frozen stage, and the glue before the first trainable one
    suffix: tuple[str, ...]  # the trainable stages to the pooled features

    @property
    def key(self) -> str:
        return ",".join(self.prefix)


def split_chain(spec: BackboneSpec, depth: int) -> Optional[ChainSplit]:
    """The split after the first ``depth`` stages; None when the backbone has no chain or nothing
    (or everything) is frozen."""
    if not spec.chain or not 0 < depth < len(spec.stages):
        return None
    for at, item in enumerate(spec.chain):
        stage = stage_of(spec, item)
        if stage is not None and stage >= depth:
            return ChainSplit(spec.chain[:at], spec.chain[at:])
    return None


def run_chain(backbone: Backbone, items: tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
    for item in items:
        x = torch.flatten(x, 1) if item == FLATTEN else resolve(backbone.body, item)(x)
    return x


def prefix_cache_fits(backbone: Backbone, split: ChainSplit, input_size: int, items: int, device: torch.device) -> tuple[bool, str]:
    """Whether caching the prefix's output for ``items`` inputs is worth it and fits; if not, why, for the user."""
    backbone.eval()
    with torch.inference_mode():
        shape = run_chain(backbone, split.prefix, torch.zeros(1, 3, input_size, input_size, device=device)).shape[1:]
    per_item = 2 * math.prod(shape)  # float16
    image = 3 * input_size * input_size  # the uint8 crop the prefix would otherwise run on
    if per_item > 4 * image:
        return False, f"their output ({per_item / 2**10:,.0f} KiB per image) is so large that reading it back would cost about as much as computing it."
    budget = default_ram_budget()
    if per_item * items > budget:
        return False, f"caching their output would take {per_item * items / 2**30:.1f} GiB, more than the {budget / 2**30:.1f} GiB allowed (a quarter of the memory, at most 4 GiB)."
    return True, ""
