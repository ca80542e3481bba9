"""Start the desktop studio: logging, the exception hook, the style sheet, the window.

``tlstudio`` with no sub-command calls ``run_app``, which reopens the last project on its step (or shows the
welcome page); ``tlstudio PATH`` opens a project (a folder ending in .tlstudio) or uses PATH as the image folder.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Optional, Sequence

# PySide6 first: pyqtgraph binds to whichever Qt binding is already imported.
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

import pyqtgraph as pg  # noqa: E402 - after PySide6 on purpose

from tlstudio import __version__
from tlstudio.core.paths import data_dir, resources_dir
from tlstudio.core.runs.project import is_project

from tlstudio.gui.garbage import collect_on_the_gui_thread, freeze_long_lived_objects
from tlstudio.gui.notifier import Notifier

log = logging.getLogger("tlstudio.gui")


def setup_logging() -> Optional[Path]:
    """Log to stderr and to a rotating file in the user's data folder; return the file."""
    root = logging.getLogger("tlstudio")
    if root.handlers:
        return None
    root.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    stderr = logging.StreamHandler()
    stderr.setFormatter(fmt)
    root.addHandler(stderr)
    try:
        folder = data_dir() / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / "tlstudio.log"
        handler = logging.handlers.RotatingFileHandler(file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
        handler.setFormatter(fmt)
        root.addHandler(handler)
        return file
    except OSError:
        return None


def install_exception_hook(notifier: Notifier) -> None:
    """An exception escaping a slot becomes the notifier's dialog (and a log entry), never a silent crash."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            previous(exc_type, exc, tb)
            return
        try:
            notifier.exception(exc.with_traceback(tb))
        except Exception:  # noqa: BLE001 - the hook itself must never raise
            previous(exc_type, exc, tb)

    sys.excepthook = hook


def load_style_sheet() -> str:
    path = resources_dir() / "style.qss"
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def make_application(argv: Sequence[str] = ()) -> QApplication:
    app = QApplication.instance() or QApplication(["tlstudio", *argv])
    app.setApplicationName("tlstudio")
    app.setOrganizationName("tlstudio")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("tlstudio")
    app.setWindowIcon(QIcon(str(resources_dir() / "tlstudio.svg")))
    app.setStyleSheet(load_style_sheet())
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    collect_on_the_gui_thread(app)  # before any worker starts: no collection ever runs on a worker thread
    return app


def run_app(argv: Sequence[str] = ()) -> int:
    from tlstudio.gui.main_window import MainWindow

    argv = list(argv)
    log_file = setup_logging()
    app = make_application([a for a in argv if a.startswith("-")])
    notifier = Notifier()
    install_exception_hook(notifier)
    paths = [a for a in argv if not a.startswith("-")]
    window = MainWindow(QSettings(), notifier, reopen_last=not paths)  # a path given wins over the last session
    app.aboutToQuit.connect(lambda: window.studio.jobs.wait_all(30_000))
    freeze_long_lived_objects()  # torch, timm, Qt and the window: keep them out of every later collection
    if paths:
        target = Path(paths[0]).expanduser()
        if is_project(target):
            QTimer.singleShot(0, lambda: window.project_actions.open_project(str(target)))
        elif target.is_dir():
            QTimer.singleShot(0, lambda: window.open_data_folder(str(target)))
    window.show()
    log.info("tlstudio %s started%s", __version__, f"; log file {log_file}" if log_file else "")
    return int(app.exec())
