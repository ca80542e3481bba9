"""The one batched-inference pass: every prediction over many inputs (validation, the selection split,
frozen layers' outputs for the cache, test pictures) goes through ``batched_outputs``.

It owns what each such pass must get right the same way: no autograd (inference mode), autocast on
the device's precision, a stop check before every batch, and float32 outputs.
"""

from __future__ import annotations

from typing import Callable, Iterator, Optional

import torch

from tlstudio.core.events import StopToken


@torch.inference_mode()
def batched_outputs(
    network: Callable[[torch.Tensor], torch.Tensor],
    count: int,
    batch_size: int,
    make_batch: Callable[[range], torch.Tensor],
    device: torch.device,
    amp: Optional[torch.dtype],
    stop: StopToken,
) -> Iterator[tuple[torch.Tensor, range]]:
    """``(outputs, span)`` for consecutive spans of ``range(count)``; ``make_batch(span)`` builds the span's input on ``device``.

    A generator under ``torch.inference_mode`` as a decorator: the mode holds while a batch runs, not
    while the caller handles what it yielded."""
    for start in range(0, count, batch_size):
        stop.check()
        span = range(start, min(count, start + batch_size))
        x = make_batch(span)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = network(x)
        yield out.float(), span
