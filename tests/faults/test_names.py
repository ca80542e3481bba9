"""Names from the disk: Unicode twins merged and flagged, case-only classes flagged, each file used once, hidden characters shown as escapes."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from tests.faults.readable import assert_readable
from tests.synthetic import COLOURS, colour_image
from tlstudio.cli import main
from tlstudio.core.data.index import (
    CASE_ONLY_WARNING,
    LOOKALIKE_FILES_WARNING,
    MERGED_FOLDERS_WARNING,
    BAD_NAME,
    REASON_TEXT,
    SAME_FILE,
    DatasetError,
    DatasetIndex,
)
from tlstudio.core.data.scan import dataset_warnings, load_index, save_index, scan_folder
from tlstudio.core.data.scan_report import format_report
from tlstudio.core.names import printable, printable_json

NFC, NFD = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
RLO = "\u202e"


def images(folder: Path, n: int, seed: int, colour: str = "red", prefix: str = "") -> list[str]:
    """``n`` distinct pictures in ``folder``; their names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = [f"{prefix}{i:02d}.png" for i in range(n)]
    for name in names:
        colour_image(rng, COLOURS[colour], size=24).save(folder / name)
    return names


def kinds(index: DatasetIndex, kind: str):
    return [w for w in index.warnings if w.kind == kind]


def every_message(index: DatasetIndex) -> str:
    return "\n".join([format_report(index), *(w.text for w in index.warnings), *(s.detail for s in index.skipped)])


@pytest.fixture
def unicode_twins(tmp_path):
    """Two class folders, 'café' in NFC and in NFD (as a Mac writes it), next to 'tea'."""
    root = tmp_path / "data"
    images(root / NFC, 4, seed=1)
    images(root / NFD, 3, seed=2)
    images(root / "tea", 6, seed=3, colour="green")
    if len(os.listdir(root)) < 3:
        pytest.skip("this file system stores NFC and NFD names as one (macOS)")
    return root


def test_nfc_and_nfd_class_folders_are_one_class_and_no_image_is_lost(unicode_twins):
    index = scan_folder(unicode_twins)
    assert index.classes == [NFC, "tea"]
    assert index.counts()[NFC]["train"] + index.counts()[NFC]["val"] == 7
    assert {s.path.split("/")[0] for s in index.samples if s.label == 0} == {NFC, NFD}  # the real names, as on disk
    assert all((unicode_twins / s.path).is_file() for s in index.samples)
    (merged,) = kinds(index, MERGED_FOLDERS_WARNING)
    assert sorted(merged.paths) == sorted([f"{NFC}/", f"{NFD}/"])
    assert index.skipped == []
    assert_readable(every_message(index))


def test_merge_is_derived_from_the_index_alone(unicode_twins):
    index = scan_folder(unicode_twins)
    assert [w.kind for w in dataset_warnings(index)] == [w.kind for w in index.warnings]


def test_nfc_and_nfd_class_folders_inside_split_folders_are_merged(tmp_path):
    root = tmp_path / "data"
    images(root / "train" / NFC, 3, seed=1)
    images(root / "train" / NFD, 3, seed=2)
    images(root / "train" / "tea", 5, seed=3, colour="green")
    images(root / "val" / NFD, 2, seed=4)
    images(root / "val" / "tea", 2, seed=5, colour="green")
    if len(os.listdir(root / "train")) < 3:
        pytest.skip("this file system stores NFC and NFD names as one (macOS)")
    index = scan_folder(root)
    assert index.split_source == "folders"
    assert index.counts() == {NFC: {"train": 6, "val": 2, "test": 0}, "tea": {"train": 5, "val": 2, "test": 0}}
    (merged,) = kinds(index, MERGED_FOLDERS_WARNING)
    assert sorted(merged.paths) == sorted([f"train/{NFC}/", f"train/{NFD}/"])


def test_two_folders_of_one_split_are_both_used(tmp_path):
    root = tmp_path / "data"
    for split, seed in (("train", 1), ("Train", 2)):
        images(root / split / "a", 3, seed=seed)
        images(root / split / "b", 3, seed=seed + 10, colour="blue")
    images(root / "val" / "a", 2, seed=30)
    images(root / "val" / "b", 2, seed=31, colour="blue")
    if len(os.listdir(root)) < 3:
        pytest.skip("this file system does not keep names that differ only in case apart")
    index = scan_folder(root)
    assert index.counts() == {"a": {"train": 6, "val": 2, "test": 0}, "b": {"train": 6, "val": 2, "test": 0}}
    assert {w.paths for w in kinds(index, MERGED_FOLDERS_WARNING)} == {("Train/a/", "train/a/"), ("Train/b/", "train/b/")}
    assert index.ignored == 0 and kinds(index, "not in a class folder") == []


def test_nfc_equal_file_names_in_one_folder_are_both_kept_and_flagged(tmp_path):
    root = tmp_path / "data"
    images(root / "a", 3, seed=1, prefix=NFC)
    images(root / "a", 1, seed=2, prefix=NFD)
    images(root / "b", 3, seed=3, colour="blue")
    if len(os.listdir(root / "a")) < 4:
        pytest.skip("this file system stores NFC and NFD names as one (macOS)")
    index = scan_folder(root)
    assert {s.path for s in index.samples if s.label == 0} == {f"a/{NFC}00.png", f"a/{NFC}01.png", f"a/{NFC}02.png", f"a/{NFD}00.png"}
    (alike,) = kinds(index, LOOKALIKE_FILES_WARNING)
    assert sorted(alike.paths) == sorted([f"a/{NFC}00.png", f"a/{NFD}00.png"])
    assert_readable(every_message(index))


def test_case_only_class_names_stay_two_classes_and_are_flagged(tmp_path):
    root = tmp_path / "data"
    images(root / "Cat", 5, seed=1)
    images(root / "cat", 5, seed=2)
    images(root / "dog", 5, seed=3, colour="blue")
    if len(os.listdir(root)) < 3:
        pytest.skip("this file system does not keep names that differ only in case apart")
    index = scan_folder(root)
    assert index.classes == ["Cat", "cat", "dog"]
    (case,) = kinds(index, CASE_ONLY_WARNING)
    assert case.paths == ("Cat/", "cat/")
    assert kinds(index, MERGED_FOLDERS_WARNING) == []
    assert_readable(every_message(index))


def test_a_symlinked_and_a_hard_linked_file_are_used_once_and_listed_as_skipped(tmp_path):
    root = tmp_path / "data"
    images(root / "a", 4, seed=1)
    images(root / "b", 4, seed=2, colour="blue")
    (root / "a" / "link.png").symlink_to("00.png")
    os.link(root / "b" / "00.png", root / "b" / "zz hard.png")
    os.link(root / "a" / "01.png", root / "b" / "from a.png")  # the same file in two classes
    index = scan_folder(root)
    assert len(index.samples) == 8
    assert {s.path for s in index.samples} == {f"{c}/{i:02d}.png" for c in "ab" for i in range(4)}
    assert {s.path: s.reason for s in index.skipped} == {"a/link.png": SAME_FILE, "b/zz hard.png": SAME_FILE, "b/from a.png": SAME_FILE}
    details = {s.path: s.detail for s in index.skipped}
    assert "a/00.png" in details["a/link.png"] and "b/00.png" in details["b/zz hard.png"]
    assert "a/01.png" in details["b/from a.png"] and "'a'" in details["b/from a.png"]  # says which class it is used in
    report = format_report(index)
    assert REASON_TEXT[SAME_FILE] in report and "    a/link.png (" in report
    assert_readable(every_message(index))


def test_the_real_file_is_kept_rather_than_the_link_whatever_the_names(tmp_path):
    root = tmp_path / "data"
    images(root / "a", 3, seed=1, prefix="z")
    images(root / "b", 3, seed=2, colour="blue")
    (root / "a" / "a link.png").symlink_to("z00.png")
    index = scan_folder(root)
    assert [(s.path, s.reason) for s in index.skipped] == [("a/a link.png", SAME_FILE)]
    assert "a/z00.png" in {s.path for s in index.samples}


@pytest.fixture
def bidi(tmp_path):
    """A file named so that U+202E makes it look like 'cat_fdp.jpg' reversed: a real PNG behind a lying name."""
    root = tmp_path / "data"
    images(root / "a", 3, seed=1)
    images(root / f"b{RLO}x", 3, seed=2, colour="blue")
    (root / "a" / "00.png").rename(root / "a" / f"cat{RLO}gnp.png")
    return root


def test_scan_output_shows_bidi_characters_as_escapes_and_the_index_keeps_the_real_path(bidi, capsys):
    assert main(["scan", str(bidi)]) == 0
    out, err = capsys.readouterr()
    assert RLO not in out + err
    assert "a/cat\\u202egnp.png" not in out  # a good image is not listed; its class is
    assert "b\\u202ex" in out
    assert_readable(out + err)

    assert main(["scan", str(bidi), "--json"]) == 0
    out = capsys.readouterr().out
    assert RLO not in out and "\\u202e" in out
    index = DatasetIndex.from_dict(json.loads(out))
    assert f"a/cat{RLO}gnp.png" in {s.path for s in index.samples}  # the real name, unchanged
    assert (bidi / f"a/cat{RLO}gnp.png").is_file()
    assert index.classes == ["a", f"b{RLO}x"]


def test_skipped_and_warned_names_are_escaped_in_the_report(bidi):
    (bidi / "a" / f"evil{RLO}.jpg").write_bytes(b"")
    index = scan_folder(bidi)
    report = format_report(index)
    assert RLO not in report and "a/evil\\u202e.jpg" in report
    assert [s.path for s in index.skipped] == [f"a/evil{RLO}.jpg"]


def test_errors_naming_a_folder_escape_it(tmp_path, capsys):
    root = tmp_path / f"da{RLO}ta"
    images(root / f"on{RLO}ly", 3, seed=1)
    with pytest.raises(DatasetError) as info:
        scan_folder(root)
    assert RLO not in str(info.value) and "on\\u202ely" in str(info.value)
    assert info.value.path == str(root.resolve())  # the real path, for code
    assert main(["scan", str(root)]) == 2
    err = capsys.readouterr().err
    assert RLO not in err and err.count("\n") == 1
    assert_readable(err)


def bytes_name(folder: Path, name: bytes, to: bytes) -> None:
    try:
        os.rename(os.fsencode(folder) + b"/" + name, os.fsencode(folder) + b"/" + to)
    except (OSError, UnicodeError):
        pytest.skip("this file system only keeps names that are valid UTF-8")


def test_names_that_are_not_utf8_are_skipped_with_their_bytes_shown_and_the_index_still_saves(tmp_path, capsys):
    root = tmp_path / "data"
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        images(root / name, 3, seed=seed)
    bytes_name(root, b"c", b"c\xff")
    bytes_name(root / "a", b"00.png", b"\xfe.png")
    index = scan_folder(root)
    assert index.classes == ["a", "b"]
    assert {s.path: s.reason for s in index.skipped} == {"a/\\xfe.png": BAD_NAME, "c\\xff": BAD_NAME}
    save_index(index, tmp_path / "index.json")
    assert load_index(tmp_path / "index.json") == index
    assert main(["scan", str(root)]) == 0 and main(["scan", str(root), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "c\\xff" in out and err == ""
    assert_readable(out)


def test_a_class_lost_to_a_name_that_is_not_utf8_is_named_in_the_error(tmp_path, capsys):
    root = tmp_path / "data"
    images(root / "a", 3, seed=1)
    images(root / "b", 3, seed=2)
    bytes_name(root, b"b", b"b\xff")
    assert main(["scan", str(root)]) == 2
    err = capsys.readouterr().err
    assert "only one class folder ('a')" in err and "'b\\xff'" in err and err.count("\n") == 1
    assert_readable(err)


@pytest.mark.parametrize(
    "name, shown",
    [
        ("plain ñandú 日本.jpg", "plain ñandú 日本.jpg"),
        (f"x{RLO}y", "x\\u202ey"),
        ("a\nb\tc\x1b[31m", "a\\x0ab\\x09c\\x1b[31m"),
        ("\x85\u061c\u200e\u200f\u2066\u2069\u202a", "\\x85\\u061c\\u200e\\u200f\\u2066\\u2069\\u202a"),
        ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
        ("tag\U000e0041", "tag\\U000e0041"),
        ("bad byte \udcff", "bad byte \\udcff"),  # how Python spells a name that is not valid UTF-8
        ("می\u200cخواهم", "می\u200cخواهم"),  # a joiner is part of the spelling
    ],
)
def test_printable(name, shown):
    assert printable(name) == shown


def test_printable_json_loads_back_the_same():
    record = {"path": f"a{RLO}b\n\x85\udcff\U000e0041 ñ"}
    text = printable_json(json.dumps(record, indent=2, ensure_ascii=False))
    assert all(ch not in text for ch in (RLO, "\x85", "\udcff", "\U000e0041")) and "ñ" in text
    assert json.loads(text) == record


def test_the_html_report_shows_bidi_characters_in_class_names_as_escapes():
    from tlstudio.core.report.html import confusion_table

    table = confusion_table([[3, 1], [0, 4]], [f"cat{RLO}<b>", "dog"], "val")
    assert RLO not in table and "cat\\u202e&lt;b&gt;" in table


def test_a_data_folder_whose_path_is_not_utf8_is_refused_in_one_sentence(tmp_path, capsys):
    images(tmp_path / "d" / "a", 2, seed=1)
    images(tmp_path / "d" / "b", 2, seed=2)
    bytes_name(tmp_path, b"d", b"d\xff")
    root = os.fsdecode(os.fsencode(tmp_path) + b"/d\xff")
    assert main(["scan", root]) == 2
    err = capsys.readouterr().err
    assert "d\\xff' is not valid text" in err and err.count("\n") == 1
    assert_readable(err)
