"""Choosing the compute device and how to use it (precision, memory layout), described in words for the user."""

from __future__ import annotations

import os
from typing import Optional

import torch

from tlstudio.core.errors import UserError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA GPU is available on this machine. Use --device cpu (or auto).")
        dev = torch.device(name)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s), numbered from 0.")
        return dev
    raise UserError(f"--device must be auto, cpu, cuda or cuda:N, not '{name}'.")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name}, {props.total_memory / 2**30:.0f} GB"
    return f"CPU only ({os.cpu_count()} cores): training will be slow, frozen mode recommended"


def autocast_dtype(device: torch.device, precision: str) -> Optional[torch.dtype]:
    """Mixed precision on CUDA only: bf16 where the GPU supports it, else fp16 (which needs a GradScaler)."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "fp16":
        return torch.float16
    if precision == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def precision_name(dtype: Optional[torch.dtype]) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def default_loader_workers(device: torch.device) -> int:
    """On CUDA, workers keep the GPU fed; on CPU the cores are busier running the network itself."""
    if device.type != "cuda":
        return 0
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def embedding_batch(device: torch.device, train_batch: int) -> int:
    """Inference batch for the frozen backbone: small on the CPU, where cache-sized batches run fastest."""
    return 16 if device.type == "cpu" else max(train_batch, 128)


COMPILE_MIN_STEPS = 2000  # below this, the minute or more torch.compile takes is not won back


def compile_decision(requested: bool, device: torch.device, total_steps: int) -> tuple[bool, str]:
    """Whether to train through torch.compile, and what to tell the user ("" when it was not asked for)."""
    if not requested:
        return False, ""
    if device.type != "cuda":
        return False, "torch.compile is not used: it pays off on a GPU only."
    if total_steps < COMPILE_MIN_STEPS:
        return False, f"torch.compile is not used: {total_steps:,} training steps are too few to win back the time compiling takes (it needs {COMPILE_MIN_STEPS:,} or more)."
    return True, "The network is compiled with torch.compile: the first steps are slow while it compiles."


def fits_on_device(device: torch.device, nbytes: int) -> bool:
    """Whether cached float16 outputs of ``nbytes`` may live in GPU memory for the whole run (a quarter of
    what is free), so that batches are gathered there instead of copied over each step. Never on the CPU:
    there the memory-mapped cache already is the memory the network reads."""
    if device.type != "cuda":
        return False
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes <= free // 4
