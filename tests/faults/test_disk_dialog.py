"""In the window, a full or read-only volume is a readable dialog naming the folder, never "internal error"."""

from __future__ import annotations

import errno

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication, QMessageBox  # noqa: E402

from tests.faults.readable import assert_readable  # noqa: E402
from tlstudio.core.disk import disk_error  # noqa: E402
from tlstudio.gui.notifier import Notifier  # noqa: E402
from tlstudio.gui.workers import Jobs  # noqa: E402

pytestmark = pytest.mark.gui


def open_boxes() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


@pytest.mark.parametrize("kind", ["DiskError", "plain OSError"])
def test_a_worker_hitting_a_full_disk_shows_a_readable_dialog(qtbot, tmp_path, kind):
    where = tmp_path / "runs" / "r1" / "checkpoints" / "last.pt"
    raw = OSError(errno.ENOSPC, "No space left on device", str(where))
    error = disk_error(raw, where, needed=14_000_000) if kind == "DiskError" else raw

    def work(on_event, stop):
        raise error

    notifier = Notifier()
    jobs = Jobs(notifier)
    with qtbot.waitSignal(notifier.notified, timeout=10_000) as notified:
        job = jobs.start("train", "Training", work)
    qtbot.waitUntil(lambda: not job.is_running(), timeout=10_000)
    info = notified.args[0]
    assert info.user_error and str(where.parent) in info.message and info.details == ""
    [box] = open_boxes()
    assert_readable(box.text() + box.informativeText() + box.detailedText())
    assert str(where.parent) in box.text()
    box.close()
