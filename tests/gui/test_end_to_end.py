"""The real window, end to end: folder -> classes -> default backbone -> train -> curves -> evaluate -> export -> reopen."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

import torch  # noqa: E402

from tests.gui.conftest import scan, train  # noqa: E402
from tlstudio.core.runs import project as pj  # noqa: E402

pytestmark = pytest.mark.gui

EPOCHS = 3


def test_folder_to_exported_model_and_back(qtbot, window, new_window, colours, tmp_path):
    studio = window.studio
    studio.new_project(tmp_path / "Colours")
    assert window.windowTitle().startswith("Colours")
    assert window.project_actions.recent.items()[0] == str(studio.project.root)

    # Data: the classes, their counts per split, a grid of pictures per class.
    index = scan(qtbot, window, colours)
    assert index is not None and index.classes == ["blue", "green", "red"]
    panel = window.data_panel
    assert sum(panel.chart.heights("train")) + sum(panel.chart.heights("val")) == 36
    assert [panel.gallery.tabText(i) for i in range(3)] == ["blue (12)", "green (12)", "red (12)"]
    qtbot.waitUntil(lambda: panel.gallery.models["blue"].loaded() > 0, timeout=20_000)  # painted tiles decode lazily
    assert "36 images" in panel.report.summary.text()
    assert window.recent_folders.items()[0] == str(colours.resolve())

    # Model: the bundled backbone is selected, and with it "train only the new head".
    window.go_to("Model")
    assert window.model_panel.table.current() == "efficientnet_lite0"
    assert studio.config.freeze_depth == "all"

    # Train with export on: the frozen head is solved in one fit, one point on every curve.
    studio.config.epochs, studio.config.export = EPOCHS, True
    window.go_to("Train")
    result = train(qtbot, window, timeout_ms=180_000)
    assert result is not None and not result.cancelled
    plots = window.train_panel.plots
    for name in ("train_loss", "val_loss", "train_acc", "val_acc"):
        assert plots.points(name) == 1, name
    assert result.summary["head_fit"]["converged"] and result.summary["selection"]["method"] == "cross-validation"
    assert window.train_panel.epoch_label.text() == "Epoch 1 of 1"
    run_id = studio.current_run
    assert studio.project.record(run_id).status == pj.FINISHED

    # Evaluate: the run's numbers and its confusion matrix.
    window.go_to("Evaluate")
    ev = window.evaluate_panel
    assert ev.accuracy.text().endswith("%")
    cm = ev.confusion_values()
    assert len(cm) == 3 and sum(map(sum, cm)) == sum(1 for s in index.samples if s.split == "val")
    assert ev.per_class.rowCount() == 3

    # Export: copy the verified file, load it with plain torch.
    window.go_to("Export")
    ex = window.export_panel
    assert "Verified" in ex.verification.text()
    dest = tmp_path / "out" / "colours.pt"
    with qtbot.waitSignal(ex.exported, timeout=60_000):
        ex.export_to(dest)
    model = torch.jit.load(str(dest))
    assert list(model.class_names) == ["blue", "green", "red"]
    probs = model(torch.zeros(1, 3, 80, 90, dtype=torch.uint8))
    assert probs.shape == (1, 3) and abs(float(probs.sum()) - 1) < 1e-4
    assert "torch.jit.load(\"colours.pt\")" in ex.snippet.toPlainText()
    assert "model.class_names" in ex.snippet.toPlainText()

    # Reopening the project shows its settings, its run and its curves again.
    studio.save_project()
    again = new_window()
    with qtbot.waitSignal(again.data_panel.scan_done, timeout=60_000):
        again.project_actions.open_project(str(studio.project.root))
    assert again.studio.current_run == run_id
    assert again.studio.config.epochs == EPOCHS and again.studio.config.data_dir == str(colours.resolve())
    assert again.train_panel.runs.count() == 1 and again.train_panel.runs.currentData() == run_id
    assert again.train_panel.plots.points("val_acc") == 1
    assert again.evaluate_panel.confusion_values() == cm
