"""The real window, offscreen, with private settings, no blocking dialogs and small fast training defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402

from tests.synthetic import make_colour_dataset  # noqa: E402


@pytest.fixture
def colours(tmp_path) -> Path:
    """3 classes x 12 generated 64 px JPEGs."""
    return make_colour_dataset(tmp_path / "colours", per_class=12)


@pytest.fixture(autouse=True)
def no_real_file_dialog(monkeypatch):
    """A real file dialog would wait for a click forever offscreen: a test that opens one without answering it fails at once."""
    from PySide6.QtWidgets import QFileDialog

    def refuse(*_args, **_kwargs):
        raise AssertionError("a real file dialog was opened; the test must answer it (monkeypatch QFileDialog or the panel's ask_*)")

    for name in ("getOpenFileName", "getOpenFileNames", "getSaveFileName", "getExistingDirectory"):
        monkeypatch.setattr(QFileDialog, name, staticmethod(refuse))


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def make_window(qtbot, settings: QSettings):
    from tlstudio.gui.app import make_application
    from tlstudio.gui.main_window import MainWindow

    make_application()
    window = MainWindow(settings)
    window.notifier.show_dialogs = False  # tests wait on ``notified``; one test checks the dialog itself
    window.confirm = lambda title, question: True
    fast(window.studio.config)
    window.show()
    return window


def fast(config) -> None:
    """Seconds, not minutes, on a 2-core CPU: small images, a frozen bundled backbone, no export."""
    config.image_size = 64
    config.epochs = 3
    config.batch_size = 8
    config.export = False


@pytest.fixture
def new_window(qtbot, settings):
    """Make windows; at the end, stop and join whatever they left running, then close them.

    The windows are not handed to ``qtbot.addWidget``: pytest-qt would delete them before this
    teardown, while a job of theirs might still be running.
    """
    made = []

    def make():
        made.append(make_window(qtbot, settings))
        return made[-1]

    yield make
    for window in made:
        assert window.studio.jobs.wait_all(60_000)
        qtbot.waitUntil(lambda w=window: not w.studio.jobs.busy(), timeout=10_000)
        window.close()
        window.deleteLater()


@pytest.fixture
def window(new_window):
    return new_window()


def scan(qtbot, window, folder: Path):
    """Choose ``folder`` the way the dialog would, and wait for the background scan."""
    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000) as blocker:
        window.data_panel.open_folder(folder)
    return blocker.args[0]


def train(qtbot, window, timeout_ms: int = 120_000):
    """Press Start and wait for the run to end; return the TrainResult (None if it failed)."""
    with qtbot.waitSignal(window.train_panel.run_finished, timeout=timeout_ms) as blocker:
        window.train_panel.start_button.click()
    return blocker.args[0]
