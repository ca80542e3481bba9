"""The model tlstudio trains: a pretrained backbone and a new linear head."""

from __future__ import annotations

import torch
from torch import nn

from tlstudio.core.catalog.backbones import Backbone


class Classifier(nn.Module):
    """Backbone + new head: normalised images in, logits out."""

    def __init__(self, backbone: Backbone, num_classes: int, dropout: float):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(backbone.feature_dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


