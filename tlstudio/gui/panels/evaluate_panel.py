"""Step 4, Evaluate: where the chosen run's model is right and where it is wrong, on pictures it never trained on.

Everything comes from the run's folder: ``metrics.json`` (accuracy, per-class numbers, confusion
matrix), ``predictions.json`` (one line per validation picture: true class, answer, probabilities),
``history.jsonl`` (curves), ``model.pt`` (Try it) and the best checkpoint (heat maps). Tabs:

- Confusion matrix: the matrix as a heat map with the tab's whole height (20 classes fit a 1024 x 640
  screen), and beside it what it means and the pictures of the clicked cell;
- Per class: precision, recall, F1 and pictures per class, sortable by every column;
- Mistakes: the wrong answers the model was surest about first (highest loss, -log p(true class));
- Try it: new pictures through the exported model file;
- Confidence: how honest the probabilities are before and after calibration, and the "not sure"
  threshold, chosen on the coverage curve and applied to the model files (``widgets.calibration_view``);
- Compare runs: every run of the project in a table, with the validation curves of the ticked ones, and
  what transfer learning added when a pretrained run has a from-scratch baseline;
- Strategy sweep: each way of transferring trained on the project's pictures (``widgets.sweep_view``);
- Adapt, shrink, combine: adapt the run to unlabelled new pictures, distil it into a smaller backbone,
  combine runs into one model file (``widgets.transfer_tools``).

Above the tabs, in one line: the run, its two accuracies, and its actions (train its from-scratch
baseline on the Train step, export its report).

"Where did the model look?" explains whichever picture was selected last; it sits beside the gallery
of the tab shown (the matrix's, Mistakes or Try it) and moves with the tab.
Thumbnails, predictions and heat maps are all computed off the GUI thread.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QLabel, QSplitter, QTabWidget, QVBoxLayout, QWidget

from tlstudio.core.runs.baseline import baseline_pairs, uplift
from tlstudio.core.errors import UserError
from tlstudio.core.names import printable
from tlstudio.core.quality.edits import describe as edits_sentence
from tlstudio.core.runs.project import RunInfo

from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.activation_view import ActivationView
from tlstudio.gui.widgets.calibration_view import CalibrationView
from tlstudio.gui.widgets.confusion_matrix import ConfusionMatrixView
from tlstudio.gui.widgets.image_gallery import GalleryItem, ImageGallery
from tlstudio.gui.widgets.kept_epoch import KeptEpochButton, kept_epoch_to_evaluate
from tlstudio.gui.widgets.per_class_table import PerClassTable
from tlstudio.gui.widgets.run_actions import RunActions
from tlstudio.gui.widgets.run_comparison_view import RunComparisonView
from tlstudio.gui.widgets.run_picker import RunPicker
from tlstudio.gui.widgets.sweep_view import SweepView
from tlstudio.gui.widgets.transfer_tools import TransferTools
from tlstudio.gui.widgets.try_it import NO_MODEL, TryItView
from tlstudio.gui.window_close import WindowCloseWatch

PICK_A_CELL = "Click a cell of the confusion matrix to see its pictures."
NO_RUN = "Train a model on the Train step to see how it does here."
STOPPED_NOTE = "This run stopped before its last epoch. Evaluate the epoch it kept to see its results here and export its model file."
NO_BASELINE = (
    "Did the ImageNet weights help? “Train a Baseline from Scratch” trains this run's settings again from random "
    "weights; what transfer learning added then shows here."
)
NO_PRETRAINED = "This run started from random weights. Train a pretrained run on the same data and backbone to see what transfer learning adds."


def loss_of(p: dict) -> float:
    """The cross-entropy of one prediction: -log of the probability given to the true class."""
    return -math.log(max(float(p["probs"][p["label"]]), 1e-12))


def _box(title: str, widget: QWidget, tip: str = "") -> QGroupBox:
    box = QGroupBox(title)
    box.setToolTip(tip)
    layout = QVBoxLayout(box)
    layout.addWidget(widget)
    return box


class EvaluatePanel(QWidget):
    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.run: Optional[RunInfo] = None
        self.classes: list[str] = []
        self.predictions: list[dict] = []  # the validation pictures of predictions.json, with "abspath" added
        self._shown_key: tuple = ()
        self.missing = ""  # why the run's pictures cannot be shown, or ""
        WindowCloseWatch(self, self._settle_decoders)

        self.runs = RunPicker(studio)
        self.actions = RunActions(studio)
        self.accuracy = QLabel()
        self.accuracy.setObjectName("bigNumber")
        self.balanced = QLabel()
        self.balanced.setObjectName("bigNumber")
        self.note = QLabel()
        self.kept_epoch = KeptEpochButton(studio)
        self.note.setWordWrap(True)
        self.confusion = ConfusionMatrixView()
        self.per_class = PerClassTable()
        self.gallery = ImageGallery(PICK_A_CELL)
        self.mistakes = ImageGallery()
        self.try_it = TryItView(studio)
        self.comparison = RunComparisonView()
        self.activation = ActivationView(studio)
        self.confidence = CalibrationView(studio)
        self.confidence.applied.connect(lambda _t: self.show_run(self.studio.current_run))  # Try it reopens the rewritten file
        self.sweep = SweepView(studio.project, studio.jobs, studio.index)
        self.transfer = TransferTools(studio)

        self.overview = self._build_overview()
        # "Where did the model look?" explains the picture chosen in the page's gallery: it sits in the
        # side column of the confusion matrix, Mistakes and Try it pages, and _tab_changed moves it.
        self.activation_slots: dict[QWidget, QSplitter] = {self.overview: self.overview_side}
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        for widget, title, tip in (
            (self.overview, "Confusion matrix", "Which classes the model confuses, and the pictures behind every cell."),
            (self._per_class_page(), "Per class", "Precision, recall and F1 of every class. Click a column title to sort."),
            (self._beside_activation(self.mistakes), "Mistakes", "The wrong answers the model was most sure about. They often reveal a wrong label or a confusing picture."),
            (self._beside_activation(self.try_it), "Try it", "Drop new pictures to see what the exported model says about them."),
            (self.confidence, "Confidence", "How far the model's probabilities can be trusted, and below which it should say 'not sure'."),
            (self.comparison, "Compare runs", "Every run of this project side by side, with their validation curves."),
            (self.sweep, "Strategy sweep", "Which way of transferring works best on these pictures: each way trained, cheapest first, with its time and accuracy."),
            (self.transfer, "Adapt, shrink, combine", "Adapt the run to new pictures, make a smaller model from it, or combine runs into one model."),
        ):
            self.tabs.setTabToolTip(self.tabs.addTab(widget, title), tip)
        self.tabs.currentChanged.connect(self._tab_changed)
        self._tab_changed(self.tabs.currentIndex())

        top = QHBoxLayout()
        top.addWidget(QLabel("Run:"))
        top.addWidget(self.runs, 1)
        for title, label, tip in (
            ("Accuracy:", self.accuracy, "The share of validation pictures the model classifies correctly."),
            ("Balanced:", self.balanced, "Balanced accuracy: the average of the per-class recalls, so a rare class counts as much as a common one."),
        ):
            words = QLabel(title)
            for w in (words, label):
                w.setToolTip(tip)
            top.addWidget(words)
            top.addWidget(label)
        top.addWidget(self.actions)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)  # the window has its margins; every pixel of height goes to the matrix
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)

        self.confusion.cell_chosen.connect(self.show_cell)
        for gallery in (self.gallery, self.mistakes, self.try_it):
            gallery.image_selected.connect(self.activation.show_image)
        studio.current_run_changed.connect(self.show_run)
        studio.runs_changed.connect(self.refresh)
        studio.project_changed.connect(self._sweep_follows_the_project)
        studio.index_changed.connect(lambda _index: self._sweep_follows_the_project())
        self.sweep.sweep_finished.connect(lambda _record: self.studio.runs_changed.emit())  # its runs join the run list
        self.show_run(studio.current_run)

    def _sweep_follows_the_project(self) -> None:
        self.sweep.set_project(self.studio.project, self.studio.index)

    def _build_overview(self) -> QSplitter:
        """The confusion matrix with the whole height, and beside it what it means and the chosen cell's pictures."""
        cm_hint = QLabel(
            "Rows: the true class. Columns: the model's answer (numbered like the rows when there are many classes). "
            "Each cell: how many pictures, and their share of the row. Click a cell to see its pictures."
        )
        cm_hint.setObjectName("hint")
        cm_hint.setWordWrap(True)
        self.cm_hint = cm_hint
        column = QWidget()
        self.overview_column = QVBoxLayout(column)
        self.overview_column.setContentsMargins(6, 0, 0, 0)
        self.overview_column.addWidget(self.note)
        self.overview_column.addWidget(self.kept_epoch)
        self.overview_column.addWidget(cm_hint)
        self.overview_side = QSplitter(Qt.Orientation.Vertical)  # the chosen cell's pictures, then where the model looked
        self.overview_side.setObjectName("evaluateOverviewSide")
        self.overview_side.setChildrenCollapsible(False)
        self.overview_side.addWidget(_box("Pictures of the chosen cell", self.gallery))
        self.overview_side.addWidget(self.activation)
        self.overview_column.addWidget(self.overview_side, 1)
        overview = QSplitter(Qt.Orientation.Horizontal)
        overview.setObjectName("evaluateMatrixSplit")  # a new name: the old "evaluateOverviewSplit" was vertical, and a saved state restores that
        overview.setChildrenCollapsible(False)
        overview.addWidget(self.confusion)
        overview.addWidget(column)
        overview.setStretchFactor(0, 3)
        overview.setStretchFactor(1, 1)
        return overview

    def _beside_activation(self, gallery: QWidget) -> QSplitter:
        page = QSplitter(Qt.Orientation.Horizontal)
        page.setObjectName(f"evaluate{type(gallery).__name__}Split")
        page.setChildrenCollapsible(False)
        page.addWidget(gallery)
        page.setStretchFactor(0, 3)
        self.activation_slots[page] = page
        return page

    def _per_class_page(self) -> QWidget:
        page = QWidget()
        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.per_class)
        return page

    # ------------------------------------------------------------ runs
    def refresh(self) -> None:
        """The run list changed (a run started or ended): update the comparison, and the shown run if its files changed."""
        run = self.studio.run(self.studio.current_run)
        if self._key(run) != self._shown_key:
            self.show_run(self.studio.current_run)
            return
        runs = self.studio.runs()
        self.comparison.set_runs(runs, self.studio.current_run)
        self._show_uplift(run, runs)

    @staticmethod
    def _key(run: Optional[RunInfo]) -> tuple:
        if run is None:
            return ("",)
        try:
            stamp = run.files.metrics.stat().st_mtime_ns
        except OSError:
            stamp = 0
        return (run.id, run.record.status, stamp, run.has_model)

    def show_run(self, run_id: str) -> None:
        run = self.studio.run(run_id)
        self.run, self._shown_key = run, self._key(run)
        runs = self.studio.runs()
        self.comparison.set_runs(runs, run_id)
        self._show_uplift(run, runs)
        self.actions.set_run(run)
        self.kept_epoch.set_run(run)
        self.confidence.show_run(run.files.root if run is not None and run.metrics else None)
        metrics = run.metrics if run is not None else {}
        if not metrics:
            self.classes, self.predictions, self.missing = [], [], ""
            self.accuracy.setText("–")
            self.balanced.setText("–")
            self.note.setText(STOPPED_NOTE if kept_epoch_to_evaluate(run) else "No results yet: the run needs to finish training." if run else NO_RUN)
            self.confusion.set_matrix([], [])
            self.per_class.show_metrics([], {})
            self.gallery.show_items([], "", PICK_A_CELL)
            self.mistakes.show_items([], "", "The mistakes of a finished run show here.")
            self.tabs.setTabText(self.tabs.indexOf(self.mistakes), "Mistakes")
            self.try_it.set_model_file("", NO_MODEL if run else NO_RUN)
            self.activation.set_run("", [], "Choose a finished run to see where its model looked.")
            return
        # The names as shown: hidden or text-reordering characters escaped (a name on screen cannot disguise another).
        self.classes = [printable(c) for c in metrics["classes"]]
        self.accuracy.setText(f"{metrics['accuracy']:.1%}")
        self.balanced.setText(f"{metrics['balanced_accuracy']:.1%}")
        self.note.setText(
            f"On {metrics.get('n', 0)} validation pictures the model never trained on"
            + (f", with the weights of epoch {metrics['best_epoch']} (chosen on training pictures held back for it)." if metrics.get("best_epoch") else ".")
            + (" " + edits_sentence(run.record.summary.get("data_edits")) if run.record.summary.get("data_edits") else "")
        )
        self.confusion.set_matrix(self.classes, metrics["confusion_matrix"])
        self.per_class.show_metrics(self.classes, {printable(k): v for k, v in metrics["per_class"].items()})
        self.missing = self._load_predictions(run)
        self.gallery.show_items([], "", self.missing or PICK_A_CELL)
        self._show_mistakes(self.missing)
        self.try_it.set_model_file(run.files.model if run.has_model else "", NO_MODEL)
        best = run.files.best.is_file()
        self.activation.set_run(
            run.files.root, self.classes,
            "" if best else "This run kept no trained model (checkpoints/best.pt), so it cannot show where the model looked. Train again.",
        )

    def _load_predictions(self, run: RunInfo) -> str:
        """Read predictions.json; returns why the pictures cannot be shown, or ""."""
        self.predictions = []
        path = run.files.predictions
        if not path.is_file():
            return "This run has no per-picture results (predictions.json), so its pictures cannot be shown. Train again to see them."
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            self.studio.notifier.exception(UserError(f"the run's per-picture results '{path}' could not be read ({exc})."), "Showing the run's pictures")
            return "The run's per-picture results could not be read."
        root = Path(run.config.data_dir if run.config is not None and run.config.data_dir else self.studio.project.data_dir)
        n = len(self.classes)
        for p in rows:
            if p.get("split") == "val" and 0 <= p.get("label", -1) < n and 0 <= p.get("pred", -1) < n and len(p.get("probs", ())) == n:
                self.predictions.append({**p, "abspath": str(root / p["path"])})
        if rows and not any(Path(p["abspath"]).exists() for p in self.predictions[:20]):
            return f"The pictures are no longer in '{root}'. Move the folder back, or train again on its new place."
        return ""

    def _show_uplift(self, run: Optional[RunInfo], runs: list[RunInfo]) -> None:
        """What transfer learning added, when ``run`` is a finished pretrained run with a baseline, or one's baseline."""
        if run is None or run.config is None or not run.metrics:
            self.comparison.show_uplift(None)
            return
        pairs = baseline_pairs([r.files.root for r in runs])
        root = run.files.root
        if root in pairs:
            pretrained, baseline = root, pairs[root]
        else:  # a baseline: compare it with the newest pretrained run it serves
            pretrained, baseline = next((p for p, b in reversed(pairs.items()) if b == root), None), root
        if pretrained is None:
            self.comparison.show_uplift(None, NO_BASELINE if run.config.pretrained else NO_PRETRAINED)
            return
        try:
            self.comparison.show_uplift(uplift(pretrained, baseline))
        except UserError as exc:
            self.comparison.show_uplift(None, html.escape(f"What transfer learning added cannot be shown: {exc}"))

    def export_report(self, path: str | Path):
        """Write the shown run's HTML report to ``path`` in the background (what Export Report… does after its dialog)."""
        return self.actions.export_report(path)

    # ------------------------------------------------------------ galleries
    def show_cell(self, i: int, j: int) -> None:
        """Show the pictures of confusion-matrix cell (true class i, answer j), most confident first."""
        if not (0 <= i < len(self.classes) and 0 <= j < len(self.classes)):
            return
        if self.missing:
            self.gallery.show_items([], "", self.missing)
            return
        true, said = html.escape(self.classes[i]), html.escape(self.classes[j])
        rows = sorted((p for p in self.predictions if p["label"] == i and p["pred"] == j), key=lambda p: -p["probs"][j])
        items = []
        for p in rows:
            conf = p["probs"][j]
            caption = f"{conf:.0%} sure" if i == j else f"said {self.classes[j]}\n{conf:.0%} sure"
            items.append(GalleryItem(p["abspath"], caption, self._tooltip(p)))
        n = len(items)
        if i == j:
            title = f"<b>{n}</b> '{true}' picture{'s' if n != 1 else ''} recognised correctly, most confident first."
        else:
            title = f"<b>{n}</b> '{true}' picture{'s' if n != 1 else ''} taken for '{said}', most confident first."
        self.gallery.show_items(items, title, "No pictures in this cell." if self.run else PICK_A_CELL)

    def _show_mistakes(self, missing: str) -> None:
        wrong = sorted((p for p in self.predictions if p["label"] != p["pred"]), key=loss_of, reverse=True)
        items = []
        for p in wrong:
            true, said = self.classes[p["label"]], self.classes[p["pred"]]
            caption = f"{true} → {said}\n{p['probs'][p['pred']]:.0%} sure"
            items.append(GalleryItem(p["abspath"], caption, self._tooltip(p), loss_of(p)))
        total = len(self.predictions)
        if missing:
            items, title, empty = [], "", missing
        elif not wrong:
            title, empty = "", f"No mistakes: the model classified all {total} validation pictures correctly."
        else:
            title = (
                f"<b>{len(wrong)}</b> of {total} validation pictures are wrong. The ones the model was surest about come first: "
                "they often show a wrong label, or what confuses the model."
            )
            empty = ""
        self.mistakes.show_items(items, title, empty)
        self.tabs.setTabText(self.tabs.indexOf(self.mistakes), f"Mistakes ({len(wrong)})" if wrong else "Mistakes")

    def _tooltip(self, p: dict) -> str:
        true, said = self.classes[p["label"]], self.classes[p["pred"]]
        lines = [Path(p["path"]).name, f"True class: {true}", f"The model said: {said} ({p['probs'][p['pred']]:.1%})"]
        if p["label"] != p["pred"]:
            lines.append(f"It gave the true class {p['probs'][p['label']]:.1%} (loss {loss_of(p):.2f}: higher is more wrong)")
        return "\n".join(lines)

    # ------------------------------------------------------------ other
    def _tab_changed(self, index: int) -> None:
        slot = self.activation_slots.get(self.tabs.widget(index))
        if slot is not None and self.activation.parent() is not slot:
            slot.addWidget(self.activation)  # moves it from the page shown before
            slot.setStretchFactor(slot.indexOf(self.activation), 1)

    def show_tab(self, widget: QWidget) -> None:
        """Show the tab that holds ``widget`` (a gallery sits in its page beside "Where did the model look?")."""
        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            if page is widget or page.isAncestorOf(widget):
                self.tabs.setCurrentIndex(i)
                return

    def confusion_values(self) -> list[list[int]]:
        return self.confusion.values()

    def _settle_decoders(self) -> None:
        """No decode may still run while the window goes (harmless if the close is then refused)."""
        for widget in (self.gallery, self.mistakes, self.try_it):
            widget.settle()

    def shutdown(self) -> None:
        """Stop the thumbnail decoders for good (the application is quitting)."""
        for widget in (self.gallery, self.mistakes, self.try_it):
            widget.shutdown()
