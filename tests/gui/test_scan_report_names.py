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
