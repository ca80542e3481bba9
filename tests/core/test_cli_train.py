"""`tlstudio train` refuses bad arguments with one clear line and exit code 2, before doing any work."""

import json

import pytest

from tests.synthetic import make_colour_dataset
from tlstudio.cli import main


@pytest.fixture
def data(tmp_path):
    return make_colour_dataset(tmp_path / "data", classes=("red", "blue"), per_class=6)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--backbone", "alexnet"], "unknown backbone 'alexnet'"),
        (["--backbone", "resnet18", "--freeze-depth", "6"], "--freeze-depth 6 is out of range"),
        (["--freeze-depth", "most"], "--freeze-depth must be"),
        (["--batch-size", "0"], "--batch-size"),
        (["--epochs", "0"], "--epochs"),
        (["--image-size", "16"], "--image-size 16"),
        (["--backbone", "vit_b_16", "--image-size", "160"], "only takes 224 px"),
        (["--val-split", "1.5"], "--val-split"),
    ],
)
def test_bad_argument_exits_2_with_one_line(data, tmp_path, capsys, extra, words):
    code = main(["train", str(data), "--out", str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_missing_folder_exits_2_naming_it(tmp_path, capsys):
    code = main(["train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "nowhere" in err and len(err.splitlines()) == 1


def test_train_prints_a_json_summary(data, tmp_path, capsys):
    code = main(["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "2", "--image-size", "64", "--no-export", "--cache", str(tmp_path / "cache"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["backbone"] == "efficientnet_lite0" and summary["epochs"] == 2 and summary["feature_cache"]
