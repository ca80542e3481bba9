"""TrainConfig: every setting of a training run, as a plain dataclass with a JSON round-trip.

Defaults work for a non-expert. ``validate()`` names the setting and what to do on bad
input. The schema version lets older project files migrate forward.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Optional

from tlstudio.core.errors import UserError

SCHEMA_VERSION = 7  # 2: ``pretrained`` (1 had none: every run started from ImageNet weights); 3: selection split and metric; 4: early stopping; 5: start_from; 6: teacher (distillation); 7: data_edits
AUGMENT_PRESETS = ("none", "light", "strong")
CLASS_WEIGHTING = ("auto", "none", "balanced")  # auto: the head's cross-validation chooses (none, balanced or a prior correction)
SELECTION_METRICS = ("balanced_accuracy", "accuracy")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# Distillation defaults, from the literature and fixed before any measurement (never tuned on validation pictures):
# Hinton et al. 2015 use T in 2..20 with a high weight on the soft targets; T = 4 and a = 0.9 are the common
# choice since (e.g. Tian et al. 2020, CRD's KD baseline; Cho & Hariharan 2019).
DISTILL_TEMPERATURE = 4.0
DISTILL_WEIGHT = 0.9


@dataclass(frozen=True)
class FreezeDepth:
    """How much of the backbone stays frozen: all of it (a feature extractor), nothing, or its first ``stages``.

    Parsed once from the setting's text (``TrainConfig.freeze``); ``stages_of`` checks it against a backbone."""

    frozen_all: bool = False
    stages: int = 0

    @classmethod
    def parse(cls, value: str | int) -> "FreezeDepth":
        text = str(value).strip().lower()
        if text == "all":
            return cls(frozen_all=True)
        if text == "none":
            return cls(stages=0)
        try:
            stages = int(text)
        except ValueError:
            raise UserError(f"--freeze-depth must be 'all', 'none' or a number of stages, not '{value}'.") from None
        if stages < 0:
            raise UserError(f"--freeze-depth {value} is out of range: give a number of stages from 0, 'all' or 'none'.")
        return cls(stages=stages)

    @property
    def nothing_frozen(self) -> bool:
        return not self.frozen_all and self.stages == 0

    def stages_of(self, spec) -> int:
        """The number of the backbone's stages frozen; a depth beyond its stages names them."""
        n = len(spec.stages)
        if self.frozen_all:
            return n
        if self.stages > n:
            raise UserError(
                f"--freeze-depth {self.stages} is out of range: backbone '{spec.name}' has {n} stages "
                f"({', '.join(spec.stage_labels)}). Use 0..{n}, 'all' or 'none'."
            )
        return self.stages


@dataclass
class TrainConfig:
    data_dir: str = ""
    backbone: str = "efficientnet_lite0"
    pretrained: bool = True  # False: random initialisation (seeded), the baseline that shows what transfer learning adds
    start_from: str = ""  # a finished run's folder: its kept backbone weights replace ImageNet's (see catalog.my_models)
    data_edits: list = field(default_factory=list)  # the user's decisions about single pictures (quality.edits), as they were when the run started
    teacher: str = ""  # a finished run's folder: the student also learns its softened outputs (engine.distill)
    distill_temperature: float = DISTILL_TEMPERATURE  # T of softmax(logits / T) for teacher and student
    distill_weight: float = DISTILL_WEIGHT  # a: loss = (1 - a) CE(labels) + a T^2 KL(teacher || student)
    freeze_depth: str = "all"  # "all" | "none" | "K" (the first K stages frozen)
    epochs: int = 20
    batch_size: int = 32  # 0 = find the largest batch that fits the GPU
    lr: float = 1e-3  # the new head; trainable backbone stages get lr * backbone_lr_scale
    backbone_lr_scale: float = 0.1
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    dropout: float = 0.2
    image_size: Optional[int] = None  # None: the backbone's own input size
    augment: str = "light"
    class_weights: str = "auto"
    selection_metric: str = "balanced_accuracy"  # what every choice of the run maximises (epoch, L2 strength, class weighting)
    selection_split: float = 0.15  # share of each class's training pictures a fine-tune holds back to choose on
    patience: Optional[int] = None  # epochs without a better selection score before a fine-tune stops; None: a third of the run (at least 3); 0: never
    val_split: float = 0.2
    test_split: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N"
    precision: str = "auto"  # autocast on CUDA: bf16 where supported, else fp16
    workers: Optional[int] = None  # DataLoader workers; None: sized from the CPU count
    device_augment: bool = False  # crop, flip and jitter whole batches on the training device (the GPU) instead of in workers
    torch_compile: bool = False  # torch.compile the network, on a GPU and for long runs only (compiling takes a minute or more)
    feature_cache: bool = True  # run frozen layers once per view and cache their output (features, or a frozen prefix's output)
    train_batchnorm: bool = False  # re-estimate BatchNorm statistics in trainable stages (large data sets)
    warm_start_head: bool = True  # fit the head on frozen features before fine-tuning backbone stages
    export: bool = True
    schema_version: int = SCHEMA_VERSION

    def validate(self) -> "TrainConfig":
        def bad(setting: str, why: str) -> UserError:
            return UserError(f"{setting} {why}")

        if self.epochs < 1 or self.epochs > 10_000:
            raise bad("--epochs", f"must be between 1 and 10000, not {self.epochs}.")
        if self.batch_size < 0 or self.batch_size > 4096:
            raise bad("--batch-size", f"must be between 1 and 4096 (or 0 for automatic on a GPU), not {self.batch_size}.")
        if not (0 < self.lr < 1):
            raise bad("--lr", f"must be a small positive number such as 0.001, not {self.lr}.")
        if self.augment not in AUGMENT_PRESETS:
            raise bad("--augment", f"must be one of {', '.join(AUGMENT_PRESETS)}, not '{self.augment}'.")
        if self.class_weights not in CLASS_WEIGHTING:
            raise bad("--class-weights", f"must be one of {', '.join(CLASS_WEIGHTING)}, not '{self.class_weights}'.")
        if self.selection_metric not in SELECTION_METRICS:
            raise bad("--selection-metric", f"must be one of {', '.join(SELECTION_METRICS)}, not '{self.selection_metric}'.")
        if not (0 < self.selection_split < 0.5):
            raise bad("--selection-split", f"must be a fraction between 0 and 0.5 such as 0.15, not {self.selection_split}.")
        if self.patience is not None and self.patience < 0:
            raise bad("--patience", f"must be 0 (never stop early) or more epochs, not {self.patience}.")
        if self.precision not in PRECISIONS:
            raise bad("--precision", f"must be one of {', '.join(PRECISIONS)}, not '{self.precision}'.")
        if not (0 <= self.val_split < 1) or not (0 <= self.test_split < 1) or self.val_split + self.test_split >= 1:
            raise bad("--val-split", f"and --test-split must be fractions with a sum below 1 (got {self.val_split} and {self.test_split}).")
        if not (0 <= self.label_smoothing < 1):
            raise bad("label_smoothing", f"must be in [0, 1), not {self.label_smoothing}.")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise bad("--device", f"must be auto, cpu, cuda or cuda:N, not '{self.device}'.")
        if self.workers is not None and self.workers < 0:
            raise bad("--workers", f"must be 0 or more, not {self.workers}.")
        freeze = self.freeze
        self._validate_distillation()
        if self.start_from and not self.pretrained:
            raise bad("--start-from", f"'{self.start_from}' starts from that run's trained weights, --from-scratch from random ones: give one of the two.")
        if not self.pretrained and not freeze.nothing_frozen:
            what = "a frozen random backbone learns nothing" if freeze.frozen_all else "frozen random stages stay random"
            raise bad(
                "--from-scratch",
                f"starts the backbone from random weights and {what} (--freeze-depth {self.freeze_depth}). "
                "Omit --freeze-depth: from scratch, everything trains.",
            )
        return self

    def _validate_distillation(self) -> None:
        if not (0 < self.distill_temperature <= 100):
            raise UserError(f"--temperature must be a positive number up to 100 such as {DISTILL_TEMPERATURE:g}, not {self.distill_temperature}.")
        if not (0 <= self.distill_weight <= 1):
            raise UserError(f"--distill-weight must be between 0 (labels only) and 1 (the teacher only), such as {DISTILL_WEIGHT:g}, not {self.distill_weight}.")
        if self.teacher and self.solved_head:
            raise UserError(
                f"--teacher '{self.teacher}' needs a student that trains by gradient steps, but --freeze-depth all solves the head "
                "in one convex fit on the labels. Give a freeze depth such as 6 (a partial fine-tune), or 'none'."
            )

    @property
    def solved_head(self) -> bool:
        """A frozen backbone on cached features: the head is solved once (one history line), not trained for epochs."""
        return self.freeze.frozen_all and self.feature_cache

    @property
    def freeze(self) -> FreezeDepth:
        """The freeze depth setting, parsed (a bad one raises, naming the setting)."""
        return FreezeDepth.parse(self.freeze_depth)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = migrate(dict(d))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls.from_dict(json.loads(text))


def migrate(d: dict) -> dict:
    """Bring a config written by an older tlstudio up to SCHEMA_VERSION."""
    version = int(d.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise UserError(
            f"this run was written by a newer tlstudio (config schema {version}, this one reads up to {SCHEMA_VERSION}). Update tlstudio."
        )
    d["freeze_depth"] = str(d.get("freeze_depth", "all"))
    if version < 2:
        d["pretrained"] = True  # schema 1 had no choice: every run started from the ImageNet weights
    if version < 3:
        # Schema 2's runs chose their epoch on the validation pictures; from 3 on, choices are made on a
        # selection split held back from training. Its defaults apply; "auto" weighting now means cross-validated.
        d.setdefault("selection_metric", "balanced_accuracy")
        d.setdefault("selection_split", 0.15)
    if version < 4:
        d.setdefault("patience", 0)  # runs before schema 4 never stopped early: resuming one must not either
    if version < 5:
        d.setdefault("start_from", "")  # runs before schema 5 all started from the catalog's weights
    if version < 6:
        d.setdefault("teacher", "")  # runs before schema 6 learnt from their labels only
    if version < 7:
        d.setdefault("data_edits", [])  # runs before schema 7 trained on the folder as it was
    d["schema_version"] = SCHEMA_VERSION
    return d
