"""Check my data on the Data step: the planted wrong label is found; keep, leave out, relabel and undo are kept in the project and
change the next run's pictures, and the user's files stay byte-identical."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from tests.gui.conftest import scan, train  # noqa: E402
from tests.synthetic import make_colour_dataset  # noqa: E402
from tlstudio.core.quality import edits as ed  # noqa: E402

pytestmark = pytest.mark.gui


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def planted(tmp_path) -> tuple[Path, str]:
    """The colour set with one red picture in the blue folder: ``(data folder, its path there)``."""
    data = make_colour_dataset(tmp_path / "colours", per_class=12)
    shutil.copy(data / "red" / "red_000.jpg", data / "blue" / "red_in_blue.jpg")
    (data / "red" / "red_000.jpg").unlink()
    return data, "blue/red_in_blue.jpg"


def run_check(qtbot, window, data: Path):
    scan(qtbot, window, data)
    view = window.data_panel.check
    window.data_panel.right.setCurrentWidget(view)
    view.box.start_button.click()
    qtbot.waitUntil(lambda: not view.box.is_running(), timeout=240_000)
    assert view.report is not None, view.box.status.text()
    return view


def select(view, kind: str, path: str) -> None:
    gallery = view.galleries[kind]
    row = next(i for i, p in enumerate(gallery.paths()) if p.endswith(path))
    gallery.select(row)
    assert view.selected == path


def test_the_planted_wrong_label_is_found_and_decisions_reach_the_next_run(qtbot, window, planted):
    data, wrong = planted
    before = fingerprint(data)
    view = run_check(qtbot, window, data)
    assert any(s.path == wrong and s.predicted == "red" for s in view.report.suspects)
    select(view, "suspects", wrong)
    view.relabel("red")
    project = window.studio.project
    assert ed.load_edits(project.root).edits[wrong].label == "red"
    view.exclude()
    view.undo()  # back to "red"
    assert ed.load_edits(project.root).edits[wrong].action == ed.RELABEL
    assert window.studio.config.data_edits == ed.load_edits(project.root).to_list()

    result = train(qtbot, window)
    assert result is not None and not result.cancelled
    record = result.summary["data_edits"]
    assert sum(record["relabelled"].values()) == 1 and [tuple(p) for p in record["paths"]] == [(wrong, ed.RELABEL, "red")]
    assert fingerprint(data) == before


def test_decisions_survive_reopening_the_project_and_undo_to_nothing(qtbot, window, planted):
    data, wrong = planted
    view = run_check(qtbot, window, data)
    select(view, "suspects", wrong)
    view.exclude()
    root = window.studio.project.root
    window.studio.open_project(root)
    assert window.data_panel.check.edits.edits[wrong].action == ed.EXCLUDE
    assert window.studio.config.data_edits == [e for e in ed.load_edits(root).to_list()]
    view.keep()  # nothing selected after reopening: refused in place
    assert wrong in ed.load_edits(root).edits


def test_new_pictures_are_ranked_labelled_into_the_project_and_copied_only_when_asked(qtbot, window, tmp_path):
    from tlstudio.core.quality import new_labels as nl

    data = make_colour_dataset(tmp_path / "colours", per_class=8)
    new = make_colour_dataset(tmp_path / "new", per_class=6, seed=4)
    scan(qtbot, window, data)
    window.data_panel.set_new_pictures(new)
    before = fingerprint(new)
    view = window.data_panel.label_next
    view.box.start_button.click()
    qtbot.waitUntil(lambda: not view.box.is_running(), timeout=240_000)
    picks = view.box.result
    assert picks is not None, view.box.status.text()
    assert len(picks) == len({p.path for p in picks}) == min(20, 18) and all(p.path.startswith(str(new)) for p in picks)
    view.gallery.select(0)
    view.label("green")
    root = window.studio.project.root
    assert nl.load_labels(root) == {picks[0].path: "green"}
    assert not (root / nl.COPIES).exists()  # nothing copied until asked
    view.copy_button.click()
    assert (root / nl.COPIES / "green" / Path(picks[0].path).name).is_file()
    assert fingerprint(new) == before
