"""The Evaluate step's button for a run that stopped before its last epoch: measure and export the epoch it kept.

What ``tlstudio evaluate RUN`` and ``tlstudio export RUN`` do, in a background job: the kept epoch is
measured on the validation pictures and exported (verified), marked "stopped after epoch k of n",
and the project's record of the run takes the new summary; the run can still be resumed after.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtWidgets import QPushButton, QWidget

from tlstudio.core.runs.project import RunInfo
from tlstudio.gui.studio import Studio
from tlstudio.gui.workers import Job

TIP = (
    "Training stopped before its last epoch, but the best epoch so far is kept. Measure it on the validation "
    "pictures and export its model file now; Resume Run (Train step) can still train on later."
)


def kept_epoch_to_evaluate(run: Optional[RunInfo]) -> bool:
    """A run that stopped, crashed or failed after completing an epoch, before it had its results and its model file
    (a run stopped while exporting has the results and no file)."""
    if run is None or (run.metrics and run.has_model):
        return False
    status = run.files.read_status()
    return status is not None and status.resumable and status.evaluable


class KeptEpochButton(QPushButton):
    def __init__(self, studio: Studio, parent: Optional[QWidget] = None):
        super().__init__("Evaluate the Kept Epoch", parent)
        self.studio = studio
        self.job: Optional[Job] = None
        self._run_id = ""
        self.setToolTip(TIP)
        self.clicked.connect(self.evaluate)
        self.hide()

    def set_run(self, run: Optional[RunInfo]) -> None:
        self.setVisible(kept_epoch_to_evaluate(run))
        self.setEnabled(self.job is None)

    def evaluate(self) -> Optional[Job]:
        run = self.studio.run(self.studio.current_run)
        if not kept_epoch_to_evaluate(run) or self.job is not None:
            return None
        root, cache = run.files.root, self.studio.project.cache_dir

        def work(on_event, stop):
            from tlstudio.core.engine.trainer import Trainer

            return Trainer.resume(root, cache_dir=cache, evaluate_only=True, export=True).run(on_event, stop)

        self.job, self._run_id = self.studio.jobs.start("evaluate", "Evaluating the kept epoch", work), run.id
        self.setEnabled(False)
        self.job.succeeded.connect(self._on_evaluated)  # bound slots: no cycle keeps a finished Job alive
        self.job.finished.connect(self._on_finished)
        return self.job

    def _on_evaluated(self, result) -> None:
        if result is None or result.cancelled:
            return
        record = self.studio.project.record(self._run_id)
        self.studio.project.finish_run(self._run_id, record.status, result.summary, record.message)

    def _on_finished(self) -> None:
        self.job = None
        self.setEnabled(True)
        self.studio.runs_changed.emit()
