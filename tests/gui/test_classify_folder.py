"""Classify a folder on the Export step: the answers and the CSV are those of `tlstudio predict` on the same folder and
model file; the table sorts by confidence as numbers; a stop ends it; a broken picture is a row with its reason;
a run without a model file offers nothing and says why."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

from tests.gui.exported_run import assert_same_predictions_csv, make_project_with_exported_run, new_pictures  # noqa: E402
from tlstudio.core.runs import project as pj  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return make_project_with_exported_run(tmp_path_factory.mktemp("classify"))


def open_on_export(qtbot, window, project_root):
    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000):
        window.studio.open_project(project_root)
    window.go_to("Export")
    return window.export_panel.classify


def test_the_folder_gets_the_answers_and_the_csv_of_tlstudio_predict(qtbot, window, exported, tmp_path):
    from tlstudio.cli import main
    from tlstudio.gui.widgets.classify_folder import ANSWER, CONFIDENCE, PICTURE, PROBLEM, SORT_ROLE

    project_root, model = exported
    folder = new_pictures(project_root.parent / "colours", tmp_path / "new pictures")
    view = open_on_export(qtbot, window, project_root)
    assert view.choose_button.isEnabled() and not view.save_button.isEnabled()

    view.ask_folder = lambda: str(folder)
    with qtbot.waitSignal(view.classified, timeout=120_000) as blocker:
        view.choose_button.click()
    answers = blocker.args[0]
    qtbot.waitUntil(lambda: view.job is None and view.save_button.isEnabled(), timeout=10_000)
    in_order = [view.sorted.index(r, PICTURE).data(Qt.ItemDataRole.ToolTipRole) for r in range(view.sorted.rowCount())]
    assert in_order == [p.path for p in answers.predictions]  # first shown in the order of the CSV

    # Every picture at every depth, the broken one included (the text file is not a picture).
    pictures = 24 + 1
    assert view.table_model.rowCount() == view.sorted.rowCount() == view.gallery.count() == pictures
    assert answers.unreadable == 1
    broken = [r for r in range(pictures) if view.table_model.index(r, PICTURE).data(Qt.ItemDataRole.ToolTipRole).endswith("broken.jpg")]
    (row,) = broken
    assert view.table_model.index(row, PROBLEM).data() and not view.table_model.index(row, ANSWER).data()
    good = [r for r in range(pictures) if r != row]
    assert all(view.table_model.index(r, ANSWER).data() in answers.class_names for r in good)

    # The command line's CSV.
    ours, theirs = tmp_path / "ours.csv", tmp_path / "theirs.csv"
    view.ask_save_path = lambda: str(ours)
    with qtbot.waitSignal(view.saved, timeout=10_000):
        view.save_button.click()
    assert main(["predict", str(model), str(folder), "--csv", str(theirs)]) == 0
    assert_same_predictions_csv(ours, theirs)

    # Sorting by confidence orders the numbers, not their text ("9.5%" after "10.2%" when descending).
    view.table.sortByColumn(CONFIDENCE, Qt.SortOrder.DescendingOrder)
    shown = [view.sorted.index(r, CONFIDENCE).data(SORT_ROLE) for r in range(pictures)]
    assert shown == sorted(shown, reverse=True) and shown[-1] == -1.0  # the broken picture, with no confidence, last
    view.table.sortByColumn(CONFIDENCE, Qt.SortOrder.AscendingOrder)
    shown = [view.sorted.index(r, CONFIDENCE).data(SORT_ROLE) for r in range(pictures)]
    assert shown == sorted(shown) and len(set(shown)) > 2
    texts = [view.sorted.index(r, CONFIDENCE).data() for r in range(1, pictures)]
    assert [float(t.rstrip("%")) for t in texts] == sorted(float(t.rstrip("%")) for t in texts)


def test_stop_ends_the_classification_within_a_batch(qtbot, window, exported, tmp_path):
    from tlstudio.core.events import Progress

    project_root, _ = exported
    folder = new_pictures(project_root.parent / "colours", tmp_path / "many", copies=40)  # 960 pictures: 60 batches
    view = open_on_export(qtbot, window, project_root)
    job = view.classify(folder)
    seen: list[Progress] = []
    bar: list[tuple[int, int]] = []

    def stop_at_first_progress(event):
        if isinstance(event, Progress) and not seen:
            seen.append(event)
            bar.append((view.bar.value(), view.bar.maximum()))  # the view took the event first
            view.stop_button.click()

    job.event.connect(stop_at_first_progress)
    assert view.stop_button.isEnabled() and not view.choose_button.isEnabled()
    with qtbot.waitSignal(job.finished, timeout=120_000):
        pass
    assert job.was_cancelled and seen and seen[0].done < seen[0].total
    assert bar == [(seen[0].done, seen[0].total)] and seen[0].total == 40 * 24 + 1  # "N of M pictures", M all of them
    assert view.answers is None and view.table_model.rowCount() == 0 and not view.save_button.isEnabled()
    assert view.choose_button.isEnabled() and not view.stop_button.isEnabled()


def test_a_run_without_a_model_file_offers_nothing_and_says_why(qtbot, window, exported, tmp_path):
    from tlstudio.gui.widgets.classify_folder import NO_FILE

    project_root, _ = exported
    copy = pj.Project.open(project_root).save_as(tmp_path / "Copy")
    (run,) = copy.list_runs()
    run.files.model.unlink()  # as if trained with the export off
    view = open_on_export(qtbot, window, copy.root)
    assert not view.choose_button.isEnabled() and view.status.text() == NO_FILE
    assert view.classify(tmp_path) is None


@pytest.mark.parametrize("trusted", [False, True])
def test_a_model_file_tlstudio_did_not_make_runs_only_after_a_yes(qtbot, tmp_path, trusted):
    import threading

    import numpy as np
    from PIL import Image

    from tests.faults.evil_model import make_evil_model, ran
    from tlstudio.gui.notifier import Notifier
    from tlstudio.gui.studio import Studio
    from tlstudio.gui.widgets.classify_folder import ClassifyFolderView
    from tlstudio.gui.widgets.try_it import NOT_TRUSTED

    marker = tmp_path / "overwritten"
    model = make_evil_model(tmp_path / "stranger.pt", marker)
    folder = tmp_path / "new"
    folder.mkdir()
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(folder / "picture.png")
    notifier = Notifier()
    notifier.show_dialogs = False
    studio = Studio(notifier)
    view = ClassifyFolderView(studio)
    qtbot.addWidget(view)
    asked = []
    view.ask_to_trust = lambda path: asked.append((path, threading.current_thread() is threading.main_thread())) or trusted
    view.set_model_file(model)
    view.classify(folder)
    qtbot.waitUntil(lambda: view.job is None and bool(asked) and (view.answers is not None or view.status.text() == NOT_TRUSTED), timeout=60_000)
    assert asked == [(str(model), True)]
    if trusted:
        assert view.table_model.rowCount() == 1 and ran(marker) == {"load", "forward"}
    else:
        assert view.answers is None and ran(marker) == set() and view.choose_button.isEnabled()
    assert studio.jobs.wait_all(60_000)
