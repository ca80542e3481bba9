"""The Data step's "Label new pictures": which of the unlabelled new pictures to label first, and labelling them.

"Rank" (a background ``JobBox`` job) fits the frozen head on the scanned folder's training pictures and ranks
the project's new pictures (Data step, New pictures) by how much a label would teach it, spread so the top
ones are not near-copies (``quality.active``). Select a picture, choose its class, "Label it": the label is
kept in the project (``quality.new_labels``); the picture stays where it is. "Copy into the project" copies
the labelled pictures into the project's own class folders, only when asked.
"""

from __future__ import annotations

import html
from typing import Optional

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from tlstudio.core.errors import UserError
from tlstudio.core.quality import new_labels as nl
from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.check_view import show_choices
from tlstudio.gui.widgets.image_gallery import GalleryItem, ImageGallery
from tlstudio.gui.widgets.job_box import JobBox

SHOWN = 20


class LabelNextView(QWidget):
    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.picks: list = []
        self.labels: dict[str, str] = {}
        self.selected = ""
        self.box = JobBox("Label new pictures", "Which of the new, unlabelled pictures would teach the model most if you labelled them. "
                          "Label the first ones; they are kept in the project and your files stay where they are.",
                          "Rank the new pictures", studio.jobs, "label next", self._prepare, lambda picks: f"The {len(picks)} to label first, best first.")
        self.box.succeeded.connect(self.show_picks)
        self.gallery = ImageGallery("Rank the new pictures to see which to label first.")
        self.gallery.image_selected.connect(self._on_selected)
        self.label_to, self.label_button, self.unlabel_button = QComboBox(), QPushButton("Label it"), QPushButton("Remove its label")
        self.copy_button = QPushButton("Copy the labelled pictures into the project")
        self.label_button.clicked.connect(lambda: self.label(self.label_to.currentText()))
        self.unlabel_button.clicked.connect(self.unlabel)
        self.copy_button.clicked.connect(self.copy)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        for w in (self.label_to, self.label_button, self.unlabel_button, self.copy_button):
            row.addWidget(w)
        layout = QVBoxLayout(self)
        layout.addWidget(self.box)
        layout.addWidget(self.gallery, 1)
        layout.addLayout(row)
        layout.addWidget(self.status)
        studio.project_changed.connect(self.load)
        studio.index_changed.connect(lambda _i: self._refresh())
        self.load()

    def _prepare(self):
        index, folder, project = self.studio.index, self.studio.new_pictures_dir, self.studio.ensure_project()
        if index is None:
            raise UserError("scan the labelled image folder first: the ranking learns from its training pictures.")
        if not folder:
            raise UserError("there is no folder of new pictures. Choose one above (New pictures), then rank them.")
        cache, seed = project.cache_dir, self.studio.config.seed

        def work(on_event, stop):
            from tlstudio.core.quality.active import rank_new_pictures

            return rank_new_pictures(index, folder, cache, SHOWN, seed, on_event=on_event, stop=stop)

        return work

    def show_picks(self, picks) -> None:
        self.picks = list(picks)
        self.gallery.show_items([GalleryItem(p.path, f"looks like {p.guess}\n{p.confidence:.0%} sure", p.path) for p in self.picks])

    def load(self) -> None:
        project = self.studio.project
        try:
            self.labels = nl.load_labels(project.root) if project is not None else {}
        except UserError as exc:
            self.studio.notifier.exception(exc, "Reading the labels of new pictures")
            self.labels = {}
        self.picks, self.selected = [], ""
        self.gallery.show_items([])
        self._refresh()

    def _on_selected(self, path: str) -> None:
        self.selected = path
        pick = next((p for p in self.picks if p.path == path), None)
        if pick is not None and self.label_to.findText(self.labels.get(path, pick.guess)) >= 0:
            self.label_to.setCurrentIndex(self.label_to.findText(self.labels.get(path, pick.guess)))
        self._refresh()

    def label(self, label: str) -> None:
        classes = list(self.studio.index.classes) if self.studio.index is not None else []
        if not self.selected or label not in classes:
            self.status.setText("Select a picture and one of the project's classes first.")
            return
        self.labels[self.selected] = label
        self._save()

    def unlabel(self) -> None:
        self.labels.pop(self.selected, None)
        self._save()

    def copy(self) -> None:
        try:
            copies = nl.copy_labelled(self.studio.ensure_project().root, self.labels)
        except UserError as exc:
            self.status.setText(html.escape(str(exc)))
            return
        self.status.setText(f"{len(copies)} pictures are in {html.escape(str(self.studio.project.root / nl.COPIES))}, one folder per class.")

    def _save(self) -> None:
        nl.save_labels(self.studio.ensure_project().root, self.labels)
        self._refresh()

    def _refresh(self) -> None:
        index = self.studio.index
        classes = list(index.classes) if index is not None else []
        show_choices(self.label_to, classes)
        for w in (self.label_to, self.label_button):
            w.setEnabled(bool(self.selected) and bool(classes))
        self.unlabel_button.setEnabled(self.selected in self.labels)
        self.copy_button.setEnabled(bool(self.labels))
        self.status.setText(f"{len(self.labels)} new pictures labelled." if self.labels else "")
