"""`tlstudio predict`: the exported file alone classifies files and folders, exactly as the app evaluated them."""

import csv
import json
import shutil
from pathlib import Path

import pytest

from tests.synthetic import make_colour_dataset
from tlstudio.cli import main
from tlstudio.core.config import TrainConfig
from tlstudio.core.inference.predict import ExportedModel, expand_paths
from tlstudio.core.engine.trainer import Trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    data = make_colour_dataset(root / "colours", per_class=10)
    cfg = TrainConfig(data_dir=str(data), backbone="efficientnet_lite0", freeze_depth="all", epochs=8, batch_size=8, image_size=64, export=True)
    Trainer(cfg, root / "run", cache_dir=root / "cache").run()
    return root / "run"


def val_predictions(run: Path) -> dict[str, str]:
    classes = json.loads((run / "metrics.json").read_text())["classes"]
    data = Path(json.loads((run / "config.json").read_text())["data_dir"])
    return {str(data / p["path"]): classes[p["pred"]] for p in json.loads((run / "predictions.json").read_text())}


def test_predict_agrees_with_the_apps_evaluation_and_writes_a_csv(run, tmp_path, capsys):
    expected = val_predictions(run)
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run / "model.pt"), *expected, "--csv", str(out), "--top-k", "2"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == list(expected)
    assert {r["path"]: r["class_1"] for r in rows} == expected
    assert all(float(r["probability_1"]) >= float(r["probability_2"]) for r in rows)
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(expected)


def test_a_folder_is_searched_skipping_clutter_and_bad_files_are_reported(run, tmp_path, capsys):
    folder = tmp_path / "new"
    (folder / "deeper").mkdir(parents=True)
    some = sorted(val_predictions(run))[:2]
    shutil.copy(some[0], folder / "a.jpg")
    shutil.copy(some[1], folder / "deeper" / "b.jpg")
    (folder / ".DS_Store").write_bytes(b"\0\1")
    (folder / "notes.txt").write_text("not an image")
    whole = Path(some[0]).read_bytes()
    (folder / "broken.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    assert [p.name for p in expand_paths([folder])] == ["a.jpg", "broken.jpg", "b.jpg"]
    assert main(["predict", str(run / "model.pt"), str(folder)]) == 0
    captured = capsys.readouterr()
    lines = dict(line.split("\t") for line in captured.out.splitlines())
    assert lines[str(folder / "broken.jpg")] == "skipped: truncated"
    assert "1 of 3 files could not be read" in captured.err


def test_the_model_object_exposes_names_and_top_k(run):
    model = ExportedModel.load(run / "model.pt")
    assert model.class_names == ["blue", "green", "red"]
    path = sorted(val_predictions(run))[0]
    pred = model.predict_file(path)
    top = pred.top(3, model.class_names)
    assert [name for name, _ in top] != [] and abs(sum(p for _, p in top) - 1) < 1e-4


@pytest.mark.parametrize(
    "args, words",
    [
        (["MISSING"], "does not exist"),
        (["JUNK"], "not a TorchScript model file"),
        (["MODEL", "--top-k", "0"], "--top-k 0"),
        (["MODEL", "NOWHERE"], "does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(run, tmp_path, capsys, args, words):
    junk = tmp_path / "junk.pt"
    junk.write_text("hello")
    image = sorted(val_predictions(run))[0]
    subs = {"MISSING": str(tmp_path / "missing.pt"), "JUNK": str(junk), "MODEL": str(run / "model.pt"), "NOWHERE": str(tmp_path / "nowhere")}
    argv = [subs.get(a, a) for a in args]
    if argv[0] != str(run / "model.pt") or "NOWHERE" not in args:
        argv.insert(1, image)
    code = main(["predict", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1
