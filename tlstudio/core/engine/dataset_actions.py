"""What a run does about each thing the scan warned of: ``PlannedWarning(kind, detail, action)``.

The scan's warnings (``scan.dataset_warnings``) and skipped files describe the pictures; the plan adds,
before any work, what this run does about each one: an action code that tests read, and the sentence
the user reads. Every action states what the engine really does (nothing is silently fixed); where it
does nothing, the sentence says what that means and what the user can do.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import numpy as np

from tlstudio.core.data import index as ix
from tlstudio.core.data.images import MAX_PIXELS, megapixels, too_many_pixels_text
from tlstudio.core.engine.class_balance import RULE_RATIO, imbalance_ratio, rule_weighting
from tlstudio.core.names import printable

# What the run does about a warning (PlannedWarning.action).
KEPT_IN_BOTH = "kept in both classes"  # identical pictures train (or are measured) under each of their labels
MEASURED_ANYWAY = "measured anyway"  # a held-out copy of a training picture counts in the figures
NOT_MEASURED = "not measured"  # a class with no validation picture: learnt, its accuracy never measured
NOT_LEARNT = "not learnt"  # a class with no training picture: the model can never answer it
FEW_MEASURED = "trained and measured on few pictures"
TRAINED_AS_ONE = "trained as one class"  # folders merged by the scan
KEPT_APART = "kept as separate classes"  # class names that differ only in case
USED_AS_IS = "used as they are"  # the default: training goes ahead with the pictures as found
USED_ONCE = "used once"  # one file reached twice (a link): the scan keeps one name
LEFT_OUT = "left out"  # stray items, files that cannot be used
WEIGHTING_CROSS_VALIDATED = "weighting chosen by cross-validation"
WEIGHTING_BALANCED = "balanced class weights"  # the rule, when there is no frozen-feature fit to choose with
WEIGHTING_AS_SET = "weighting as set"

# Planned-warning kinds of the run's own (the others are the scan's Warning_ kinds).
SKIPPED_FILES = "skipped files"
CLASS_IMBALANCE = ix.IMBALANCE_WARNING  # measured on the training pictures, against the weighting rule's ratio

SHOWN_PER_KIND = 3  # more warnings of one kind are summed up in one line


@dataclass(frozen=True)
class PlannedWarning:
    kind: str  # a scan warning kind (``index.*_WARNING``), SKIPPED_FILES or CLASS_IMBALANCE
    detail: str  # what was found, in the user's words
    action: str  # one of the action constants above
    action_text: str  # what this run does about it, in the user's words
    paths: tuple[str, ...] = ()


def saved_warnings(summary: dict) -> tuple[PlannedWarning, ...]:
    """The planned warnings a run's summary recorded (``summary["plan"]["warnings"]``); () for an older or damaged one."""
    plan = summary.get("plan") if isinstance(summary, dict) else None
    try:
        return tuple(PlannedWarning(**{**w, "paths": tuple(w.get("paths", ()))}) for w in (plan or {}).get("warnings", ()))
    except (TypeError, AttributeError):
        return ()


def plan_warnings(index: ix.DatasetIndex, class_weights: str, cross_validated: bool) -> tuple[PlannedWarning, ...]:
    """Every warning of ``index``, its skipped files and its class imbalance, each with what the run does.

    ``cross_validated``: the run fits a head on frozen features, whose cross-validation picks the weighting."""
    out = [*_skipped(index.skipped)]
    for warning in index.warnings:
        if warning.kind != ix.IMBALANCE_WARNING:  # measured again below, on the pictures that train
            out.append(_planned(index, warning))
    imbalance = _imbalance(index, class_weights, cross_validated)
    return tuple(out + ([imbalance] if imbalance else []))


def _planned(index: ix.DatasetIndex, warning: ix.Warning_) -> PlannedWarning:
    kind, paths = warning.kind, warning.paths
    if kind == ix.LABEL_CONFLICT_WARNING:
        action, text = KEPT_IN_BOTH, _conflict_text(index, paths)
    elif kind == ix.LEAKAGE_WARNING:
        action, text = MEASURED_ANYWAY, _leak_text(_splits_of(index, paths))
    elif kind in (ix.FEW_IMAGES_WARNING, ix.MISSING_SPLIT_WARNING):
        action, text = _small_class(index, warning)
    elif kind == ix.STRAY_WARNING:
        action, text = LEFT_OUT, "This run trains without them."
    elif kind == ix.MERGED_FOLDERS_WARNING:
        action, text = TRAINED_AS_ONE, "This run trains their pictures as one class."
    elif kind == ix.CASE_ONLY_WARNING:
        action, text = KEPT_APART, "This run keeps them as separate classes; if they are one class, rename a folder so the names match exactly."
    elif kind == ix.LOOKALIKE_FILES_WARNING:
        action, text = USED_AS_IS, "This run uses every one of these files."
    else:
        action, text = USED_AS_IS, "This run goes ahead with the pictures as they are; the scan report lists what to check."
    return PlannedWarning(kind, warning.text, action, text, tuple(paths))


def _splits_of(index: ix.DatasetIndex, paths: tuple[str, ...]) -> set[str]:
    wanted = set(paths)
    return {s.split for s in index.samples if s.path in wanted}


def _leak_text(splits: set[str]) -> str:
    if "train" in splits:
        return (
            "This run trains on the copy in train and still measures the held-out copy, so its figures count a picture the model "
            "has already seen and read better than they are; delete the held-out copy to measure honestly."
        )
    return "This run measures every held-out copy, so the same picture counts more than once in the figures; keep one copy only."


def _conflict_text(index: ix.DatasetIndex, paths: tuple[str, ...]) -> str:
    splits = _splits_of(index, paths)
    where = (
        "it trains on the same picture under each label" if splits == {"train"}
        else "the held-out copies are measured under each label, so one of them always counts as a mistake"
        if "train" not in splits else "it trains on the same picture under each label and measures it under each, so one copy always counts as a mistake"
    )
    return f"This run keeps every copy in its class: {where}, and it cannot be right on both. Delete the copy in the wrong class."


def _small_class(index: ix.DatasetIndex, warning: ix.Warning_) -> tuple[str, str]:
    """What happens to a class with few pictures, or none in a split: learnt, measured, or neither."""
    name = warning.classes[0] if warning.classes and warning.classes[0] in index.classes else None
    if name is None:
        return USED_AS_IS, "This run trains and measures on the pictures there are."
    counts = index.counts()[name]
    trained, measured = counts["train"], counts["val"] + counts["test"]
    if not trained:
        return NOT_LEARNT, (
            f"This run has no training picture of '{printable(name)}': the model is never shown it and can never answer it, "
            f"so its {_pictures(measured, 'held-out')} always count as mistakes. Add training pictures of it, or remove the class."
        )
    if not measured:
        return NOT_MEASURED, (
            f"This run trains on its {_pictures(trained)} but holds none back to measure it: its accuracy is not measured "
            "and the validation figures leave it out. Add pictures of it."
        )
    return FEW_MEASURED, (
        f"This run trains on {_pictures(trained)} and measures on {_pictures(measured)} of it: its figures rest on so few pictures that they can swing widely."
    )


def _skipped(skipped: list[ix.Skipped]) -> list[PlannedWarning]:
    by_reason: dict[str, list[ix.Skipped]] = defaultdict(list)
    for s in skipped:
        by_reason[s.reason].append(s)
    out = []
    for reason, files in sorted(by_reason.items()):
        paths = tuple(s.path for s in files)
        if reason == ix.TOO_MANY_PIXELS:
            detail = _too_many_pixels(files)
        else:
            why = ix.REASON_TEXT.get(reason, f"{reason}.")
            detail = f"{_files(len(files))} cannot be used: {why[0].lower()}{why[1:]}"
        if reason == ix.SAME_FILE:
            out.append(PlannedWarning(SKIPPED_FILES, detail, USED_ONCE, "This run uses each such file once, under its other name.", paths))
        else:
            which = "it" if len(files) == 1 else "them"
            out.append(PlannedWarning(SKIPPED_FILES, detail, LEFT_OUT, f"This run trains without {which}; the scan report lists every skipped file.", paths))
    return out


def _too_many_pixels(files: list[ix.Skipped]) -> str:
    largest = max(files, key=lambda s: s.pixels)
    if len(files) == 1:
        return too_many_pixels_text(printable(largest.path), largest.pixels)
    biggest = f" (the largest, '{printable(largest.path)}', is {megapixels(largest.pixels)})" if largest.pixels else ""
    return (
        f"{len(files)} images are above the {MAX_PIXELS / 1e6:.1f}-megapixel safety limit that keeps a file from exhausting memory{biggest}"
        "; downscale them to use them."
    )


def _files(n: int) -> str:
    return "1 file" if n == 1 else f"{n} files"


def _pictures(n: int, kind: str = "") -> str:
    return " ".join(filter(None, (str(n), kind, "picture" if n == 1 else "pictures")))


def _imbalance(index: ix.DatasetIndex, class_weights: str, cross_validated: bool) -> PlannedWarning | None:
    """Before any time is spent: how uneven the training pictures' classes are, and what the run does about it."""
    labels = np.array([s.label for s in index.samples if s.split == "train"], dtype=np.int64)
    n = len(index.classes)
    ratio = imbalance_ratio(labels, n) if labels.size else 0.0
    if ratio <= RULE_RATIO:
        return None
    counts = Counter(labels.tolist())
    big, small = max(counts, key=lambda c: (counts[c], -c)), min(counts, key=lambda c: (counts[c], c))
    name = lambda c: printable(index.classes[c])  # noqa: E731
    detail = f"The classes are imbalanced ({name(big)}: {counts[big]} training pictures, {name(small)}: {counts[small]}; {ratio:.0f}:1)."
    if class_weights == "auto" and cross_validated:
        action, text = WEIGHTING_CROSS_VALIDATED, (
            "This run lets cross-validation on the training pictures choose between no weighting, balanced class weights and a prior correction."
        )
    elif class_weights == "auto":
        weighting = rule_weighting(class_weights, labels, n)
        action, text = WEIGHTING_BALANCED, f"This run trains with {weighting} class weights (there is no frozen-feature fit to choose with)."
    else:
        action, text = WEIGHTING_AS_SET, f"This run uses class weighting '{class_weights}', as set."
    return PlannedWarning(CLASS_IMBALANCE, detail, action, text)
