"""Decisions about single pictures: left out of training or given another class, kept in the project, applied to the next run exactly.

The user's files are never touched: every test that applies decisions checks them byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.synthetic import make_colour_dataset
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.scan import scan_folder
from tlstudio.core.engine.trainer import Trainer
from tlstudio.core.errors import UserError
from tlstudio.core.quality import edits as ed
from tlstudio.core.runs.files import RunFiles


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_colour_dataset(tmp_path_factory.mktemp("edits") / "colours", per_class=10)


def chosen(index):
    train, val = index.split("train"), index.split("val")
    return train[0], train[1], train[2], val[0]


def test_the_next_run_trains_on_exactly_the_edited_pictures_and_says_so(data, tmp_path):
    before = fingerprint(data)
    index = scan_folder(data, val_split=0.3, seed=0)
    out_a, out_b, moved, val_moved = chosen(index)
    decisions = ed.DataEdits()
    decisions.exclude(out_a)
    decisions.exclude(out_b)
    other = next(c for c in index.classes if c != index.classes[moved.label])
    decisions.relabel(moved, other, index.classes)
    decisions.relabel(val_moved, next(c for c in index.classes if c != index.classes[val_moved.label]), index.classes)
    cfg = TrainConfig(data_dir=str(data), val_split=0.3, image_size=64, batch_size=8, export=False, data_edits=decisions.to_list())
    result = Trainer(cfg, tmp_path / "run", cache_dir=tmp_path / "cache", index=index).run()

    used = {s["path"]: s for s in RunFiles(tmp_path / "run").read_json(RunFiles(tmp_path / "run").dataset)["samples"]}
    assert set(used) == {s.path for s in index.samples} - {out_a.path, out_b.path}
    classes = result.summary["classes"]
    assert classes[used[moved.path]["label"]] == other
    assert used[val_moved.path]["label"] != val_moved.label
    assert all(used[s.path]["label"] == s.label for s in index.samples if s.path not in (out_a.path, out_b.path, moved.path, val_moved.path))
    record = result.summary["data_edits"]
    assert record["excluded"] == {"train": 2} and record["relabelled"] == {"train": 1, "val": 1}
    assert record["validation_edited"] is True
    assert fingerprint(data) == before


def test_decisions_survive_reopening_and_undo_removes_one(data, tmp_path):
    index = scan_folder(data, val_split=0.3, seed=0)
    a, b, _, _ = chosen(index)
    decisions = ed.DataEdits()
    decisions.exclude(a)
    decisions.relabel(b, index.classes[-1], index.classes)
    ed.save_edits(tmp_path, decisions)
    again = ed.load_edits(tmp_path)
    assert again.edits == decisions.edits
    again.keep(a.path)  # undo
    ed.save_edits(tmp_path, again)
    assert set(ed.load_edits(tmp_path).edits) == {b.path}
    with pytest.raises(UserError):
        again.relabel(b, "no such class", index.classes)


def test_a_picture_changed_since_the_decision_is_not_edited_and_is_listed(data, tmp_path):
    index = scan_folder(data, val_split=0.3, seed=0)
    a = index.split("train")[0]
    decisions = ed.DataEdits({a.path: ed.Edit(a.path, "0" * 64, ed.EXCLUDE)})  # another content than the file's
    edited, record = ed.apply_edits(index, decisions)
    assert edited.samples == index.samples and record.not_applied == (a.path,) and not record.validation_edited


def test_a_damaged_decisions_file_is_a_clear_error(tmp_path):
    (tmp_path / ed.FILE_NAME).write_text(json.dumps({"edits": [{"path": "a.jpg", "digest": "x", "action": "delete"}]}))
    with pytest.raises(UserError):
        ed.load_edits(tmp_path)
