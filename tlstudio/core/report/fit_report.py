"""How a run's figures were obtained, and whether the fit looks under- or overfit, as typed records.

Both go into the run's summary as plain dicts and are rendered into sentences only at the
edge (the CLI, the window, the report), so tests read the fields, not the words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

UNDERFIT_POINTS = 0.05  # training accuracy this far below the cross-validated probe's
OVERFIT_POINTS = 0.10  # validation accuracy this far below the training accuracy


@dataclass(frozen=True)
class Selection:
    """Where the run made its choices: never on the validation or test pictures."""

    method: str  # "cross-validation" (a frozen head) | "selection split" (a fine-tune) | "last epoch" (nothing to choose on)
    metric: str  # "balanced_accuracy" | "accuracy"
    chose: tuple[str, ...]  # what was chosen there: "class weighting", "L2 strength", "epoch"
    pictures: int  # training pictures chosen on (held back, or cross-validated)
    folds: int = 0
    fraction: float = 0.0
    held: tuple[str, ...] = ()  # the held-back pictures (paths in the data folder), so the run records exactly which

    def to_dict(self) -> dict:
        return {**asdict(self), "chose": list(self.chose), "held": list(self.held)}


@dataclass(frozen=True)
class FitDiagnosis:
    train_accuracy: float
    val_accuracy: float
    probe_accuracy: Optional[float]  # the cross-validated linear probe's accuracy on the training pictures
    underfit: bool
    overfit: bool

    def to_dict(self) -> dict:
        return asdict(self)


def diagnose(train_accuracy: float, val_accuracy: float, probe_accuracy: Optional[float]) -> FitDiagnosis:
    underfit = probe_accuracy is not None and train_accuracy < probe_accuracy - UNDERFIT_POINTS
    overfit = val_accuracy < train_accuracy - OVERFIT_POINTS
    return FitDiagnosis(train_accuracy, val_accuracy, probe_accuracy, underfit, overfit)


METRIC_WORDS = {"balanced_accuracy": "balanced accuracy", "accuracy": "accuracy"}


def selection_sentence(selection: dict, val_pictures: int) -> str:
    metric = METRIC_WORDS.get(selection.get("metric", ""), selection.get("metric", ""))
    chose = ", ".join(selection.get("chose", [])) or "nothing"
    if selection.get("method") == "cross-validation":
        where = f"{selection.get('folds')}-fold cross-validation on the {selection.get('pictures')} training pictures"
    elif selection.get("method") == "selection split":
        where = f"{selection.get('pictures')} training pictures held back from training ({selection.get('fraction', 0):.0%} of each class)"
    else:
        where = "nothing: the last epoch was kept"
    return f"Chosen on {where} ({chose}, by {metric}); the {val_pictures} validation pictures were only measured, never used to choose."


def diagnosis_sentences(diagnosis: dict) -> list[str]:
    out = []
    if diagnosis.get("underfit"):
        out.append(
            f"The model may be underfit: its training accuracy ({diagnosis['train_accuracy']:.1%}) is well below what a plain linear "
            f"probe reaches on the same pictures ({diagnosis['probe_accuracy']:.1%}). Try more epochs or a higher learning rate."
        )
    if diagnosis.get("overfit"):
        out.append(
            f"The model may be overfit: validation accuracy ({diagnosis['val_accuracy']:.1%}) is well below training accuracy "
            f"({diagnosis['train_accuracy']:.1%}). Try freezing more of the backbone, stronger augmentation, or more pictures."
        )
    return out
