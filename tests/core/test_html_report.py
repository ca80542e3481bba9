"""`tlstudio report`: one self-contained HTML page about a real run, tolerant of missing files, safe with odd names."""

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.synthetic import make_colour_dataset
from tlstudio.cli import main
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.index import REASON_TEXT, TRUNCATED
from tlstudio.core.errors import UserError
from tlstudio.core.report.html import MAX_MISTAKES, render_report, write_report
from tlstudio.core.runs.files import RUN_PARTS, RunFiles
from tlstudio.core.engine.trainer import Trainer

ODD_CLASS = "red <b>&"  # a folder name that is also HTML
SERIES = ("train_loss", "val_loss", "train_acc", "val_acc")
DATA_URI = 'src="data:image/jpeg;base64,'


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    data = make_colour_dataset(root / "data", classes=("red", "green", "blue"), per_class=12)
    (data / "red").rename(data / ODD_CLASS)
    cfg = TrainConfig(data_dir=str(data), backbone="efficientnet_lite0", freeze_depth="7", epochs=3, batch_size=8, image_size=64, export=False)  # epochs: a fine-tune
    Trainer(cfg, root / "run", cache_dir=root / "cache").run()
    return root / "run"


@pytest.fixture(scope="module")
def page(run_dir) -> str:
    return render_report(run_dir)


@pytest.fixture
def run_copy(run_dir, tmp_path) -> Path:
    """A copy of the run to damage or edit; the images stay where the run says they are."""
    return Path(shutil.copytree(run_dir, tmp_path / "run", ignore=shutil.ignore_patterns("checkpoints")))


def read(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def write(path: Path, obj) -> None:
    path.write_text(json.dumps(obj), encoding="utf-8")


def val_mistakes(predictions: list[dict]) -> int:
    return sum(p["split"] == "val" and p["pred"] != p["label"] for p in predictions)


def make_every_val_prediction_wrong(predictions: list[dict], copies: int) -> list[dict]:
    """``copies`` times each validation row, each confidently wrong with its own p(true class)."""
    rows = [dict(p) for p in predictions if p["split"] == "val"] * copies
    out = []
    for i, row in enumerate(rows):
        k = len(row["probs"])
        pred = (row["label"] + 1) % k
        probs = [0.0] * k
        probs[row["label"]] = 0.01 + 0.4 * i / len(rows)
        probs[pred] = 1.0 - probs[row["label"]]
        out.append({**row, "pred": pred, "probs": probs})
    return out


# ------------------------------------------------------------------------------- content


def test_every_class_name_is_shown_escaped(run_dir, page):
    classes = read(run_dir / "metrics.json")["classes"]
    assert ODD_CLASS in classes
    for name in classes:
        assert html.escape(name) in page
    assert "red &lt;b&gt;&amp;" in page
    assert "<b>&" not in page


def test_confusion_matrix_counts_match_metrics(run_dir, page):
    matrix = read(run_dir / "metrics.json")["confusion_matrix"]
    cells = re.findall(r'data-matrix="val" data-true="(\d+)" data-pred="(\d+)"[^>]*><span class="count">(\d+)</span>', page)
    shown = {(int(i), int(j)): int(n) for i, j, n in cells}
    assert len(cells) == len(matrix) ** 2
    assert shown == {(i, j): n for i, row in enumerate(matrix) for j, n in enumerate(row)}


def test_one_curve_point_per_epoch_for_training_and_validation(run_dir, page):
    epochs = len(RunFiles(run_dir).read_history())
    assert epochs == 3
    for series in SERIES:
        assert page.count(f'data-series="{series}"') == epochs, series
    assert page.count("<svg") == 3  # the two curves and the reliability diagram


def test_the_report_shows_the_reliability_diagram_and_the_threshold(run_dir, page):
    from tlstudio.core.engine.calibration import read_calibration

    found = read_calibration(read(run_dir / "summary.json"))
    assert page.count('data-series="before"') == sum(1 for b in found.reliability_before if b.count)
    assert page.count('data-series="after"') == sum(1 for b in found.reliability_after if b.count)
    assert f"{found.val_ece_after:.4f}" in page and f"{found.threshold:.2f}" in page


def test_worst_mistakes_are_embedded_as_thumbnails(run_dir, page):
    wrong = val_mistakes(read(run_dir / "predictions.json"))
    assert page.count(DATA_URI) == min(MAX_MISTAKES, wrong)


def test_mistakes_are_capped_and_worst_first(run_copy):
    predictions = make_every_val_prediction_wrong(read(run_copy / "predictions.json"), copies=6)
    assert len(predictions) > MAX_MISTAKES
    write(run_copy / "predictions.json", predictions)
    page = render_report(run_copy)
    assert page.count(DATA_URI) == MAX_MISTAKES
    assert f"(of {len(predictions)})" in page
    losses = [float(x) for x in re.findall(r"<div>loss (\d+\.\d+)</div>", page)]
    assert len(losses) == MAX_MISTAKES and losses == sorted(losses, reverse=True)


def test_an_image_that_cannot_be_read_gets_a_placeholder_with_the_reason(run_copy, tmp_path):
    data = tmp_path / "moved-data"
    (data / "blue").mkdir(parents=True)
    good = next(p for p in read(run_copy / "predictions.json") if p["split"] == "val")
    source = Path(read(run_copy / "dataset.json")["root"]) / good["path"]
    whole = source.read_bytes()
    (data / "blue" / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    index = read(run_copy / "dataset.json")
    write(run_copy / "dataset.json", {**index, "root": str(data)})
    wrong = {"split": "val", "label": 0, "pred": 1, "probs": [0.1, 0.8, 0.1]}
    write(run_copy / "predictions.json", [{**wrong, "path": "blue/cut.jpg"}, {**wrong, "path": "blue/gone.jpg"}])
    page = render_report(run_copy)
    assert page.count(DATA_URI) == 0
    assert page.count('class="placeholder"') == 2
    assert html.escape(REASON_TEXT[TRUNCATED]) in page
    assert "no longer there" in page


def test_the_page_has_no_external_address(page):
    assert "http://" not in page.lower() and "https://" not in page.lower()
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(?!data:image/jpeg;base64,|#)', page)


def test_a_web_address_in_a_class_name_is_not_written_as_one(run_copy):
    metrics = read(run_copy / "metrics.json")
    metrics["classes"][0] = "see https://example.org"
    metrics["per_class"] = {metrics["classes"][i]: v for i, v in enumerate(metrics["per_class"].values())}
    write(run_copy / "metrics.json", metrics)
    page = render_report(run_copy)
    assert "https://" not in page and "see https:&#47;&#47;example.org" in page


def test_a_run_started_from_an_earlier_run_names_it_and_its_classes(run_copy):
    summary = read(run_copy / "summary.json")
    assert 'class="note origin"' not in render_report(run_copy)  # started from ImageNet: no origin line
    summary["origin"] = {"run_id": "2026-12-01_10-00-00_efficientnet_lite0", "run_name": "three <cells>", "backbone": "efficientnet_lite0",
                         "data_dir": "/data/cells", "classes": ["basophil", "eosinophil & co"], "val_accuracy": 0.93}
    write(run_copy / "summary.json", summary)
    page = render_report(run_copy)
    origin = re.search(r'<p class="note origin" data-origin-run="([^"]+)">(.*?)</p>', page)
    assert origin and origin.group(1) == "2026-12-01_10-00-00_efficientnet_lite0"
    assert html.escape("three <cells>") in origin.group(2) and html.escape("eosinophil & co") in origin.group(2) and "93.0%" in origin.group(2)


def test_edited_pictures_are_listed_and_an_edited_validation_set_is_flagged(run_copy):
    summary = read(run_copy / "summary.json")
    summary["data_edits"] = {"excluded": {"train": 1}, "relabelled": {"val": 1}, "not_applied": [], "validation_edited": True,
                             "paths": [["red/a <1>.jpg", "exclude", ""], ["blue/b.jpg", "relabel", "green"]]}
    write(run_copy / "summary.json", summary)
    page = render_report(run_copy)
    block = re.search(r'<div class="missing edits" data-validation-edited="1">(.*?)</div>', page, re.S)
    assert block and html.escape("red/a <1>.jpg") in block.group(1) and block.group(1).count("<li>") == 2


# ------------------------------------------------------------------------------- missing parts


def test_without_history_the_report_says_curves_are_unavailable(run_copy):
    (run_copy / "history.jsonl").unlink()
    page = render_report(run_copy)
    assert "curves are unavailable" in page and "history.jsonl is missing" in page
    assert not any(f'data-series="{series}"' in page for series in SERIES)
    assert page.count("<svg") == 1  # only the reliability diagram, from summary.json
    assert 'class="confusion"' in page


def test_a_stopped_run_shows_what_exists_and_names_what_is_missing(run_copy):
    for part in ("metrics", "predictions", "summary"):
        (run_copy / RUN_PARTS[part]).unlink()
    page = render_report(run_copy)
    assert "Not finished" in page
    for name in ("metrics.json", "predictions.json", "summary.json"):
        assert f"{name} is missing" in page
    assert page.count('data-series="val_acc"') == 3
    assert "<h2>Dataset</h2>" in page and 'class="confusion"' not in page


def test_a_damaged_file_is_reported_not_fatal(run_copy):
    (run_copy / "metrics.json").write_text("{ half a file", encoding="utf-8")
    page = render_report(run_copy)
    assert "metrics.json could not be read" in page
    assert page.count('data-series="train_loss"') == 3


def test_a_folder_that_is_not_a_run_is_refused_by_name(tmp_path):
    (tmp_path / "holiday.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="is not a training run"):
        render_report(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        render_report(tmp_path / "nowhere")


def test_run_parts_are_the_files_run_files_writes_and_a_report_needs_no_torch(tmp_path, run_copy):
    files = RunFiles(tmp_path)
    assert {part: getattr(files, part).name for part in RUN_PARTS} == RUN_PARTS
    code = f"import sys; from tlstudio.core.report.html import render_report; render_report({str(run_copy)!r}); assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).returncode == 0


# ------------------------------------------------------------------------------- writing and the CLI


def test_write_report_writes_the_rendered_page(run_copy, tmp_path):
    out = write_report(run_copy, tmp_path / "out" / "report.html")
    assert out.read_text(encoding="utf-8") == render_report(run_copy)
    assert out.stat().st_size < 1_000_000
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]


def test_cli_writes_the_report_and_prints_its_path(run_copy, tmp_path, capsys):
    assert main(["report", str(run_copy)]) == 0
    assert capsys.readouterr().out.strip() == str(run_copy / "report.html")
    assert (run_copy / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    out = tmp_path / "for-anna.html"
    assert main(["report", str(run_copy), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.is_file()


@pytest.mark.parametrize("target", ["empty", "nowhere"])
def test_cli_refuses_a_folder_that_is_not_a_run_with_one_line(tmp_path, capsys, target):
    folder = tmp_path / target
    if target == "empty":
        folder.mkdir()
    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert target in err and len(err.splitlines()) == 1
    assert not (folder / "report.html").exists()


# ------------------------------------------------------------------------------- real photographs


@pytest.mark.slow
def test_report_of_a_hymenoptera_run(hymenoptera, tmp_path):
    cfg = TrainConfig(data_dir=str(hymenoptera), backbone="efficientnet_lite0", freeze_depth="all", epochs=5, export=False)
    Trainer(cfg, tmp_path / "run", cache_dir=tmp_path / "cache").run()
    page = render_report(tmp_path / "run")
    assert "ants" in page and "bees" in page
    assert len(re.findall(r'<td class="cm" data-matrix="val"', page)) == 4
    for series in SERIES:
        assert page.count(f'data-series="{series}"') == 1  # a frozen head: one fit, one point
    wrong = val_mistakes(read(tmp_path / "run" / "predictions.json"))
    assert page.count(DATA_URI) == min(MAX_MISTAKES, wrong)
    assert "http://" not in page and "https://" not in page
