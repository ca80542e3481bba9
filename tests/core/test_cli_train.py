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
        (["--from-scratch", "--freeze-depth", "all"], "frozen learns nothing"),
        (["--from-scratch", "--freeze-depth", "3"], "--from-scratch --freeze-depth 3"),
        (["--from-scratch", "--freeze-depth", "most"], "Omit --freeze-depth"),
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
    assert summary["backbone"] == "efficientnet_lite0" and summary["feature_cache"]
    assert summary["epochs"] == 1 and summary["head_fit"]["converged"]  # a frozen head is one fit, not epochs


def test_from_scratch_writes_a_random_init_config_and_explains_itself(data, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", str(data), "--out", str(run), "--from-scratch", "--epochs", "1", "--image-size", "64", "--no-export", "--cache", str(tmp_path / "cache"), "--json"])
    captured = capsys.readouterr()
    assert code == 0
    config = json.loads((run / "config.json").read_text())
    assert config["pretrained"] is False and config["freeze_depth"] == "none" and config["backbone_lr_scale"] == 1.0
    summary = json.loads(captured.out)
    assert summary["pretrained"] is False and not summary["feature_cache"]
    explained = [line for line in captured.err.splitlines() if line.startswith("from scratch:")]
    assert len(explained) == 1 and "random weights" in explained[0] and "every layer trains" in explained[0]


def test_from_scratch_with_freeze_depth_none_is_fine(data, tmp_path):
    from tlstudio.cli import build_parser
    from tlstudio.commands.train import config_from_args

    args = build_parser().parse_args(["train", str(data), "--out", str(tmp_path / "run"), "--from-scratch", "--freeze-depth", "none"])
    cfg = config_from_args(args)
    assert not cfg.pretrained and cfg.freeze_depth == "none"
    assert config_from_args(build_parser().parse_args(["train", str(data), "--out", str(tmp_path / "run")])).freeze_depth == "all"


def test_an_internal_error_is_one_line_and_exit_1_with_the_traceback_on_request(data, tmp_path, capsys, monkeypatch):
    from tlstudio.core.engine.trainer import Trainer

    def broken(self, on_event=None, stop=None):
        raise RuntimeError("the exported model disagreed with the trained model")

    monkeypatch.setattr(Trainer, "run", broken)
    args = ["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "1"]
    monkeypatch.delenv("TLSTUDIO_DEBUG", raising=False)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "tlstudio: internal error: RuntimeError: the exported model disagreed" in err
    assert "Traceback" not in err and "TLSTUDIO_DEBUG=1" in err
    monkeypatch.setenv("TLSTUDIO_DEBUG", "1")
    assert main(args) == 1
    assert "Traceback" in capsys.readouterr().err
