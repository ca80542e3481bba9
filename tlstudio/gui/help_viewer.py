"""The offline guide: resources/help/*.html in a window of its own, one page per step and a glossary."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from tlstudio.core.paths import resources_dir

GUIDE = "index.html"
GLOSSARY = "glossary.html"
STEP_PAGES = {"Data": "data.html", "Model": "model.html", "Train": "train.html", "Evaluate": "evaluate.html", "Export": "export.html"}


def help_dir() -> Path:
    return resources_dir() / "help"


def page_url(page: str, anchor: str = "") -> QUrl:
    url = QUrl.fromLocalFile(str(help_dir() / page))
    if anchor:
        url.setFragment(anchor)
    return url


class HelpViewer(QDialog):
    """A plain reader: links between the guide's pages work; nothing outside the guide is opened."""

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.setWindowTitle("tlstudio Guide")
        self.resize(640, 560)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)
        self.browser.setOpenLinks(False)  # every click goes through ``follow``, which keeps to the guide
        self.browser.anchorClicked.connect(self.follow)
        self.refused = QLabel()
        self.refused.setObjectName("hint")
        self.refused.setVisible(False)

        self.back_button = QPushButton("Back")
        self.back_button.clicked.connect(self.browser.backward)
        self.back_button.setEnabled(False)
        self.browser.backwardAvailable.connect(self.back_button.setEnabled)
        self.contents_button = QPushButton("Contents")
        self.contents_button.clicked.connect(lambda: self.show_page(GUIDE))
        self.glossary_button = QPushButton("Glossary")
        self.glossary_button.clicked.connect(lambda: self.show_page(GLOSSARY))
        close_button = QPushButton("Close")
        close_button.clicked.connect(self.close)
        row = QHBoxLayout()
        for button in (self.back_button, self.contents_button, self.glossary_button):
            row.addWidget(button)
        row.addStretch(1)
        row.addWidget(close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.browser, 1)
        layout.addWidget(self.refused)

    # ------------------------------------------------------------ public
    def show_page(self, page: str, anchor: str = "") -> None:
        self.refused.setVisible(False)
        self.browser.setSource(page_url(page, anchor))
        self.show()
        self.raise_()
        self.activateWindow()

    def current_page(self) -> str:
        return Path(self.browser.source().toLocalFile()).name

    def current_anchor(self) -> str:
        return self.browser.source().fragment()

    def follow(self, url: QUrl) -> None:
        """Open a link of the guide; anything else (a web address, a file elsewhere) is not opened."""
        target = self.browser.source().resolved(url)
        path = Path(target.toLocalFile()).resolve() if target.isLocalFile() else None
        if path is None or path.parent != help_dir().resolve() or not path.is_file():
            self.refused.setText("That link leads outside the guide, so it is not opened here.")
            self.refused.setVisible(True)
            return
        self.refused.setVisible(False)
        self.browser.setSource(target)
