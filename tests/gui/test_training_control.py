"""Stop, pause and closing the window while training: asked for, honoured within a batch, no thread left behind."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from tests.gui.conftest import scan  # noqa: E402
from tlstudio.core.runs import project as pj  # noqa: E402
from tlstudio.core.events import StepEnded  # noqa: E402

pytestmark = pytest.mark.gui


def image_loop(config) -> None:
    """Every stage trains, so batches run through the whole network (no feature cache): a slow, stoppable run."""
    config.freeze_depth = "none"
    config.epochs = 50
    config.batch_size = 4
    config.augment = "none"


def start_and_wait_for_a_step(qtbot, window):
    """Press Start; return (job, list of StepEnded seen) once the first batch has ended."""
    steps: list[StepEnded] = []
    window.train_panel.start_button.click()
    job = window.train_panel.job
    assert job is not None
    job.event.connect(lambda e: steps.append(e) if isinstance(e, StepEnded) else None)
    qtbot.waitUntil(lambda: bool(steps), timeout=120_000)
    return job, steps


def test_stop_returns_within_a_batch_and_keeps_a_cancelled_run(qtbot, window, colours):
    scan(qtbot, window, colours)
    image_loop(window.studio.config)
    job, steps = start_and_wait_for_a_step(qtbot, window)

    # Pause holds the run; Continue lets it go on.
    window.train_panel.pause_button.click()
    assert job.paused and window.train_panel.pause_button.text() == "Continue"
    window.train_panel.pause_button.click()
    assert not job.paused

    seen_at_stop = len(steps)
    with qtbot.waitSignal(window.train_panel.run_finished, timeout=60_000) as blocker:
        window.train_panel.stop_button.click()
    result = blocker.args[0]
    assert result.cancelled
    assert result.summary["epochs_completed"] <= 1
    # Step events are throttled (and one may be queued already), so at most the batch in flight ends after Stop.
    assert len(steps) - seen_at_stop <= 2
    assert not job.is_running() and job.thread.isFinished()
    assert window.studio.project.record(result.run_dir.name).status == pj.CANCELLED
    assert window.train_panel.start_button.isEnabled()


def test_closing_during_training_asks_stops_the_worker_and_exits_cleanly(qtbot, window, colours, qtlog):
    scan(qtbot, window, colours)
    image_loop(window.studio.config)
    job, _ = start_and_wait_for_a_step(qtbot, window)
    questions = []

    # Saying "no" keeps the window open and the training going.
    window.confirm = lambda title, question: questions.append(question) or False
    window.close()
    assert window.isVisible() and job.is_running() and not job.token.stopped
    assert "Stop training" in questions[0]

    # Saying "yes" stops the worker within a batch, then the window closes by itself.
    window.confirm = lambda title, question: True
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5_000)  # the app is gone within 5 s of the Yes
    assert job.thread.isFinished() and not window.studio.jobs.busy()
    assert job.result is not None and job.result.cancelled
    assert not [r for r in qtlog.records if "Destroyed while thread" in r.message]
    # The layout was saved on the way out.
    assert window.settings.value("window/geometry") is not None


def stop_after_the_first_epoch(qtbot, window, colours) -> str:
    """Train a 3-epoch partial fine-tune from the window and press Stop once epoch 1 has ended; the run's id."""
    from tlstudio.core.events import EpochEnded

    scan(qtbot, window, colours)
    config = window.studio.config
    config.freeze_depth, config.epochs, config.batch_size, config.feature_cache, config.export = "5", 3, 8, False, True
    panel = window.train_panel
    epochs: list[EpochEnded] = []
    panel.start_button.click()
    panel.job.event.connect(lambda e: epochs.append(e) if isinstance(e, EpochEnded) else None)
    qtbot.waitUntil(lambda: bool(epochs), timeout=120_000)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000) as stopped:
        panel.stop_button.click()
    return stopped.args[0].run_dir.name


def test_a_stopped_run_resumes_to_its_last_epoch_from_the_window(qtbot, window, colours):
    from tlstudio.core.events import EpochEnded
    from tlstudio.core.runs.files import FINISHED, STOPPED

    run_id = stop_after_the_first_epoch(qtbot, window, colours)
    panel = window.train_panel
    status = window.studio.run(run_id).files.read_status()
    assert status.state == STOPPED and 1 <= status.epochs_completed < 3
    assert panel.resume_button.isEnabled()

    resumed: list[EpochEnded] = []
    panel.resume_button.click()
    assert panel.job is not None and not panel.resume_button.isEnabled()
    panel.job.event.connect(lambda e: resumed.append(e) if isinstance(e, EpochEnded) else None)
    with qtbot.waitSignal(panel.run_finished, timeout=240_000) as finished:
        pass
    assert not finished.args[0].cancelled
    assert [e.epoch for e in resumed] == list(range(status.epochs_completed + 1, 4))
    run = window.studio.run(run_id)
    assert [h["epoch"] for h in run.history] == [1, 2, 3] and run.files.read_status().state == FINISHED
    assert window.studio.project.record(run_id).status == pj.FINISHED
    assert panel.plots.points("val_acc") == 3 and not panel.resume_button.isEnabled()


def test_a_run_that_ends_while_the_close_question_is_open_still_lets_the_window_close(qtbot, window, colours):
    scan(qtbot, window, colours)
    image_loop(window.studio.config)
    job, _ = start_and_wait_for_a_step(qtbot, window)

    def answer_after_the_run_ended(title, question):  # the user takes their time; the run ends meanwhile
        job.stop()
        qtbot.waitUntil(lambda: not window.studio.jobs.busy(), timeout=60_000)
        return True

    window.confirm = answer_after_the_run_ended
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5_000)
    assert job.thread.isFinished()


def test_a_stopped_run_is_evaluated_and_exported_from_the_evaluate_step(qtbot, window, colours):
    from tlstudio.core.runs.files import STOPPED

    run_id = stop_after_the_first_epoch(qtbot, window, colours)
    panel = window.train_panel
    assert window.studio.run(run_id).files.read_status().state == STOPPED

    assert not window.export_panel.export_button.isEnabled()
    window.go_to("Evaluate")
    ev = window.evaluate_panel
    assert ev.kept_epoch.isVisible() and ev.accuracy.text() == "–"
    with qtbot.waitSignal(window.studio.runs_changed, timeout=120_000):
        job = ev.kept_epoch.evaluate()
        assert job is not None
    qtbot.waitUntil(lambda: ev.accuracy.text() != "–", timeout=20_000)
    run = window.studio.run(run_id)
    assert run.metrics["n"] == sum(map(sum, ev.confusion_values())) and run.has_model
    assert run.record.summary["export"]["verified"] and run.files.read_status().state == STOPPED  # still resumable
    assert not ev.kept_epoch.isVisible() and panel.resume_button.isEnabled()
    assert window.export_panel.export_button.isEnabled()  # the Export step offers the new model file
