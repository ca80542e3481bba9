"""The window stays responsive while training: a 10 ms heartbeat on the GUI thread never waits long."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.gui.conftest import scan, train  # noqa: E402

pytestmark = pytest.mark.gui

WORST_GAP_S = 0.25  # generous for a 2-core CPU box; typical gaps are far smaller


def test_the_gui_thread_keeps_its_heartbeat_during_training(qtbot, window, colours):
    scan(qtbot, window, colours)
    # Measure training, not start-up: let the Model step finish counting parameters (a second of model building).
    qtbot.waitUntil(lambda: window.model_panel.freeze.trainable_params() is not None, timeout=60_000)
    cfg = window.studio.config
    # The heavy case: every stage trains, so torch keeps the CPU busy for the whole run.
    cfg.freeze_depth, cfg.epochs, cfg.batch_size, cfg.augment = "none", 3, 4, "light"
    beats: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: beats.append(time.perf_counter()))

    def start_beating(run_id):
        beats.append(time.perf_counter())
        heartbeat.start()

    # The user clicks Start on the Train step they are looking at: the live plots are on screen and
    # redraw during the run. The step's first paint happens before Start, as it would for them.
    window.go_to("Train")
    QApplication.processEvents()
    window.train_panel.run_started.connect(start_beating)
    result = train(qtbot, window, timeout_ms=180_000)
    heartbeat.stop()

    assert result is not None and not result.cancelled
    gaps = [b - a for a, b in zip(beats, beats[1:], strict=False)]
    worst = max(gaps)
    print(f"\nheartbeat during training: {len(beats)} beats, worst gap {worst * 1000:.0f} ms, median {sorted(gaps)[len(gaps) // 2] * 1000:.1f} ms")
    assert len(beats) > 20
    assert worst < WORST_GAP_S
