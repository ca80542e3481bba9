"""The offline guide: a page per step from the "?" button, the Help menu, a glossary entry for every term, links that work."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QUrl  # noqa: E402
from PySide6.QtGui import QKeySequence, QTextDocument  # noqa: E402

from tlstudio.gui.help_viewer import GLOSSARY, GUIDE, STEP_PAGES, help_dir  # noqa: E402
from tlstudio.gui.main_window import STEPS  # noqa: E402

pytestmark = pytest.mark.gui

TERMS = {  # the words the studio shows, and the glossary anchor that explains each
    "backbone": "backbone",
    "pretrained": "pretrained",
    "freeze depth": "freeze-depth",
    "feature extractor": "feature-extractor",
    "fine-tune": "fine-tune",
    "epoch": "epoch",
    "batch size": "batch-size",
    "learning rate": "learning-rate",
    "validation": "validation",
    "test": "test",
    "accuracy": "accuracy",
    "balanced accuracy": "balanced-accuracy",
    "precision": "precision",
    "recall": "recall",
    "F1": "f1",
    "confusion matrix": "confusion-matrix",
    "calibration": "calibration",
    "not sure": "not-sure",
    "heat map": "heat-map",
    "TorchScript": "torchscript",
    "ONNX": "onnx",
    "augmentation": "augmentation",
    "overfitting": "overfitting",
}


class Page(HTMLParser):
    """The anchors a page defines, the links it holds, and per anchor the text up to the next one."""

    def __init__(self, text: str):
        super().__init__()
        self.anchors: list[str] = []
        self.links: list[str] = []
        self.sources: list[str] = []
        self.tags: set[str] = set()
        self.text_after: dict[str, str] = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        for key in ("name", "id"):
            if key in attrs and (key == "id" or tag == "a"):
                self.anchors.append(attrs[key])
                self.text_after[attrs[key]] = ""
        if tag == "a" and "href" in attrs:
            self.links.append(attrs["href"])
        if "src" in attrs:
            self.sources.append(attrs["src"])

    def handle_data(self, data):
        if self.anchors:
            self.text_after[self.anchors[-1]] += data


def pages() -> dict[str, Page]:
    return {p.name: Page(p.read_text(encoding="utf-8")) for p in sorted(help_dir().glob("*.html"))}


def qt_anchors(path: Path) -> set[str]:
    """The anchor names Qt's rich text finds in a page: what QTextBrowser can scroll to."""
    doc = QTextDocument()
    doc.setHtml(path.read_text(encoding="utf-8"))
    names, block = set(), doc.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            names.update(it.fragment().charFormat().anchorNames())
            it += 1
        block = block.next()
    return names


# ------------------------------------------------------------ the pages
def test_every_step_and_the_glossary_have_a_page():
    assert set(STEP_PAGES) == set(STEPS)
    for page in [*STEP_PAGES.values(), GUIDE, GLOSSARY]:
        assert (help_dir() / page).is_file(), page


def test_every_glossary_term_has_an_entry_qt_can_scroll_to():
    glossary = pages()[GLOSSARY]
    in_qt = qt_anchors(help_dir() / GLOSSARY)
    for term, anchor in TERMS.items():
        assert anchor in glossary.anchors, term
        assert len(glossary.text_after[anchor].split()) >= 12, term  # an explanation, not just a heading
        assert anchor in in_qt, term


def test_every_internal_link_resolves_to_a_page_and_anchor():
    all_pages = pages()
    checked = 0
    for name, page in all_pages.items():
        for href in page.links:
            target, _, anchor = href.partition("#")
            target = target or name
            assert target in all_pages, f"{name}: {href}"
            if anchor:
                assert anchor in all_pages[target].anchors, f"{name}: {href}"
            checked += 1
    assert checked > len(TERMS)  # the pages do link to each other


def test_the_pages_are_offline_and_hold_no_scripts():
    for name, page in pages().items():
        assert not page.tags & {"script", "iframe", "object", "embed", "link"}, name
        for ref in page.links + page.sources:
            assert "://" not in ref and not ref.startswith("//"), f"{name}: {ref}"


# ------------------------------------------------------------ the viewer
def test_the_question_button_opens_the_current_steps_page(qtbot, window):
    assert window.step_help_button.toolTip()
    for step in STEPS:
        window.go_to(step)
        window.step_help_button.click()
        viewer = window.help_viewer
        assert viewer.isVisible() and viewer.current_page() == STEP_PAGES[step], step
        assert viewer.browser.toPlainText().strip()


def test_the_help_menu_opens_the_guide_with_f1_and_the_glossary(qtbot, window):
    assert window.guide_action.shortcut() == QKeySequence(QKeySequence.StandardKey.HelpContents)
    window.show_welcome()
    window.guide_action.trigger()
    assert window.help_viewer.isVisible() and window.help_viewer.current_page() == GUIDE
    window.glossary_action.trigger()
    assert window.help_viewer.current_page() == GLOSSARY


def test_links_between_pages_work_and_links_out_of_the_guide_do_not(qtbot, window):
    window.go_to("Train")
    viewer = window.show_step_help()
    assert not viewer.browser.openExternalLinks()
    viewer.follow(QUrl("glossary.html#epoch"))
    assert (viewer.current_page(), viewer.current_anchor()) == (GLOSSARY, "epoch")
    viewer.follow(QUrl("#overfitting"))
    assert (viewer.current_page(), viewer.current_anchor()) == (GLOSSARY, "overfitting")
    viewer.back_button.click()
    assert viewer.current_anchor() == "epoch"

    viewer.follow(QUrl("https://example.org/"))
    viewer.follow(QUrl.fromLocalFile("/etc/hostname"))
    assert viewer.current_page() == GLOSSARY and not viewer.refused.isHidden()
