"""The welcome page, reopening the last project on its step, the Untitled hint, where dialogs open, a small screen."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPointF, QRect, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDropEvent  # noqa: E402
from PySide6.QtWidgets import QFileDialog  # noqa: E402

from tests.gui.conftest import scan  # noqa: E402
from tlstudio.core.config import TrainConfig  # noqa: E402
from tlstudio.core.runs.project import Project  # noqa: E402
from tlstudio.gui import session, start_folder  # noqa: E402
from tlstudio.gui.window_size import SMALLEST, first_geometry, fitted_geometry  # noqa: E402

pytestmark = pytest.mark.gui


def click_item(qtbot, view, row: int) -> None:
    item = view.item(row)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualItemRect(item).center())


def project_with_a_run(folder: Path, data: Path) -> Project:
    project = Project.create(folder)
    project.set_data(data, 0.25, 0.0, 0)
    project.new_run(TrainConfig(data_dir=str(data)))
    project.save()
    return project


# ------------------------------------------------------------ the welcome page
def test_first_launch_shows_the_welcome_page_and_a_folder_leaves_it(qtbot, window, colours, monkeypatch):
    assert window.welcome_shown() and window.welcome.isVisible()
    assert window.studio.project is None and window.welcome.recent_paths() == []
    assert window.welcome.open_folder_button.isEnabled()

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *args, **kwargs: str(colours)))
    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000):
        window.welcome.open_folder_button.click()
    assert not window.welcome_shown() and window.current_step() == "Data"
    assert window.data_panel.isVisible()


def test_the_welcome_page_lists_existing_recent_projects_and_a_click_opens_one(qtbot, window, tmp_path):
    ants = Project.create(tmp_path / "Ants")
    window.project_actions.recent.add(tmp_path / "Deleted.tlstudio")  # no longer there: not listed
    window.project_actions.recent.add(ants.root)
    window.show_welcome()
    assert window.welcome.recent_paths() == [str(ants.root)]

    click_item(qtbot, window.welcome.recent, 0)
    assert window.studio.project is not None and window.studio.project.root == ants.root
    assert not window.welcome_shown() and window.windowTitle().startswith("Ants")


def test_the_welcome_page_can_be_shown_again_and_opening_a_project_leaves_it(qtbot, window, tmp_path):
    window.go_to("Model")
    assert not window.welcome_shown()
    window.show_welcome()
    assert window.welcome_shown()
    window.project_actions.open_project(str(Project.create(tmp_path / "Bees").root))
    assert not window.welcome_shown() and window.studio.project.name == "Bees"


def test_new_project_from_the_welcome_page(qtbot, window, tmp_path, monkeypatch):
    seen = {}

    def dialog(parent, title, start, *args, **kwargs):
        seen["start"] = start
        return str(tmp_path / "Fresh.tlstudio"), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
    window.welcome.new_project_button.click()
    assert Path(seen["start"]).parent == Path.home()  # nothing remembered yet
    assert window.studio.project.root == tmp_path / "Fresh.tlstudio" and not window.welcome_shown()


def drop(window, folder: Path) -> None:
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_dropping_a_folder_on_the_welcome_page_leaves_it(qtbot, window, colours):
    assert window.welcome_shown()
    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000):
        drop(window, colours)
    assert not window.welcome_shown() and window.current_step() == "Data"


# ------------------------------------------------------------ relaunch
def test_relaunch_reopens_the_last_project_on_its_step(qtbot, new_window, colours, tmp_path):
    first = new_window()
    first.project_actions.open_project(str(project_with_a_run(tmp_path / "Colours", colours).root))
    first.go_to("Evaluate")
    first.close()

    second = new_window()
    assert second.studio.project is not None and second.studio.project.root == tmp_path / "Colours.tlstudio"
    assert not second.welcome_shown() and second.current_step() == "Evaluate"


def test_relaunch_opens_a_project_without_runs_on_the_data_step(qtbot, new_window, tmp_path):
    first = new_window()
    first.studio.new_project(tmp_path / "Empty")
    first.go_to("Evaluate")  # nothing to evaluate: reopening here would show an empty page
    first.close()

    second = new_window()
    assert second.studio.project.root == tmp_path / "Empty.tlstudio"
    assert second.current_step() == "Data"


def test_a_missing_last_project_gives_the_welcome_page_with_a_notice(qtbot, new_window, settings, tmp_path):
    gone = tmp_path / "Gone.tlstudio"
    session.remember_project(settings, gone)
    window = new_window()
    assert window.welcome_shown() and window.studio.project is None
    assert not window.welcome.notice.isHidden() and str(gone) in window.welcome.notice.text()
    assert session.last_project(settings) == ""  # said once; the next launch is a plain welcome


def test_an_unreadable_last_project_gives_the_welcome_page_not_a_traceback(qtbot, new_window, settings, tmp_path):
    broken = Project.create(tmp_path / "Broken")
    broken.file.write_text("{ not json", encoding="utf-8")
    session.remember_project(settings, broken.root)
    window = new_window()
    assert window.welcome_shown() and window.studio.project is None
    assert not window.welcome.notice.isHidden() and str(broken.root) in window.welcome.notice.text()


def test_restorable_step_only_where_the_project_has_something_to_show(tmp_path, colours):
    empty = Project.create(tmp_path / "Empty")
    with_run = project_with_a_run(tmp_path / "Full", colours)
    assert [session.restorable_step(s, empty) for s in ("Data", "Model", "Train", "Evaluate", "Export")] == ["Data", "Model", "Data", "Data", "Data"]
    assert [session.restorable_step(s, with_run) for s in ("Train", "Evaluate", "Export")] == ["Train", "Evaluate", "Export"]
    assert session.restorable_step("Evaluate", None) == "Data"


# ------------------------------------------------------------ no silent Untitled
def test_work_without_a_project_says_where_it_is_kept_and_save_as_moves_on(qtbot, window, tmp_path):
    window.go_to("Train")
    bar = window.untitled_bar
    assert bar.isVisible() and window.windowTitle().startswith("Untitled")

    untitled = window.studio.ensure_project()  # what Start does when no project is open
    assert window.studio.scratch and bar.isVisible() and str(untitled.root) in bar.text.text()
    assert window.windowTitle().startswith("Untitled")

    assert window.project_actions.save_as(str(tmp_path / "Mine"))
    assert window.studio.project.root == tmp_path / "Mine.tlstudio" and not window.studio.scratch
    assert not bar.isVisible() and window.windowTitle().startswith("Mine")
    assert window.project_actions.recent.items()[0] == str(tmp_path / "Mine.tlstudio")
    assert str(untitled.root) not in window.project_actions.recent.items()


def test_a_relaunch_reopens_an_untitled_project_still_marked_untitled(qtbot, new_window):
    first = new_window()
    untitled = first.studio.ensure_project()
    first.close()
    second = new_window()
    assert second.studio.project.root == untitled.root and second.studio.scratch
    assert second.untitled_bar.isVisible() and second.windowTitle().startswith("Untitled")


def test_save_as_before_anything_was_trained_makes_the_project(qtbot, window, colours, tmp_path):
    scan(qtbot, window, colours)
    assert window.studio.project is None and window.untitled_bar.isVisible()
    assert window.project_actions.save_as(str(tmp_path / "Early"))
    assert Project.open(tmp_path / "Early.tlstudio").data_dir == str(colours.resolve())
    assert not window.untitled_bar.isVisible()


# ------------------------------------------------------------ no other folder while training
def test_choose_image_folder_is_disabled_while_training_and_enabled_after(qtbot, window, colours):
    scan(qtbot, window, colours)
    window.go_to("Train")
    window.studio.config.epochs = 30  # long enough to look at the menus; it is stopped below
    with qtbot.waitSignal(window.train_panel.run_finished, timeout=180_000):
        window.train_panel.start_button.click()
        qtbot.waitUntil(lambda: window.studio.jobs.busy("train"), timeout=30_000)
        assert not window.choose_folder_action.isEnabled()
        assert not window.recent_folders_menu.menuAction().isEnabled()
        assert not window.welcome.open_folder_button.isEnabled()
        assert not window.untitled_bar.save_button.isEnabled()
        assert not window.data_panel.choose_button.isEnabled()
        window.open_data_folder(str(colours.parent))  # a recent folder or a drop is refused too
        assert window.data_panel.folder.text() == str(colours.resolve())
        window.train_panel.stop()
    qtbot.waitUntil(lambda: not window.studio.jobs.busy("train"), timeout=60_000)
    assert window.choose_folder_action.isEnabled() and window.welcome.open_folder_button.isEnabled()
    assert window.recent_folders_menu.menuAction().isEnabled() and window.untitled_bar.save_button.isEnabled()
    assert window.data_panel.choose_button.isEnabled()


# ------------------------------------------------------------ where file dialogs open
def test_dialogs_start_in_the_last_folder_of_their_kind_else_the_project_else_home(settings, tmp_path):
    images, elsewhere = tmp_path / "images", tmp_path / "elsewhere"
    images.mkdir(), elsewhere.mkdir()
    project = tmp_path / "Work.tlstudio"
    project.mkdir()
    assert start_folder.start_folder(settings, start_folder.WEIGHTS) == str(Path.home())
    assert start_folder.start_folder(settings, start_folder.EXPORT, project) == str(project)
    assert start_folder.start_folder(settings, start_folder.PROJECT, project) == str(tmp_path)  # beside it, not inside

    start_folder.remember_folder(settings, start_folder.IMAGES, images)
    start_folder.remember_folder(settings, start_folder.EXPORT, elsewhere / "model.pt")
    start_folder.remember_folder(settings, start_folder.PROJECT, project)
    assert start_folder.start_folder(settings, start_folder.IMAGES, project) == str(images)
    assert start_folder.start_folder(settings, start_folder.EXPORT, project) == str(elsewhere)
    assert start_folder.start_folder(settings, start_folder.PROJECT) == str(tmp_path)
    assert start_folder.start_folder(settings, start_folder.WEIGHTS) == str(Path.home())  # each kind its own

    elsewhere.rmdir()  # a remembered folder that went away: the next best place
    assert start_folder.start_folder(settings, start_folder.EXPORT, project) == str(project)


def test_open_project_dialog_starts_where_the_last_project_was(qtbot, window, tmp_path, monkeypatch):
    window.project_actions.open_project(str(Project.create(tmp_path / "shelf" / "One").root))
    seen = {}

    def dialog(parent, title, start, *args, **kwargs):
        seen["start"] = start
        return ""

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(dialog))
    window.project_actions.open_project()
    assert seen["start"] == str(tmp_path / "shelf")


# ------------------------------------------------------------ a small screen
SMALL = QRect(0, 0, 1024, 640)


def inside(rect: QRect, available: QRect) -> bool:
    return available.contains(rect)


def test_the_first_size_fits_a_small_screen_and_is_not_tiny():
    rect = first_geometry(SMALL)
    assert inside(rect, SMALL)
    assert rect.width() >= SMALLEST.width() and rect.height() >= SMALLEST.height()
    big = QRect(0, 0, 2560, 1440)
    assert first_geometry(big).size().width() == 1200 and inside(first_geometry(big), big)


def test_a_restored_geometry_is_kept_on_the_screen():
    from_a_big_screen = QRect(300, 200, 1800, 1100)
    assert inside(fitted_geometry(from_a_big_screen, SMALL), SMALL)
    tiny = fitted_geometry(QRect(10, 10, 120, 80), SMALL)
    assert inside(tiny, SMALL) and tiny.width() >= SMALLEST.width() and tiny.height() >= SMALLEST.height()
    off_screen = fitted_geometry(QRect(3000, 2000, 800, 500), SMALL)
    assert inside(off_screen, SMALL) and off_screen.size().width() == 800


def test_the_window_fits_1024_by_640_on_every_step(qtbot, window):
    for step in ("Data", "Model", "Train", "Evaluate", "Export"):
        window.go_to(step)
        hint = window.minimumSizeHint()
        assert hint.width() <= SMALL.width() and hint.height() <= SMALL.height(), step  # a step scrolls instead
    window.fit_to_screen(SMALL)
    assert inside(window.geometry(), SMALL)
    assert window.width() >= SMALLEST.width() and window.height() >= SMALLEST.height()


def test_a_saved_geometry_larger_than_the_screen_is_fitted_on_relaunch(qtbot, new_window, settings):
    first = new_window()
    first.setGeometry(QRect(0, 0, 4000, 3000))
    first.close()
    second = new_window()
    assert second.screen().availableGeometry().contains(second.geometry())
