"""Names in the Data step: control and bidi characters are shown as escapes, markup in a name is shown as text."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

from tests.core.messy_folder import make_tree  # noqa: E402
from tlstudio.core.data.scan import scan_folder  # noqa: E402

pytestmark = pytest.mark.gui
RLO = "\u202e"


def test_the_scan_report_and_the_gallery_show_escapes_not_raw_bidi_characters(qtbot, tmp_path):
    from tlstudio.gui.widgets.scan_report import ScanReport
    from tlstudio.gui.widgets.thumbnails import ClassGallery

    root = make_tree(tmp_path / "data", {"a": 3, f"b{RLO}x": 3})
    (root / "a" / f"evil{RLO}.jpg").write_bytes(b"")
    index = scan_folder(root, workers=1)
    report = ScanReport()
    qtbot.addWidget(report)
    report.show_index(index)
    shown = "\n".join(f"{problem}\n{text}" for problem, text in report.problems()) + report.text
    assert RLO not in shown and "a/evil\\u202e.jpg" in shown

    gallery = ClassGallery()
    qtbot.addWidget(gallery)
    gallery.show_classes({name: [] for name in index.classes})
    assert [gallery.tabText(i) for i in range(gallery.count())] == ["a (0)", "b\\u202ex (0)"]
    gallery.shutdown()


def test_an_error_naming_a_folder_with_markup_is_shown_as_plain_text(qtbot):
    from tlstudio.gui.widgets.scan_report import ScanReport

    report = ScanReport()
    qtbot.addWidget(report)
    report.show_error(f"'<b>bold{RLO}' has only one class folder.")
    assert report.summary.textFormat() == Qt.TextFormat.PlainText
    assert "<b>bold\\u202e'" in report.summary.text()
    report.show_busy("Scanning…")
    assert report.summary.textFormat() == Qt.TextFormat.AutoText


def test_the_evaluate_step_shows_escaped_class_names_with_their_own_figures(qtbot, window, tmp_path):
    from tests.gui.conftest import fast
    from tests.synthetic import make_colour_dataset
    from tlstudio.core.engine.trainer import Trainer
    from tlstudio.core.runs import project as pj

    data = make_colour_dataset(tmp_path / "colours", classes=("red", "blue"), per_class=10)
    (data / "red").rename(data / f"re{RLO}d")
    project = pj.Project.create(tmp_path / "Names")
    project.set_data(str(data), 0.3, 0.0, 0)
    cfg = project.train_config()
    fast(cfg)
    cfg.image_size, cfg.freeze_depth = 32, "all"
    files = project.new_run(cfg)
    result = Trainer(cfg, files.root, cache_dir=project.cache_dir).run()
    project.finish_run(files.root.name, pj.FINISHED, result.summary)
    project.save()

    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000):
        window.studio.open_project(project.root)
    window.go_to("Evaluate")
    ev = window.evaluate_panel
    qtbot.waitUntil(lambda: ev.per_class.rowCount() == 2, timeout=20_000)
    headers = [ev.confusion.model().headerData(i, Qt.Orientation.Horizontal) for i in range(2)]
    names = ev.per_class.column_texts(0)
    assert sorted(headers) == sorted(names) == sorted(["blue", "re\\u202ed"])
    assert sum(ev.per_class.column_values(4)) == result.metrics["n"]  # each row kept its own figures
