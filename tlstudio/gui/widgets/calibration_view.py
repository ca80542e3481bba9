"""The Evaluate step's Confidence tab: how honest the run's probabilities are, and when to say "not sure".

Everything comes from summary.json's ``calibration`` (``engine.calibration``): the reliability diagram
of the validation pictures before and after temperature scaling with their ECE, and the coverage curve
of the pictures the temperature was fitted on (never the validation ones). The user moves the threshold
(the spin box, or a click on the curve) and reads what it means in plain words; Apply carries it into
the run's exported files (``formats.apply_threshold``), off the GUI thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import PySide6.QtWidgets  # noqa: F401 - PySide6 before pyqtgraph, so pyqtgraph binds to it
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from tlstudio.core.engine.calibration import Calibration, CoveragePoint, point_on, read_calibration, sentence
from tlstudio.core.runs.files import RunFiles
from tlstudio.gui.widgets.plot_style import legend_below, plain_axes

NO_CALIBRATION = "This run has no calibration (it was trained by an older tlstudio). Evaluate its kept epoch again to calibrate it."
BEFORE, AFTER = (160, 160, 160), (66, 133, 244)


def _plot(title: str, x_label: str, y_label: str) -> pg.PlotWidget:
    plot = pg.PlotWidget(background="w")
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.getPlotItem().setTitle(title)
    plot.setLabel("bottom", x_label)
    plot.setLabel("left", y_label)
    plot.setXRange(0, 1, padding=0.02)
    plot.setYRange(0, 1, padding=0.02)
    plot.getPlotItem().showGrid(x=True, y=True, alpha=0.2)
    plain_axes(plot)
    legend_below(plot, columns=2)
    return plot


class CalibrationView(QWidget):
    applied = Signal(float)  # the threshold now in the run's files

    def __init__(self, studio, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.run_root: Optional[Path] = None
        self.calibration: Optional[Calibration] = None
        self.job = None
        self.figures = QLabel()
        self.figures.setWordWrap(True)
        self.reliability = _plot("Reliability (validation pictures)", "confidence", "accuracy")
        self.coverage = _plot("Answered and their accuracy", "'not sure' below", "share")
        self.coverage.scene().sigMouseClicked.connect(self._clicked)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, 0.99)
        self.threshold.setSingleStep(0.01)
        self.threshold.setDecimals(2)
        self.threshold.setToolTip("Below this top probability the model answers 'not sure'. 0 always answers.")
        self.threshold.valueChanged.connect(self._threshold_changed)
        self.words = QLabel()
        self.words.setWordWrap(True)
        self.apply = QPushButton("Apply to the Model Files")
        self.apply.setToolTip("Write this threshold into the run's exported files: predict, Try it and Classify a folder then say 'not sure' below it.")
        self.apply.clicked.connect(self.apply_threshold)
        self.line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen((200, 60, 60), width=2))
        self.line.sigPositionChangeFinished.connect(lambda line: self.threshold.setValue(min(0.99, max(0.0, line.value()))))

        plots = QHBoxLayout()
        plots.addWidget(self.reliability)
        plots.addWidget(self.coverage)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Say 'not sure' below:"))
        controls.addWidget(self.threshold)
        controls.addWidget(self.words, 1)
        controls.addWidget(self.apply)
        layout = QVBoxLayout(self)
        layout.addWidget(self.figures)
        layout.addLayout(plots, 1)
        layout.addLayout(controls)

    # ----------------------------------------------------------------- showing a run
    def show_run(self, run_root: Optional[Path]) -> None:
        files = RunFiles(run_root) if run_root is not None else None
        self.run_root = files.root if files is not None else None
        self.calibration = read_calibration(files.read_json(files.summary, {})) if files is not None else None
        self.reliability.clear()
        self.coverage.clear()
        found = self.calibration
        self.apply.setEnabled(found is not None and bool(found.coverage))
        self.threshold.setEnabled(found is not None)
        if found is None:
            self.figures.setText(NO_CALIBRATION if run_root is not None else "")
            self.words.setText("")
            return
        self.figures.setText(
            f"Temperature {found.temperature:.2f}, fitted on the {found.pictures} pictures of the {found.fitted_on}. "
            f"On the validation pictures: ECE {found.val_ece_before:.3f} before, {found.val_ece_after:.3f} after; "
            f"log-loss {found.val_nll_before:.3f} before, {found.val_nll_after:.3f} after. The answers are the same."
        )
        self._draw_reliability(found)
        self._draw_coverage(found)
        self.threshold.blockSignals(True)
        self.threshold.setValue(found.threshold)
        self.threshold.blockSignals(False)
        self._threshold_changed(found.threshold)

    def _draw_reliability(self, found: Calibration) -> None:
        plot = self.reliability
        plot.plot([0, 1], [0, 1], pen=pg.mkPen((0, 0, 0), style=pg.QtCore.Qt.PenStyle.DashLine), name="perfectly honest")
        for bins, colour, name in ((found.reliability_before, BEFORE, f"before (ECE {found.val_ece_before:.3f})"),
                                   (found.reliability_after, AFTER, f"after (ECE {found.val_ece_after:.3f})")):
            used = [b for b in bins if b.count]
            plot.plot([b.confidence for b in used], [b.accuracy for b in used], pen=pg.mkPen(colour, width=2), symbol="o", symbolBrush=colour, name=name)

    def _draw_coverage(self, found: Calibration) -> None:
        plot = self.coverage
        xs = [p.threshold for p in found.coverage]
        plot.plot(xs, [p.answered for p in found.coverage], pen=pg.mkPen(AFTER, width=2), name="share answered")
        plot.plot(xs, [p.accuracy for p in found.coverage], pen=pg.mkPen((0, 150, 80), width=2), name="accuracy of those answered")
        plot.addItem(self.line)

    # ----------------------------------------------------------------- the threshold
    def point(self) -> Optional[CoveragePoint]:
        """The coverage point of the threshold shown (None without a curve)."""
        found = self.calibration
        return point_on(found.coverage, self.threshold.value()) if found is not None and found.coverage else None

    def _threshold_changed(self, value: float) -> None:
        self.line.setValue(value)
        point = self.point()
        chosen = self.calibration.threshold if self.calibration is not None else 0.0
        self.words.setText((sentence(point) if point is not None else "") + ("" if abs(value - chosen) < 1e-9 else "  (not applied yet)"))

    def _clicked(self, event) -> None:
        if self.calibration is None or not self.coverage.sceneBoundingRect().contains(event.scenePos()):
            return
        x = self.coverage.getPlotItem().vb.mapSceneToView(event.scenePos()).x()
        self.threshold.setValue(min(0.99, max(0.0, round(x, 2))))

    def apply_threshold(self) -> None:
        """Carry the threshold shown into the run's summary and exported files, off the GUI thread."""
        if self.run_root is None or self.calibration is None or (self.job is not None and self.job.is_running()):
            return
        from tlstudio.core.inference.formats import apply_threshold

        root, value = self.run_root, float(self.threshold.value())
        self.apply.setEnabled(False)
        self.job = job = self.studio.jobs.start("threshold", "Writing the 'not sure' threshold into the model files", lambda _on_event, _stop: apply_threshold(root, value))
        job.succeeded.connect(lambda _written: self._applied(root, value))
        job.finished.connect(lambda: self.apply.setEnabled(self.calibration is not None))

    def _applied(self, root: Path, value: float) -> None:
        if root == self.run_root:
            self.show_run(root)
        self.applied.emit(value)
