"""The exported file: preprocessing inside, class names on board, agreement checked in a fresh process."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.data.augment import normalize_batch
from tlstudio.core.catalog.classifier import Classifier
from tlstudio.core.errors import UserError
from tlstudio.core.inference.export import export_torchscript, read_export_info, torchscript_quietly, verify_in_fresh_process
from tlstudio.core.data.preprocess import preprocessing_for

CLASSES = ["ants", "bees", "wasps"]


def network(name: str = "efficientnet_lite0") -> Classifier:
    torch.manual_seed(0)
    return Classifier(build_backbone(name, pretrained=False), len(CLASSES), 0.2).eval()


def load(path):
    with torchscript_quietly():
        return torch.jit.load(str(path))


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth gradients with a few blobs: resampling differences stay small, as with real photos."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(6 * xx + rng.uniform(0, 3)), np.cos(5 * yy + rng.uniform(0, 3)), np.sin(4 * (xx + yy))], axis=-1)
    return ((img + 1) * 127.5).astype(np.uint8)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    net = network()
    pre = preprocessing_for(bb.get_backbone("efficientnet_lite0"), 96)
    path = tmp_path_factory.mktemp("export") / "model.pt"
    export_torchscript(net, pre, CLASSES, {"val_accuracy": 0.5}, path)
    return net, pre, path


def test_the_file_carries_its_class_names_preprocessing_and_summary(exported):
    _, pre, path = exported
    model = load(path)
    assert list(model.class_names) == CLASSES
    assert (model.input_size, model.resize_size) == (pre.input_size, pre.resize_size)
    assert list(model.mean) == pytest.approx(pre.mean) and list(model.std) == pytest.approx(pre.std)
    info = read_export_info(path)
    assert info["class_names"] == CLASSES and info["summary"] == {"val_accuracy": 0.5}
    assert info["preprocessing"]["input_size"] == 96


def test_the_file_does_exactly_what_training_evaluation_does(exported):
    """An image already at the resize size: the file's crop and normalisation match training's, number for number."""
    net, pre, path = exported
    square = photo(pre.resize_size, pre.resize_size)
    off = (pre.resize_size - pre.input_size) // 2
    crop = torch.from_numpy(square[off : off + pre.input_size, off : off + pre.input_size]).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = torch.softmax(net(normalize_batch(crop, pre.mean, pre.std)), 1)
        got = load(path)(torch.from_numpy(square).permute(2, 0, 1)[None])
    assert torch.allclose(got, expected, atol=1e-5)


def test_any_size_uint8_or_float_batched_or_single(exported):
    _, _, path = exported
    model = load(path)
    img = torch.from_numpy(photo(300, 451)).permute(2, 0, 1)
    with torch.no_grad():
        p_uint8 = model(img[None])
        p_float = model(img[None].float() / 255)
        p_single = model(img)
        p_batch = model(torch.stack([img, img.flip(-1)]))
    assert p_uint8.shape == (1, 3) and torch.allclose(p_uint8.sum(1), torch.ones(1))
    assert torch.allclose(p_uint8, p_float, atol=1e-5) and torch.allclose(p_uint8, p_single)
    assert p_batch.shape == (2, 3) and torch.allclose(p_batch[0], p_uint8[0], atol=1e-5)
    with pytest.raises(Exception, match="RGB images"):
        model(torch.zeros(1, 1, 50, 50))


def test_uint16_pictures_are_scaled_by_65535_and_other_integers_refused(exported):
    """What torchvision.io.decode_image gives for a 16-bit PNG goes in as it is."""
    _, _, path = exported
    model = load(path)
    img = torch.from_numpy(photo(120, 160)).permute(2, 0, 1)[None]
    with torch.no_grad():
        p_uint8 = model(img)
        p_uint16 = model((img.to(torch.int32) * 257).to(torch.uint16))  # 255 * 257 = 65535: the same picture
    assert torch.allclose(p_uint8, p_uint16, atol=1e-5)
    with pytest.raises(Exception, match="uint16"):
        model(img.to(torch.int32))


def test_a_fresh_process_importing_only_torch_runs_it(exported):
    _, _, path = exported
    code = (
        "import sys, torch; m = torch.jit.load(sys.argv[1]); "
        "p = m(torch.randint(0, 255, (2, 3, 240, 320), dtype=torch.uint8)); "
        "print(list(m.class_names), tuple(p.shape))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['ants', 'bees', 'wasps'] (2, 3)"


def test_verification_passes_on_agreement_and_fails_on_disagreement(exported):
    _, _, path = exported
    images = [photo(150 + 10 * i, 200, seed=i) for i in range(4)]
    model = load(path)
    with torch.no_grad():
        probs = np.stack([model(torch.from_numpy(a).permute(2, 0, 1)[None])[0].numpy() for a in images])
    good = verify_in_fresh_process(path, images, probs)
    assert good.ok and good.agreement == 1.0 and good.n == 4 and good.max_abs_diff < 1e-5
    swapped = probs[:, ::-1]
    if (swapped.argmax(1) == probs.argmax(1)).all():
        swapped = np.roll(probs, 1, axis=1)
    bad = verify_in_fresh_process(path, images, swapped)
    assert not bad.ok and bad.agreement < 1.0 and "disagreed" in bad.message


def test_a_torchvision_architecture_exports_too(tmp_path):
    net = network("resnet18")
    pre = preprocessing_for(bb.get_backbone("resnet18"), 64)
    export_torchscript(net, pre, CLASSES, {}, tmp_path / "r18.pt")
    with torch.no_grad():
        assert load(tmp_path / "r18.pt")(torch.zeros(3, 3, 70, 90, dtype=torch.uint8)).shape == (3, 3)


def test_a_failed_export_leaves_no_file(tmp_path):
    class BakedBatch(torch.nn.Module):  # a network whose trace would only work for one batch size
        def forward(self, x):
            return torch.zeros(2, 3) + x.mean()

    pre = preprocessing_for(bb.get_backbone("efficientnet_lite0"), 64)
    with pytest.raises(RuntimeError, match="batch of 1"):
        export_torchscript(BakedBatch(), pre, CLASSES, {}, tmp_path / "model.pt")
    assert list(tmp_path.iterdir()) == []


def test_files_that_are_not_tlstudio_models_are_refused_clearly(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_export_info(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(UserError, match="not a TorchScript model file"):
        read_export_info(junk)
    other = tmp_path / "other.pt"
    with torchscript_quietly():
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(other))
    with pytest.raises(UserError, match="not one tlstudio exported"):
        read_export_info(other)


def test_verification_works_inside_a_frozen_bundle_too(exported, tmp_path, monkeypatch):
    """In a PyInstaller bundle sys.executable is tlstudio itself: the check runs through its hidden child flag."""
    _, _, path = exported
    launcher = tmp_path / "tlstudio-bundle"
    launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tlstudio "$@"\n')
    launcher.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(launcher))
    images = [photo(120, 160, seed=3)]
    with torch.no_grad():
        probs = load(path)(torch.from_numpy(images[0]).permute(2, 0, 1)[None]).numpy()
    result = verify_in_fresh_process(path, images, probs)
    assert result.ok and result.max_abs_diff < 1e-5, result.message
