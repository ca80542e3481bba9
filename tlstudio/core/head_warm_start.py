"""Train the new head on frozen features before fine-tuning backbone stages ("linear probe, then fine-tune").

A randomly initialised head sends large, noisy gradients into the pretrained stages in
the first steps of a fine-tune and distorts their features (Kumar et al., 2022,
"Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution").
Fitting the head first on embeddings of the evaluation crop costs one inference pass
(cached on disk like every feature set) and a fraction of a second of head training.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from tlstudio.core.events import StopToken

WARM_START_EPOCHS = 10


def warm_start_head(
    head: nn.Module,
    train_feats: np.ndarray,
    train_labels: np.ndarray,
    criterion: nn.Module,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    device: torch.device,
    stop: StopToken,
    epochs: int = WARM_START_EPOCHS,
) -> None:
    x = torch.from_numpy(train_feats.astype(np.float32)).to(device)
    y = torch.from_numpy(train_labels).to(device)
    steps_per_epoch = max(1, math.ceil(len(y) / batch_size))
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    g = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=g).to(device)
        for step in range(steps_per_epoch):
            stop.check()
            idx = order[step * batch_size : (step + 1) * batch_size]
            loss = criterion(head(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
