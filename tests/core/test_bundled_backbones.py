"""The three bundled EfficientNet-Lites: their weights really are Google's ImageNet ones, and a frozen run on
real photographs (ants vs bees) reaches 95 % with each. The real-data tests skip when ../shared/datasets is absent."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog import weights
from tlstudio.core.catalog.build import build_backbone

LITES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
FILES = {
    "efficientnet_lite0": "efficientnet-lite0-57934424.pth",
    "efficientnet_lite1": "efficientnet-lite1-77cc7160.pth",
    "efficientnet_lite2": "efficientnet-lite2-9656183e.pth",
}


@pytest.mark.parametrize("name", LITES)
def test_each_lite_is_bundled_and_its_file_maps_in_order_onto_timm(name):
    import timm

    spec = bb.get_backbone(name)
    assert weights.availability(spec) == weights.BUNDLED and weights.weights_file(spec).name == FILES[name]
    raw = torch.load(weights.weights_file(spec), map_location="cpu", weights_only=True)
    mapped = weights.load_state_dict(spec)
    assert list(mapped) == list(timm.create_model(spec.architecture, pretrained=False).state_dict())
    assert len(mapped) == len(raw) == (296 if name.endswith("0") else 386)
    assert all(torch.equal(a, b) for a, b in zip(mapped.values(), raw.values()))


@pytest.mark.parametrize("name", LITES[1:])
def test_a_lite_builds_offline_with_trained_statistics(name):
    backbone = build_backbone(name, pretrained=True).eval()
    running_var = backbone.body.bn1.running_var
    assert not torch.allclose(running_var, torch.ones_like(running_var))
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 64, 64)).shape == (1, 1280)


def _imagenet_input(path: Path, spec: bb.BackboneSpec) -> torch.Tensor:
    """The spec's own evaluation preprocessing: bicubic short side resize_size, centre crop input_size, its mean/std."""
    image = Image.open(path).convert("RGB")
    scale = spec.resize_size / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    size = spec.input_size
    left, top = (image.width - size) // 2, (image.height - size) // 2
    pixels = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255
    mean, std = torch.tensor(spec.mean).view(3, 1, 1), torch.tensor(spec.std).view(3, 1, 1)
    return (torch.from_numpy(pixels).permute(2, 0, 1) - mean) / std


@pytest.mark.parametrize("name", LITES[1:])
def test_bundled_weights_recognise_ants_and_bees_as_imagenet_classes(name, hymenoptera):
    import timm

    spec = bb.get_backbone(name)
    model = timm.create_model(spec.architecture, pretrained=False)
    model.load_state_dict(weights.load_state_dict(spec))
    model.eval()
    for folder, imagenet_class in (("ants", 310), ("bees", 309)):
        files = sorted((hymenoptera / "val" / folder).glob("*.jpg"))[:8]
        with torch.no_grad():
            top5 = model(torch.stack([_imagenet_input(f, spec) for f in files])).topk(5).indices
        hits = sum(imagenet_class in row for row in top5.tolist())
        assert hits >= 7, f"{name} {folder}: ImageNet class {imagenet_class} in the top 5 for only {hits} of 8 images"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_frozen_run_with_lite1_and_lite2_reaches_95_percent_on_hymenoptera(hymenoptera, tmp_path):
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.engine.trainer import Trainer

    results = {}
    for name in LITES[1:]:  # Lite0's run with every default is tests/core/test_hymenoptera.py's
        # Frozen, the backbone's own input size and otherwise the defaults, but 3 cached augmented views per picture
        # (epochs 3) instead of 20 (the three take over 10 min on 2 busy CPU cores; with 1 view Lite0 gets 0.948) and
        # no model file (not what is tested here).
        cfg = TrainConfig(data_dir=str(hymenoptera), backbone=name, freeze_depth="all", epochs=3, device="cpu", export=False)
        started = time.perf_counter()
        result = Trainer(cfg, tmp_path / name, cache_dir=tmp_path / "cache").run()  # one cache: images decoded once
        results[name] = (result.summary["val_accuracy"], time.perf_counter() - started)
        assert result.summary["feature_cache"], name
    print("\n" + "\n".join(f"{name}: val accuracy {acc:.3f} in {s:.0f} s" for name, (acc, s) in results.items()))
    assert all(acc >= 0.95 for acc, _ in results.values()), results
