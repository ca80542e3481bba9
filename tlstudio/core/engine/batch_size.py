"""Automatic batch size: the largest batch that fits the GPU, found by halving on out-of-memory."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from tlstudio.core.errors import UserError

CPU_BATCH = 32
START = 256


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc).lower()


def largest_fitting_batch(try_batch: Callable[[int], None], start: int = START, release: Callable[[], None] | None = None) -> int:
    """Halve from ``start`` until ``try_batch(size)`` runs without running out of memory."""
    size = start
    while True:
        failed = False
        try:
            try_batch(size)
            return size
        except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
            if not is_out_of_memory(exc):
                raise
            failed = True
        # Free memory here, outside the except block: inside it the traceback still holds the tensors, which
        # reference counting frees once it is left. No gc.collect(): this runs on worker threads, and a
        # collection there can destroy Qt objects on the wrong thread (the GUI collects on its own thread).
        if failed:
            (release or _empty_cuda_cache)()
            if size == 1:
                raise UserError("the model does not fit in GPU memory even with a batch of one image: choose a smaller backbone or --image-size.")
            size //= 2


def _empty_cuda_cache() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def training_step_probe(model: nn.Module, input_size: int, num_classes: int, device: torch.device, amp, channels_last: bool) -> Callable[[int], None]:
    """One forward and backward pass at a given batch size on random data, then the gradients are dropped."""

    def try_batch(size: int) -> None:
        x = torch.randn(size, 3, input_size, input_size, device=device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, num_classes, (size,), device=device)
        try:
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                loss = nn.functional.cross_entropy(model(x).float(), y)
            loss.backward()
        finally:
            model.zero_grad(set_to_none=True)
            del x, y

    return try_batch


def choose_batch_size(model: nn.Module, input_size: int, num_classes: int, device: torch.device, amp, channels_last: bool, train_images: int) -> int:
    """The batch size for ``--batch-size auto``: fixed on the CPU, the largest that fits (up to the data set) on a GPU."""
    if device.type != "cuda":
        return CPU_BATCH
    start = 1 << max(0, min(START, train_images).bit_length() - 1)  # a power of two no larger than the data set
    return largest_fitting_batch(training_step_probe(model, input_size, num_classes, device, amp, channels_last), start)
