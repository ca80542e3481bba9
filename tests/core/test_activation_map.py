"""Class activation maps: a model trained where only a small coloured patch decides the class must look at the patch."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.inference.activation_map import explain, explain_crop, heat_colours, overlay
from tlstudio.core.catalog.classifier import Classifier
from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.data.preprocess import preprocessing_for
from tlstudio.core.inference.trained_model import TrainedModel, load_trained_model
from tlstudio.core.engine.trainer import Trainer

PATCH_COLOURS = {"red": (210, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 210)}
IMAGE_PX = 128
PATCH_PX = 26
PER_CLASS = 30
IMAGE_SIZE = 224  # the network's input: the explained map is 14x14, cells of 16 px
MARGIN_PX = 8  # half a cell: a peak this close to the patch still points at it


def textured_background(rng: np.random.Generator) -> np.ndarray:
    """Grey, with smooth random blotches and pixel noise: texture that says nothing about the class."""
    coarse = rng.normal(0, 18, size=(8, 8, 1)).astype(np.float32)
    blotches = np.array(Image.fromarray(coarse[:, :, 0]).resize((IMAGE_PX, IMAGE_PX), Image.Resampling.BICUBIC))[:, :, None]
    pixels = 128 + blotches + rng.normal(0, 12, size=(IMAGE_PX, IMAGE_PX, 3))
    return pixels


def make_patch_dataset(root: Path, seed: int = 0) -> dict[str, tuple[int, int, int, int]]:
    """root/<colour>/<n>.png; the class is decided only by a small patch. Returns each file's patch box (top, left, bottom, right)."""
    rng = np.random.default_rng(seed)
    # Training's evaluation crops the centre 224/256 of each side: keep the whole patch inside what the network sees.
    lo = (IMAGE_PX - IMAGE_PX * 224 // 256) // 2 + 1
    boxes = {}
    for name, colour in PATCH_COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = textured_background(rng)
            top, left = (int(v) for v in rng.integers(lo, IMAGE_PX - lo - PATCH_PX, size=2))
            pixels[top : top + PATCH_PX, left : left + PATCH_PX] = np.array(colour) + rng.normal(0, 10, size=(PATCH_PX, PATCH_PX, 3))
            rel = f"{name}/{name}_{i:03d}.png"
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / rel)
            boxes[rel] = (top, left, top + PATCH_PX, left + PATCH_PX)
    return boxes


def box_in_crop(box: tuple[int, int, int, int], image_px: int, trained: TrainedModel) -> tuple[float, float, float, float]:
    """A square file's pixel box mapped through the evaluation resize, centre square and centre crop."""
    scale = trained.pre.resize_size / image_px
    offset = (trained.pre.resize_size - trained.pre.input_size) // 2
    return tuple(v * scale - offset for v in box)


@pytest.fixture(scope="module")
def patch_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("patches")
    data, run = tmp / "data", tmp / "run"
    boxes = make_patch_dataset(data)
    cfg = TrainConfig(
        data_dir=str(data), backbone="efficientnet_lite0", freeze_depth="all", epochs=10, batch_size=16,
        image_size=IMAGE_SIZE, augment="none", val_split=0.3, lr=3e-3, export=False, device="cpu",
    )
    started = time.perf_counter()
    result = Trainer(cfg, run, cache_dir=tmp / "cache").run()
    print(f"\ntrained in {time.perf_counter() - started:.1f} s, val accuracy {result.metrics['accuracy']:.2f}")
    val = [row for row in json.loads((run / "predictions.json").read_text()) if row["split"] == "val"]
    return data, run, boxes, val, result


def test_the_heat_map_peaks_on_the_patch_that_decides_the_class(patch_run):
    data, run, boxes, val, result = patch_run
    assert result.metrics["accuracy"] >= 0.8, "the patch colours must be learnable for this test to mean anything"
    trained = load_trained_model(run)
    inside = 0
    started = time.perf_counter()
    for row in val:
        cam = explain(trained, data / row["path"])
        assert cam.supported and cam.reason == ""
        assert cam.image.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and cam.image.dtype == np.uint8
        assert cam.heat.shape == (IMAGE_SIZE, IMAGE_SIZE) and cam.heat.dtype == np.float32
        assert cam.heat.min() >= 0 and cam.heat.max() == pytest.approx(1.0)
        assert cam.class_index == int(np.argmax(cam.probs)) == row["pred"]
        y, x = np.unravel_index(int(np.argmax(cam.heat)), cam.heat.shape)
        top, left, bottom, right = box_in_crop(boxes[row["path"]], IMAGE_PX, trained)
        inside += (top - MARGIN_PX <= y < bottom + MARGIN_PX) and (left - MARGIN_PX <= x < right + MARGIN_PX)
    fraction = inside / len(val)
    print(f"heat-map peak on the patch for {inside}/{len(val)} validation images ({fraction:.0%}); "
          f"{(time.perf_counter() - started) / len(val) * 1000:.0f} ms per map")
    assert fraction >= 0.85


def test_a_patch_moved_elsewhere_moves_the_heat_map(patch_run):
    data, run, boxes, val, _ = patch_run
    trained = load_trained_model(run)
    crop = trained.eval_crop(data / val[0]["path"])
    top, left, bottom, right = (int(round(v)) for v in box_in_crop(boxes[val[0]["path"]], IMAGE_PX, trained))
    patch = crop[top:bottom, left:right].copy()
    moved = np.full_like(crop, 128)
    moved[-patch.shape[0] - 8 : -8, 8 : 8 + patch.shape[1]] = patch  # bottom-left corner
    cam = explain_crop(trained, moved)
    y, x = np.unravel_index(int(np.argmax(cam.heat)), cam.heat.shape)
    assert y >= IMAGE_SIZE // 2 and x < IMAGE_SIZE // 2


def test_loaded_model_reproduces_the_probabilities_training_reported(patch_run):
    data, run, _, val, _ = patch_run
    trained = load_trained_model(run)
    assert trained.classes == sorted(PATCH_COLOURS)
    assert not trained.model.training and all(not p.requires_grad for p in trained.model.parameters())
    for row in val:
        # Training scored cached float16 features; the rebuilt float32 model must agree within that rounding.
        np.testing.assert_allclose(trained.probabilities(trained.eval_crop(data / row["path"])), row["probs"], atol=2e-3)


def test_explaining_leaves_no_hooks_grads_or_mode_changes_behind(patch_run):
    data, run, _, val, _ = patch_run
    trained = load_trained_model(run)
    trained.model.requires_grad_(True)  # even trainable parameters must not collect gradients
    cam = explain(trained, data / val[0]["path"], class_index=1)
    assert cam.supported and cam.class_index == 1
    body = trained.model.backbone.body
    for stage in trained.spec.stages:
        for path in stage.paths:
            module = bb.resolve(body, path)
            assert not module._forward_hooks and not module._backward_hooks
    assert all(p.grad is None for p in trained.model.parameters())
    assert not any(m.training for m in trained.model.modules())
    with pytest.raises(ValueError):
        explain(trained, data / val[0]["path"], class_index=len(trained.classes))


def test_zero_evidence_is_reported_not_drawn(patch_run):
    data, run, _, val, _ = patch_run
    trained = load_trained_model(run)
    with torch.no_grad():
        trained.model.head[1].weight.zero_()
    cam = explain(trained, data / val[0]["path"])
    assert not cam.supported and cam.heat is None
    assert "no heat map" in cam.reason


def test_vit_says_why_it_has_no_heat_map_and_touches_nothing():
    spec = bb.get_backbone("vit_b_16")
    model = Classifier(build_backbone(spec.name, pretrained=False), 2, 0.0).eval()
    trained = TrainedModel(model, spec, preprocessing_for(spec), ["a", "b"])
    crop = np.random.default_rng(0).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)

    cam = explain_crop(trained, crop)

    assert not cam.supported and cam.heat is None
    assert cam.reason == "ViT-B/16 has no convolutional feature map, so a heat map of where it looked would be misleading."
    assert cam.probs.shape == (2,) and cam.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert cam.class_index == int(cam.probs.argmax())
    target = bb.resolve(model.backbone.body, spec.stages[-1].paths[-1])
    assert not target._forward_hooks and not target._backward_hooks
    assert all(p.grad is None for p in model.parameters())


def test_overlay_blends_a_colour_map_into_the_image():
    image = np.full((20, 30, 3), 100, dtype=np.uint8)
    heat = np.tile(np.linspace(0, 1, 30, dtype=np.float32), (20, 1))
    out = overlay(image, heat)
    assert out.shape == (20, 30, 3) and out.dtype == np.uint8
    assert out[0, -1].sum() > out[0, 0].sum()  # hot is brighter than cold
    np.testing.assert_array_equal(overlay(image, heat, alpha=0.0), image)
    colours = heat_colours(np.array([[0.0, 1.0]]))
    assert colours[0, 0].tolist() == [0, 0, 4] and colours[0, 1].tolist() == [252, 255, 164]
    assert np.all(np.diff(heat_colours(heat)[0].astype(int).sum(axis=1)) >= 0)  # brightness rises with heat
    with pytest.raises(ValueError):
        overlay(image, heat[:, :10])


def test_a_missing_run_or_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no config.json"):
        load_trained_model(tmp_path / "nowhere")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(TrainConfig().to_json())
    with pytest.raises(UserError, match="best.pt is missing"):
        load_trained_model(tmp_path / "run")


@pytest.mark.parametrize("name", [s.name for s in bb.list_backbones() if s.is_cnn])
def test_every_convolutional_backbone_explains_at_stride_16(name):
    spec = bb.get_backbone(name)
    model = Classifier(build_backbone(spec.name, pretrained=False), 3, 0.0).eval()
    trained = TrainedModel(model, spec, preprocessing_for(spec, 224), ["a", "b", "c"])
    crop = np.random.default_rng(1).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)

    cam = explain_crop(trained, crop, class_index=2)

    assert cam.supported, cam.reason
    assert cam.heat.shape == (224, 224) and cam.class_index == 2
    # Not the final 7x7 map, too coarse to point at a small object. Inception's unpadded convolutions give maps of
    # 25x25 (Mixed_5) then 12x12 (Mixed_6) at 224 px: the last one no coarser than stride 16 is the 25x25 one.
    assert cam.grid == ((25, 25) if name == "inception_v3" else (14, 14))
    assert all(p.grad is None for p in model.parameters())


def test_a_map_too_coarse_to_point_at_anything_is_explained_in_words():
    spec = bb.get_backbone("efficientnet_lite0")
    model = Classifier(build_backbone(spec.name, pretrained=False), 2, 0.0).eval()
    trained = TrainedModel(model, spec, preprocessing_for(spec, 32), ["a", "b"])
    crop = np.random.default_rng(2).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)

    cam = explain_crop(trained, crop)

    assert not cam.supported and cam.heat is None and cam.grid == (0, 0)
    assert cam.reason == (
        f"At 32 px the feature map of {spec.title} is only 2x2 cells, too coarse to show where the model looked. "
        "Train at a larger image size to see one."
    )
