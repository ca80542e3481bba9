"""What a run does about imbalanced classes: no weighting, balanced class weights, or a prior correction.

A frozen head's cross-validation chooses among the three on the run's selection metric
(``tlstudio.core.engine.linear_head``), and a fine-tune trains with the weighting its head's
cross-validation chose. Only when there is no probe to ask (a run from scratch, or with the
feature cache off) does a rule decide: balanced weights once the largest class is more than
1.5 times the smallest.

The prior correction ("logit adjustment", Menon et al. 2021) adds the log class prior to the
logits inside the loss, so the network's own logits learn the prior-free part: the same as
subtracting the prior from an unweighted fit's logits afterwards.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

WEIGHTINGS = ("none", "balanced", "prior")
RULE_RATIO = 1.5  # the fallback rule: balanced weights beyond this ratio of largest to smallest class


def imbalance_ratio(labels: np.ndarray, num_classes: int) -> float:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    present = counts[counts > 0]
    return float(present.max() / present.min()) if present.size else 1.0


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per class, total / (classes x count): every class weighs the same in the loss (0 for an absent class)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    return np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 0.0)


def log_prior(labels: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    return np.log(np.maximum(counts, 0.5) / counts.sum())


def rule_weighting(requested: str, labels: np.ndarray, num_classes: int) -> str:
    """The weighting when no cross-validation can choose: the explicit setting, or the ratio rule for ``auto``."""
    if requested != "auto":
        return requested
    return "balanced" if imbalance_ratio(labels, num_classes) > RULE_RATIO else "none"


class PriorCorrectedLoss(nn.Module):
    """Cross-entropy of ``logits + log prior``: the network's logits learn what the class prior does not explain."""

    def __init__(self, log_prior_: torch.Tensor, label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("log_prior", log_prior_.float())
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits + self.log_prior, target, label_smoothing=self.label_smoothing)


def training_loss(weighting: str, labels: np.ndarray, num_classes: int, label_smoothing: float, device: Optional[torch.device] = None) -> nn.Module:
    """The loss a fine-tune trains with, for the chosen weighting."""
    if weighting == "balanced":
        weights = torch.tensor(balanced_class_weights(labels, num_classes), dtype=torch.float32, device=device)
        return nn.CrossEntropyLoss(weight=weights, label_smoothing=label_smoothing)
    if weighting == "prior":
        return PriorCorrectedLoss(torch.tensor(log_prior(labels, num_classes)), label_smoothing).to(device)
    return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
