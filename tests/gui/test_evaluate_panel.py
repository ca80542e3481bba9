"""The Evaluate step on real, tiny runs: confusion-matrix cells open their pictures, the per-class table sorts
numerically, mistakes come worst first, Try it agrees with the model file, heat maps show, runs compare.

Two runs are trained once for the module with the core trainer (the same call the Train step makes),
on colour pictures where a few are filed under the wrong class, so the model has mistakes to show.
One test trains through the window instead, to see the panel pick up a run that has just finished.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.gui.conftest import fast, scan, train  # noqa: E402
from tests.synthetic import COLOURS, colour_image, make_colour_dataset  # noqa: E402
from tlstudio.core.runs import project as pj  # noqa: E402
from tlstudio.gui.widgets.per_class_table import PerClassTable  # noqa: E402

pytestmark = pytest.mark.gui

MISFILED = (("red", "green"), ("green", "blue"), ("blue", "red"))  # (folder, colour of the pictures wrongly put there)


def make_misfiled_colours(root: Path) -> Path:
    """3 classes x 12 colour pictures, plus 4 pictures per class that look like another class."""
    make_colour_dataset(root, per_class=12)
    rng = np.random.default_rng(7)
    for folder, colour in MISFILED:
        for k in range(4):
            colour_image(rng, COLOURS[colour]).save(root / folder / f"odd_{colour}_{k}.jpg", "JPEG")
    return root


@pytest.fixture(scope="module")
def project_with_runs(tmp_path_factory):
    """A project with two finished runs: a partial fine-tune with its model file; a frozen head without, at 32 px.

    At 32 px EfficientNet-Lite0's feature maps are 2x2 cells at most, so the second run cannot show a heat map.
    """
    from tlstudio.core.engine.trainer import Trainer

    base = tmp_path_factory.mktemp("evaluate")
    data = make_misfiled_colours(base / "colours").resolve()
    project = pj.Project.create(base / "Evaluate")
    project.set_data(str(data), 0.25, 0.0, 0)
    for export, epochs, size, freeze in ((True, 3, 64, "7"), (False, 2, 32, "all")):
        cfg = project.train_config()
        fast(cfg)
        cfg.export, cfg.epochs, cfg.image_size, cfg.freeze_depth = export, epochs, size, freeze
        files = project.new_run(cfg)
        result = Trainer(cfg, files.root, cache_dir=project.cache_dir).run()
        project.finish_run(files.root.name, pj.FINISHED, result.summary)
    project.save()
    return project.root


def open_project(qtbot, window, root: Path):
    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000):
        window.studio.open_project(root)
    window.go_to("Evaluate")
    return window.evaluate_panel


def val_predictions(run) -> list[dict]:
    return [p for p in json.loads(run.files.predictions.read_text(encoding="utf-8")) if p["split"] == "val"]


def abspath(run, p: dict) -> str:
    return str(Path(run.config.data_dir) / p["path"])


def test_clicking_a_confusion_cell_shows_exactly_its_pictures(qtbot, window, tmp_path):
    studio = window.studio
    studio.new_project(tmp_path / "Cells")
    scan(qtbot, window, make_misfiled_colours(tmp_path / "colours"))
    result = train(qtbot, window)
    assert result is not None and not result.cancelled
    window.go_to("Evaluate")
    ev = window.evaluate_panel
    run = studio.run(studio.current_run)
    val = val_predictions(run)
    cm = ev.confusion_values()
    assert sum(map(sum, cm)) == len(val)

    mistakes = [(i, j) for i in range(3) for j in range(3) if i != j and cm[i][j]]
    i, j = mistakes[0] if mistakes else (0, 0)
    view = ev.confusion
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(view.model().index(i, j)).center())

    expected = [abspath(run, p) for p in val if p["label"] == i and p["pred"] == j]
    assert sorted(ev.gallery.paths()) == sorted(expected) and len(expected) == cm[i][j]
    assert f"<b>{cm[i][j]}</b>" in ev.gallery.title.text()
    qtbot.waitUntil(lambda: ev.gallery.loaded() > 0, timeout=20_000)  # thumbnails arrive from the loader's thread
    shown = view.model()
    assert shown.data(shown.index(i, j)).startswith(str(cm[i][j]))  # count, then the row percentage


def test_per_class_table_sorts_numerically(qtbot, window, project_with_runs):
    ev = open_project(qtbot, window, project_with_runs)
    table = ev.per_class
    assert table.rowCount() == 3
    for col in (1, 2, 3, 4):
        table.sortItems(col, Qt.SortOrder.AscendingOrder)
        values = table.column_values(col)
        assert values == sorted(values), col
        table.sortItems(col, Qt.SortOrder.DescendingOrder)
        assert table.column_values(col) == sorted(values, reverse=True), col

    # Text order would put "10" before "9" and "100.0%" before "75.0%".
    small = PerClassTable()
    qtbot.addWidget(small)
    per_class = {
        "a": {"precision": 1.0, "recall": 0.75, "f1": 0.857, "support": 9},
        "b": {"precision": 0.75, "recall": 1.0, "f1": 0.857, "support": 100},
        "c": {"precision": 0.5, "recall": 0.095, "f1": 0.16, "support": 10},
    }
    small.show_metrics(["a", "b", "c"], per_class)
    small.horizontalHeader().sectionClicked.emit(4)  # what a click on the column title does
    small.sortItems(4, Qt.SortOrder.AscendingOrder)
    assert small.column_texts(4) == ["9", "10", "100"]
    small.sortItems(1, Qt.SortOrder.DescendingOrder)
    assert small.column_texts(1) == ["100.0%", "75.0%", "50.0%"]
    small.sortItems(2, Qt.SortOrder.AscendingOrder)
    assert small.column_texts(0) == ["c", "a", "b"]


def test_mistakes_come_worst_first_and_show_where_the_model_looked(qtbot, window, project_with_runs):
    ev = open_project(qtbot, window, project_with_runs)
    studio = window.studio
    assert studio.current_run == studio.runs()[-1].id  # the newest run shows first
    studio.set_current_run(studio.runs()[0].id)  # the one at 64 px, which has heat maps
    run = studio.run(studio.current_run)

    val = val_predictions(run)
    wrong = [p for p in val if p["label"] != p["pred"]]
    assert wrong, "the misfiled pictures should give the model mistakes to show"
    items = ev.mistakes.items()
    assert sorted(it.path for it in items) == sorted(abspath(run, p) for p in wrong)
    losses = [it.loss for it in items]
    assert losses == sorted(losses, reverse=True)
    by_path = {abspath(run, p): -np.log(max(p["probs"][p["label"]], 1e-12)) for p in wrong}
    assert all(abs(by_path[it.path] - it.loss) < 1e-9 for it in items)
    ev.show_tab(ev.mistakes)
    qtbot.waitUntil(lambda: ev.mistakes.loaded() > 0, timeout=20_000)

    # Where did it look? Selecting a picture explains it with the run's model (efficientnet_lite0, 64 px).
    activation = ev.activation
    assert activation.isVisible()
    with qtbot.waitSignal(activation.shown, timeout=60_000) as blocker:
        ev.mistakes.select(0)
    assert blocker.args[0].request.path == items[0].path
    assert activation.has_picture(), activation.message.text()
    assert "Bright areas" in activation.caption.text()
    # Another picture from another gallery: the model is not built again.
    ev.tabs.setCurrentIndex(0)
    ev.confusion.cell_clicked(0, 0)
    with qtbot.waitSignal(activation.shown, timeout=60_000):
        ev.gallery.select(0)
    assert activation.has_picture() and activation.cache.loads == 1

    # Compare runs: every run of the project, with the curves of the ticked ones.
    ev.tabs.setCurrentWidget(ev.comparison)
    assert not activation.isVisible()
    comparison = ev.comparison
    runs = studio.project.list_runs()
    assert sorted(comparison.run_ids()) == sorted(r.id for r in runs)
    assert comparison.ticked() == [r.id for r in runs]
    assert comparison.plotted() == {r.id: len(r.history) for r in runs}
    comparison.set_ticked(runs[0].id, False)
    assert list(comparison.plotted()) == [runs[1].id]
    comparison.table.sortItems(5, Qt.SortOrder.DescendingOrder)  # epochs
    assert [comparison.table.item(r, 5).text() for r in range(2)] == ["3", "1"]  # a frozen head is solved once: no epochs to plan
    assert [comparison.table.item(r, 1).text() for r in range(2)] == ["finished", "finished"]


def test_try_it_agrees_with_the_model_file_and_needs_one(qtbot, window, project_with_runs):
    from tlstudio.core.inference.predict import ExportedModel

    ev = open_project(qtbot, window, project_with_runs)
    studio = window.studio
    first, second = studio.runs()
    assert studio.current_run == second.id

    # The newest run's model sees 32 px: no heat map, and the sentence that says why instead.
    cm = ev.confusion_values()
    ev.confusion.cell_clicked(*next((i, j) for i in range(3) for j in range(3) if cm[i][j]))
    with qtbot.waitSignal(ev.activation.shown, timeout=60_000) as blocker:
        ev.gallery.select(0)
    assert not blocker.args[0].map.supported
    assert ev.activation.state == "reason" and not ev.activation.has_picture()
    assert ev.activation.message.text() == blocker.args[0].map.reason and "too coarse" in ev.activation.message.text()

    # It was trained without exporting: Try it says so plainly.
    ev.show_tab(ev.try_it)
    assert not second.has_model
    assert "no model file" in ev.try_it.status.text() and not ev.try_it.zone.isEnabled()

    studio.set_current_run(first.id)
    assert first.has_model and ev.try_it.zone.isEnabled()
    picture = Path(first.config.data_dir) / "red" / "odd_green_0.jpg"
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(picture))])
    args = (QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter, drop = QDragEnterEvent(*args), QDropEvent(*args)  # Qt delivers a drop only after the drag entered
    QApplication.sendEvent(ev.try_it.zone, enter)
    assert enter.isAccepted()
    with qtbot.waitSignal(ev.try_it.predicted, timeout=60_000) as blocker:
        QApplication.sendEvent(ev.try_it.zone, drop)
    assert drop.isAccepted()
    (shown,) = blocker.args[0]
    assert shown == ev.try_it.results()[0] and not shown.error

    model = ExportedModel.load(first.files.model)
    expected = model.predict_file(picture).top(3, model.class_names)
    assert shown.top[0][0] == expected[0][0]
    assert [name for name, _ in shown.top] == [name for name, _ in expected]
    assert np.allclose([p for _, p in shown.top], [p for _, p in expected], atol=1e-6)

    # A folder works too, and a tried picture can be explained.
    with qtbot.waitSignal(ev.try_it.predicted, timeout=60_000) as blocker:
        ev.try_it.predict([str(picture.parent)])
    assert len(blocker.args[0]) == 16
    with qtbot.waitSignal(ev.activation.shown, timeout=60_000):
        ev.try_it.select(0)
