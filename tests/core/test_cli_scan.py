"""`tlstudio scan` from a terminal: the report or the JSON index on stdout, one line and exit 2 for anything unusable."""

from __future__ import annotations

import json

import pytest

from tests.core.messy_folder import make_tree, truncated_jpeg
from tlstudio.cli import main
from tlstudio.core.data.index import DatasetIndex


@pytest.fixture
def data(tmp_path):
    root = make_tree(tmp_path / "data", {"a": 10, "b": 10})
    truncated_jpeg(root / "b" / "cut.jpg")
    return root


def test_json_output_is_the_dataset_index(data, capsys):
    assert main(["scan", str(data), "--val-split", "0.3", "--test-split", "0.1", "--seed", "4", "--json"]) == 0
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert record["counts"] == {"a": {"train": 6, "val": 3, "test": 1}, "b": {"train": 6, "val": 3, "test": 1}}
    assert record["skipped"] == [{"path": "b/cut.jpg", "reason": "truncated", "detail": record["skipped"][0]["detail"], "pixels": 0}]
    index = DatasetIndex.from_dict(record)
    assert (index.val_split, index.test_split, index.seed, index.split_source) == (0.3, 0.1, 4, "seeded")
    assert err == ""  # no progress when stderr is not a terminal


def test_report_is_printed_by_default(data, capsys):
    assert main(["scan", str(data)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Data folder: {data.resolve()}\n20 images in 2 classes.\n")
    assert "    b/cut.jpg\n" in out and ["total", "16", "4", "20"] in [line.split() for line in out.splitlines()]


def one_line_error(argv, capsys) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("tlstudio: error: ")
    return err


def test_missing_folder(tmp_path, capsys):
    assert "does not exist" in one_line_error(["scan", str(tmp_path / "nope")], capsys)


def test_file_instead_of_folder(data, capsys):
    assert "is a file, not a folder" in one_line_error(["scan", str(data / "a" / "000.png")], capsys)


def test_folder_with_one_class(tmp_path, capsys):
    root = make_tree(tmp_path / "one", {"only": 3})
    assert "only one class folder ('only')" in one_line_error(["scan", str(root)], capsys)


def test_class_without_a_valid_image(tmp_path, capsys):
    root = make_tree(tmp_path / "d", {"a": 3, "b": 0})
    truncated_jpeg(root / "b" / "cut.jpg")
    assert "class folder 'b'" in one_line_error(["scan", str(root)], capsys)


@pytest.mark.parametrize(
    "options, words",
    [
        (["--val-split", "1.5"], "--val-split must be a fraction"),
        (["--val-split", "-0.1"], "--val-split must be a fraction"),
        (["--val-split", "nan"], "--val-split must be a fraction"),
        (["--test-split", "1"], "--test-split must be a fraction"),
        (["--val-split", "0.6", "--test-split", "0.4"], "--val-split + --test-split must be less than 1"),
        (["--val-split", "lots"], "--val-split"),
    ],
)
def test_bad_split_settings(data, capsys, options, words):
    assert words in one_line_error(["scan", str(data), *options], capsys)
