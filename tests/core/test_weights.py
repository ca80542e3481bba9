"""Weights: the bundled Lite0 really is ImageNet, downloads are checked and leave nothing behind, imports never run code."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import pathlib
import socket
import threading
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.catalog import weights, weights_import
from tlstudio.core.errors import UserError
from tlstudio.core.events import Cancelled, PhaseStarted, Progress, StopToken

SMALL = "mobilenet_v3_small"  # ~10 MB of weights: the cheapest torchvision entry to serve and check


@pytest.fixture(autouse=True)
def own_homes(tmp_path, monkeypatch) -> Path:
    """Each test gets empty torch hub and tlstudio folders."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))
    return tmp_path


def checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def random_state(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return bb.architecture(bb.get_backbone(name)).state_dict()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- bundled EfficientNet-Lite0


def test_bundled_lite0_is_available_and_builds_offline():
    spec = bb.get_backbone("efficientnet_lite0")
    assert weights.availability(spec) == weights.BUNDLED
    assert weights.weights_file(spec).name == "efficientnet-lite0-57934424.pth"
    backbone = build_backbone("efficientnet_lite0", pretrained=True)
    # Trained BatchNorm statistics, not the fresh 0/1 of a random init.
    assert not torch.allclose(backbone.body.bn1.running_var, torch.ones_like(backbone.body.bn1.running_var))
    assert backbone(torch.zeros(1, 3, 224, 224)).shape == (1, 1280)


def test_bundled_tensors_are_the_files_tensors_in_order_under_timm_names():
    import timm

    spec = bb.get_backbone("efficientnet_lite0")
    raw = torch.load(weights.weights_file(spec), map_location="cpu", weights_only=True)
    mapped = weights.load_state_dict(spec)
    assert list(mapped) == list(timm.create_model("tf_efficientnet_lite0").state_dict())
    assert len(mapped) == len(raw) == 296
    assert all(torch.equal(a, b) for a, b in zip(mapped.values(), raw.values()))
    assert list(raw)[:2] == ["_conv_stem.weight", "_bn0.weight"] and list(mapped)[:2] == ["conv_stem.weight", "bn1.weight"]


def test_a_mapping_that_does_not_line_up_fails_naming_the_pair():
    spec = bb.get_backbone("efficientnet_lite0")
    raw = torch.load(weights.weights_file(spec), map_location="cpu", weights_only=True)
    target = weights._expected_shapes(spec)
    keys = list(raw)

    shape_broken = dict(raw)
    shape_broken[keys[0]] = torch.zeros(16, 3, 3, 3)
    with pytest.raises(UserError, match=r"tensor 0: '_conv_stem.weight' \(16, 3, 3, 3\) vs 'conv_stem.weight' \(32, 3, 3, 3\)"):
        weights.map_in_order(shape_broken, target, "the bundled file")

    # running_mean and running_var have the same shape: swapping them must still be caught.
    swapped = list(raw.items())
    swapped[3], swapped[4] = swapped[4], swapped[3]
    with pytest.raises(UserError, match="tensor 3: '_bn0.running_var'.*'bn1.running_mean'"):
        weights.map_in_order(dict(swapped), target, "the bundled file")

    with pytest.raises(UserError, match="holds 295 tensors but the architecture has 296"):
        weights.map_in_order(dict(list(raw.items())[:-1]), target, "the bundled file")


def _imagenet_input(path: Path) -> torch.Tensor:
    """Lite0's own evaluation preprocessing: bicubic short side 256, centre crop 224, mean = std = 0.5."""
    image = Image.open(path).convert("RGB")
    scale = 256 / min(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    pixels = np.asarray(image.crop((left, top, left + 224, top + 224)), dtype=np.float32) / 255
    return (torch.from_numpy(pixels).permute(2, 0, 1) - 0.5) / 0.5


def test_bundled_weights_recognise_ants_and_bees_as_imagenet_classes(hymenoptera):
    import timm

    model = timm.create_model("tf_efficientnet_lite0")
    model.load_state_dict(weights.load_state_dict(bb.get_backbone("efficientnet_lite0")))
    model.eval()
    for folder, imagenet_class in (("ants", 310), ("bees", 309)):
        files = sorted((hymenoptera / "val" / folder).glob("*.jpg"))[:8]
        with torch.no_grad():
            top5 = model(torch.stack([_imagenet_input(f) for f in files])).topk(5).indices
        hits = sum(imagenet_class in row for row in top5.tolist())
        assert hits >= 7, f"{folder}: ImageNet class {imagenet_class} in the top 5 for only {hits} of 8 images"


# ---------------------------------------------------------------- download from a local server


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the folder; /truncated/NAME announces the whole file but sends half of it and hangs up."""

    def do_GET(self):
        if self.path.startswith("/truncated/"):
            data = (Path(self.directory) / self.path.rsplit("/", 1)[1]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()

    def log_message(self, *args):  # keep the test output clean
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that stops mid-download is expected here
        pass


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A local HTTP server with a real mobilenet_v3_small state dict (random weights) under its torchvision-style name."""
    folder = tmp_path_factory.mktemp("served")
    raw = folder / "payload.pth"
    torch.save(random_state(SMALL), raw)
    digest = sha256_of(raw)
    good_name = f"{SMALL}-{digest[:8]}.pth"
    raw.rename(folder / good_name)
    (folder / f"{SMALL}-deadbeef.pth").write_bytes((folder / good_name).read_bytes())
    foreign = folder / "foreign.pth"
    torch.save({"not.a.mobilenet": torch.zeros(3)}, foreign)
    foreign_name = f"{SMALL}-{sha256_of(foreign)[:8]}.pth"
    foreign.rename(folder / foreign_name)

    server = _QuietServer(("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield {"base": base, "folder": folder, "good": good_name, "digest": digest, "foreign": foreign_name}
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def spec_at(url: str) -> bb.BackboneSpec:
    return dataclasses.replace(bb.get_backbone(SMALL), weights_url=url)


def test_download_streams_with_progress_into_the_hub_cache(served, own_homes):
    spec = spec_at(f"{served['base']}/{served['good']}")
    assert weights.availability(spec) == weights.NEEDS_DOWNLOAD
    events = []
    path = weights.download(spec, on_event=events.append)

    size = (served["folder"] / served["good"]).stat().st_size
    assert path == own_homes / "torch" / "hub" / "checkpoints" / served["good"]
    assert files_in(checkpoints()) == [served["good"]] and sha256_of(path) == served["digest"]
    assert isinstance(events[0], PhaseStarted) and events[0] == PhaseStarted("downloading", size)
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and all(e.total == size for e in progress)
    assert [e.done for e in progress] == sorted(e.done for e in progress) and progress[-1].done == size
    assert " of " in progress[-1].detail and "MB" in progress[-1].detail

    assert weights.availability(spec) == weights.CACHED and weights.weights_file(spec) == path
    loaded = weights.load_state_dict(spec)
    expected = random_state(SMALL)
    assert list(loaded) == list(expected) and all(torch.equal(loaded[k], expected[k]) for k in expected)
    backbone = build_backbone(SMALL, pretrained=True, state_dict_loader=lambda _spec: weights.load_state_dict(spec))
    assert torch.equal(backbone.body.features[0][0].weight, expected["features.0.0.weight"])


def test_download_with_the_wrong_hash_keeps_nothing(served):
    url = f"{served['base']}/{SMALL}-deadbeef.pth"
    with pytest.raises(weights.DownloadError) as err:
        weights.download(spec_at(url))
    assert url in str(err.value) and served["digest"] in str(err.value) and "deadbeef" in str(err.value)
    assert not isinstance(err.value, weights.Unreachable)
    assert files_in(checkpoints()) == []


def test_download_of_a_file_for_another_architecture_keeps_nothing(served):
    with pytest.raises(UserError, match="does not fit backbone 'mobilenet_v3_small'.*not.a.mobilenet"):
        weights.download(spec_at(f"{served['base']}/{served['foreign']}"))
    assert files_in(checkpoints()) == []


def test_a_stop_mid_download_cancels_and_keeps_nothing(served):
    stop = StopToken()
    seen = []

    def stop_on_first_progress(event):
        seen.append(event)
        if isinstance(event, Progress):
            stop.stop()

    with pytest.raises(Cancelled):
        weights.download(spec_at(f"{served['base']}/{served['good']}"), on_event=stop_on_first_progress, stop=stop)
    assert sum(isinstance(e, Progress) for e in seen) == 1
    assert files_in(checkpoints()) == []


def test_a_connection_closed_early_keeps_nothing(served):
    spec = spec_at(f"{served['base']}/{served['good']}")
    with pytest.raises(UserError, match="closed early"):
        weights.download(spec, url=f"{served['base']}/truncated/{served['good']}")
    assert files_in(checkpoints()) == []


def test_a_missing_file_on_the_server_is_a_clear_error(served):
    url = f"{served['base']}/{SMALL}-0badf00d.pth"
    with pytest.raises(weights.DownloadError, match="404") as err:
        weights.download(spec_at(url))
    assert not isinstance(err.value, weights.Unreachable) and err.value.file_name == f"{SMALL}-0badf00d.pth"
    assert url in err.value.plain and "tlstudio weights import" in str(err.value) and "tlstudio" not in err.value.plain
    assert files_in(checkpoints()) == []


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_no_network_says_offline_and_names_the_file_to_import():
    spec = bb.get_backbone(SMALL)
    url = f"http://127.0.0.1:{closed_port()}/{weights.weights_file_name(spec)}"
    with pytest.raises(weights.Unreachable) as err:
        weights.download(spec, url=url)
    assert isinstance(err.value, UserError)
    assert err.value.backbone == SMALL and err.value.url == url
    assert err.value.file_name == weights.hub_checkpoint_path(spec).name == Path(spec.weights_url).name
    assert err.value.file_name in err.value.plain and err.value.plain in str(err.value) and "Errno" not in str(err.value)
    assert files_in(checkpoints()) == []


@pytest.mark.parametrize(
    "cause",
    [
        socket.gaierror(-2, "Name or service not known"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        OSError(101, "Network is unreachable"),
    ],
    ids=["no name lookup", "refused", "timed out", "no route"],
)
def test_every_way_of_not_reaching_the_site_is_the_offline_error(monkeypatch, cause):
    def unreachable(*_args, **_kwargs):
        raise urllib.error.URLError(cause)

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    with pytest.raises(weights.Unreachable) as err:
        weights.download(bb.get_backbone("resnet18"))
    assert err.value.file_name == weights.weights_file_name(bb.get_backbone("resnet18"))
    assert "Errno" not in str(err.value) and (cause.strerror or str(cause)) not in str(err.value)
    assert files_in(checkpoints()) == []


def test_a_connection_broken_mid_download_is_no_offline_error_and_shows_no_errno(monkeypatch):
    def reset(*_args, **_kwargs):
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(urllib.request, "urlopen", reset)
    with pytest.raises(UserError) as err:
        weights.download(bb.get_backbone("resnet18"))
    assert not isinstance(err.value, weights.Unreachable)
    assert "104" not in str(err.value) and "Connection reset by peer" not in str(err.value)
    assert weights.weights_file_name(bb.get_backbone("resnet18")) in str(err.value)
    assert files_in(checkpoints()) == []


def test_a_cancel_while_the_site_is_still_being_tried_is_a_cancel(monkeypatch):
    stop = StopToken()

    def cancel_then_time_out(*_args, **_kwargs):
        stop.stop()  # the user pressed Cancel during the connection attempt
        raise urllib.error.URLError(TimeoutError("timed out"))

    monkeypatch.setattr(urllib.request, "urlopen", cancel_then_time_out)
    with pytest.raises(Cancelled):
        weights.download(bb.get_backbone("resnet18"), stop=stop)
    assert files_in(checkpoints()) == []


def test_the_cli_download_offline_gives_the_same_plain_message(monkeypatch, capsys):
    from tlstudio.cli import main

    spec = bb.get_backbone(SMALL)
    url = f"http://127.0.0.1:{closed_port()}/{weights.weights_file_name(spec)}"
    monkeypatch.setitem(bb.catalog(), SMALL, dataclasses.replace(spec, weights_url=url))
    assert main(["weights", "download", SMALL]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"tlstudio: error: {weights.Unreachable(bb.get_backbone(SMALL), url)}"
    assert files_in(checkpoints()) == []


def test_weights_not_on_the_machine_say_how_to_get_them():
    spec = bb.get_backbone("resnet18")
    assert weights.availability(spec) == weights.NEEDS_DOWNLOAD and weights.weights_file(spec) is None
    with pytest.raises(UserError, match="not on this machine.*tlstudio weights download resnet18.*tlstudio weights import FILE --backbone resnet18") as err:
        weights.load_state_dict(spec)
    assert weights.weights_file_name(spec) in str(err.value)
    with pytest.raises(UserError, match="not on this machine"):
        build_backbone("resnet18", pretrained=True)


# ---------------------------------------------------------------- import


class _Payload:
    """Unpickling this creates ``marker``: a stand-in for code hidden in a weights file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _save_payload(path: Path, marker: Path) -> Path:
    state = {k: v for k, v in random_state(SMALL).items()}
    state["features.0.0.weight"] = _Payload(marker)  # type: ignore[assignment]
    torch.save({"state_dict": state}, path)
    return path


def test_import_refuses_a_pickle_payload_without_running_it(tmp_path):
    live_marker = tmp_path / "ran-live"
    torch.load(_save_payload(tmp_path / "live.pth", live_marker), weights_only=False)
    assert live_marker.exists(), "the payload must really run under a full unpickler, or this test proves nothing"

    marker = tmp_path / "ran"
    with pytest.raises(UserError, match="contains code.*not opened"):
        weights_import.import_weights(_save_payload(tmp_path / "evil.pth", marker), bb.get_backbone(SMALL))
    assert not marker.exists()
    assert weights.availability(bb.get_backbone(SMALL)) == weights.NEEDS_DOWNLOAD


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".safetensors"])
def test_import_refuses_torchscript_before_opening_it(tmp_path, monkeypatch, suffix):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice
        program = torch.jit.script(torch.nn.Linear(4, 2))
        torch.jit.save(program, str(tmp_path / f"model{suffix}"))
    opened = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: opened.append("torch.load"))
    monkeypatch.setattr(torch.jit, "load", lambda *a, **k: opened.append("torch.jit.load"))
    with pytest.raises(UserError, match="TorchScript program, not a weights file"):
        weights_import.import_weights(tmp_path / f"model{suffix}", bb.get_backbone(SMALL))
    assert opened == []


def test_import_refuses_wrong_shapes_extra_and_missing_tensors(tmp_path):
    spec = bb.get_backbone(SMALL)
    state = random_state(SMALL)

    wrong = dict(state, **{"classifier.3.weight": torch.zeros(10, 1024)})
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(UserError, match=r"'classifier.3.weight' has shape \(10, 1024\) but the architecture expects \(1000, 1024\)"):
        weights_import.import_weights(tmp_path / "wrong.pth", spec)

    torch.save(dict(state, extra=torch.zeros(1)), tmp_path / "extra.pth")
    with pytest.raises(UserError, match="tensor 'extra' that the architecture does not"):
        weights_import.import_weights(tmp_path / "extra.pth", spec)

    torch.save({k: v for k, v in state.items() if k != "features.0.0.weight"}, tmp_path / "short.pth")
    with pytest.raises(UserError, match="lacks tensor 'features.0.0.weight'"):
        weights_import.import_weights(tmp_path / "short.pth", spec)

    torch.save(random_state("resnet18"), tmp_path / "resnet18.pth")
    with pytest.raises(UserError, match="does not fit backbone 'mobilenet_v3_small'"):
        weights_import.import_weights(tmp_path / "resnet18.pth", spec)
    assert weights.availability(spec) == weights.NEEDS_DOWNLOAD


def test_import_refuses_files_that_are_not_weights(tmp_path):
    spec = bb.get_backbone(SMALL)
    with pytest.raises(UserError, match="does not exist"):
        weights_import.import_weights(tmp_path / "nowhere.pth", spec)
    (tmp_path / "junk.pth").write_bytes(b"\x00not a checkpoint" * 100)
    with pytest.raises(UserError, match="not a PyTorch weights file"):
        weights_import.import_weights(tmp_path / "junk.pth", spec)
    (tmp_path / "junk.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    with pytest.raises(UserError, match="not a readable safetensors file"):
        weights_import.import_weights(tmp_path / "junk.safetensors", spec)
    torch.save({"epoch": 3, "lr": torch.tensor(0.1)}, tmp_path / "meta.pth")
    with pytest.raises(UserError, match="not a plain state dict: entry 'epoch'"):
        weights_import.import_weights(tmp_path / "meta.pth", spec)
    with pytest.raises(UserError, match="ships with its ImageNet weights"):
        weights_import.import_weights(tmp_path / "meta.pth", bb.get_backbone("efficientnet_lite0"))


def test_import_accepts_a_wrapped_checkpoint_and_build_uses_it(tmp_path, own_homes):
    spec = bb.get_backbone(SMALL)
    state = random_state(SMALL, seed=1)
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 7}, tmp_path / "from-colleague.pth")

    # Random weights are not the official file: imported only when forced.
    with pytest.raises(weights_import.NotOfficialFile):
        weights_import.import_weights(tmp_path / "from-colleague.pth", spec)
    result = weights_import.import_weights(tmp_path / "from-colleague.pth", spec, force=True)

    path = result.path
    assert result.official is False and result.replaced is None
    assert path == own_homes / "home" / "weights" / f"{SMALL}.safetensors"
    assert weights.availability(spec) == weights.IMPORTED and weights.weights_file(spec) == path
    assert files_in(path.parent) == [path.name]  # no temp files beside it
    backbone = build_backbone(SMALL, pretrained=True)
    assert torch.equal(backbone.body.features[0][0].weight, state["features.0.0.weight"])
    assert torch.equal(backbone.body.features[0][1].running_mean, state["features.0.1.running_mean"])


def test_import_accepts_safetensors_and_a_cached_file_wins(tmp_path):
    spec = bb.get_backbone(SMALL)
    state = random_state(SMALL, seed=2)
    save_file(state, str(tmp_path / "w.safetensors"))
    weights_import.import_weights(tmp_path / "w.safetensors", spec, force=True)
    assert weights.availability(spec) == weights.IMPORTED
    assert torch.equal(weights.load_state_dict(spec)["classifier.0.weight"], state["classifier.0.weight"])

    cached = weights.hub_checkpoint_path(spec)
    cached.parent.mkdir(parents=True)
    torch.save(random_state(SMALL, seed=3), cached)
    assert weights.availability(spec) == weights.CACHED and weights.weights_file(spec) == cached
    assert torch.equal(weights.load_state_dict(spec)["classifier.0.weight"], random_state(SMALL, seed=3)["classifier.0.weight"])


def test_a_foreign_file_in_the_hub_cache_is_refused_on_load():
    spec = bb.get_backbone(SMALL)
    cached = weights.hub_checkpoint_path(spec)
    cached.parent.mkdir(parents=True)
    torch.save(random_state("resnet18"), cached)
    with pytest.raises(UserError, match=f"{cached.name}' does not fit backbone 'mobilenet_v3_small'"):
        build_backbone(SMALL, pretrained=True)


def test_a_missing_bundled_package_says_to_reinstall(monkeypatch):
    monkeypatch.setitem(weights._BUNDLED_FILES, "tf_efficientnet_lite0", ("no_such_weights_package", "models/x.pth"))
    spec = bb.get_backbone("efficientnet_lite0")
    assert weights.weights_file(spec) is None
    with pytest.raises(UserError, match="'no-such-weights-package' is not installed. Reinstall tlstudio"):
        weights.load_state_dict(spec)


# ---------------------------------------------------------------- Inception-v3: the official file has an auxiliary head


def _official_shaped_inception_state() -> dict[str, torch.Tensor]:
    """What Inception_V3_Weights.IMAGENET1K_V1 holds: the model as torchvision builds it for those weights, AuxLogits included."""
    import torchvision

    torch.manual_seed(4)
    return torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()


def test_an_official_shaped_inception_file_loads_without_its_aux_head():
    spec = bb.get_backbone("inception_v3")
    state = _official_shaped_inception_state()
    assert any(k.startswith("AuxLogits.") for k in state)
    weights.check_fits(state, spec, "the file")  # the aux tensors are expected in an official file, not an error
    cached = weights.hub_checkpoint_path(spec)
    assert cached.name == "inception_v3_google-0cc3c7bd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(state, cached)
    loaded = weights.load_state_dict(spec)
    assert not any(k.startswith("AuxLogits.") for k in loaded)
    assert set(loaded) == {k for k in state if not k.startswith("AuxLogits.")}
    backbone = build_backbone("inception_v3", pretrained=True).eval()
    assert torch.equal(backbone.body.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])
    assert backbone.body.transform_input and backbone.body.AuxLogits is None
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 75, 75)).shape == (1, 2048)


def test_an_inception_file_lacking_a_main_tensor_is_still_refused(tmp_path):
    spec = bb.get_backbone("inception_v3")
    state = {k: v for k, v in _official_shaped_inception_state().items() if k != "Mixed_7c.branch_pool.conv.weight"}
    with pytest.raises(UserError, match="lacks tensor 'Mixed_7c.branch_pool.conv.weight'"):
        weights.check_fits(state, spec, "the file")
    torch.save(_official_shaped_inception_state(), tmp_path / "inception.pth")
    result = weights_import.import_weights(tmp_path / "inception.pth", spec, force=True)  # random weights: not official
    assert weights.availability(spec) == weights.IMPORTED and result.path == weights.imported_path(spec)
    assert not any(k.startswith("AuxLogits.") for k in weights.load_state_dict(spec))
