"""The Data step's "Check my data": the pictures likely to cost accuracy, and what to do about each.

"Check" runs ``quality.check.check_dataset`` on the scanned folder in a background job (``JobBox``), then
shows a gallery per kind: suspected wrong labels (least confident in their folder label first),
near-duplicates (most similar first; across classes and across splits flagged) and outliers (farthest
first). For the selected picture: keep it, leave it out of training, or say which class it belongs to;
Undo takes the last decision back. Decisions are kept in the project (``quality.edits``: never a file
of the user's is moved, renamed or deleted) and the settings the next run starts with carry them.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QTabWidget, QVBoxLayout, QWidget

from tlstudio.core.errors import UserError
from tlstudio.core.quality import edits as ed
from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.image_gallery import GalleryItem, ImageGallery
from tlstudio.gui.widgets.job_box import JobBox

MOST_SHOWN = 200  # tiles per gallery: the top of each ranking is what a person reviews


def show_choices(combo: QComboBox, choices: list[str]) -> None:
    """``combo`` offering ``choices`` (left as it is, with its current choice, when it already offers them)."""
    if [combo.itemText(i) for i in range(combo.count())] != choices:
        combo.clear()
        combo.addItems(choices)


class CheckView(QWidget):
    decided = Signal()  # a decision was made or undone

    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.report = None
        self.edits = ed.DataEdits()
        self._undo: list[tuple[str, Optional[ed.Edit]]] = []  # (path, the decision before) of each decision made
        self.selected = ""  # the selected picture's path in the data folder
        self.box = JobBox("Check my data", "Look for pictures that may cost accuracy: wrong labels, near-copies, pictures unlike the rest.",
                          "Check", studio.jobs, "check", self._prepare, self._describe)
        self.box.succeeded.connect(self.show_report)
        self.tabs = QTabWidget()
        self.galleries = {kind: ImageGallery(empty) for kind, empty in (
            ("suspects", "No suspected wrong labels."), ("duplicates", "No near-duplicates."), ("outliers", "No outliers."))}
        for kind, gallery in self.galleries.items():
            self.tabs.addTab(gallery, kind)
            gallery.image_selected.connect(self._on_selected)
        self.picked = QLabel("Select a picture to decide about it.")
        self.picked.setWordWrap(True)
        self.keep_button, self.exclude_button = QPushButton("Keep"), QPushButton("Leave out of training")
        self.relabel_to, self.relabel_button = QComboBox(), QPushButton("It belongs to this class")
        self.undo_button = QPushButton("Undo")
        self.keep_button.clicked.connect(self.keep)
        self.exclude_button.clicked.connect(self.exclude)
        self.relabel_button.clicked.connect(lambda: self.relabel(self.relabel_to.currentText()))
        self.undo_button.clicked.connect(self.undo)
        actions = QHBoxLayout()
        for w in (self.keep_button, self.exclude_button, self.relabel_to, self.relabel_button, self.undo_button):
            actions.addWidget(w)
        self.decisions = QLabel("")
        layout = QVBoxLayout(self)
        layout.addWidget(self.box)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.picked)
        layout.addLayout(actions)
        layout.addWidget(self.decisions)
        studio.project_changed.connect(self.load_decisions)
        studio.index_changed.connect(lambda _i: self._refresh())
        self.load_decisions()

    # ------------------------------------------------------------ checking
    def _prepare(self):
        index, project = self.studio.index, self.studio.ensure_project()
        if index is None:
            raise UserError("there are no pictures to check yet. Choose an image folder first.")
        cache, seed = project.cache_dir, self.studio.config.seed

        def work(on_event, stop):
            from tlstudio.core.quality.check import check_dataset

            return check_dataset(index, cache, seed=seed, on_event=on_event, stop=stop)

        return work

    @staticmethod
    def _describe(report) -> str:
        c = report.counts()
        return (f"{c['suspected_wrong_labels']} suspected wrong labels, {c['near_duplicates']} near-duplicate pairs "
                f"({c['label_conflicts']} across classes, {c['leakage']} across training and validation), {c['outliers']} outliers.")

    def show_report(self, report) -> None:
        self.report = report
        root = report.data_dir
        absolute = lambda p: str(Path(root) / p)  # noqa: E731 - the index's paths are relative to the data folder
        self.galleries["suspects"].show_items([GalleryItem(absolute(s.path), f"{s.label} → {s.predicted}\n{s.confidence:.0%} sure",
                                                           f"In folder {s.label}; the model says {s.predicted} ({s.confidence:.0%}).")
                                               for s in report.suspects[:MOST_SHOWN]])
        pairs = []
        for p in report.near_duplicates[: MOST_SHOWN // 2]:
            kind = "other class" if p.cross_class else ("other split" if p.cross_split else "copy")
            for path, label, split in ((p.first, p.first_label, p.first_split), (p.second, p.second_label, p.second_split)):
                pairs.append(GalleryItem(absolute(path), f"{label} ({split})\n{kind}, {p.similarity:.2f}", f"{p.first}  ≈  {p.second}"))
        self.galleries["duplicates"].show_items(pairs)
        self.galleries["outliers"].show_items([GalleryItem(absolute(o.path), f"{o.label}\nnearest: {o.nearest_class}",
                                                           f"{o.path}: far from every class (z {o.z:.1f})") for o in report.flagged_outliers[:MOST_SHOWN]])
        counts = report.counts()
        for i, (kind, n) in enumerate((("Suspected wrong labels", counts["suspected_wrong_labels"]),
                                       ("Near-duplicates", counts["near_duplicates"]), ("Outliers", counts["outliers"]))):
            self.tabs.setTabText(i, f"{kind} ({n})")

    # ------------------------------------------------------------ deciding
    def load_decisions(self) -> None:
        project = self.studio.project
        try:
            self.edits = ed.load_edits(project.root) if project is not None else ed.DataEdits()
        except UserError as exc:
            self.studio.notifier.exception(exc, "Reading the decisions about pictures")
            self.edits = ed.DataEdits()
        self._undo.clear()
        self.studio.config.data_edits = self.edits.to_list()
        self.selected, self.report = "", None  # another project: the findings shown were about its folder
        for gallery in self.galleries.values():
            gallery.show_items([])
        self._refresh()

    def _on_selected(self, absolute: str) -> None:
        index = self.studio.index
        try:
            self.selected = Path(absolute).relative_to(index.root).as_posix() if index is not None else ""
        except ValueError:  # a picture of another folder (the report of an earlier scan)
            self.selected = ""
        self._refresh()

    def _sample(self):
        index = self.studio.index
        found = next((s for s in index.samples if s.path == self.selected), None) if index is not None else None
        if found is None:
            raise UserError("select a picture of the scanned folder first.")
        return found

    def keep(self) -> None:
        self._decide(lambda s: self.edits.keep(s.path))

    def exclude(self) -> None:
        self._decide(self.edits.exclude)

    def relabel(self, label: str) -> None:
        self._decide(lambda s: self.edits.relabel(s, label, list(self.studio.index.classes)))

    def _decide(self, change) -> None:
        try:
            sample = self._sample()
            before = self.edits.edits.get(sample.path)
            change(sample)
            self._save()
        except UserError as exc:
            self.picked.setText(html.escape(str(exc)))
            return
        self._undo.append((sample.path, before))
        self.decided.emit()

    def undo(self) -> None:
        if not self._undo:
            return
        path, before = self._undo.pop()
        if before is None:
            self.edits.keep(path)
        else:
            self.edits.edits[path] = before
        self._save()
        self.decided.emit()

    def _save(self) -> None:
        ed.save_edits(self.studio.ensure_project().root, self.edits)
        self.studio.config.data_edits = self.edits.to_list()
        self.studio.autosave()
        self._refresh()

    def _refresh(self) -> None:
        index = self.studio.index
        show_choices(self.relabel_to, list(index.classes) if index is not None else [])
        edit = self.edits.edits.get(self.selected)
        for w in (self.keep_button, self.exclude_button, self.relabel_to, self.relabel_button):
            w.setEnabled(bool(self.selected))
        self.undo_button.setEnabled(bool(self._undo))
        if self.selected:
            now = "used as its folder says" if edit is None else ("left out of training" if edit.action == ed.EXCLUDE else f"counted as {edit.label}")
            self.picked.setText(f"<b>{html.escape(self.selected)}</b>: {now}.")
        out = sum(e.action == ed.EXCLUDE for e in self.edits.edits.values())
        moved = len(self.edits.edits) - out
        self.decisions.setText(f"Your decisions: {out} left out, {moved} given another class. The next run uses them; your files stay as they are."
                               if self.edits.edits else "")
