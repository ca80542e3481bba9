"""Did transfer learning help? The from-scratch baseline of a run, and the uplift between the two.

``baseline_config(cfg)`` gives the same run without ImageNet weights; train both, then
``uplift(pretrained_run_dir, baseline_run_dir)`` reads their files and says how much the
pretrained backbone added, with both histories for side-by-side curves. ``baseline_pairs(run_dirs)``
finds which run is the baseline of which.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable

from tlstudio.core.config import TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.runs.comparison import RunData, align, init_words, read_run

# Settings the two runs must share for the uplift to mean "what the ImageNet weights added".
SHARED_SETTINGS = ("data_dir", "backbone", "val_split", "test_split", "seed", "epochs", "image_size", "augment", "class_weights", "batch_size")


def baseline_config(cfg: TrainConfig) -> TrainConfig:
    """The same run from random weights: the baseline that shows what transfer learning adds.

    Kept: the architecture, data folder, split, seed, epochs, image size, augmentation,
    class weighting, batch size, learning rate and schedule, regularisation, device and
    precision, so the only difference that matters is the starting point. The same
    epoch budget is deliberate: the question is what the pretrained weights bought for
    the training a user actually ran, not how far scratch training could get with ten
    times more.

    Changed, because a random backbone is not a pretrained one:

    - ``pretrained=False``: random initialisation, seeded by ``seed`` (the same seed gives
      the same weights).
    - ``freeze_depth="none"``: everything trains. A frozen random backbone (or frozen random
      stages) would only measure random features, a strawman any pretrained run beats; the
      fair baseline lets the whole network learn from the data.
    - ``backbone_lr_scale=1.0``: the lower backbone learning rate protects pretrained
      features from a noisy new head; random weights have nothing to protect.
    - ``train_batchnorm=True``: there are no ImageNet BatchNorm statistics to keep; frozen
      initial ones (mean 0, variance 1) would leave the network unnormalised.
    - ``warm_start_head=False``: a head fitted on random features is no better a start.
    """
    return replace(
        cfg,
        pretrained=False,
        freeze_depth="none",
        backbone_lr_scale=1.0,
        train_batchnorm=True,
        warm_start_head=False,
    ).validate()


def _mismatches(a: TrainConfig, b: TrainConfig) -> dict[str, list]:
    """{setting: [a's value, b's value]} for each of SHARED_SETTINGS on which the two configs differ."""
    out = {}
    for name in SHARED_SETTINGS:
        x, y = getattr(a, name), getattr(b, name)
        if name == "data_dir":
            x, y = str(Path(x)), str(Path(y))
        if x != y:
            out[name] = [x, y]
    return out


def _has_final_metrics(run: RunData) -> bool:
    return run.exists and not any(p.startswith("metrics.json") for p in run.problems) and all(
        isinstance(run.metrics.get(key), (int, float)) for key in ("accuracy", "balanced_accuracy")
    )


def baseline_pairs(run_dirs: Iterable[str | Path]) -> dict[Path, Path]:
    """{pretrained run: its from-scratch baseline} among ``run_dirs`` (oldest first), for every run that has one.

    The link is read from the runs' own settings, so no extra file can go stale and a baseline trained
    any way (the GUI's button, ``tlstudio train --from-scratch``, by hand) counts. A baseline is a
    finished from-scratch run on the same data folder and backbone as a finished pretrained run; of
    several, the one with the fewest differing SHARED_SETTINGS wins, then the newest. One baseline
    can serve several pretrained runs (say frozen and fine-tuned), since ``baseline_config`` gives
    them all the same from-scratch run.
    """
    runs = [read_run(d) for d in run_dirs]
    done = [run for run in runs if run.config is not None and _has_final_metrics(run)]
    scratch = [(i, run) for i, run in enumerate(done) if run.pretrained is False]
    pairs = {}
    for pre in done:
        if pre.pretrained is not True:
            continue
        same = [
            (len(_mismatches(pre.config, base.config)), -i, base)
            for i, base in scratch
            if str(Path(base.config.data_dir)) == str(Path(pre.config.data_dir)) and base.config.backbone == pre.config.backbone
        ]
        if same:
            pairs[pre.root] = min(same, key=lambda t: t[:2])[2].root
    return pairs


def _finished(run_dir: str | Path, role: str) -> RunData:
    run = read_run(run_dir)
    if not run.exists:
        raise UserError(f"the {role} run folder '{run.root}' does not exist.")
    if "metrics.json" in run.missing:
        raise UserError(
            f"the {role} run '{run.root}' has no final metrics (metrics.json): train the run first, or let it finish (a stopped run has none)."
        )
    unreadable = [p for p in run.problems if p.startswith("metrics.json")]
    if unreadable:
        raise UserError(f"the {role} run '{run.root}': {unreadable[0]}. Train the run again.")
    for key in ("accuracy", "balanced_accuracy"):
        if not isinstance(run.metrics.get(key), (int, float)):
            raise UserError(f"the {role} run '{run.root}' has no {key.replace('_', ' ')} in metrics.json. Train the run again.")
    return run


def _seconds(run: RunData):
    seconds = run.summary.get("seconds")
    if isinstance(seconds, (int, float)):
        return float(seconds)
    per_epoch = [row["seconds"] for row in run.history if isinstance(row.get("seconds"), (int, float))]
    return round(float(sum(per_epoch)), 2) if per_epoch else None


def uplift(pretrained_run_dir: str | Path, baseline_run_dir: str | Path) -> dict:
    """How much the pretrained run beat its from-scratch baseline, read from both runs' files.

    Returns accuracies, balanced accuracies and their differences (pretrained minus
    baseline, so positive means transfer learning helped), both runs' seconds, epochs and
    best epochs, both raw histories, the curves aligned by epoch (``curves``: ``epochs`` and,
    per run, ``val_acc``/``val_loss``/``train_acc``/``train_loss`` lists), and ``mismatches``:
    the shared settings (``SHARED_SETTINGS``) on which the two runs differ, empty when the
    comparison is fair.

    Raises UserError when a run lacks its final metrics, or when the runs are the wrong way
    round (the first trained from scratch, or the second from ImageNet weights).
    """
    pre = _finished(pretrained_run_dir, "pretrained")
    base = _finished(baseline_run_dir, "baseline")
    if pre.pretrained is False:
        raise UserError(f"'{pre.root}' was trained from scratch: give the pretrained run first and its baseline second.")
    if base.pretrained is True:
        raise UserError(f"'{base.root}' started from ImageNet weights: the baseline must be trained from scratch (tlstudio train ... --from-scratch).")

    mismatches = _mismatches(pre.config, base.config) if pre.config is not None and base.config is not None else {}

    epochs, (pre_curves, base_curves) = align([pre.history, base.history])
    p_acc, b_acc = float(pre.metrics["accuracy"]), float(base.metrics["accuracy"])
    p_bal, b_bal = float(pre.metrics["balanced_accuracy"]), float(base.metrics["balanced_accuracy"])
    return {
        "pretrained_run": str(pre.root),
        "baseline_run": str(base.root),
        "pretrained_init": init_words(pre.pretrained),
        "baseline_init": init_words(base.pretrained),
        "pretrained_accuracy": p_acc,
        "baseline_accuracy": b_acc,
        "accuracy_uplift": p_acc - b_acc,
        "pretrained_balanced_accuracy": p_bal,
        "baseline_balanced_accuracy": b_bal,
        "balanced_accuracy_uplift": p_bal - b_bal,
        "pretrained_seconds": _seconds(pre),
        "baseline_seconds": _seconds(base),
        "pretrained_epochs": len(pre.history),
        "baseline_epochs": len(base.history),
        "pretrained_best_epoch": pre.metrics.get("best_epoch"),
        "baseline_best_epoch": base.metrics.get("best_epoch"),
        "pretrained_history": pre.history,
        "baseline_history": base.history,
        "curves": {"epochs": epochs, "pretrained": pre_curves, "baseline": base_curves},
        "mismatches": mismatches,
    }
