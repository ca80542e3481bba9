"""Issue 13, item 3: `train` shows the dataset's warnings, and what the run does about each, before it spends time.

The folder here has a label conflict (one file in two classes), a leak (a training file copied into
val) and a class of one picture (so also no validation folder for it). The plan carries each warning
with its action code; the CLI prints them before the first epoch line, and the window's Train step
shows them before its first epoch. A picture over Pillow's pixel limit never brings Pillow's raw
warning to the terminal: it is skipped with its pixel count.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.faults.readable import assert_readable
from tests.synthetic import COLOURS, colour_image
from tlstudio.core.config import TrainConfig
from tlstudio.core.data import images
from tlstudio.core.data import index as ix
from tlstudio.core.data.scan import scan_folder
from tlstudio.core.engine import dataset_actions as da
from tlstudio.core.engine.plan import PlanMade, warning_messages
from tlstudio.core.events import EpochEnded, Message, PhaseStarted

HAS_QT = all(importlib.util.find_spec(name) for name in ("PySide6", "pytestqt"))
if HAS_QT:
    from tests.gui.conftest import new_window, settings  # noqa: F401 - the window fixtures

RAW_WARNING = re.compile(r"\.py:\d+: \w*Warning")  # how Python prints a warning nobody caught


def messy_folder(root: Path) -> Path:
    """train/{red,blue} x 6 and val/{red,blue} x 2, plus train/green with 1 picture, a conflict and a leak."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("val", 2)):
        for name in ("red", "blue"):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                colour_image(rng, COLOURS[name], 32).save(root / split / name / f"{name}_{i}.jpg")
    (root / "train" / "green").mkdir()
    colour_image(rng, COLOURS["green"], 32).save(root / "train" / "green" / "only.jpg")
    shutil.copy(root / "train" / "red" / "red_0.jpg", root / "train" / "blue" / "conflict.jpg")  # label conflict
    shutil.copy(root / "train" / "red" / "red_1.jpg", root / "val" / "red" / "leak.jpg")  # leak across splits
    return root


def huge_jpeg(path: Path) -> Path:
    """A real 12000x9000 JPEG (108 megapixels, over Pillow's 89.5): one flat grey, about 1 MB, well under a second."""
    Image.new("L", (12000, 9000), 120).save(path)
    return path


def fast_config(data: Path, **kw) -> TrainConfig:
    base = dict(data_dir=str(data), backbone="efficientnet_lite0", freeze_depth="all", epochs=1, batch_size=8, image_size=64, export=False)
    return TrainConfig(**{**base, **kw})


@pytest.fixture
def messy(tmp_path) -> Path:
    return messy_folder(tmp_path / "data")


def actions(planned) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for w in planned:
        kind, action = (w.kind, w.action) if isinstance(w, da.PlannedWarning) else (w["kind"], w["action"])
        out.setdefault(kind, set()).add(action)
    return out


EXPECTED = {
    ix.LABEL_CONFLICT_WARNING: {da.KEPT_IN_BOTH},
    ix.LEAKAGE_WARNING: {da.MEASURED_ANYWAY},
    ix.FEW_IMAGES_WARNING: {da.NOT_MEASURED},  # one picture, in train: learnt, never measured
    ix.MISSING_SPLIT_WARNING: {da.NOT_MEASURED},
}


def test_the_plan_carries_every_warning_with_what_the_run_does(messy):
    index = scan_folder(messy)
    planned = da.plan_warnings(index, "auto", cross_validated=True)
    found = actions(planned)
    for kind, action in EXPECTED.items():
        assert found[kind] == action
    assert found[da.CLASS_IMBALANCE] == {da.WEIGHTING_CROSS_VALIDATED}  # 7 blue vs 1 green training pictures
    conflict = next(w for w in planned if w.kind == ix.LABEL_CONFLICT_WARNING)
    assert set(conflict.paths) == {"train/red/red_0.jpg", "train/blue/conflict.jpg"}
    # Without a frozen-feature fit the weighting rule decides; an explicit setting is used as set.
    assert actions(da.plan_warnings(index, "auto", cross_validated=False))[da.CLASS_IMBALANCE] == {da.WEIGHTING_BALANCED}
    assert actions(da.plan_warnings(index, "none", cross_validated=True))[da.CLASS_IMBALANCE] == {da.WEIGHTING_AS_SET}
    for message in warning_messages(planned):
        assert message.level == "warning"
        assert_readable(message.text)


def test_every_kind_gets_an_action_even_one_the_plan_does_not_know(messy):
    index = scan_folder(messy)
    green = index.classes.index("green")
    # The one green picture moved to val: a class nobody trains on.
    index.samples = [dataclasses.replace(s, split="val") if s.label == green else s for s in index.samples]
    index.warnings = [
        ix.Warning_(ix.MISSING_SPLIT_WARNING, "Class 'green' has no images in its train folder.", classes=("green",)),
        ix.Warning_(ix.MERGED_FOLDERS_WARNING, "Two folders were merged."),
        ix.Warning_(ix.CASE_ONLY_WARNING, "Two class names differ only in case."),
        ix.Warning_(ix.LOOKALIKE_FILES_WARNING, "Two file names look alike."),
        ix.Warning_("a kind added later", "Something to look at."),
    ]
    found = actions(da.plan_warnings(index, "auto", cross_validated=True))
    assert found[ix.MISSING_SPLIT_WARNING] == {da.NOT_LEARNT}
    assert found[ix.MERGED_FOLDERS_WARNING] == {da.TRAINED_AS_ONE}
    assert found[ix.CASE_ONLY_WARNING] == {da.KEPT_APART}
    assert found[ix.LOOKALIKE_FILES_WARNING] == {da.USED_AS_IS}
    assert found["a kind added later"] == {da.USED_AS_IS}
    for message in warning_messages(da.plan_warnings(index, "auto", cross_validated=True)):
        assert_readable(message.text)


def test_skipped_files_are_planned_by_reason(messy):
    index = scan_folder(messy)
    index.warnings = []
    index.skipped = [
        ix.Skipped("red/a.jpg", ix.TOO_MANY_PIXELS, pixels=108_000_000),
        ix.Skipped("red/b.jpg", ix.TOO_MANY_PIXELS, pixels=200_000_000),
        ix.Skipped("red/c.jpg", ix.EMPTY),
        ix.Skipped("red/d.jpg", ix.SAME_FILE, "the same file as red/e.jpg"),
    ]
    planned = da.plan_warnings(index, "auto", cross_validated=True)
    by_paths = {w.paths: w.action for w in planned if w.kind == da.SKIPPED_FILES}
    assert by_paths == {("red/a.jpg", "red/b.jpg"): da.LEFT_OUT, ("red/c.jpg",): da.LEFT_OUT, ("red/d.jpg",): da.USED_ONCE}
    for message in warning_messages(planned):
        assert_readable(message.text)


def test_many_warnings_of_one_kind_are_summed_up(messy):
    index = scan_folder(messy)
    index.warnings = [ix.Warning_("a kind added later", f"Thing {i}.") for i in range(10)]
    planned = da.plan_warnings(index, "auto", cross_validated=True)
    assert len([w for w in planned if w.kind == "a kind added later"]) == 10  # every one is in the plan
    assert len(warning_messages(planned)) < 10  # the user reads a few and a count


def test_the_trainer_shows_the_warnings_before_decoding_or_training(messy, tmp_path):
    from tlstudio.core.engine.trainer import Trainer

    events = []
    result = Trainer(fast_config(messy), tmp_path / "run", cache_dir=tmp_path / "cache").run(events.append)
    plan = result.plan
    for kind, action in EXPECTED.items():
        assert actions(plan.warnings)[kind] == action
    assert actions(result.summary["plan"]["warnings"]) == actions(plan.warnings)  # recorded with the run
    made = next(i for i, e in enumerate(events) if isinstance(e, PlanMade))
    decoding = next(i for i, e in enumerate(events) if isinstance(e, PhaseStarted) and e.name == "decoding")
    first_epoch = next(i for i, e in enumerate(events) if isinstance(e, EpochEnded))
    assert made < decoding < first_epoch
    shown = [e for e in events[made:decoding] if isinstance(e, Message) and e.level == "warning"]
    assert shown[: len(warning_messages(plan.warnings))] == warning_messages(plan.warnings)
    assert sum(isinstance(e, Message) and "imbalanced" in e.text for e in events) == 1  # said once, from the plan


def test_the_cli_prints_them_before_the_first_epoch_and_no_raw_pillow_warning(messy, tmp_path, capfd):
    from tlstudio.cli import main

    huge_jpeg(messy / "train" / "red" / "huge.jpg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["train", str(messy), "--out", str(tmp_path / "run"), "--epochs", "1", "--image-size", "64", "--no-export", "--cache", str(tmp_path / "cache"), "--json"])
    out, err = capfd.readouterr()
    assert code == 0
    assert not [w for w in caught if w.filename and "PIL" in Path(w.filename).parts]
    assert not RAW_WARNING.search(err) and "DecompressionBomb" not in err
    assert_readable(err)
    planned = da.saved_warnings(json.loads(out))
    found = actions(planned)
    for kind, action in EXPECTED.items():
        assert found[kind] == action
    assert found[da.SKIPPED_FILES] == {da.LEFT_OUT}
    assert next(w for w in planned if w.kind == da.SKIPPED_FILES).paths == ("train/red/huge.jpg",)
    lines = err.splitlines()
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch "))
    for message in warning_messages(planned):
        assert lines.index(f"warning: {message.text}") < first_epoch


def test_a_huge_jpeg_is_refused_with_its_pixel_count_and_pillow_stays_quiet(tmp_path):
    path = huge_jpeg(tmp_path / "huge.jpg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(images.ImageRejected) as info:
            images.probe(path)
    assert not caught
    assert info.value.reason == ix.TOO_MANY_PIXELS
    assert info.value.pixels == 12000 * 9000 and images.MAX_PIXELS == 89_478_485
    assert_readable(images.too_many_pixels_text("huge.jpg", info.value.pixels))


@pytest.mark.parametrize("size, pixels", [((120, 100), 12_000), ((300, 100), 30_000)])  # Pillow warns / Pillow refuses
def test_over_the_limit_either_way_the_pixel_count_is_kept(tmp_path, monkeypatch, size, pixels):
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    Image.new("RGB", size, (9, 9, 9)).save(tmp_path / "big.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(images.ImageRejected) as info:
            images.probe(tmp_path / "big.png")
    assert not caught
    assert info.value.reason == ix.TOO_MANY_PIXELS and info.value.pixels == pixels


def test_scan_in_a_terminal_prints_no_raw_pillow_warning(tmp_path, capfd):
    data = tmp_path / "data"
    for name in ("red", "blue"):
        (data / name).mkdir(parents=True)
        for i in range(3):
            colour_image(np.random.default_rng(i), COLOURS[name], 32).save(data / name / f"{i}.jpg")
    huge_jpeg(data / "red" / "huge.jpg")
    # A fresh process, as a user runs it: nothing of pytest's warning capture in between.
    code = subprocess.run([sys.executable, "-m", "tlstudio", "scan", str(data), "--json"], cwd=Path(__file__).parents[2]).returncode
    out, err = capfd.readouterr()
    assert code == 0
    assert not RAW_WARNING.search(err) and "DecompressionBomb" not in err
    (skipped,) = json.loads(out)["skipped"]
    assert skipped["reason"] == ix.TOO_MANY_PIXELS and skipped["pixels"] == 108_000_000 and skipped["path"] == "red/huge.jpg"


@pytest.mark.gui
@pytest.mark.skipif(not HAS_QT, reason="needs PySide6 and pytest-qt")
def test_the_train_step_shows_them_before_the_first_epoch(qtbot, new_window, messy):
    from tests.gui.conftest import scan

    window = new_window()
    scan(qtbot, window, messy)
    panel = window.train_panel
    seen: dict = {}

    def on_event(event):
        if isinstance(event, PlanMade) and "plan" not in seen:
            seen["plan"] = event.plan
            seen["notice_shown"] = not panel.notice.isHidden()
            seen["kinds"] = tuple(w.kind for w in panel.planned_warnings)
        elif isinstance(event, EpochEnded) and "log" not in seen:
            seen["log"] = panel.log.toPlainText().splitlines()

    with qtbot.waitSignal(panel.run_finished, timeout=180_000) as blocker:
        panel.start_button.click()
        panel.job.event.connect(on_event)
    assert blocker.args[0] is not None and not blocker.args[0].cancelled
    plan = seen["plan"]
    assert seen["notice_shown"] and seen["kinds"] == plan.warning_kinds()
    for kind, action in EXPECTED.items():
        assert actions(plan.warnings)[kind] == action
    for message in warning_messages(plan.warnings):  # in the log before the first epoch's line
        assert f"Warning: {message.text}" in seen["log"]
    assert_readable(panel.notice.text())
    assert_readable(panel.log.toPlainText())
    # The notice belongs to the run shown: a run without warnings hides it, the run with them shows it again.
    qtbot.waitUntil(lambda: panel.job is None)
    window.studio.set_current_run("")
    assert panel.notice.isHidden() and panel.planned_warnings == ()
    window.studio.set_current_run(blocker.args[0].run_dir.name)
    assert not panel.notice.isHidden() and panel.planned_warnings == plan.warnings
