"""Compare finished and unfinished runs from their folders: one table row per run, and curves aligned by epoch.

Works on any run folder (a project's ``runs/<id>/`` or the CLI's ``--out``) from its files
alone, so the CLI, the GUI and reports can all use it. A run that was stopped, failed,
is still running or whose files are damaged still gets a row that says so: reading runs
never raises because of one bad folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

from tlstudio.core.config import TrainConfig
from tlstudio.core.runs.files import PLAIN_READERS, RUN_PARTS, RunFiles, read_config

CURVE_KEYS = ("val_acc", "val_loss", "train_acc", "train_loss")

# Row statuses
FINISHED = "finished"  # final metrics and summary written
INCOMPLETE = "incomplete"  # evaluated, but the run ended before its summary (e.g. the export failed)
STOPPED = "stopped"  # no final metrics: stopped (or cut short) after some epochs
INTERRUPTED = "interrupted"  # the project says the app closed or crashed while it ran
RUNNING = "running"  # the project says it is still running
FAILED = "failed"  # the project recorded a failure
BROKEN = "broken"  # a file is damaged or the folder is not a run
MISSING = "missing"  # the folder does not exist


@dataclass
class RunData:
    """What one run folder holds, read defensively: unreadable files become ``problems``."""

    root: Path
    exists: bool = True
    config: Optional[TrainConfig] = None
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # expected files that are not there
    problems: list[str] = field(default_factory=list)  # files that are there but could not be read
    record: dict = field(default_factory=dict)  # the project's run record, when the folder is a project run

    @property
    def pretrained(self) -> Optional[bool]:
        """Whether the backbone started from ImageNet weights: the summary says what was used, else the config."""
        if isinstance(self.summary.get("pretrained"), bool):
            return self.summary["pretrained"]
        return self.config.pretrained if self.config is not None else None


def read_run(run_dir: str | Path) -> RunData:
    files = RunFiles(run_dir)
    data = RunData(files.root)
    if not files.root.is_dir():
        data.exists = False
        return data
    parts = files.read_parts({
        "config": read_config, "metrics": PLAIN_READERS["metrics"],
        "summary": PLAIN_READERS["summary"], "history": PLAIN_READERS["history"],
    })
    data.config = parts.values.get("config")
    data.metrics, data.summary = parts.values.get("metrics", {}), parts.values.get("summary", {})
    data.history = [row for row in parts.values.get("history", []) if isinstance(row.get("epoch"), int)]
    data.missing = [RUN_PARTS[part] for part in parts.missing]
    data.problems = list(parts.problems.values())
    data.record = _project_record(files.root)
    return data


def _project_record(root: Path) -> dict:
    """The run's line in its project's project.json (read only: opening a Project would rewrite it)."""
    project_file = root.parent.parent / "project.json"
    if root.parent.name != "runs" or not project_file.is_file():
        return {}
    try:
        runs = json.loads(project_file.read_text(encoding="utf-8")).get("runs", [])
        return next((r for r in runs if isinstance(r, dict) and r.get("id") == root.name), {})
    except (OSError, ValueError, AttributeError):
        return {}


def _status(run: RunData) -> tuple[str, str]:
    """(status, message in the user's words)."""
    if not run.exists:
        return MISSING, f"'{run.root}' does not exist"
    if run.problems:
        return BROKEN, "; ".join(run.problems)
    if run.config is None and not run.history and not run.metrics:
        return BROKEN, "not a tlstudio run folder (it has no config.json)"
    recorded = str(run.record.get("status", ""))
    if run.metrics and run.summary:
        return FINISHED, ""
    if recorded == "failed":
        return FAILED, str(run.record.get("message", "")) or "the run failed"
    planned = run.config.epochs if run.config is not None else None
    done = len(run.history)
    of = f" of {planned}" if planned else ""
    if run.metrics:
        return INCOMPLETE, f"evaluated after {done}{of} epochs, but it ended before its summary (the export failed or it was interrupted)"
    if recorded == "running":
        return RUNNING, f"{done}{of} epochs so far"
    if recorded == "interrupted":
        return INTERRUPTED, f"cut short after {done}{of} epochs (the app closed or crashed); no final metrics"
    if done == 0:
        return STOPPED, "stopped before the first epoch ended; no final metrics"
    return STOPPED, f"stopped after {done}{of} epochs; no final metrics"


def _ids(roots: list[Path]) -> list[str]:
    """Folder names, made unique with their parent's name where two runs share one (``a/run``, ``b/run``)."""
    names = [r.name or str(r) for r in roots]
    out = []
    for root, name in zip(roots, names):
        out.append(f"{root.parent.name}/{name}" if names.count(name) > 1 and root.parent.name else name)
    seen: dict[str, int] = {}
    for i, rid in enumerate(out):  # still equal (same parent names): number them
        seen[rid] = seen.get(rid, 0) + 1
        if seen[rid] > 1:
            out[i] = f"{rid} ({seen[rid]})"
    return out


def _number(value) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _seconds(run: RunData) -> Optional[float]:
    seconds = _number(run.summary.get("seconds"))
    if seconds is not None:
        return seconds
    per_epoch = [_number(row.get("seconds")) for row in run.history]
    per_epoch = [s for s in per_epoch if s is not None]
    return round(sum(per_epoch), 2) if per_epoch else None


def init_words(pretrained: Optional[bool]) -> str:
    return "pretrained" if pretrained else ("scratch" if pretrained is False else "unknown")


def _name(rid: str, backbone: Optional[str], freeze: Optional[str], pretrained: Optional[bool]) -> str:
    if backbone is None:
        return rid
    how = "from scratch" if pretrained is False else (f"frozen {freeze}" if freeze else "pretrained")
    return f"{rid} ({backbone}, {how})"


def run_table(run_dirs: Iterable[str | Path]) -> list[dict]:
    """One row per run folder, in the order given, whatever state the run is in.

    Keys: id, name, path, status (finished, incomplete, stopped, interrupted, running, failed, broken,
    missing), message, missing (expected files that are absent), backbone, freeze_depth, pretrained
    (bool or None), init ("pretrained", "scratch" or "unknown"), epochs (completed), planned_epochs,
    image_size, seconds, accuracy, balanced_accuracy, best_epoch (final metrics: None unless evaluated),
    kept_val_acc (the validation accuracy of the epoch the run keeps, also for a stopped run: chosen on the
    selection split as the run itself chooses, never the best validation figure, which would be selected on it).
    """
    roots = [Path(d) for d in run_dirs]
    return _rows(roots, [read_run(root) for root in roots])


def _rows(roots: list[Path], runs: list[RunData]) -> list[dict]:
    rows = []
    for rid, root, run in zip(_ids(roots), roots, runs):
        status, message = _status(run)
        cfg, summary, metrics = run.config, run.summary, run.metrics
        backbone = summary.get("backbone") or (cfg.backbone if cfg else None) or run.record.get("backbone") or None
        freeze = summary.get("freeze_depth") or (cfg.freeze_depth if cfg else None)
        pretrained = run.pretrained
        best_epoch = metrics.get("best_epoch", summary.get("best_epoch"))
        kept = _kept_row(run.history, best_epoch, cfg.selection_metric if cfg else "balanced_accuracy")
        rows.append(
            {
                "id": rid,
                "name": _name(rid, backbone, freeze, pretrained),
                "path": str(root),
                "status": status,
                "message": message,
                "missing": list(run.missing),
                "backbone": backbone,
                "freeze_depth": freeze,
                "pretrained": pretrained,
                "init": init_words(pretrained),
                "epochs": len(run.history),
                "planned_epochs": (1 if cfg.solved_head else cfg.epochs) if cfg else None,
                "image_size": summary.get("image_size") or (cfg.image_size if cfg else None),
                "seconds": _seconds(run),
                "accuracy": _number(metrics.get("accuracy")),
                "balanced_accuracy": _number(metrics.get("balanced_accuracy")),
                "best_epoch": best_epoch if isinstance(best_epoch, int) else None,
                "kept_val_acc": _number(kept.get("val_acc")) if kept else None,
            }
        )
    return rows


def _kept_row(history: list[dict], best_epoch, metric: str) -> Optional[dict]:
    """The history line of the epoch the run keeps: its best epoch, else the one its selection split prefers
    (a stopped run), else the last."""
    rows = [r for r in history if isinstance(r.get("epoch"), int)]
    if not rows:
        return None
    if isinstance(best_epoch, int):
        return next((r for r in rows if r["epoch"] == best_epoch), rows[-1])
    key = "sel_balanced_acc" if metric == "balanced_accuracy" else "sel_acc"
    scored = [r for r in rows if _number(r.get(key)) is not None and _number(r.get("sel_loss")) is not None]
    return max(scored, key=lambda r: (r[key], -r["sel_loss"])) if scored else rows[-1]


def align(histories: list[list[dict]], keys: Iterable[str] = CURVE_KEYS) -> tuple[list[int], list[dict[str, list]]]:
    """Epochs 1..N (N: the longest history) and, per history, each key's values at those epochs (None where absent)."""
    keys = tuple(keys)
    last = max((row["epoch"] for h in histories for row in h if isinstance(row.get("epoch"), int)), default=0)
    epochs = list(range(1, last + 1))
    series = []
    for history in histories:
        by_epoch = {row["epoch"]: row for row in history if isinstance(row.get("epoch"), int)}
        series.append({k: [_number(by_epoch.get(e, {}).get(k)) for e in epochs] for k in keys})
    return epochs, series


def curves(run_dirs: Iterable[str | Path], keys: Iterable[str] = CURVE_KEYS) -> dict:
    """Per-run histories aligned by epoch for overlay plots.

    ``{"epochs": [1..N], "runs": [{"id", "name", "status", "init", "val_acc": [...], "val_loss": [...], ...}]}``:
    every series has one value per epoch in ``epochs`` (N is the longest run), None where a run has no such
    epoch (it was shorter, stopped, or its history could not be read).
    """
    roots = [Path(d) for d in run_dirs]
    data = [read_run(root) for root in roots]
    rows = _rows(roots, data)
    epochs, series = align([run.history for run in data], keys)
    runs = [{"id": row["id"], "name": row["name"], "status": row["status"], "init": row["init"], **s} for row, s in zip(rows, series)]
    return {"epochs": epochs, "runs": runs}
