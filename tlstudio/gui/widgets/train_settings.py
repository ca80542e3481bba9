"""The training settings form. Each control edits the studio's TrainConfig in place, with defaults that work."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QLabel, QSpinBox, QWidget

from tlstudio.core.config import TrainConfig
from tlstudio.gui.widgets.eliding import ElidingComboBox

# {value: (the words in the drop-down, what they mean)}: short words fit a narrow window, the meaning is in the tooltip.
AUGMENT = {
    "none": ("None", "The pictures as they are."),
    "light": ("Light (recommended)", "Small crops and flips."),
    "strong": ("Strong", "Bigger crops, rotations and colour changes."),
}
WEIGHTING = {
    "auto": ("Automatic", "Tried on your training pictures: the best of no weighting, balanced weights and a correction for how common each class is."),
    "balanced": ("Balanced", "Rarer classes count more."),
    "none": ("Off", "Every picture counts the same."),
}
SELECTION = {
    "balanced_accuracy": ("Balanced accuracy", "Every class counts the same."),
    "accuracy": ("Accuracy", "Every picture counts the same."),
}


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def device_choices() -> dict[str, tuple[str, str]]:
    import torch

    choices = {"auto": ("Automatic", "The graphics card (GPU) when there is one, otherwise the processor (CPU)."), "cpu": ("CPU", "The processor: slow for training all of a network.")}
    if has_cuda():
        for i in range(torch.cuda.device_count()):
            choices[f"cuda:{i}"] = (f"GPU {i}: {torch.cuda.get_device_name(i)}", f"Graphics card number {i}.")
    return choices


def choices(items: dict[str, tuple[str, str]], tooltip: str) -> ElidingComboBox:
    """A drop-down of ``{value: (words, meaning)}``, each entry carrying its value as its data and its meaning as its tooltip.

    In a narrow window it shows the chosen words shortened with "…"; its tooltip holds them whole.
    """
    combo = ElidingComboBox(tooltip)
    for key, (words, meaning) in items.items():
        combo.addItem(words, key)
        combo.setItemData(combo.count() - 1, meaning, Qt.ItemDataRole.ToolTipRole)
    combo.refresh_tooltip()
    return combo


# The words on the left of the form, each with what it means in plain words (the control says the rest).
LABELS = {
    "epochs": ("Epochs:", "How many times training goes through all the training pictures."),
    "batch_size": ("Batch size:", "How many pictures the model looks at before each small correction."),
    "lr": ("Learning rate:", "How big each correction is: too big and training jumps around, too small and it crawls."),
    "augment": ("Augmentation:", "Slightly changed copies of the training pictures, so the model learns the subject, not the exact picture."),
    "weighting": ("Class weighting:", "Whether pictures of rare classes count more during training."),
    "selection": ("Choose by:", "Which score decides the epoch and the settings that are kept."),
    "device": ("Device:", "Which part of the computer does the training: the graphics card (GPU) or the processor (CPU)."),
}


class TrainSettings(QWidget):
    def __init__(self, config: TrainConfig, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.config = config

        self.epochs = QSpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setToolTip(
            "How many times training goes through all training pictures. 20 is a good start;\n"
            "the best epoch is kept (judged on training pictures held back for it, never on the validation pictures),\n"
            "so more epochs rarely hurt. With the whole backbone frozen the new head is solved exactly instead."
        )
        self.batch_size = QSpinBox()
        self.batch_size.setRange(0, 4096)
        self.batch_size.setSpecialValueText("automatic")
        self.batch_size.setToolTip(
            "How many pictures are learned from at once. 32 suits most cases; lower it if the GPU runs out of memory.\n"
            "0 (automatic) picks the largest batch that fits the GPU."
        )
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0.00001, 0.5)
        self.lr.setSingleStep(0.0001)
        self.lr.setToolTip(
            "How big each learning step is (for the new head; unfrozen backbone stages use a tenth of it).\n"
            "0.001 works for most data. Lower it if the loss jumps around; raise it if it barely moves."
        )
        self.augment = choices(AUGMENT, "Randomly varied copies of the training pictures, so the model learns the subject rather than the exact picture.")
        self.weighting = choices(
            WEIGHTING,
            "When some classes have far fewer pictures, they can be given more weight so they are not ignored.\n"
            "Automatic tries no weighting, balanced weights and a correction for how common each class is,\n"
            "on your training pictures only, and keeps whichever scores best.",
        )
        self.selection = choices(
            SELECTION,
            "What the run's choices (the epoch kept, the head's settings, the class weighting) aim for.\n"
            "Balanced accuracy (the mean of each class's hit rate) keeps rare classes from being ignored;\n"
            "both figures are always reported.",
        )
        self.device = choices(device_choices(), "Where training runs. A GPU is many times faster; on a CPU, train only the new head.")
        self.export = QCheckBox("Export the model file at the end")
        self.export.setToolTip("Write model.pt (TorchScript) and check it in a fresh process; takes a few seconds more.")
        self.device_augment = QCheckBox("Augment on the GPU")
        self.device_augment.setToolTip(
            "Crop, flip and colour-change whole batches of pictures on the GPU instead of one by one on the CPU.\n"
            "Helps when a fast GPU waits for a slow CPU; applies when stages train on fresh pictures each epoch."
        )
        self.torch_compile = QCheckBox("Compile the network for long runs")
        self.torch_compile.setToolTip(
            "Compile the network with torch.compile for faster steps. Compiling takes a minute or more,\n"
            "so it is used only on a GPU and for runs of 2,000 steps or more."
        )
        if not has_cuda():
            for box in (self.device_augment, self.torch_compile):
                box.setToolTip(box.toolTip() + "\nNo GPU on this computer: the setting is kept for a computer with one.")

        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)  # a narrow box puts a control under its words
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.labels: dict[str, QLabel] = {}
        for key in LABELS:
            self._add_row(form, key, getattr(self, key))
        form.addRow(self.export)
        form.addRow(self.device_augment)
        form.addRow(self.torch_compile)

        self.load(config)
        self.epochs.valueChanged.connect(lambda v: setattr(self.config, "epochs", v))
        self.batch_size.valueChanged.connect(lambda v: setattr(self.config, "batch_size", v))
        self.lr.valueChanged.connect(lambda v: setattr(self.config, "lr", float(v)))
        self.augment.currentIndexChanged.connect(lambda _i: setattr(self.config, "augment", self.augment.currentData()))
        self.weighting.currentIndexChanged.connect(lambda _i: setattr(self.config, "class_weights", self.weighting.currentData()))
        self.selection.currentIndexChanged.connect(lambda _i: setattr(self.config, "selection_metric", self.selection.currentData()))
        self.device.currentIndexChanged.connect(lambda _i: setattr(self.config, "device", self.device.currentData()))
        self.export.toggled.connect(lambda on: setattr(self.config, "export", bool(on)))
        self.device_augment.toggled.connect(lambda on: setattr(self.config, "device_augment", bool(on)))
        self.torch_compile.toggled.connect(lambda on: setattr(self.config, "torch_compile", bool(on)))

    def _add_row(self, form: QFormLayout, key: str, control: QWidget) -> None:
        words, meaning = LABELS[key]
        label = QLabel(words)
        label.setBuddy(control)
        label.setToolTip(f"{meaning}\n\n{control.toolTip()}" if isinstance(control, (QSpinBox, QDoubleSpinBox)) else meaning)
        self.labels[key] = label
        form.addRow(label, control)

    def load(self, config: TrainConfig) -> None:
        """Show ``config`` (a reopened project's) and edit it from now on."""
        self.config = config
        widgets = self._controls()
        for w in widgets:
            w.blockSignals(True)
        self.epochs.setValue(config.epochs)
        self.batch_size.setValue(config.batch_size)
        self.lr.setValue(config.lr)
        combos = ((self.augment, config.augment), (self.weighting, config.class_weights), (self.selection, config.selection_metric), (self.device, config.device))
        for combo, value in combos:
            i = combo.findData(value)
            if i < 0:  # e.g. a GPU this machine does not have
                combo.addItem(value, value)
                i = combo.findData(value)
            combo.setCurrentIndex(i)
        self.export.setChecked(config.export)
        self.device_augment.setChecked(config.device_augment)
        self.torch_compile.setChecked(config.torch_compile)
        for w in widgets:
            w.blockSignals(False)
        for combo, _value in combos:
            combo.refresh_tooltip()

    def _controls(self) -> tuple[QWidget, ...]:
        return (self.epochs, self.batch_size, self.lr, self.augment, self.weighting, self.selection, self.device, self.export, self.device_augment, self.torch_compile)

    def set_enabled_for_run(self, running: bool) -> None:
        for w in self._controls():
            w.setEnabled(not running)
