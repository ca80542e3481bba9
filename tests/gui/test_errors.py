"""Errors reach the user as one readable dialog: a UserError as its message, a bug as a short text plus details."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from tests.gui.conftest import scan, train  # noqa: E402
from tlstudio.core.runs import project as pj  # noqa: E402
from tlstudio.core.errors import UserError  # noqa: E402
from tlstudio.gui.notifier import ErrorInfo, Notifier  # noqa: E402

pytestmark = pytest.mark.gui


def open_boxes() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


def test_the_dialog_never_blocks_and_shows_a_user_error_as_its_message(qtbot):
    notifier = Notifier()
    with qtbot.waitSignal(notifier.notified):
        notifier.exception(UserError("the folder '/x' has no pictures. Add some."), "Scanning")
    [box] = open_boxes()
    assert "Scanning did not work" in box.text() and "The folder '/x' has no pictures" in box.text()
    assert box.detailedText() == ""
    box.close()


def test_a_bug_shows_a_short_message_with_the_traceback_in_details(qtbot, caplog):
    notifier = Notifier()
    try:
        {}["missing"]
    except KeyError as exc:
        with qtbot.waitSignal(notifier.notified) as blocker:
            notifier.exception(exc, "Training")
    info: ErrorInfo = blocker.args[0]
    assert not info.user_error and info.message == "KeyError: 'missing'"
    [box] = open_boxes()
    assert "Traceback" not in box.text() and "Traceback" in box.detailedText()
    assert "internal error" in box.text()
    assert any("KeyError" in r.getMessage() for r in caplog.records)  # and it is logged
    box.close()


def test_an_error_inside_the_training_worker_becomes_a_dialog_and_a_failed_run(qtbot, window, colours, monkeypatch):
    from tlstudio.core.engine import trainer as training

    def broken_run(self, on_event, stop=None):
        raise RuntimeError("the GPU caught fire")

    monkeypatch.setattr(training.Trainer, "run", broken_run)
    scan(qtbot, window, colours)
    with qtbot.waitSignal(window.notifier.notified, timeout=30_000) as notified:
        result = train(qtbot, window)
    assert result is None
    info = notified.args[0]
    assert info.message == "RuntimeError: the GPU caught fire" and "broken_run" in info.details
    run = window.studio.project.record(window.studio.current_run)
    assert run.status == pj.FAILED and "fire" in run.message
    assert window.train_panel.start_button.isEnabled()


def test_starting_without_data_explains_what_to_do(qtbot, window):
    with qtbot.waitSignal(window.notifier.notified) as notified:
        window.train_panel.start_button.click()
    info = notified.args[0]
    assert info.user_error and "Data step" in info.message
    assert window.train_panel.job is None


def test_a_bad_weights_file_is_refused_with_a_readable_message(qtbot, window, tmp_path):
    window.model_panel.select_backbone("resnet18")
    import torch

    bogus = tmp_path / "weights.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, bogus)  # a weights file, but not for this backbone
    with qtbot.waitSignal(window.notifier.notified, timeout=30_000) as notified:
        window.model_panel.import_weights_file(bogus)
    info = notified.args[0]
    assert info.user_error and info.details == ""


@pytest.mark.parametrize("stage", ["_dataset", "build_model"])  # before the run's first files / after them, before epoch 1
def test_a_run_that_ends_before_its_first_epoch_leaves_no_run_behind(qtbot, window, colours, monkeypatch, stage):
    from tlstudio.core.engine import trainer as training

    def refused(self, *args):  # what the engine raises there: no validation split, weights that are not on this machine
        raise UserError(f"'{colours}' cannot be trained here ({stage}).")

    monkeypatch.setattr(training.Trainer, stage, refused)
    scan(qtbot, window, colours)
    with qtbot.waitSignal(window.notifier.notified, timeout=30_000) as notified:
        assert train(qtbot, window) is None
    assert notified.args[0].user_error
    assert window.studio.project.runs == [] and window.studio.runs() == []
    assert not any(window.studio.project.runs_dir.iterdir())
    assert window.train_panel.start_button.isEnabled()
