"""The automatic batch-size search, with out-of-memory errors injected (CI has no GPU)."""

import pytest
import torch

from tlstudio.core.engine.batch_size import CPU_BATCH, choose_batch_size, largest_fitting_batch
from tlstudio.core.errors import UserError


def fits_up_to(limit: int, tried: list, released: list):
    def try_batch(size: int) -> None:
        tried.append(size)
        if size > limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {size} images")

    return try_batch


def test_halves_until_the_batch_fits_and_releases_memory_after_each_failure():
    tried, released = [], []
    size = largest_fitting_batch(fits_up_to(48, tried, released), start=256, release=lambda: released.append(True))
    assert size == 32
    assert tried == [256, 128, 64, 32]
    assert len(released) == 3


def test_an_error_that_is_not_out_of_memory_is_not_swallowed():
    def broken(size):
        raise RuntimeError("shape mismatch")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        largest_fitting_batch(broken, start=8, release=lambda: None)


def test_nothing_fits_gives_advice():
    with pytest.raises(UserError, match="smaller backbone or --image-size"):
        largest_fitting_batch(fits_up_to(0, [], []), start=4, release=lambda: None)


def test_cpu_uses_a_fixed_batch():
    model = torch.nn.Linear(3, 2)
    assert choose_batch_size(model, 32, 2, torch.device("cpu"), None, False, 1000) == CPU_BATCH
