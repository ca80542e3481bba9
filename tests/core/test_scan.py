"""Scanning a folder: every good image used, every bad file reported with its reason, fatal folders refused in one sentence."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from tests.core.messy_folder import build_messy_folder, jpeg_bytes, make_tree, noise, truncated_jpeg
from tlstudio.core.data.scan import IGNORED_NAMES, IMAGE_EXTENSIONS, load_index, save_index, scan_folder
from tlstudio.core.data.index import TRUNCATED, DatasetError
from tlstudio.core.events import Cancelled, PhaseStarted, Progress, StopToken
from tlstudio.core.data.scan_report import format_report


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    return build_messy_folder(tmp_path_factory.mktemp("messy") / "data")


@pytest.fixture(scope="module")
def messy_index(messy):
    return scan_folder(messy.root, workers=2)


def test_every_good_image_is_used_and_every_bad_file_reported(messy, messy_index):
    assert {s.path for s in messy_index.samples} == messy.good
    assert {s.path: s.reason for s in messy_index.skipped} == messy.bad
    assert messy_index.ignored == messy.ignored
    assert messy_index.classes == ["cats", "dogs", "ñandú"]
    assert messy_index.split_source == "seeded"
    assert messy_index.seconds < 10


def test_samples_carry_upright_size_and_content_digest(messy, messy_index):
    by_path = {s.path: s for s in messy_index.samples}
    rotated = by_path["dogs/rotated.jpg"]
    assert (rotated.width, rotated.height) == (32, 64)
    assert rotated.size == (messy.root / "dogs/rotated.jpg").stat().st_size
    assert by_path["cats/same.jpg"].digest == by_path["dogs/same copy.jpg"].digest
    assert len({s.digest for s in messy_index.samples}) == len(messy_index.samples) - 1
    assert [messy_index.classes[s.label] for s in messy_index.samples] == sorted(s.path.split("/")[0] for s in messy_index.samples)


def test_exact_report_of_the_messy_folder(messy, messy_index):
    index = dataclasses.replace(messy_index, seconds=0.25, files_per_s=116.0)
    assert format_report(index) == f"""\
Data folder: {messy.root.resolve()}
23 images in 3 classes.
Split: drawn per class with seed 0: 80% train, 20% val.

class  train  val  total
cats       6    2      8
dogs       7    1      8
ñandú      6    1      7
total     19    4     23

Skipped files (6), left out of training:
  The file is empty (0 bytes). Copy it again from its source.
    cats/empty.jpg
  The file is not an image, or its format is not supported.
    cats/notes.jpg
  The image is cut off (incomplete download or copy). Copy it again from its source.
    dogs/truncated.jpg
  The image is so large that it could exhaust memory (possible decompression bomb). Downscale it first.
    dogs/bomb.png (200.0 megapixels, above the 89.5-megapixel limit)
  The file could not be read (permissions or a disk error).
    ñandú/gone.jpg
    ñandú/itself

Ignored on purpose: 8 hidden, system or non-image items.

Warnings (2):
  label conflict: The same picture is filed under 'cats' and 'dogs'; keep it in the right class only.
    cats/same.jpg
    dogs/same copy.jpg
  not in a class folder: 1 item(s) are not inside a class folder and were left out; move them into one if they belong to a class.
    stray.jpg

Scanned in 0.2 s (116 files/s).
"""


def test_identical_files_in_two_classes_share_a_split(messy_index):
    by_path = {s.path: s for s in messy_index.samples}
    assert by_path["cats/same.jpg"].split == by_path["dogs/same copy.jpg"].split
    assert [w.kind for w in messy_index.warnings if w.kind == "leakage"] == []


def test_progress_events_are_throttled_and_end_complete(messy):
    events = []
    index = scan_folder(messy.root, on_event=events.append)
    total = len(index.samples) + len(index.skipped) - 2  # the two broken links are found while walking
    assert events[0] == PhaseStarted("scanning", total)
    assert events[-1] == Progress(total, total)
    assert all(isinstance(e, Progress) for e in events[1:])
    assert len(events) - 1 <= 2 + 20 * index.seconds  # about 20 a second at most, and always the last one


def test_a_stop_cancels_the_scan(messy):
    stop = StopToken()
    stop.stop()
    with pytest.raises(Cancelled):
        scan_folder(messy.root, stop=stop)

    stop = StopToken()

    def stop_when_scanning_starts(event):
        if isinstance(event, PhaseStarted):
            stop.stop()

    with pytest.raises(Cancelled):
        scan_folder(messy.root, on_event=stop_when_scanning_starts, stop=stop)


def test_one_worker_finds_the_same_as_several(messy, messy_index):
    index = scan_folder(messy.root, workers=1)
    assert index.samples == messy_index.samples and index.skipped == messy_index.skipped


def test_extensions_and_ignored_names():
    assert IMAGE_EXTENSIONS == {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
    for name in (".DS_Store", "Thumbs.db", "desktop.ini", ".ipynb_checkpoints", "__MACOSX", "@eaDir", ".git"):
        assert name.lower() in IGNORED_NAMES


def test_split_folders_are_recognised_whatever_their_case_and_respected(tmp_path):
    make_tree(tmp_path, {"Train/a": 6, "Train/b": 6, "Validation/a": 2, "Validation/b": 3, "TEST/a": 1, "TEST/b": 1})
    index = scan_folder(tmp_path, val_split=0.5, seed=3)
    assert index.split_source == "folders"
    assert index.counts() == {"a": {"train": 6, "val": 2, "test": 1}, "b": {"train": 6, "val": 3, "test": 1}}
    assert all(s.path.split("/")[0] == {"train": "Train", "val": "Validation", "test": "TEST"}[s.split] for s in index.samples)


def test_identical_files_across_split_folders_are_reported_as_leakage(tmp_path):
    make_tree(tmp_path, {"train/a": 5, "train/b": 5, "val/a": 2, "val/b": 2})
    shutil.copy(tmp_path / "train/a/000.png", tmp_path / "val/a/copy.png")
    index = scan_folder(tmp_path)
    (leak,) = [w for w in index.warnings if w.kind == "leakage"]
    assert leak.paths == ("train/a/000.png", "val/a/copy.png") and "train and val" in leak.text


def test_few_images_and_imbalance_are_warned(tmp_path):
    make_tree(tmp_path, {"many": 44, "few": 4})
    warnings = {w.kind: w for w in scan_folder(tmp_path).warnings}
    assert set(warnings) == {"few images", "imbalance"}
    assert "'few' has only 4 image(s)" in warnings["few images"].text
    assert "'many' has 44 images but 'few' only 4" in warnings["imbalance"].text


def test_unicode_names_survive_a_save_and_load(tmp_path):
    make_tree(tmp_path / "data", {"Ärger": 3, "ñandú": 3, "日本": 3})
    (tmp_path / "data" / "日本" / "写真 1.jpg").write_bytes(jpeg_bytes(noise(20, 20, 9)))
    index = scan_folder(tmp_path / "data")
    assert index.classes == ["Ärger", "ñandú", "日本"]
    assert "日本/写真 1.jpg" in {s.path for s in index.samples}
    save_index(index, tmp_path / "index.json")
    assert load_index(tmp_path / "index.json") == index


def test_truncation_is_caught_during_the_scan(tmp_path):
    make_tree(tmp_path, {"a": 2, "b": 2})
    truncated_jpeg(tmp_path / "a" / "cut.jpg")
    assert [(s.path, s.reason) for s in scan_folder(tmp_path).skipped] == [("a/cut.jpg", TRUNCATED)]


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda root: root / "missing", "The folder '{root}/missing' does not exist; choose an existing folder"),
        (lambda root: make_tree(root, {"a": 1}) / "a" / "000.png", "'{root}/a/000.png' is a file, not a folder;"),
        (lambda root: root, "'{root}' has no class folders; put the images in one sub-folder per class"),
        (lambda root: make_tree(root, {"only": 3}), "'{root}' has only one class folder ('only'); add a sub-folder"),
        (lambda root: make_tree(root, {"a": 3, "b": 0}), "The class folder 'b' in '{root}' has no usable image; add images to it or remove the folder"),
        (lambda root: make_tree(root, {"a": 0, "b": 0, "c": 1}), "The class folders 'a', 'b' in '{root}' have no usable image"),
        (lambda root: make_tree(root, {"a": 0, "b": 0}), "No usable image was found in '{root}';"),
    ],
    ids=["missing", "file", "no classes", "one class", "empty class", "empty classes", "no images"],
)
def test_unusable_folders_raise_one_sentence_naming_the_folder(tmp_path, build, message):
    root = tmp_path / "data"
    root.mkdir()
    with pytest.raises(DatasetError) as info:
        scan_folder(build(root))
    text = str(info.value)
    assert text.startswith(message.format(root=root.resolve())) and "\n" not in text


def test_real_hymenoptera_folder(hymenoptera: Path):
    index = scan_folder(hymenoptera)
    assert index.classes == ["ants", "bees"]
    assert index.split_source == "folders"
    assert (len(index.split("train")), len(index.split("val")), len(index.split("test"))) == (245, 153, 0)
    assert index.skipped == [] and index.warnings == [] and index.ignored == 0
