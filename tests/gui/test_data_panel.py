"""The Data step: drop a folder, see the report of a damaged folder, refuse an unusable one with a readable message."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.gui.conftest import scan  # noqa: E402
from tests.synthetic import make_colour_dataset  # noqa: E402
from tlstudio.core.data.index import REASON_TEXT, TRUNCATED  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.mark.filterwarnings("ignore:Function.*QDragEnterEvent:DeprecationWarning")  # Qt 6 still takes a QPoint here
def test_dropping_a_folder_onto_the_window_scans_it(qtbot, window, colours):
    window.go_to("Model")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(colours))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000) as blocker:
        QApplication.sendEvent(window, drop)
    assert blocker.args[0].classes == ["blue", "green", "red"]
    assert window.current_step() == "Data"
    assert window.studio.index is blocker.args[0]


def test_a_truncated_picture_is_listed_with_a_plain_explanation(qtbot, window, tmp_path):
    data = make_colour_dataset(tmp_path / "data", per_class=8)
    victim = data / "red" / "red_000.jpg"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 3])
    index = scan(qtbot, window, data)
    assert index is not None and len(index.samples) == 23
    problems = dict(window.data_panel.report.problems())
    assert problems["red/red_000.jpg"] == REASON_TEXT[TRUNCATED]
    assert "Traceback" not in window.data_panel.report.summary.text()
    assert "1 problem" in window.data_panel.report.summary.text()
    assert window.data_panel.report.text  # the full report (format_report) is there to copy


def test_a_folder_with_one_class_is_refused_with_a_readable_message(qtbot, window, tmp_path):
    data = make_colour_dataset(tmp_path / "one", classes=("red",), per_class=6)
    with qtbot.waitSignal(window.notifier.notified, timeout=60_000) as notified:
        index = scan(qtbot, window, data)
    assert index is None and window.studio.index is None
    info = notified.args[0]
    assert info.user_error and info.details == "" and "Traceback" not in info.message
    assert "cannot be used" in window.data_panel.report.summary.text()
    assert window.data_panel.chart.bars == {}


def test_split_settings_apply_on_rescan(qtbot, window, colours):
    first = scan(qtbot, window, colours)
    panel = window.data_panel
    panel.val_fraction.setValue(0.5)
    assert panel.rescan_button.text() == "Re-scan to apply"
    with qtbot.waitSignal(panel.scan_done, timeout=60_000) as blocker:
        panel.rescan_button.click()
    second = blocker.args[0]
    assert len(second.split("val")) > len(first.split("val"))
    assert window.studio.config.val_split == 0.5


def test_the_new_pictures_folder_is_kept_in_the_project_and_survives_reopening(qtbot, window, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from tlstudio.core.runs.project import Project

    new = tmp_path / "second microscope"
    new.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *_a, **_k: str(new)))
    window.data_panel.choose_new_pictures()
    project = window.studio.project
    assert project is not None and project.new_pictures_dir == str(new.resolve())
    assert Project.open(project.root).new_pictures_dir == str(new.resolve())
    assert window.data_panel.new_pictures.text() == str(new.resolve())
    window.data_panel.new_pictures_clear.click()
    assert Project.open(project.root).new_pictures_dir == "" and not window.data_panel.new_pictures_clear.isEnabled()
