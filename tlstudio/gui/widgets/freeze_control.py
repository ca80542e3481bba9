"""How much of the backbone trains: a slider from "train only the new head" to "fine-tune everything".

The slider counts trainable stages from the output end, so moving right unfreezes stages
one by one. The widget shows which stages train and how many parameters that is, and a
plain-language hint. Parameter counts come from the panel (computed off the GUI thread).
"""

from __future__ import annotations

import re
from typing import Optional

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QSlider, QWidget

from tlstudio.core.catalog.backbones import BackboneSpec


# What the stage names mean: one line on screen, and on the tooltip each kind of name the backbone uses.
STAGES_LINE = "the first stage sees edges and colours; later stages see shapes, parts, then whole objects"
STAGE_WORDS = {
    "stem": "the first layer; it sees edges and colours.",
    "patch embedding": "the first layer; it cuts the picture into small squares and notes the edges and colours in each.",
    "stage": "each later stage sees bigger things: textures, shapes, parts, then whole objects.",
    "blocks": "groups of layers that relate the squares to each other: later ones see shapes, parts, then whole objects.",
    "head conv": "the backbone's last layer, which sums up what it saw.",
    "head": "the backbone's last layers, which sum up what it saw.",
}
_NUMBERS = re.compile(r"\s*[\d-]+$")  # "stage 3" -> "stage", "blocks 4-6" -> "blocks"


def stage_kind(label: str) -> str:
    return _NUMBERS.sub("", label)


def stages_tip(spec: BackboneSpec) -> str:
    """The tooltip of the stage chips: what each kind of stage name of this backbone means."""
    kinds = dict.fromkeys(stage_kind(label) for label in spec.stage_labels)  # in order, once each
    lines = [f"{kind}: {STAGE_WORDS[kind]}" for kind in kinds if kind in STAGE_WORDS]
    return "\n".join([
        "The backbone looks at a picture in stages, from the input to the output:",
        *lines,
        "new head: the layer tlstudio adds to tell your classes apart; it always trains.",
        "A frozen stage keeps what it learned on ImageNet; a stage that trains adapts to your pictures.",
    ])


def depth_text(depth: int, n_stages: int) -> str:
    """The TrainConfig spelling: 'all', 'none' or the number of frozen stages."""
    return "all" if depth >= n_stages else "none" if depth <= 0 else str(depth)


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e5 else f"{n:,}"


class FreezeControl(QGroupBox):
    changed = Signal(str)  # the freeze depth, as TrainConfig spells it

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__("What trains (freeze depth)", parent)
        self.spec: Optional[BackboneSpec] = None
        self._counts: Optional[tuple[int, list[int]]] = None  # backbone total, trainable per depth
        self._head_params = 0
        self.on_cpu = False

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setPageStep(1)
        self.slider.setToolTip(
            "Left: the backbone stays frozen as it learned on ImageNet; only the new head learns your classes (fast, needs few pictures).\n"
            "Right: every stage adapts to your pictures (slow, needs many pictures and a GPU)."
        )
        self.stages = QLabel()
        self.stages.setWordWrap(True)
        self.stages.setTextFormat(Qt.TextFormat.RichText)
        self.params = QLabel("Counting parameters…")
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        self.hint.setObjectName("hint")

        grid = QGridLayout(self)
        grid.addWidget(QLabel("Train only the new head"), 0, 0)
        grid.addWidget(self.slider, 0, 1)
        grid.addWidget(QLabel("Fine-tune everything"), 0, 2)
        grid.addWidget(self.stages, 1, 0, 1, 3)
        grid.addWidget(self.params, 2, 0, 1, 3)
        grid.addWidget(self.hint, 3, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        self.slider.valueChanged.connect(self._on_slider)

    # ------------------------------------------------------------ state
    @property
    def n_stages(self) -> int:
        return len(self.spec.stages) if self.spec else 0

    def depth(self) -> int:
        return self.n_stages - self.slider.value()

    def depth_text(self) -> str:
        return depth_text(self.depth(), self.n_stages)

    def set_backbone(self, spec: BackboneSpec, depth: int, head_params: int) -> None:
        self.spec, self._counts, self._head_params = spec, None, head_params
        self.slider.blockSignals(True)
        self.slider.setRange(0, self.n_stages)
        self.slider.setValue(self.n_stages - depth)
        self.slider.blockSignals(False)
        self._refresh()

    def set_depth(self, depth: int) -> None:
        self.slider.setValue(self.n_stages - depth)

    def set_counts(self, backbone_total: int, trainable_per_depth: list[int]) -> None:
        self._counts = (backbone_total, trainable_per_depth)
        self._refresh()

    def set_head_params(self, head_params: int) -> None:
        self._head_params = head_params
        self._refresh()

    def trainable_params(self) -> Optional[int]:
        if self._counts is None:
            return None
        return self._counts[1][self.depth()] + self._head_params

    # ------------------------------------------------------------ display
    def _on_slider(self) -> None:
        self._refresh()
        self.changed.emit(self.depth_text())

    def _refresh(self) -> None:
        if self.spec is None:
            return
        depth = self.depth()
        chips = []
        for i, label in enumerate(self.spec.stage_labels):
            frozen = i < depth
            colour, mark = ("#8a8a8a", "frozen") if frozen else ("#1b7f3b", "trains")
            chips.append(f'<span style="color:{colour}" title="{mark}">{"&#10052;" if frozen else "&#9998;"}&nbsp;{label}</span>')
        chips.append('<span style="color:#1b7f3b">&#9998;&nbsp;new head</span>')
        self.stages.setText(f"Stages (&#10052; frozen, &#9998; trains): {STAGES_LINE}.<br>" + " &nbsp; ".join(chips))
        self.stages.setToolTip(stages_tip(self.spec))
        if self._counts is None:
            self.params.setText("Counting parameters…")
        else:
            total = self._counts[0] + self._head_params
            trainable = self.trainable_params() or 0
            self.params.setText(f"<b>{_millions(trainable)}</b> of {_millions(total)} parameters train ({trainable / max(1, total):.1%}).")
        self.hint.setText(self._hint(depth))

    def _hint(self, depth: int) -> str:
        n = self.n_stages
        if depth >= n:
            text = "Start here. Only the new head learns your classes: training takes seconds and works with a few dozen pictures per class."
        elif depth == 0:
            text = "Every stage adapts to your pictures. Worth it with thousands of pictures per class; with few it tends to memorise them."
        else:
            text = (
                "The last stages adapt to your pictures: useful when they look unlike everyday photos (microscopy, X-ray) "
                "and you have a few hundred per class."
            )
        text += " Rule of thumb: the less data you have, the more you freeze."
        if self.on_cpu and depth == 0:
            text += " No GPU here: training every stage on the CPU is slow."
        elif self.on_cpu and depth < n:
            text += " No GPU here: the stages that train take a while on the CPU (the frozen ones run once and are reused)."
        return text
