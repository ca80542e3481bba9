"""The main window: composes the five step panels, the menus and the status bar. No work happens here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from PySide6.QtCore import QRect, QSettings, QSize, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from tlstudio import __version__
from tlstudio.core.paths import resources_dir
from tlstudio.core.runs.project import is_project

from tlstudio.gui import session
from tlstudio.gui.help_viewer import GLOSSARY, GUIDE, STEP_PAGES, HelpViewer
from tlstudio.gui.notifier import Notifier
from tlstudio.gui.panels.data_panel import DataPanel
from tlstudio.gui.panels.evaluate_panel import EvaluatePanel
from tlstudio.gui.panels.export_panel import ExportPanel
from tlstudio.gui.panels.model_panel import ModelPanel
from tlstudio.gui.panels.train_panel import TrainPanel
from tlstudio.gui.panels.welcome import WelcomePage
from tlstudio.gui.project_actions import ProjectActions
from tlstudio.gui.recent import RecentList, RecentMenu
from tlstudio.gui.start_folder import IMAGES
from tlstudio.gui.studio import Studio
from tlstudio.gui.untitled_bar import UntitledBar
from tlstudio.gui.widgets.calm_progress import CalmProgressBar
from tlstudio.gui.window_size import first_geometry, fitted_geometry

log = logging.getLogger("tlstudio.gui")

STEPS = ("Data", "Model", "Train", "Evaluate", "Export")
STEP_TIPS = (
    "Choose the folder of pictures and check what was found",
    "Choose the pretrained backbone and how much of it trains",
    "Train and watch the curves",
    "See how the model does on pictures it never trained on",
    "Save the model file and see how to use it",
)


def scrolling(panel: QWidget) -> QScrollArea:
    """A step in a scroll area: on a small screen the step scrolls instead of making the window larger than the screen."""
    area = QScrollArea()
    area.setWidget(panel)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    return area


def device_in_words() -> str:
    from tlstudio.core.engine.device import describe_device, resolve_device

    return describe_device(resolve_device("auto"))


class MainWindow(QMainWindow):
    def __init__(
        self,
        settings: Optional[QSettings] = None,
        notifier: Optional[Notifier] = None,
        studio: Optional[Studio] = None,
        reopen_last: bool = True,
    ):
        """``reopen_last``: open the project of the last session on its step (off when a path to open was given)."""
        super().__init__()
        self.settings = settings if settings is not None else QSettings()
        self.notifier = notifier if notifier is not None else Notifier()
        self.notifier.set_parent_widget(self)
        self.studio = studio if studio is not None else Studio(self.notifier)
        self.studio.settings = self.settings
        self.confirm = self._ask  # (title, question) -> bool; tests replace it so no modal dialog blocks them
        self._closing = False
        self.help_viewer: Optional[HelpViewer] = None
        self.recent_folders = RecentList(self.settings, "recent/folders")
        self.project_actions = ProjectActions(self.studio, RecentList(self.settings, "recent/projects"), self)

        self.data_panel = DataPanel(self.studio)
        self.model_panel = ModelPanel(self.studio)
        self.model_panel.confirm = lambda title, question: self.confirm(title, question)  # the one injectable question
        self.train_panel = TrainPanel(self.studio)
        self.evaluate_panel = EvaluatePanel(self.studio)
        self.export_panel = ExportPanel(self.studio)
        self.panels = (self.data_panel, self.model_panel, self.train_panel, self.evaluate_panel, self.export_panel)
        self.welcome = WelcomePage(self.project_actions.recent)

        self.pages = QStackedWidget()  # the welcome page, or the five steps
        self.pages.addWidget(self.welcome)
        self.pages.addWidget(self._build_steps_page())
        self.setCentralWidget(self.pages)

        self._build_menus()
        self._build_status_bar()
        self.setAcceptDrops(True)
        self.setWindowIcon(QIcon(str(resources_dir() / "tlstudio.svg")))
        self._connect()
        self._update_title()
        self._restore_layout()
        self._restore_session(reopen_last)

    def _build_steps_page(self) -> QWidget:
        self.steps = QListWidget()
        self.steps.setObjectName("steps")
        self.steps.setIconSize(QSize(20, 20))
        self.stack = QStackedWidget()
        for i, (name, panel) in enumerate(zip(STEPS, self.panels, strict=True)):
            item = QListWidgetItem(f"{i + 1}  {name}")
            item.setToolTip(f"{STEP_TIPS[i]} (Ctrl+{i + 1})")
            self.steps.addItem(item)
            self.stack.addWidget(scrolling(panel))
        self.steps.setFixedWidth(150)
        self.steps.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.steps.setCurrentRow(0)
        self.untitled_bar = UntitledBar(self.studio)
        self.step_help_button = QToolButton()
        self.step_help_button.setText("?")
        self.step_help_button.setToolTip("What this step does")
        self.step_help_button.clicked.connect(self.show_step_help)
        top = QHBoxLayout()
        top.addWidget(self.untitled_bar, 1)
        top.addWidget(self.step_help_button, 0, Qt.AlignmentFlag.AlignTop)
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(top)
        column.addWidget(self.stack, 1)
        page = QWidget()
        row = QHBoxLayout(page)
        row.setContentsMargins(6, 6, 6, 6)
        row.addWidget(self.steps)
        row.addLayout(column, 1)
        return page

    def _connect(self) -> None:
        studio, welcome = self.studio, self.welcome
        studio.project_changed.connect(self._update_title)
        studio.project_changed.connect(self._on_project_changed)
        studio.jobs.progress.connect(self._on_job_progress)
        studio.jobs.live_changed.connect(self._update_for_training)
        self.data_panel.folder_opened.connect(self.recent_folders.add)
        self.data_panel.folder_opened.connect(lambda path: studio.remember_folder(IMAGES, path))
        self.data_panel.folder_opened.connect(self.show_steps)
        self.evaluate_panel.actions.baseline_requested.connect(self.train_baseline)
        self.evaluate_panel.transfer.train_requested.connect(self.train_baseline)  # the smaller model trains on the Train step too
        self.evaluate_panel.actions.report_written.connect(self._on_report_written)
        self.steps.currentRowChanged.connect(lambda row: session.remember_step(self.settings, row))
        self.untitled_bar.save_as_requested.connect(self.project_actions.save_project_as)
        welcome.open_folder_requested.connect(self.data_panel.choose_folder)
        welcome.open_project_requested.connect(lambda: self.project_actions.open_project())
        welcome.new_project_requested.connect(self.project_actions.new_project)
        welcome.recent_chosen.connect(self.project_actions.open_project)
        welcome.guide_requested.connect(lambda: self.show_help(GUIDE))
        self.model_panel.weights_changed.connect(lambda _name: self.train_panel.check_weights())
        self.train_panel.model_step_requested.connect(lambda: self.go_to("Model"))
        self.evaluate_panel.actions.confirm = lambda title, question: self.confirm(title, question)

    # ------------------------------------------------------------ composition
    def _build_menus(self) -> None:
        pa = self.project_actions
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&New Project…", pa.new_project, QKeySequence.StandardKey.New)
        self._action(file_menu, "&Open Project…", lambda: pa.open_project(), QKeySequence.StandardKey.Open)
        file_menu.addMenu(pa.recent_menu)
        self._action(file_menu, "&Save Project", pa.save_project, QKeySequence.StandardKey.Save)
        self._action(file_menu, "Save Project &As…", pa.save_project_as, QKeySequence.StandardKey.SaveAs)
        file_menu.addSeparator()
        self.choose_folder_action = self._action(file_menu, "Choose Image &Folder…", self._choose_folder, QKeySequence("Ctrl+Shift+O"))
        self.recent_folders_menu = RecentMenu("Recent Image Fo&lders", self.recent_folders, self.open_data_folder, self)
        file_menu.addMenu(self.recent_folders_menu)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit).setMenuRole(QAction.MenuRole.QuitRole)

        go = self.menuBar().addMenu("&Go")
        self._action(go, "&Welcome Page", self.show_welcome, QKeySequence("Ctrl+0"))
        go.addSeparator()
        for i, name in enumerate(STEPS):
            self._action(go, f"&{i + 1} {name}", lambda _c=False, i=i: self.go_to(i), QKeySequence(f"Ctrl+{i + 1}"))

        training = self.menuBar().addMenu("&Training")
        self._action(training, "&Start", self.train_panel.start, QKeySequence("Ctrl+R"))
        self._action(training, "&Pause / Resume", self.train_panel.toggle_pause, QKeySequence("Ctrl+P"))
        self._action(training, "S&top", self.train_panel.stop, QKeySequence("Ctrl+."))

        help_menu = self.menuBar().addMenu("&Help")
        self.guide_action = self._action(help_menu, "tlstudio &Guide", self.show_step_help, QKeySequence.StandardKey.HelpContents)
        self.glossary_action = self._action(help_menu, "G&lossary", lambda: self.show_help(GLOSSARY))
        help_menu.addSeparator()
        self._action(help_menu, "&About tlstudio", self.about).setMenuRole(QAction.MenuRole.AboutRole)

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda _checked=False: slot())
        if shortcut is not None:
            action.setShortcut(shortcut)
        return action

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.job_label = QLabel("Ready")
        self.job_progress = CalmProgressBar()
        self.job_progress.setMaximumWidth(180)
        self.job_progress.setVisible(False)
        self.device_label = QLabel(f"Compute: {device_in_words()}")
        self.device_label.setToolTip("Where training runs. Change it on the Train step.")
        bar.addWidget(self.job_label, 1)
        bar.addPermanentWidget(self.job_progress)
        bar.addPermanentWidget(self.device_label)

    # ------------------------------------------------------------ public
    def go_to(self, step: int | str) -> None:
        self.show_steps()
        self.steps.setCurrentRow(STEPS.index(step) if isinstance(step, str) else step)

    def current_step(self) -> str:
        return STEPS[self.steps.currentRow()]

    def show_welcome(self) -> None:
        self.welcome.refresh()
        self.pages.setCurrentWidget(self.welcome)

    def show_steps(self) -> None:
        self.pages.setCurrentIndex(1)

    def welcome_shown(self) -> bool:
        return self.pages.currentWidget() is self.welcome

    def show_help(self, page: str = GUIDE, anchor: str = "") -> HelpViewer:
        if self.help_viewer is None:
            self.help_viewer = HelpViewer(self)
        self.help_viewer.show_page(page, anchor)
        return self.help_viewer

    def show_step_help(self) -> HelpViewer:
        """The guide's page of the step on screen (its contents page from the welcome page)."""
        return self.show_help(GUIDE if self.welcome_shown() else STEP_PAGES[self.current_step()])

    def train_baseline(self, config) -> None:
        """Train a TrainConfig (a run's from-scratch baseline, a smaller model) on the Train step, where its curves and controls are."""
        if self.train_panel.start(config) is not None:
            self.go_to("Train")

    def open_data_folder(self, path: str) -> None:
        if self._refuse_while_training("Opening the image folder"):
            return
        self.data_panel.open_folder(path)
        self.go_to("Data")

    def about(self) -> None:
        QMessageBox.about(
            self,
            "About tlstudio",
            f"<h3>tlstudio {__version__}</h3><p>No-code transfer learning on images: point it at a folder of pictures, "
            "one sub-folder per class, train a classifier on a pretrained backbone, and export a TorchScript file "
            "that runs anywhere PyTorch runs.</p><p>Everything works offline.</p>",
        )

    # ------------------------------------------------------------ reactions
    def _choose_folder(self) -> None:
        if self._refuse_while_training("Choosing the image folder"):
            return
        self.go_to("Data")
        self.data_panel.choose_folder()

    def _refuse_while_training(self, what: str) -> bool:
        if not self.studio.jobs.busy("train"):
            return False
        self.statusBar().showMessage(f"{what}: training is running. Stop it first, then choose another folder.", 10_000)
        return True

    def _update_for_training(self) -> None:
        """While a run trains on its image folder, no other folder can be chosen."""
        training = self.studio.jobs.busy("train")
        self.choose_folder_action.setEnabled(not training)
        self.recent_folders_menu.menuAction().setEnabled(not training)
        self.welcome.set_training(training)
        self.untitled_bar.save_button.setEnabled(not training)  # a project is copied only between runs

    def _on_project_changed(self) -> None:
        project = self.studio.project
        if project is not None:
            session.remember_project(self.settings, project.root)
            self.welcome.set_notice("")
            self.show_steps()

    def _on_job_progress(self, text: str, done: int, total: int) -> None:
        self.job_label.setText(text)
        busy = self.studio.jobs.busy()
        self.job_progress.setVisible(busy)
        if busy:
            self.job_progress.setRange(0, max(0, total))
            self.job_progress.setValue(min(done, total) if total else 0)

    def _on_report_written(self, path: str) -> None:
        self.statusBar().showMessage(f"Report saved to {path}", 15_000)

    def _update_title(self) -> None:
        project = self.studio.project
        name = "Untitled" if project is None or self.studio.scratch else project.name
        self.setWindowTitle(f"{name} — tlstudio")

    # ------------------------------------------------------------ drag and drop: a folder of images or a project
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(Path(u.toLocalFile()).is_dir() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        folders = [Path(u.toLocalFile()) for u in event.mimeData().urls() if Path(u.toLocalFile()).is_dir()]
        if not folders:
            return
        event.acceptProposedAction()
        if is_project(folders[0]):
            self.project_actions.open_project(str(folders[0]))
        else:
            self.open_data_folder(str(folders[0]))

    # ------------------------------------------------------------ layout persistence and closing
    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is None or not self.restoreGeometry(geometry):
            self.setGeometry(first_geometry(self._available()))
        self.fit_to_screen()
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)
        for splitter in self.findChildren(QSplitter):
            saved = self.settings.value(f"window/{splitter.objectName()}") if splitter.objectName() else None
            if saved is not None:
                splitter.restoreState(saved)

    def _available(self) -> QRect:
        return self.screen().availableGeometry()

    def fit_to_screen(self, available: Optional[QRect] = None) -> None:
        """Keep the window on the screen's available area (a geometry saved on a larger screen included)."""
        available = available if available is not None else self._available()
        if self.isMaximized() or self.isFullScreen():
            return
        self.setGeometry(fitted_geometry(self.geometry(), available))

    def _restore_session(self, reopen_last: bool) -> None:
        """Reopen the last project on its step; the welcome page when there is none or it cannot be opened."""
        path = session.last_project(self.settings) if reopen_last else ""
        if not path:
            self.show_welcome()
            return
        problem = self._reopen(path)
        if problem:
            session.forget_project(self.settings)
            self.welcome.set_notice(problem)  # on the page itself: it stays until a project opens
            self.show_welcome()
            return
        self.go_to(session.restorable_step(session.last_step(self.settings, STEPS), self.studio.project, STEPS[0]))

    def _reopen(self, path: str) -> str:
        """Open the last session's project; '' when it opened, else what went wrong in plain words."""
        if not is_project(path):
            return f"The last project, {path}, is not there any more (it may have been moved or deleted). Open it from its new place, or start again."
        try:
            self.studio.open_project(path)
        except Exception as exc:  # noqa: BLE001 - a damaged project must never stop the window from opening
            log.warning("could not reopen the last project %s: %s", path, exc)
            return f"The last project, {path}, could not be opened: {exc}"
        return ""

    def _save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        session.remember_step(self.settings, self.steps.currentRow())
        for splitter in self.findChildren(QSplitter):
            if splitter.objectName():
                self.settings.setValue(f"window/{splitter.objectName()}", splitter.saveState())
        self.settings.sync()

    def _ask(self, title: str, question: str) -> bool:
        answer = QMessageBox.question(self, title, question, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        jobs = self.studio.jobs
        if jobs.busy("train") and not self._closing and not self.confirm(
            "Training is running", "Stop training and close tlstudio?\n\nThe best model so far is kept in the project."
        ):
            event.ignore()
            return
        # Asked again after the question: the run may have ended while it was open, and then nothing is left to wait for.
        if jobs.busy():
            if not self._closing:
                # Ask every job to stop and close once they have: the window stays responsive meanwhile.
                self._closing = True
                self.job_label.setText("Stopping before closing…")
                jobs.all_finished.connect(self.close, Qt.ConnectionType.QueuedConnection)
                jobs.stop_all()
            event.ignore()
            return
        self._save_layout()
        self.studio.autosave()
        self.data_panel.shutdown()
        self.evaluate_panel.shutdown()
        self.export_panel.shutdown()
        event.accept()
