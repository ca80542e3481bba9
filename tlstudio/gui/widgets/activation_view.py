""""Where did it look?": a class-activation heat map over the picture selected in any gallery.

The run's trained model is rebuilt from its folder once (``ModelCache``, shared by every request)
and the map is computed in a background job; only the newest request is shown, so clicking
through a gallery quickly never queues a backlog. When the core says a map would mislead
(``supported`` is False), its sentence is shown instead of a picture.
"""

from __future__ import annotations

import html
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import QBoxLayout, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from tlstudio.core.names import printable
from tlstudio.gui.studio import Studio
from tlstudio.gui.widgets.eliding import ElidingComboBox
from tlstudio.gui.widgets.thumbnails import to_qimage
from tlstudio.gui.workers import Job

EMPTY, BUSY, PICTURE, REASON = "empty", "busy", "picture", "reason"
ANSWER = -1  # the class combo's "the model's answer" entry


@dataclass(frozen=True)
class Request:
    run_dir: str
    path: str
    class_index: Optional[int]  # None: explain the predicted class


@dataclass(frozen=True, eq=False)
class Explained:
    """What a job hands back: plain data (numpy arrays, strings), no tensors."""

    request: Request
    classes: list[str]
    map: Any  # tlstudio.core.inference.activation_map.ActivationMap
    overlay: Optional[np.ndarray]  # H x W x 3 uint8, None when the map is not supported


class ModelCache:
    """Trained models rebuilt from run folders, each loaded once and kept for the last few runs.

    Thread-safe, and one explanation at a time: the core hooks the model's modules while it
    explains, so two explanations on one model must never overlap.
    """

    def __init__(self, keep: int = 2):
        self.keep = keep
        self._lock = threading.Lock()
        self._models: OrderedDict[tuple, Any] = OrderedDict()
        self.loads = 0  # how many times a model was built (tests check the cache works)

    def explain(self, request: Request, stop) -> Explained:
        from tlstudio.core.inference.activation_map import explain, overlay
        from tlstudio.core.inference.trained_model import load_trained_model

        with self._lock:
            key = _model_key(request.run_dir)
            trained = self._models.get(key)
            if trained is None:
                trained = load_trained_model(request.run_dir)
                self.loads += 1
                self._models[key] = trained
                while len(self._models) > self.keep:
                    self._models.popitem(last=False)
            self._models.move_to_end(key)
            stop.check()
            amap = explain(trained, request.path, request.class_index)
        shown = overlay(amap.image, amap.heat) if amap.supported and amap.heat is not None else None
        return Explained(request, list(trained.classes), amap, shown)


def _model_key(run_dir: str) -> tuple:
    best = Path(run_dir) / "checkpoints" / "best.pt"
    try:
        stamp = best.stat().st_mtime_ns  # a run trained again into the same folder is a new model
    except OSError:
        stamp = 0
    return (os.path.abspath(run_dir), stamp)


class ScaledImage(QLabel):
    """A picture that scales to the label's size, keeping its proportions."""

    def __init__(self, tip: str = "", parent: Optional[QWidget] = None):
        super().__init__(parent)
        self._pixmap = QPixmap()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(96, 96)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip(tip)

    def set_image(self, rgb: Optional[np.ndarray]) -> None:
        self._pixmap = QPixmap.fromImage(to_qimage(rgb)) if rgb is not None else QPixmap()
        self._rescale()

    def source(self) -> QPixmap:
        return self._pixmap

    def sizeHint(self) -> QSize:
        return QSize(224, 224)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap.isNull():
            self.clear()
            return
        self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))


class PicturePair(QWidget):
    """Two captioned pictures, side by side in a wide space and one above the other in a tall one."""

    def __init__(self, first: tuple[str, QWidget], second: tuple[str, QWidget], parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.pair = QBoxLayout(QBoxLayout.Direction.LeftToRight)
        self.pair.setContentsMargins(0, 0, 0, 0)
        self.titles: list[QLabel] = []
        for title, widget in (first, second):
            column = QVBoxLayout()
            self.titles.append(QLabel(title))
            column.addWidget(self.titles[-1], 0, Qt.AlignmentFlag.AlignHCenter)
            column.addWidget(widget, 1)
            self.pair.addLayout(column, 1)
        self.setLayout(self.pair)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        w, h = event.size().width(), event.size().height()
        # Whichever arrangement gives each (square) picture more room.
        stacked = min(w, h / 2) > min(w / 2, h)
        direction = QBoxLayout.Direction.TopToBottom if stacked else QBoxLayout.Direction.LeftToRight
        if self.pair.direction() != direction:
            self.pair.setDirection(direction)


def _legend() -> Optional[np.ndarray]:
    """A strip of the heat map's colours, from no evidence to the most."""
    try:
        from tlstudio.core.inference.activation_map import heat_colours
    except ImportError:
        return None
    return np.repeat(heat_colours(np.linspace(0, 1, 256, dtype=np.float32)[None, :]), 10, axis=0)


class ActivationView(QWidget):
    shown = Signal(object)  # Explained, once it is on screen

    def __init__(self, studio: Studio, cache: Optional[ModelCache] = None, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.studio = studio
        self.cache = cache if cache is not None else ModelCache()
        self.job: Optional[Job] = None
        self.run_dir = ""
        self.path = ""
        self.state = EMPTY
        self.last: Optional[Explained] = None
        self._wanted: Optional[Request] = None

        title = QLabel("<b>Where did the model look?</b>")
        title.setWordWrap(True)  # the column beside a gallery can be narrow
        title.setToolTip(
            "A heat map (Grad-CAM) of the parts of the picture that pushed the model towards a class.\n"
            "Bright: strong evidence for that class. Dark: did not count for it.\n"
            "It shows the square the model saw, after resizing and cropping."
        )
        self.classes = ElidingComboBox("Show the evidence for the model's own answer, or for another class (for a mistake: the true one).")
        self.classes.currentIndexChanged.connect(self._class_changed)
        self.picture = ScaledImage("The picture as the model saw it (resized and cropped to a square).")
        self.heat = ScaledImage("Bright areas counted most for the class chosen above.")
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.message = QLabel()
        self.message.setObjectName("hint")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.pictures = QWidget()
        pictures = QVBoxLayout(self.pictures)
        pictures.setContentsMargins(0, 0, 0, 0)
        self.pair = PicturePair(("What it saw", self.picture), ("Where it looked", self.heat))
        pictures.addWidget(self.pair, 1)
        self.legend = QWidget()  # stays empty when the core offers no colour scale
        strip = _legend()
        if strip is not None:
            scale = ScaledImage("The colours of the heat map, from no evidence (left) to the strongest (right).")
            scale.setMinimumSize(60, 10)
            scale.setMaximumHeight(14)
            scale.set_image(strip)
            legend_row = QHBoxLayout(self.legend)
            legend_row.setContentsMargins(0, 0, 0, 0)
            legend_row.addWidget(QLabel("none"))
            legend_row.addWidget(scale, 1)
            legend_row.addWidget(QLabel("strong"))
        pictures.addWidget(self.legend)
        for_row = QHBoxLayout()
        for_row.addWidget(QLabel("Evidence for:"))
        for_row.addWidget(self.classes, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addLayout(for_row)
        layout.addWidget(self.pictures, 1)
        layout.addWidget(self.caption)
        layout.addWidget(self.message, 1)
        self.set_run("", [])

    # ------------------------------------------------------------ what the panel calls
    def set_run(self, run_dir: str | Path, classes: list[str], unavailable: str = "") -> None:
        """Explain with this run's model from now on. ``unavailable``: why it has none (shown instead)."""
        self.run_dir = str(run_dir) if run_dir else ""
        self._unavailable = unavailable
        self.classes.blockSignals(True)
        self.classes.clear()
        self.classes.addItem("The model's answer", ANSWER)
        for i, name in enumerate(classes):
            self.classes.addItem(name, i)
        self.classes.blockSignals(False)
        self.classes.refresh_tooltip()
        self.classes.setEnabled(bool(self.run_dir) and not unavailable)
        self._wanted = None
        self.path = ""
        self._show_message(unavailable or "Click a picture in a gallery to see where the model looked.")

    def show_image(self, path: str | Path) -> None:
        """Explain ``path`` with the current run's model, in the background."""
        self.path = str(path)
        if not self.run_dir or self._unavailable:
            self._show_message(self._unavailable or "Choose a finished run first.")
            return
        choice = self.classes.currentData()
        self._wanted = Request(self.run_dir, self.path, None if choice in (None, ANSWER) else int(choice))
        self._set_state(BUSY)
        self.caption.setText(f"Looking at {html.escape(Path(path).name)}…")
        self._start_if_idle()

    def has_picture(self) -> bool:
        return self.state == PICTURE and not self.heat.source().isNull()

    # ------------------------------------------------------------ the job
    def _start_if_idle(self) -> None:
        if self.job is not None or self._wanted is None:
            return
        request, cache = self._wanted, self.cache

        def work(on_event, stop):
            return cache.explain(request, stop)

        job = self.studio.jobs.start("explain", "Finding where the model looked", work)
        job.request = request  # plain attribute: which request this job answers
        self.job = job
        job.succeeded.connect(self._on_explained)
        job.failed.connect(self._on_failed)
        job.finished.connect(self._on_finished)

    def _on_explained(self, result: Explained) -> None:
        if result.request != self._wanted:
            return  # the user has moved on; the newer request runs next
        self.last = result
        amap, classes = result.map, [printable(c) for c in result.classes]
        chosen = html.escape(classes[amap.class_index]) if 0 <= amap.class_index < len(classes) else "?"
        best = int(np.argmax(amap.probs)) if len(amap.probs) else -1
        said = f"The model says <b>{html.escape(classes[best])}</b> ({float(amap.probs[best]):.0%})." if best >= 0 else ""
        name = html.escape(printable(Path(result.request.path).name))
        self.picture.set_image(amap.image)
        if amap.supported and result.overlay is not None:
            self.heat.set_image(result.overlay)
            self.caption.setText(f"{name}: {said} Bright areas show the evidence for <b>{chosen}</b>.")
            self._set_state(PICTURE)
        else:
            self.heat.set_image(None)
            self.caption.setText(f"{name}: {said}")
            self.message.setText(amap.reason)
            self._set_state(REASON)
        self.shown.emit(result)

    def _on_failed(self, info) -> None:
        job = self.sender()
        if getattr(job, "request", None) == self._wanted:
            self._wanted = None
            self._show_message(f"Could not show where the model looked: {info.message}")

    def _on_finished(self) -> None:
        done = self.job
        self.job = None
        if done is not None and done.was_cancelled:
            return  # stopped from outside (the window is closing): start nothing new
        if self._wanted is not None and getattr(done, "request", None) != self._wanted:
            self._start_if_idle()

    # ------------------------------------------------------------ showing
    def _class_changed(self, _index: int) -> None:
        if self.path and self.run_dir and not self._unavailable:
            self.show_image(self.path)

    def _show_message(self, text: str) -> None:
        self.picture.set_image(None)
        self.heat.set_image(None)
        self.caption.setText("")
        self.message.setText(text)
        self._set_state(EMPTY)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.pictures.setVisible(state in (PICTURE, REASON, BUSY))
        self.heat.setVisible(state != REASON)
        self.pair.titles[1].setVisible(state != REASON)
        self.legend.setVisible(state != REASON)
        self.message.setVisible(state in (EMPTY, REASON))
