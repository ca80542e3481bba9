"""Step 2, Model: pick a backbone from the catalog, get its weights, choose how much of it trains.

Or start from one of My models: a finished run (of this project, or a run folder of another) whose
backbone, with what it learned, replaces the ImageNet weights (``config.start_from``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGroupBox, QLabel, QListWidget, QListWidgetItem, QMessageBox, QPushButton, QVBoxLayout, QWidget

from tlstudio.core.catalog import backbones as bb
from tlstudio.core.config import FreezeDepth

from tlstudio.core.catalog.build import build_backbone
from tlstudio.core.catalog import weights, weights_import
from tlstudio.core.catalog.my_models import MyModel, finished_runs, read_my_model
from tlstudio.core.errors import UserError
from tlstudio.core.events import PhaseStarted, Progress

from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.backbone_table import BackboneTable
from tlstudio.gui.widgets.freeze_control import FreezeControl
from tlstudio.gui.widgets.weights_bar import WeightsBar
from tlstudio.gui.workers import Job
from tlstudio.gui.start_folder import PROJECT, WEIGHTS, ask_existing_folder, ask_open_file

INTRO = (
    "Choose the backbone: the pretrained network that already knows how to see; tlstudio adds a new last layer "
    "for your classes. The bundled one works offline and trains fast; bigger ones can be more accurate."
)

MY_MODELS_INTRO = "Or start from a finished run of yours: its backbone, with what it learned, instead of the ImageNet weights. The last layer is new, for your classes."
NO_MY_MODELS = "No finished run in this project yet."


class MyModelsBox(QGroupBox):
    """The finished runs that can start a new one, and a button for a run folder of another project."""

    picked = Signal(object)  # MyModel, clicked in the list

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__("My models", parent)
        intro = QLabel(MY_MODELS_INTRO)
        intro.setWordWrap(True)
        self.list = QListWidget()
        self.list.setMaximumHeight(110)
        self.empty = QLabel(NO_MY_MODELS)
        self.other_button = QPushButton("Use a Run From Another Project…")
        self.other_button.setToolTip("Pick the folder of a finished run (a project's runs/<id> folder, or the --out of 'tlstudio train').")
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.list)
        layout.addWidget(self.empty)
        layout.addWidget(self.other_button)
        self.models: list[MyModel] = []
        self.list.itemClicked.connect(self._on_clicked)

    def show_models(self, models: list[MyModel], current: str) -> None:
        """List ``models``; the row of ``current`` (a run folder, "" for none) is marked as the start."""
        self.models = list(models)
        self.list.clear()
        for model in self.models:
            item = QListWidgetItem(model.title())
            item.setToolTip(f"{model.folder}\nclasses: {', '.join(model.classes)}")
            self.list.addItem(item)
        self.mark(current)
        self.empty.setVisible(not self.models)
        self.list.setVisible(bool(self.models))

    def mark(self, current: str) -> None:
        rows = [i for i, m in enumerate(self.models) if str(m.folder) == current]
        self.list.setCurrentRow(rows[0] if rows else -1)
        if not rows:
            self.list.clearSelection()

    def _on_clicked(self, item: QListWidgetItem) -> None:
        self.picked.emit(self.models[self.list.row(item)])


# backbone name -> (backbone parameters, trainable backbone parameters for each freeze depth 0..n).
# Counting needs the architecture built once (random weights, off the GUI thread); it never changes.
_PARAM_COUNTS: dict[str, tuple[int, list[int]]] = {}


def count_parameters(name: str) -> tuple[str, int, list[int]]:
    """(name, backbone parameters, trainable backbone parameters for freeze depth 0..n)."""
    backbone = build_backbone(name, pretrained=False)
    n = len(backbone.spec.stages)
    per_depth = [bb.apply_freeze(backbone, depth).trainable_params for depth in range(n + 1)]
    return name, sum(p.numel() for p in backbone.parameters()), per_depth


class ModelPanel(QWidget):
    weights_changed = Signal(str)  # a download or an import finished for this backbone
    imported = Signal(object)  # weights_import.ImportResult, once a file is stored

    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.specs = bb.list_backbones()
        self.download_job: Optional[Job] = None
        # (title, question) -> bool; the window routes it through its own confirm, tests answer it directly
        self.confirm = self._ask
        self._counting: set[str] = set()
        self._keep_start = False  # the table follows a My models pick: that selection keeps config.start_from

        self.table = BackboneTable(self.specs)
        self.my_models = MyModelsBox()
        self.my_models.picked.connect(self._on_my_model_picked)
        self.my_models.other_button.clicked.connect(self.choose_run_folder)
        self.weights_bar = WeightsBar()
        # The bar's controls, under the names the window and the tests use.
        self.download_button = self.weights_bar.download_button
        self.cancel_button = self.weights_bar.cancel_button
        self.import_button = self.weights_bar.import_button
        self.progress = self.weights_bar.progress
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button.clicked.connect(self.cancel_download)
        self.import_button.clicked.connect(self.choose_weights_file)
        # Why the last download of the selected backbone brought no weights (weights.Unreachable when offline).
        self.download_problem: Optional[weights.DownloadError] = None
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.freeze = FreezeControl()

        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.weights_bar)
        layout.addWidget(self.my_models)
        layout.addWidget(self.status)
        layout.addWidget(self.freeze)

        self.table.selected.connect(self._on_selected)
        self.freeze.changed.connect(self._on_freeze_changed)
        studio.project_changed.connect(self._load_from_project)
        studio.index_changed.connect(self._on_index_changed)
        studio.runs_changed.connect(self.refresh_my_models)
        self.refresh_availability()
        self._load_from_project()

    # ------------------------------------------------------------ public
    def select_backbone(self, name: str) -> None:
        self.table.select(name)

    def backbone(self) -> str:
        return self.studio.config.backbone

    def set_freeze_depth(self, value: str) -> None:
        spec = bb.get_backbone(self.backbone())
        self.freeze.set_depth(FreezeDepth.parse(value).stages_of(spec))

    def use_my_model(self, folder: str | Path) -> MyModel:
        """Start the next run from the finished run in ``folder``: its backbone (and its stages), its image size."""
        model = read_my_model(folder)
        cfg = self.studio.config
        cfg.start_from, cfg.image_size, cfg.pretrained = str(model.folder), model.image_size, True
        self._show_backbone(model.backbone, keep_start=True)
        self.my_models.mark(cfg.start_from)
        self._set_status(f"Starts from your run '{model.name or model.run_id}' ({bb.get_backbone(model.backbone).title}, trained on {', '.join(model.classes)}).")
        return model

    def choose_run_folder(self) -> None:
        path = ask_existing_folder(self, self.studio, PROJECT, "Choose the folder of a finished run")
        if path:
            self._on_my_model_picked(path)

    def refresh_my_models(self) -> None:
        self.my_models.show_models(finished_runs(self.studio.runs()), self.studio.config.start_from)

    def refresh_availability(self) -> None:
        for spec in map(bb.get_backbone, (s.name for s in self.specs)):  # the catalog as it is now
            available = weights.availability(spec)
            record = weights_import.read_record(weights.imported_path(spec)) if available == weights.IMPORTED else None
            verdict, detail = (record.verdict, f"Imported from {record.describe()}.") if record else ("", "")
            self.table.set_availability(spec.name, available, verdict, detail)
        self._update_buttons()

    def download_selected(self) -> None:
        spec = bb.get_backbone(self.backbone())
        if self.download_job is not None:
            return

        def work(on_event, stop):
            try:
                return weights.download(spec, on_event, stop)
            except weights.DownloadError as problem:
                return problem  # shown in place, beside the Import button it points to; not a failure dialog

        self.download_problem = None
        job = self.studio.jobs.start("download", f"Downloading {spec.title}", work)
        self.download_job = job
        # Bound slots (never lambdas holding widgets): they disconnect by themselves if the panel goes first.
        job.event.connect(self._on_download_event)
        job.succeeded.connect(self._on_downloaded)
        job.cancelled.connect(self._on_download_cancelled)
        job.failed.connect(self._on_download_failed)
        job.finished.connect(self._on_weights_job_finished)
        self.progress.setRange(0, 0)
        self._set_status(f"Downloading the weights of {spec.title}…")
        self._update_buttons()

    def cancel_download(self) -> None:
        if self.download_job is not None:
            self.download_job.stop()

    def choose_weights_file(self) -> None:
        spec = bb.get_backbone(self.backbone())
        title = f"Import the weights of {spec.title} (look for {weights.weights_file_name(spec)})"
        path = ask_open_file(self, self.studio, WEIGHTS, title, "Weights (*.pth *.pt *.bin *.safetensors);;All files (*)")
        if path:
            self.import_weights_file(path)

    def import_weights_file(self, path: str | Path, force: bool = False, backbone: Optional[str] = None) -> Job:
        """Import in a worker; a file that is not the official one comes back as a question (see ``_on_imported``)."""
        spec = bb.get_backbone(backbone or self.backbone())

        def work(on_event, stop):
            try:
                return weights_import.import_weights(path, spec, force=force)
            except weights_import.NotOfficialFile as refusal:
                return refusal  # a question for the user, asked on the GUI thread, not an error

        job = self.studio.jobs.start("import", f"Importing {Path(path).name} for {spec.title}", work)
        job.succeeded.connect(self._on_imported)
        job.finished.connect(self._on_weights_job_finished)
        return job

    # ------------------------------------------------------------ reactions
    def _on_my_model_picked(self, model_or_folder) -> None:
        folder = model_or_folder.folder if isinstance(model_or_folder, MyModel) else model_or_folder
        try:
            self.use_my_model(folder)
        except UserError as exc:
            self._set_status(str(exc))
            self.my_models.mark(self.studio.config.start_from)

    def _on_selected(self, name: str) -> None:
        if not self._keep_start and self.studio.config.start_from:
            self.studio.config.start_from = ""  # a backbone picked in the catalog starts from its ImageNet weights
            self.my_models.mark("")
        self.studio.set_backbone(name)
        spec = bb.get_backbone(name)
        depth = self.studio.config.freeze.stages_of(spec) if self._depth_fits(spec) else len(spec.stages)
        self.freeze.on_cpu = self._on_cpu()
        self.freeze.set_backbone(spec, depth, self._head_params())
        self.studio.config.freeze_depth = self.freeze.depth_text()
        self._count_parameters(name)
        self._update_buttons()
        self._set_status(spec.notes)

    def _on_freeze_changed(self, value: str) -> None:
        self.studio.config.freeze_depth = value

    def _count_parameters(self, name: str) -> None:
        if name in _PARAM_COUNTS:
            self.freeze.set_counts(*_PARAM_COUNTS[name])
            return
        if name in self._counting:
            return
        self._counting.add(name)

        def work(on_event, stop):
            return count_parameters(name)

        job = self.studio.jobs.start("params", "Counting parameters", work)
        job.succeeded.connect(self._on_counted)

    def _on_counted(self, counted: tuple[str, int, list[int]]) -> None:
        name, total, per_depth = counted
        _PARAM_COUNTS[name] = (total, per_depth)
        self._counting.discard(name)
        if name == self.backbone():
            self.freeze.set_counts(total, per_depth)

    def _on_index_changed(self, _index) -> None:
        self.freeze.set_head_params(self._head_params())

    def _on_download_event(self, event) -> None:
        if isinstance(event, PhaseStarted):
            self.progress.setRange(0, max(0, event.total))
        elif isinstance(event, Progress):
            if event.total:
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(1000 * event.done / event.total))
            self.progress.setFormat(event.detail or "%p%")

    def _on_downloaded(self, result) -> None:
        if isinstance(result, weights.DownloadError):
            self.download_problem = result
            self._set_status("")
            return
        self._set_status(f"{bb.get_backbone(self.backbone()).title} is ready and works offline from now on.")

    def _on_download_cancelled(self) -> None:
        self._set_status("Download cancelled. Nothing was kept.")

    def _on_download_failed(self, info) -> None:
        self._set_status(f"Download failed: {info.message}")

    def _on_imported(self, result) -> None:
        if isinstance(result, weights_import.NotOfficialFile):
            self._ask_to_import_anyway(result)
            return
        self._set_status(" ".join(weights_import.describe_import(result, bb.get_backbone(result.backbone))))
        self.imported.emit(result)

    def _ask_to_import_anyway(self, refusal: weights_import.NotOfficialFile) -> None:
        question = f"{refusal}\n\nImport it anyway? Only if you trust where it came from; it will be shown as not the official file."
        if self.confirm("Not the official weights file", question):
            self.import_weights_file(refusal.file, force=True, backbone=refusal.backbone)
        else:
            self._set_status(f"{refusal.record.source_file} was not imported: it is not the official weights file.")

    def _ask(self, title: str, question: str) -> bool:
        buttons = QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
        return QMessageBox.question(self, title, question, buttons, QMessageBox.StandardButton.No) == QMessageBox.StandardButton.Yes

    def _on_weights_job_finished(self) -> None:
        if self.sender() is self.download_job:
            self.download_job = None
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.refresh_availability()
        self.weights_changed.emit(self.backbone())

    def _load_from_project(self) -> None:
        self._show_backbone(self.studio.config.backbone, keep_start=True)
        self.refresh_my_models()

    def _show_backbone(self, name: str, keep_start: bool = False) -> None:
        self._keep_start = keep_start
        try:
            if self.table.current() == name:
                self._on_selected(name)  # same row: selecting it again would not signal
            else:
                self.table.select(name)
        finally:
            self._keep_start = False

    # ------------------------------------------------------------ helpers
    def _depth_fits(self, spec: bb.BackboneSpec) -> bool:
        try:
            self.studio.config.freeze.stages_of(spec)
            return True
        except Exception:  # noqa: BLE001 - a depth from another backbone: fall back to "all"
            return False

    def _head_params(self) -> int:
        spec = bb.get_backbone(self.backbone())
        return (spec.feature_dim + 1) * self.studio.num_classes

    def _on_cpu(self) -> bool:
        import torch

        return self.studio.config.device == "cpu" or not torch.cuda.is_available()

    def _update_buttons(self) -> None:
        spec = bb.get_backbone(self.backbone())
        available = self.table.availability(spec.name)
        problem = self.download_problem
        if problem is None or problem.backbone != spec.name or available != weights.NEEDS_DOWNLOAD:
            problem = None  # another backbone's, or an import has fixed it since
        self.weights_bar.show_state(spec, available, self.download_job is not None, problem.plain if problem else "")

    def _set_status(self, text: str) -> None:
        self.status.setText(text)
        self.status.setVisible(bool(text))  # an empty line would only push the freeze control down
