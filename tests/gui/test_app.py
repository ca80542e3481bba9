"""``tlstudio`` with no command opens the studio: the entry point, the exception hook, settings and a folder argument."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tlstudio.gui.main_window import MainWindow  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def private_settings(tmp_path, monkeypatch):
    """run_app uses the default QSettings: point them at tmp_path, in INI format."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "config"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after run_app installs its hook
    yield tmp_path / "config"


def test_run_app_opens_the_window_on_a_folder_and_quits_cleanly(qtbot, colours, private_settings):
    from tlstudio.cli import main

    seen = {}

    def look_and_close():
        [window] = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        seen["title"] = window.windowTitle()
        seen["device"] = window.device_label.text()

        def close_when_scanned(index):
            seen["classes"] = index.classes if index is not None else None
            window.close()

        window.data_panel.scan_done.connect(close_when_scanned)

    QTimer.singleShot(0, look_and_close)
    assert main(["--gui", str(colours)]) == 0  # the GUI, on that folder
    assert seen["classes"] == ["blue", "green", "red"]
    assert seen["title"].endswith("tlstudio") and seen["device"].startswith("Compute: ")
    assert sys.excepthook.__name__ == "hook"
    assert list(private_settings.rglob("*.ini"))  # the window layout went to the settings file


def test_run_app_without_a_path_reopens_the_last_project(qtbot, tmp_path, private_settings):
    from tlstudio.cli import main
    from tlstudio.core.runs.project import Project
    from tlstudio.gui.app import make_application
    from tlstudio.gui.session import remember_project

    project = Project.create(tmp_path / "Last")
    make_application()  # the organisation and application names the default QSettings are found by
    settings = QSettings()
    remember_project(settings, project.root)
    settings.sync()
    seen = {}

    def look_and_close():
        [window] = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        seen["project"] = window.studio.project.root if window.studio.project else None
        seen["welcome"] = window.welcome_shown()
        window.close()

    QTimer.singleShot(0, look_and_close)
    assert main(["--gui"]) == 0
    assert seen == {"project": project.root, "welcome": False}
