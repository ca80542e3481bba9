"""Issue 13, item 7: the README's plain-PyTorch code gives tlstudio's answer, also for the pictures a naive read gets wrong.

A photo whose EXIF says "rotated", a PNG with transparency and a 16-bit PNG: ``tlstudio predict``
reads them upright, on white, scaled from 16 bits. ``SNIPPET`` is the Export step's code, which the README
must hold too, run here as it is written (only the two file names are replaced).
"""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import decode_image

from tlstudio.core.data.preprocess import Preprocessing
from tlstudio.core.inference.export import export_torchscript
from tlstudio.core.inference.predict import ExportedModel
from tlstudio.gui.snippets import TORCHSCRIPT_SNIPPET  # text only: the module imports no Qt

README = Path(__file__).resolve().parents[2] / "README.md"

SNIPPET = TORCHSCRIPT_SNIPPET.format(name="model.pt")

SIDE = 32  # the pictures' short side is the model's resize size: no resampling filter is compared, only the reading


def spatial_network() -> torch.nn.Module:
    """Tiny, but its answer depends on where things are (a rotation shows) and on brightness (a background shows)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.AdaptiveAvgPool2d(4), torch.nn.Flatten(), torch.nn.Linear(64, 3))
    with torch.no_grad():
        net[-1].weight.mul_(4)
    return net.eval()


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    pre = Preprocessing(SIDE, SIDE, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "bilinear")
    return export_torchscript(spatial_network(), pre, ["ants", "bees", "wasps"], {}, tmp_path_factory.mktemp("snippet") / "model.pt")


def gradient(h: int, w: int, channels: int, top: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    planes = [(xx / w), (yy / h), ((xx + 2 * yy) % 17) / 16, 1 - xx / w][:channels]
    return np.rint(np.stack(planes, axis=-1) * top).astype(np.uint16 if top > 255 else np.uint8)


def png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit PNG written by hand (Pillow writes 16-bit grey only)."""
    h, w, c = pixels.shape
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


def pictures(folder: Path) -> dict[str, Path]:
    rotated = Image.fromarray(gradient(SIDE, SIDE + 16, 3, 255))
    exif = rotated.getexif()
    exif[0x0112] = 6  # stored sideways: "rotate 90 degrees clockwise to view"
    rotated.save(folder / "rotated.jpg", exif=exif, quality=95)
    Image.fromarray(gradient(SIDE, SIDE + 8, 4, 255), "RGBA").save(folder / "transparent.png")
    Image.fromarray(gradient(SIDE + 8, SIDE, 1, 65535)[..., 0]).save(folder / "grey16.png")  # mode I;16
    png16(folder / "rgb16.png", gradient(SIDE, SIDE + 8, 3, 65535))
    png16(folder / "rgba16.png", gradient(SIDE, SIDE + 8, 4, 65535))
    return {p.stem: p for p in sorted(folder.iterdir())}


def snippet_probs(model: Path, picture: Path) -> np.ndarray:
    code = SNIPPET.replace('"model.pt"', repr(str(model))).replace('"photo.jpg"', repr(str(picture)))
    scope: dict = {}
    exec(compile(code, "<README snippet>", "exec"), scope)
    return scope["probs"].numpy().astype(np.float64)


def test_the_snippet_gives_tlstudios_answer(model, tmp_path, capsys):
    tlstudio = ExportedModel.load(model)
    for name, picture in pictures(tmp_path).items():
        expected = np.asarray(tlstudio.predict_file(picture).probs)
        got = snippet_probs(model, picture)
        assert np.abs(got - expected).max() < 1e-3, (name, got, expected)  # what is left: tlstudio keeps 8 bits a channel
    assert capsys.readouterr().out.splitlines()[-1].split()[0] in tlstudio.class_names


def test_without_the_care_the_answers_differ(model, tmp_path):
    """The check has teeth: reading sideways, or transparency on black, gives another answer."""
    found = pictures(tmp_path)
    tlstudio = ExportedModel.load(model)
    with torch.no_grad():
        loaded = torch.jit.load(str(model))
        sideways = loaded(decode_image(str(found["rotated"]), apply_exif_orientation=False)[None])[0].numpy()
        on_black = loaded(decode_image(str(found["transparent"]))[:3][None])[0].numpy()
    assert np.abs(sideways - tlstudio.predict_file(found["rotated"]).probs).max() > 1e-2
    assert np.abs(on_black - tlstudio.predict_file(found["transparent"]).probs).max() > 1e-2


def test_the_readme_shows_the_same_code():
    assert SNIPPET in README.read_text(encoding="utf-8"), "README.md's 'Using an exported model' code is not SNIPPET"


def test_below_the_files_threshold_the_snippet_says_not_sure(tmp_path, capsys):
    pre = Preprocessing(SIDE, SIDE, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "bilinear")
    summary = {"calibration": {"temperature": 1.0, "threshold": 0.999}}
    strict = export_torchscript(spatial_network(), pre, ["ants", "bees", "wasps"], summary, tmp_path / "strict.pt")
    picture = pictures(tmp_path)["rotated"]
    top = float(snippet_probs(strict, picture).max())
    assert top < 0.999
    assert capsys.readouterr().out.splitlines()[-1].split()[:2] == ["not", "sure"]
