"""Augmentation on the training device, and torch.compile for long GPU runs: both paths run here on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.synthetic import make_colour_dataset
from tlstudio.core.engine import feeds as training_loops
from tlstudio.core.data.augment import PRESETS, Augmenter
from tlstudio.core.config import TrainConfig
from tlstudio.core.engine.device import COMPILE_MIN_STEPS, compile_decision
from tlstudio.core.data.device_augment import augment_batch, draw_params
from tlstudio.core.engine.plan import IMAGES
from tlstudio.core.engine.trainer import Trainer


def squares(n: int = 6, size: int = 96) -> np.ndarray:
    """Photo-like squares that are not symmetric: a flip or a shifted crop changes them a lot."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = []
    for _ in range(n):
        fx, fy, phase = rng.uniform(0.02, 0.08, size=3)
        r = 127 + 100 * np.sin(fx * xx + phase) * (xx / size)
        g = 127 + 100 * np.cos(fy * yy) * (yy / size)
        b = 255 * (xx + 2 * yy) / (3 * size)
        out.append(np.stack([r, g, b], -1).clip(0, 255).astype(np.uint8))
    return np.stack(out)


def both_paths(preset: str, sq: np.ndarray, input_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    aug = Augmenter(preset, input_size, "bicubic")
    on_cpu = torch.stack([aug.train_view(s, np.random.default_rng(i)).float() for i, s in enumerate(sq)])
    params = torch.from_numpy(np.stack([draw_params(PRESETS[preset], sq.shape[1], input_size, np.random.default_rng(i)) for i in range(len(sq))]))
    on_device = augment_batch(torch.from_numpy(sq).permute(0, 3, 1, 2), params, input_size)
    return on_cpu, on_device


def test_without_augmentation_the_device_path_gives_the_evaluation_crop_exactly():
    on_cpu, on_device = both_paths("none", squares())
    assert torch.equal(on_cpu, on_device)


@pytest.mark.parametrize("preset", ["light", "strong"])
def test_a_seed_gives_the_same_crop_flip_and_jitter_on_either_path(preset):
    sq = squares()
    on_cpu, on_device = both_paths(preset, sq)
    assert on_device.shape == on_cpu.shape == (len(sq), 3, 64, 64)
    assert on_device.min() >= 0 and on_device.max() <= 255
    for a, b in zip(on_cpu, on_device):
        same = (a - b).abs().mean().item()
        assert same < 3.0  # resampling differs by a few grey levels
        assert (a - b.flip(-1)).abs().mean().item() > 4 * same  # a wrong flip or box would be far off


def test_each_image_is_augmented_alone_whatever_else_is_in_the_batch():
    sq = squares()
    params = torch.from_numpy(np.stack([draw_params(PRESETS["strong"], 96, 64, np.random.default_rng(i)) for i in range(len(sq))]))
    batch = augment_batch(torch.from_numpy(sq).permute(0, 3, 1, 2), params, 64)
    for i in range(len(sq)):
        alone = augment_batch(torch.from_numpy(sq[i : i + 1]).permute(0, 3, 1, 2), params[i : i + 1], 64)
        assert torch.allclose(alone[0], batch[i], atol=1e-3)


# ------------------------------------------------------------------ through the Trainer


@pytest.fixture(scope="module")
def colours(tmp_path_factory) -> Path:
    return make_colour_dataset(tmp_path_factory.mktemp("colours") / "colours", per_class=12)


def fine_tune(data: Path, **kw) -> TrainConfig:
    base = dict(
        data_dir=str(data), backbone="mobilenet_v3_small", freeze_depth="none", epochs=2, batch_size=8, image_size=48,
        augment="light", feature_cache=False, export=False, workers=0, lr=0.01, backbone_lr_scale=1.0,
    )
    return TrainConfig(**{**base, **kw})


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def test_a_run_with_augmentation_on_the_device_learns_and_is_reproducible(colours, tmp_path):
    cfg = fine_tune(colours, backbone="efficientnet_lite0", freeze_depth="8", device_augment=True, epochs=8, augment="light", image_size=64, lr=3e-3, backbone_lr_scale=0.1)
    first = Trainer(cfg, tmp_path / "a", cache_dir=tmp_path / "cache").run()
    again = Trainer(cfg, tmp_path / "b", cache_dir=tmp_path / "cache").run()
    assert first.plan.device_augment and first.plan.feed == IMAGES
    assert first.metrics["accuracy"] >= 0.9
    assert [h["train_loss"] for h in history(tmp_path / "a")] == pytest.approx([h["train_loss"] for h in history(tmp_path / "b")])
    assert again.metrics["confusion_matrix"] == first.metrics["confusion_matrix"]


def test_compile_is_used_for_long_gpu_runs_only():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert compile_decision(False, cuda, 10**6) == (False, "")
    use, why = compile_decision(True, cpu, 10**6)
    assert not use and "GPU only" in why
    use, why = compile_decision(True, cuda, COMPILE_MIN_STEPS - 1)
    assert not use and "too few" in why
    use, why = compile_decision(True, cuda, COMPILE_MIN_STEPS)
    assert use and "compiled" in why


def test_a_compiled_run_trains_exactly_like_the_plain_one(colours, tmp_path, monkeypatch):
    plain = Trainer(fine_tune(colours), tmp_path / "plain", cache_dir=tmp_path / "cache", pretrained=False).run()

    from tlstudio.core.engine import plan

    compiled_networks = []
    original = training_loops.ImageLoop.compile

    def spy(loop):
        original(loop)
        compiled_networks.append(loop.network)

    monkeypatch.setattr(plan, "compile_decision", lambda requested, device, steps: (requested, "compiled" if requested else ""))
    monkeypatch.setattr(training_loops, "COMPILE_BACKEND", "eager")  # graph capture without a C++ toolchain
    monkeypatch.setattr(training_loops.ImageLoop, "compile", spy)
    compiled = Trainer(fine_tune(colours, torch_compile=True), tmp_path / "compiled", cache_dir=tmp_path / "cache", pretrained=False).run()

    assert compiled.plan.compile and len(compiled_networks) == 1 and compiled_networks[0] is not None
    assert [h["train_loss"] for h in history(tmp_path / "compiled")] == pytest.approx([h["train_loss"] for h in history(tmp_path / "plain")], rel=1e-4)
    assert compiled.metrics["confusion_matrix"] == plain.metrics["confusion_matrix"]
