"""Everyday actions: Try it saves its answers as predict's CSV; a picture opens (or its folder shows) through the
desktop; a run gets a name every run list shows and the project keeps; a from-scratch run is marked; the Export
step says its verification in plain numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt, QUrl  # noqa: E402

from tests.gui.exported_run import assert_same_predictions_csv, make_project_with_exported_run, new_pictures  # noqa: E402
from tests.synthetic import make_colour_dataset  # noqa: E402
from tlstudio.core.config import TrainConfig  # noqa: E402
from tlstudio.core.runs import project as pj  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def studio(qtbot):
    from tlstudio.gui.notifier import Notifier
    from tlstudio.gui.studio import Studio

    notifier = Notifier()
    notifier.show_dialogs = False
    studio = Studio(notifier)
    yield studio
    assert studio.jobs.wait_all(60_000)
    qtbot.waitUntil(lambda: not studio.jobs.busy(), timeout=10_000)


@pytest.fixture
def pictures(tmp_path):
    paths = []
    for i in range(2):
        path = tmp_path / "pictures" / f"p{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    return paths


# ------------------------------------------------------------------ Try it: Save Results
def test_try_it_saves_the_answers_as_predicts_csv(qtbot, studio, tmp_path):
    from tlstudio.cli import main
    from tlstudio.gui.widgets.try_it import TOP_K, TryItView

    project_root, model = make_project_with_exported_run(tmp_path / "trained")
    folder = new_pictures(project_root.parent / "colours", tmp_path / "new")
    view = TryItView(studio)
    qtbot.addWidget(view)
    view.set_model_file(model)
    assert not view.save_button.isEnabled()
    with qtbot.waitSignal(view.predicted, timeout=120_000):
        view.predict([str(folder)])
    assert view.save_button.isEnabled()

    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    view.ask_save_path = lambda: str(ours)
    view.save_button.click()
    assert main(["predict", str(model), str(folder), "--csv", str(theirs), "--top-k", str(TOP_K)]) == 0
    assert_same_predictions_csv(ours, theirs)

    view.set_model_file("")  # another run: nothing shown, nothing to save
    assert not view.save_button.isEnabled() and not view.save_results(tmp_path / "nothing.csv")
    assert not (tmp_path / "nothing.csv").exists()


# ------------------------------------------------------------------ Open / Show in Folder
def triggered(menu, name: str) -> None:
    (action,) = [a for a in menu.actions() if a.objectName() == name]
    action.trigger()


def test_a_gallery_picture_opens_and_shows_its_folder(qtbot, pictures):
    from tlstudio.gui.widgets.image_gallery import GalleryItem, ImageGallery

    gallery = ImageGallery()
    qtbot.addWidget(gallery)
    gallery.show_items([GalleryItem(p, f"caption {i}") for i, p in enumerate(pictures)])
    gallery.resize(400, 300)
    gallery.show()
    qtbot.waitExposed(gallery)
    opened: list[QUrl] = []
    gallery.file_actions.opener = opened.append

    index = gallery.model.index(1)
    qtbot.waitUntil(lambda: gallery.view.indexAt(gallery.view.visualRect(index).center()) == index, timeout=5_000)  # laid out
    rect = gallery.view.visualRect(index)
    qtbot.mouseClick(gallery.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # a view opens what was pressed
    qtbot.mouseDClick(gallery.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert opened == [QUrl.fromLocalFile(pictures[1])]

    triggered(gallery.file_actions.menu(index), "show_in_folder")
    triggered(gallery.file_actions.menu(gallery.model.index(0)), "open")
    assert opened[1:] == [QUrl.fromLocalFile(str(Path(pictures[1]).parent)), QUrl.fromLocalFile(pictures[0])]
    assert gallery.file_actions.menu(gallery.model.index(5)) is None  # no picture there: no menu


def test_the_data_steps_class_tabs_and_try_it_open_pictures_too(qtbot, studio, pictures):
    from tlstudio.gui.widgets.thumbnails import ClassGallery
    from tlstudio.gui.widgets.try_it import ResultModel, TryItView, TryResult

    classes = ClassGallery()
    qtbot.addWidget(classes)
    classes.show_classes({"a": pictures[:1], "b": pictures[1:]})
    opened: list[QUrl] = []
    classes.opener = opened.append
    b = classes.file_actions["b"]
    triggered(b.menu(classes.models["b"].index(0)), "open")
    assert opened == [QUrl.fromLocalFile(pictures[1])]

    view = TryItView(studio)
    qtbot.addWidget(view)
    view.file_actions.opener = opened.append
    model = ResultModel([TryResult(pictures[0], [("a", 0.9)])], view.loader, view)
    view.list.setModel(model)
    view.list.doubleClicked.emit(model.index(0))
    assert opened[1:] == [QUrl.fromLocalFile(pictures[0])]


# ------------------------------------------------------------------ Rename runs, from-scratch runs
@pytest.fixture
def two_runs(tmp_path):
    """A project with a finished pretrained run and its from-scratch baseline (records and configs only)."""
    from tlstudio.core.runs.baseline import baseline_config

    data = make_colour_dataset(tmp_path / "colours", per_class=4).resolve()
    project = pj.Project.create(tmp_path / "Named")
    project.set_data(str(data), 0.25, 0.0, 0)
    ids = []
    for cfg in (TrainConfig(data_dir=str(data)), baseline_config(TrainConfig(data_dir=str(data)))):
        files = project.new_run(cfg, remember=False)
        files.write_json(files.config, cfg.to_dict())
        project.finish_run(files.root.name, pj.FINISHED, {"val_accuracy": 0.75})
        ids.append(files.root.name)
    return project.root, ids


def open_project(qtbot, window, root):
    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000):
        window.studio.open_project(root)


def pickers(window):
    return [window.train_panel.runs, window.evaluate_panel.runs, window.export_panel.runs]


def shown_title(picker, run_id: str) -> str:
    return picker.itemText(picker.findData(run_id))


def test_a_renamed_run_shows_in_every_run_list_and_survives_reopening(qtbot, new_window, two_runs):
    root, (pretrained, _) = two_runs
    window = new_window()
    open_project(qtbot, window, root)
    window.studio.set_current_run(pretrained)
    picker = window.export_panel.runs
    asked: list[str] = []
    picker.ask_name = lambda current: asked.append(current) or "  frozen, 10 epochs "
    picker.rename_action.trigger()
    assert asked == [""]
    for each in pickers(window):
        assert shown_title(each, pretrained).startswith("frozen, 10 epochs") and pretrained not in shown_title(each, pretrained)
        assert each.currentData() == pretrained and shown_title(each, pretrained) in each.toolTip()  # whole, however narrow the box
    assert (root / "runs" / pretrained).is_dir()
    table = window.evaluate_panel.comparison.table  # Compare runs names it too
    qtbot.waitUntil(lambda: "frozen, 10 epochs" in [table.item(r, 0).text() for r in range(table.rowCount())], timeout=10_000)

    again = new_window()
    open_project(qtbot, again, root)
    for each in pickers(again):
        assert shown_title(each, pretrained).startswith("frozen, 10 epochs")
    assert pj.Project.open(root).record(pretrained).name == "frozen, 10 epochs"

    # Asked again, the dialog starts from the name; a bad name is refused, said, and changes nothing.
    again.studio.set_current_run(pretrained)
    picker = again.train_panel.runs
    picker.ask_name = lambda current: asked.append(current) or "two\nlines"
    with qtbot.waitSignal(again.notifier.notified, timeout=5_000) as blocker:
        assert not picker.rename_current()
    assert asked[-1] == "frozen, 10 epochs" and blocker.args[0].user_error
    assert pj.Project.open(root).record(pretrained).name == "frozen, 10 epochs"
    picker.ask_name = lambda current: None  # Cancel
    assert not picker.rename_current()


def test_a_from_scratch_run_is_marked_in_the_run_lists(qtbot, window, two_runs):
    root, (pretrained, scratch) = two_runs
    open_project(qtbot, window, root)
    for each in pickers(window):
        assert pj.FROM_SCRATCH in shown_title(each, scratch) and pj.FROM_SCRATCH not in shown_title(each, pretrained)


# ------------------------------------------------------------------ plain numbers on the Export step
@pytest.mark.parametrize("fraction, shown", [(6.1e-05, "0.006%"), (0.0, "0%"), (0.0042, "0.4%"), (0.0321, "3.2%"), (2e-9, "less than 0.0001%")])
def test_a_probability_difference_reads_as_a_plain_percentage(fraction, shown):
    from tlstudio.gui.panels.export_panel import percent_text

    assert percent_text(fraction) == shown
