"""Every number on the Train step belongs to the run and phase shown: no label left from an earlier run, the
Train bar and the status bar agree, a pause shows as paused and is left out of the epoch's time, Start is
refused in place for a backbone whose weights are not here, and a baseline is estimated and confirmed first.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("PySide6")

from tests.gui.conftest import scan, train  # noqa: E402
from tlstudio.core.events import EpochEnded, PhaseStarted, Progress, StepEnded  # noqa: E402
from tlstudio.gui.phase_words import phase_line, time_left  # noqa: E402

pytestmark = pytest.mark.gui

PAUSE_S = 3.0


def image_loop(config, epochs: int = 3, batch_size: int = 4) -> None:
    """Every stage trains, so each batch runs through the whole network: a run slow enough to watch and pause."""
    config.freeze_depth = "none"
    config.epochs = epochs
    config.batch_size = batch_size
    config.augment = "none"


def fraction(bar) -> tuple:
    value, maximum = bar.pending_or_shown()
    return ("busy",) if maximum <= 0 else (round(max(0, value) / maximum, 6),)


def numbers(panel) -> tuple[str, str, str]:
    return panel.epoch_label.text(), panel.speed_label.text(), panel.eta_label.text()


def test_a_new_run_shows_none_of_the_previous_runs_numbers(qtbot, window, colours):
    scan(qtbot, window, colours)
    panel = window.train_panel
    image_loop(window.studio.config, epochs=1)
    speeds: list[str] = []
    panel.run_started.connect(lambda _id: panel.job.event.connect(lambda e: speeds.append(panel.speed_label.text())))
    first = train(qtbot, window)
    assert first is not None and not first.cancelled
    old_epoch, old_speed = numbers(panel)[0], next(s for s in reversed(speeds) if s)
    assert old_epoch  # the finished run's own figures

    image_loop(window.studio.config, epochs=2)
    job = panel.start()
    assert job is not None
    assert numbers(panel) == ("", "", "")  # nothing from the first run while the second prepares
    seen: list[tuple[type, tuple[str, str, str]]] = []
    job.event.connect(lambda e: seen.append((type(e), numbers(panel))))  # after the panel's own slot
    qtbot.waitUntil(lambda: any(kind is EpochEnded for kind, _ in seen), timeout=180_000)
    job.stop()
    qtbot.waitUntil(lambda: panel.job is None, timeout=60_000)

    before_first_epoch = [shown for kind, shown in seen[: [k for k, _ in seen].index(EpochEnded)]]
    assert before_first_epoch
    assert all(epoch != old_epoch for epoch, _, _ in before_first_epoch)
    before_training = [shown for (kind, shown) in seen[: [k for k, _ in seen].index(StepEnded)]]
    assert old_speed not in [speed for _, speed, _ in before_training]
    assert all(epoch == "" and speed == "" for epoch, speed, _ in before_training)  # no epoch or speed before there is one
    first_step = seen[[k for k, _ in seen].index(StepEnded)][1]
    assert "1" in first_step[0] and "2" in first_step[0]  # epoch 1 of this run's 2


def test_the_train_bar_and_the_status_bar_show_the_same_fraction(qtbot, window, colours):
    scan(qtbot, window, colours)
    panel = window.train_panel
    assert train(qtbot, window) is not None  # a finished run leaves the Train bar full

    image_loop(window.studio.config, epochs=1)
    job = panel.start()
    compared: list[tuple[tuple, tuple]] = [(fraction(panel.progress), fraction(window.job_progress))]
    left: list[tuple[str, str]] = []  # (shown, what the phase's own figures give)

    def compare(event) -> None:
        if isinstance(event, (PhaseStarted, Progress, EpochEnded)):
            compared.append((fraction(panel.progress), fraction(window.job_progress)))
            left.append((panel.eta_label.text(), time_left(job.phase_state(), paused=False)))

    job.event.connect(compare)
    with qtbot.waitSignal(panel.run_finished, timeout=240_000):
        pass
    assert len(compared) > 5
    assert all(train_bar == status_bar for train_bar, status_bar in compared), compared
    assert any(train_bar[0] not in ("busy", 0.0) for train_bar, _ in compared)  # the bars moved
    assert all(shown == own for shown, own in left)  # the time left is the current phase's
    assert any(shown for shown, _ in left)  # and there was one to show


def test_a_pause_is_shown_as_paused_and_left_out_of_the_epoch_s_time(qtbot, window, colours):
    scan(qtbot, window, colours)
    image_loop(window.studio.config, epochs=3, batch_size=2)
    panel = window.train_panel
    job = panel.start()
    arrivals: list[tuple[float, object]] = []
    job.event.connect(lambda e: arrivals.append((time.monotonic(), e)))
    qtbot.waitUntil(lambda: any(isinstance(e, StepEnded) for _, e in arrivals), timeout=180_000)

    panel.pause_button.click()
    qtbot.waitUntil(lambda: job.token.blocked, timeout=60_000)  # the batch in flight has ended: the work is held
    held_at = time.monotonic()
    state = job.phase_state()
    paused_view = (panel.phase.text(), panel.eta_label.text(), window.job_label.text())
    assert panel.eta_label.text() == time_left(state, paused=True) != time_left(state, paused=False)
    assert phase_line(state, paused=True) in panel.phase.text()
    assert phase_line(state, paused=True) in window.job_label.text()
    qtbot.waitUntil(lambda: time.monotonic() - held_at >= PAUSE_S, timeout=int(PAUSE_S * 1000) + 10_000)
    assert (panel.phase.text(), panel.eta_label.text(), window.job_label.text()) == paused_view  # no frozen countdown, no change
    paused_for = time.monotonic() - held_at
    resumed_at = len(arrivals)

    panel.pause_button.click()  # Continue
    assert not job.paused and panel.pause_button.text() != "Continue"
    assert phase_line(job.phase_state(), paused=False) in panel.phase.text()
    assert panel.eta_label.text() != time_left(state, paused=True)
    qtbot.waitUntil(lambda: any(isinstance(e, EpochEnded) for _, e in arrivals[resumed_at:]), timeout=180_000)
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        panel.stop_button.click()

    # The epoch that held the pause: the first to end after Continue; its wall time runs from the previous
    # epoch's end (or the training phase's start) to its own.
    ended_at, ended = next((t, e) for t, e in arrivals[resumed_at:] if isinstance(e, EpochEnded))
    began_at = max(t for t, e in arrivals if t < held_at and (
        (isinstance(e, EpochEnded) and e.epoch == ended.epoch - 1) or (isinstance(e, PhaseStarted) and e.name == "training")))
    wall = ended_at - began_at
    assert wall > paused_for
    assert ended.seconds < wall - 0.75 * paused_for
    assert ended.eta_s < (ended.epochs - ended.epoch) * (wall - 0.75 * paused_for) + 1e-6


def test_start_is_refused_in_place_for_a_backbone_without_weights(qtbot, window, colours, monkeypatch):
    from tlstudio.core.catalog import weights

    scan(qtbot, window, colours)
    studio, panel = window.studio, window.train_panel
    missing = {"resnet18"}  # ResNet-18 "imported" once it leaves this set
    monkeypatch.setattr(weights, "availability", lambda spec: weights.NEEDS_DOWNLOAD if spec.name in missing else weights.IMPORTED)
    project_before = studio.project
    runs_before = [r.id for r in studio.runs()] if studio.project is not None else []

    studio.set_backbone("resnet18")  # backbone_changed: checked at once
    window.go_to("Train")
    assert not panel.start_button.isEnabled()
    assert panel.weights_note.isVisible() and panel.model_step_button.isVisible()
    with qtbot.waitSignal(panel.model_step_requested, timeout=5_000):
        panel.model_step_button.click()
    assert panel.start() is None and panel.job is None  # the menu's Ctrl+R path is refused too
    assert studio.project is project_before
    assert ([r.id for r in studio.runs()] if studio.project is not None else []) == runs_before  # nothing created

    # The weights arrive (imported on the Model step): showing the Train step checks again.
    window.go_to("Data")
    missing.clear()
    window.go_to("Train")
    assert panel.start_button.isEnabled() and not panel.weights_note.isVisible()

    # Back to missing, then another backbone chosen whose weights are here: backbone_changed lifts the refusal.
    missing.add("resnet18")
    studio.set_backbone("mobilenet_v3_small")
    studio.set_backbone("resnet18")
    assert not panel.start_button.isEnabled()
    studio.set_backbone("efficientnet_lite0")
    assert panel.start_button.isEnabled() and not panel.weights_note.isVisible()


def test_the_baseline_asks_with_an_estimate_does_nothing_when_refused_and_shows_its_own_settings(qtbot, window, colours):
    studio, panel = window.studio, window.train_panel
    scan(qtbot, window, colours)
    assert train(qtbot, window) is not None
    source = studio.run(studio.current_run)
    runs_before = [r.id for r in studio.runs()]
    panel.settings.epochs.setValue(7)  # the user's own setting, not the run's
    window.go_to("Evaluate")
    actions = window.evaluate_panel.actions
    questions: list[str] = []
    actions.confirm = lambda title, question: questions.append(question) or False
    actions.baseline_button.click()
    qtbot.waitUntil(lambda: bool(questions) and actions.estimate_job is None, timeout=120_000)

    estimate = actions.estimate
    assert estimate is not None and estimate.images_per_s > 0
    assert estimate.pictures == len(studio.index.split("train")) and estimate.epochs == source.config.epochs
    assert estimate.seconds is not None and estimate.seconds > 0
    assert panel.job is None and not studio.jobs.busy("train")  # refused: nothing started
    assert [r.id for r in studio.runs()] == runs_before and window.current_step() == "Evaluate"
    assert actions.baseline_button.isEnabled()

    # Agreed: the baseline trains, and the Settings box shows the settings it uses while it does.
    actions.confirm = lambda title, question: True
    actions.baseline_button.click()
    qtbot.waitUntil(lambda: panel.job is not None, timeout=120_000)
    assert window.current_step() == "Train"
    assert panel.settings.epochs.value() == source.config.epochs != 7
    assert panel.settings.config is not studio.config and not panel.settings.epochs.isEnabled()
    assert panel.settings_note.isVisible()
    with qtbot.waitSignal(panel.run_finished, timeout=60_000):
        panel.stop()
    assert panel.settings.config is studio.config and panel.settings.epochs.value() == 7 == studio.config.epochs
    assert panel.settings.epochs.isEnabled() and not panel.settings_note.isVisible()
