"""A backbone ready to train: the catalog's architecture with its weights, classifier removed.

Here, not in ``backbones``, because it needs both the catalog and the weights (which need the catalog).
"""

from __future__ import annotations

from typing import Callable, Optional

from torch import nn

from tlstudio.core.catalog.backbones import Backbone, BackboneSpec, architecture, get_backbone, set_module
from tlstudio.core.catalog.weights import load_state_dict
from tlstudio.core.errors import UserError


def build_backbone(
    name: str,
    pretrained: bool = True,
    state_dict_loader: Optional[Callable[[BackboneSpec], dict]] = None,
) -> Backbone:
    """Build a backbone, with its ImageNet weights when ``pretrained``.

    Weights come from ``tlstudio.core.catalog.weights.load_state_dict`` (bundled package, torch hub
    cache or an imported file, always loaded safely) unless another loader is given.
    """
    spec = get_backbone(name)
    model = architecture(spec)
    if pretrained:
        state = (state_dict_loader or load_state_dict)(spec)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise UserError(
                f"the weights for backbone '{name}' do not fit its architecture "
                f"({len(missing)} missing, {len(unexpected)} unexpected tensors, e.g. {(missing or unexpected)[:3]}). "
                "Import the right file with 'tlstudio weights import FILE --backbone NAME'."
            )
    set_module(model, spec.classifier_path, nn.Identity())
    return Backbone(spec, model)
