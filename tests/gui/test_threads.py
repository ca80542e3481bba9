"""Several workers at once: garbage is collected on the GUI thread only, and nothing is lost.

A cyclic garbage collection on a worker thread destroys Qt objects held in cycles on the
wrong thread, which crashed the process at random (a segmentation fault while workers built
torchvision models). ``python -m tests.stress_gui`` runs this module and the other
multi-worker GUI tests over and over under CPU load.
"""

from __future__ import annotations

import gc
import threading

import pytest

pytest.importorskip("PySide6")

from tests.gui.conftest import scan  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def collections():
    """The thread of every cyclic garbage collection while the test runs."""
    seen: list[str] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(threading.current_thread().name)

    gc.callbacks.append(record)
    yield seen
    gc.callbacks.remove(record)


def test_garbage_is_collected_on_the_gui_thread_while_workers_build_models(qtbot, window, colours, tmp_path, collections):
    import torch

    assert not gc.isenabled()  # the application switched automatic collection off...
    scan(qtbot, window, colours)  # a scan and its thumbnail decoder
    for name in ("resnet18", "mobilenet_v3_small", "efficientnet_b0", "convnext_tiny"):
        window.model_panel.select_backbone(name)  # each starts a worker that builds the model
    bogus = tmp_path / "weights.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, bogus)
    with qtbot.waitSignal(window.notifier.notified, timeout=60_000):
        window.model_panel.import_weights_file(bogus)  # and one more worker, building resnet18 again
    window.data_panel.rescan()
    qtbot.waitUntil(lambda: not window.studio.jobs.busy(), timeout=120_000)

    for _ in range(2000):  # garbage cycles, so that the GUI thread's timer has something to collect
        cycle: list = []
        cycle.append(cycle)
    del cycle
    qtbot.waitUntil(lambda: len(collections) > 0, timeout=10_000)  # ...and its timer collects instead
    assert set(collections) == {threading.main_thread().name}


def test_a_rescan_right_after_a_scan_is_never_lost(qtbot, window, colours):
    panel = window.data_panel
    for fraction in (0.25, 0.5, 0.3):
        scan(qtbot, window, colours)
        panel.val_fraction.setValue(fraction)
        assert panel.rescan_button.isEnabled()  # the answer is in: Re-scan works at once
        with qtbot.waitSignal(panel.scan_done, timeout=60_000) as blocker:
            panel.rescan_button.click()
        assert blocker.args[0].val_split == fraction
