"""How long a run whose whole network trains would take, from a short trial on this computer.

A from-scratch baseline trains every layer, which on a CPU can be hundreds of times slower than the
frozen run it compares with; the user is told before it starts. The trial builds the run's network
(random weights: no weights file is needed), takes a few optimisation steps on random pictures of the
run's size and batch, and times them. It measures the gradient steps only: decoding the pictures (done
once) and checking the validation pictures each epoch come on top, so the figure is an "about".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import torch

from tlstudio.core.config import TrainConfig
from tlstudio.core.events import StopToken, as_token

TRIAL_STEPS = 2
DEFAULT_BATCH = 16  # the batch a trial of "automatic" uses
CPU_TRIAL_BATCH = 8


@dataclass(frozen=True)
class SpeedEstimate:
    images_per_s: float  # measured: gradient steps of the whole network, on this computer
    pictures: int  # training pictures per epoch (0: not known)
    epochs: int

    @property
    def seconds(self) -> Optional[float]:
        """The training steps of every epoch, or None when the number of pictures is not known."""
        if self.pictures <= 0 or self.images_per_s <= 0:
            return None
        return self.pictures * self.epochs / self.images_per_s


def measure_training_speed(config: TrainConfig, num_classes: int, pictures: int, stop: Optional[StopToken] = None) -> SpeedEstimate:
    """Images per second of ``config``'s network training end to end on its device (one warm-up step, then timed ones)."""
    from tlstudio.core.catalog.backbones import get_backbone
    from tlstudio.core.catalog.build import build_backbone
    from tlstudio.core.catalog.classifier import Classifier
    from tlstudio.core.engine.device import autocast_dtype, resolve_device

    stop = as_token(stop)
    device = resolve_device(config.device)
    spec = get_backbone(config.backbone)
    size = config.image_size or spec.input_size
    batch = config.batch_size or DEFAULT_BATCH
    if device.type == "cpu":  # a CPU's images/s hardly depends on the batch: a small one keeps the trial short
        batch = min(batch, CPU_TRIAL_BATCH)
    amp = autocast_dtype(device, config.precision)  # as the run would: mixed precision and channels_last where it uses them
    memory = torch.channels_last if spec.is_cnn else torch.contiguous_format
    torch.manual_seed(config.seed)
    model = Classifier(build_backbone(config.backbone, False, None), max(2, num_classes), config.dropout).to(device).train()
    model.to(memory_format=memory)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    x = torch.rand(batch, 3, size, size, device=device).contiguous(memory_format=memory)
    y = torch.randint(0, max(2, num_classes), (batch,), device=device)

    def step() -> None:
        stop.check()
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = torch.nn.functional.cross_entropy(model(x).float(), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    step()  # the first step pays for allocations and kernel choices
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(TRIAL_STEPS):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    return SpeedEstimate(TRIAL_STEPS * batch / max(1e-9, seconds), pictures, config.epochs)
