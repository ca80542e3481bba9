"""The line under the backbone table: whether the selected backbone's weights are here, and the two ways to get them.

A backbone whose ImageNet weights are not on this computer cannot train. Right where it is
picked, this bar says so in a sentence and offers Download (with progress and Cancel) and
Import Weights File... (for a file copied from another computer). It only shows state; the
panel starts the jobs.
"""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QVBoxLayout, QWidget

from tlstudio.core.catalog import weights
from tlstudio.core.catalog.backbones import BackboneSpec

from tlstudio.gui.widgets.calm_progress import CalmProgressBar

_ICON_PX = 20


def missing_weights_text(spec: BackboneSpec) -> str:
    """What the bar says for a backbone whose weights are not on this computer."""
    size = weights.download_size_mb(spec)
    about = f" (about {size:.0f} MB)" if size >= 1 else ""
    return (
        f"{spec.title} needs its pretrained weights before it can train: they are not on this computer yet. "
        f"Download them{about}, or without internet use Import Weights File... with the file "
        f"{weights.weights_file_name(spec)} copied from a computer that has it."
    )


class WeightsBar(QWidget):
    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.icon = QLabel()
        self.icon.setPixmap(self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(_ICON_PX, _ICON_PX))
        self.icon.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)  # file names from the catalog and error text: never markup
        self.note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # the file name can be copied
        self.note_row = QFrame()
        self.note_row.setObjectName("missingWeights")
        note_layout = QHBoxLayout(self.note_row)
        note_layout.setContentsMargins(0, 0, 0, 0)
        note_layout.addWidget(self.icon)
        note_layout.addWidget(self.note, 1)

        self.download_button = QPushButton("Download")
        self.download_button.setToolTip("Fetch the pretrained weights of this backbone once; afterwards it works offline.")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the download; nothing is kept.")
        self.progress = CalmProgressBar()
        self.import_button = QPushButton("Import Weights File…")
        self.import_button.setToolTip(
            "For computers without internet: choose the .pth or .safetensors file of this backbone,\n"
            "copied from a computer that has it (in its ~/.cache/torch/hub/checkpoints folder)."
        )
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.note_row)
        layout.addLayout(buttons)
        self.note_row.hide()

    def show_state(self, spec: BackboneSpec, availability: str, downloading: bool, problem: str = "") -> None:
        """``problem``: a message that replaces the plain 'needs its weights' line (the site could not be reached)."""
        needs = availability == weights.NEEDS_DOWNLOAD
        self.note.setText(problem or (missing_weights_text(spec) if needs else ""))
        self.note_row.setVisible(needs or bool(problem))
        self.download_button.setVisible(needs)
        self.download_button.setEnabled(needs and not downloading)
        self.cancel_button.setVisible(downloading)
        self.progress.setVisible(downloading)
        self.import_button.setVisible(spec.source != "bundled")
        self.import_button.setEnabled(not downloading)

    def missing_shown(self) -> bool:
        """Is the 'needs its weights' line on screen (not hidden by the bar's own state)?"""
        return not self.note_row.isHidden()
