"""Progress bars take a burst of values without repainting the window for each one."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from tlstudio.gui.widgets.calm_progress import CalmProgressBar  # noqa: E402

pytestmark = pytest.mark.gui


class CountingBar(CalmProgressBar):
    def __init__(self):
        super().__init__()
        self.paints = 0

    def paintEvent(self, event):  # noqa: N802 - Qt's name
        self.paints += 1
        super().paintEvent(event)


def test_a_burst_of_values_lands_once_with_the_latest_value(qtbot):
    bar = CountingBar()
    qtbot.addWidget(bar)
    bar.setRange(0, 1000)
    bar.show()
    qtbot.waitExposed(bar)
    qtbot.waitUntil(lambda: bar.paints > 0)
    before = bar.paints

    for value in range(1, 501):
        bar.setValue(value)
    assert bar.paints == before and bar.value() != 500  # nothing painted, nothing applied yet

    qtbot.waitUntil(lambda: bar.value() == 500, timeout=2_000)
    qtbot.waitUntil(lambda: bar.paints > before, timeout=2_000)
    assert bar.paints - before <= 3  # a QProgressBar would have repainted for hundreds of them


def test_a_value_set_before_a_new_range_lands_in_that_range(qtbot):
    bar = CalmProgressBar()
    qtbot.addWidget(bar)
    bar.setValue(40)
    bar.setRange(0, 50)
    qtbot.waitUntil(lambda: bar.value() == 40, timeout=2_000)
    assert bar.maximum() == 50


def test_the_value_a_bar_is_about_to_show_is_readable_before_it_lands(qtbot):
    bar = CalmProgressBar()
    qtbot.addWidget(bar)
    bar.setRange(0, 10)
    bar.setValue(4)
    assert bar.pending_or_shown() == (4, 10)  # what the bar shows once the value lands
    qtbot.waitUntil(lambda: bar.value() == 4, timeout=5_000)
    assert bar.pending_or_shown() == (4, 10)
