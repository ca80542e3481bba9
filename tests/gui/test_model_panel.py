"""The Model step: the catalog, the freeze-depth slider with its parameter count, downloads with progress and Cancel."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("PySide6")

from tlstudio.core.catalog import backbones as bb  # noqa: E402
from tlstudio.core.catalog.build import build_backbone  # noqa: E402
from tlstudio.core.events import PhaseStarted, Progress  # noqa: E402

pytestmark = pytest.mark.gui


def test_the_catalog_lists_every_backbone_with_the_bundled_one_selected(window):
    table = window.model_panel.table
    specs = bb.list_backbones()
    assert table.rowCount() == len(specs)
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == [s.title for s in specs]
    assert table.current() == "efficientnet_lite0"
    assert table.availability("efficientnet_lite0") == "bundled"
    assert "bundled" in table.item(0, 4).text()


def test_the_freeze_slider_goes_from_the_head_only_to_everything(qtbot, window):
    panel = window.model_panel
    freeze = panel.freeze
    spec = bb.get_backbone("efficientnet_lite0")
    n = len(spec.stages)
    qtbot.waitUntil(lambda: freeze.trainable_params() is not None, timeout=60_000)
    head = (spec.feature_dim + 1) * window.studio.num_classes

    assert freeze.slider.value() == 0 and window.studio.config.freeze_depth == "all"
    assert freeze.trainable_params() == head
    assert "Start here" in freeze.hint.text() and "the less data you have, the more you freeze" in freeze.hint.text()

    freeze.slider.setValue(2)
    assert window.studio.config.freeze_depth == str(n - 2)
    assert head < freeze.trainable_params()

    freeze.slider.setValue(n)
    assert window.studio.config.freeze_depth == "none"
    total = sum(p.numel() for p in build_backbone("efficientnet_lite0", pretrained=False).parameters())
    assert freeze.trainable_params() == total + head
    assert "frozen" not in freeze.stages.text().split("<br>")[1]


def test_a_download_shows_progress_and_can_be_cancelled(qtbot, window, monkeypatch):
    from tlstudio.core.catalog import weights

    started = threading.Event()

    def slow_download(spec, on_event, stop):
        on_event(PhaseStarted("downloading", 1000))
        done = 0
        while True:  # a stand-in for a slow network: one chunk per stop check
            stop.check()
            done = min(done + 1, 999)
            on_event(Progress(done, 1000, f"{done / 10:.1f} of 100.0 MB"))
            started.set()
            threading.Event().wait(0.005)  # the worker thread waits, not the test

    monkeypatch.setattr(weights, "download", slow_download)
    monkeypatch.setattr(weights, "availability", lambda spec: "bundled" if spec.source == "bundled" else weights.NEEDS_DOWNLOAD)
    panel = window.model_panel
    panel.refresh_availability()
    panel.select_backbone("resnet18")
    assert panel.download_button.isEnabled()
    panel.download_button.click()
    assert not panel.cancel_button.isHidden()
    qtbot.waitUntil(lambda: panel.progress.value() > 0, timeout=10_000)
    assert "MB" in panel.progress.format()

    with qtbot.waitSignal(panel.weights_changed, timeout=10_000):
        panel.cancel_button.click()
    assert "cancelled" in panel.status.text()
    assert panel.cancel_button.isHidden() and panel.download_button.isEnabled()


def test_a_weights_file_that_is_not_the_official_one_is_imported_only_when_the_user_agrees(qtbot, window, tmp_path, monkeypatch):
    import torch

    from tests.faults.readable import assert_readable
    from tlstudio.core.catalog import weights, weights_import

    monkeypatch.setenv("TLSTUDIO_HOME", str(tmp_path / "home"))  # the session's home is shared by other tests
    name = "mobilenet_v3_small"
    spec = bb.get_backbone(name)
    torch.manual_seed(0)
    file = tmp_path / "from-a-colleague.pth"
    torch.save(bb.architecture(spec).state_dict(), file)  # fits the architecture, but random: not the official file
    panel = window.model_panel
    panel.select_backbone(name)
    errors, questions = [], []
    window.notifier.notified.connect(errors.append)

    window.confirm = lambda title, question: questions.append(question) or False
    with qtbot.waitSignal(panel.weights_changed, timeout=30_000):
        panel.import_weights_file(file)
    assert len(questions) == 1 and not weights.imported_path(spec).exists()
    assert_readable(questions[0])
    assert panel.table.availability(name) == weights.NEEDS_DOWNLOAD

    window.confirm = lambda title, question: True
    with qtbot.waitSignal(panel.imported, timeout=30_000) as done:
        panel.import_weights_file(file)
    result = done.args[0]
    assert result.official is False and result.path == weights.imported_path(spec) and result.replaced is None
    qtbot.waitUntil(lambda: panel.table.weights_verdict(name) == weights_import.NOT_OFFICIAL, timeout=10_000)
    assert panel.table.availability(name) == weights.IMPORTED
    assert_readable(panel.status.text())
    qtbot.waitUntil(lambda: not window.studio.jobs.busy(), timeout=60_000)
    assert errors == []


def test_the_words_of_the_model_step_are_explained_where_they_appear(window):
    from tlstudio.gui.widgets.freeze_control import STAGE_WORDS, stage_kind, stages_tip

    panel = window.model_panel
    table = panel.table
    assert all(table.horizontalHeaderItem(col).toolTip() for col in range(table.columnCount()))
    assert panel.freeze.stages.toolTip() == stages_tip(bb.get_backbone(panel.backbone()))
    for spec in bb.list_backbones():  # every kind of stage name the catalog uses: stem, stage N, head conv, blocks 4-6...
        for label in spec.stage_labels:
            kind = stage_kind(label)
            assert kind in STAGE_WORDS, f"{spec.name}: '{label}' is not explained"
            assert f"{kind}: {STAGE_WORDS[kind]}" in stages_tip(spec).splitlines()
