"""One self-contained HTML page about a training run, for a domain expert to send to a colleague.

Everything is inline: the style sheet, the curves (SVG drawn here), and thumbnails of the worst
mistakes (JPEG data URIs). The page needs no network, no JavaScript and no other file. Every string
that comes from the user's folders (class names, paths, warnings) is escaped with ``_text``.

A run stopped early, or written by an older version, may lack some files: the page shows what
exists and says what is missing. A folder holding none of the run files is refused.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from PIL import Image

from tlstudio import __version__
from tlstudio.core import atomic
from tlstudio.core.data.scan import load_index
from tlstudio.core.data.index import REASON_TEXT, SPLITS, DatasetIndex
from tlstudio.core.errors import UserError
from tlstudio.core.names import printable
from tlstudio.core.runs.files import PLAIN_READERS, RUN_PARTS, RunFiles, json_lines, json_of
from tlstudio.core.report.fit_report import diagnosis_sentences, selection_sentence
from tlstudio.core.data.images import ImageRejected, open_image

LOST_WITHOUT = {
    "config": "the run's settings are not shown",
    "dataset": "the dataset summary is not shown",
    "history": "the training curves are unavailable",
    "metrics": "the confusion matrix and the per-class figures are not shown",
    "predictions": "the worst mistakes are not shown",
    "summary": "timing, device and export details are not shown (the run may have been stopped before it finished)",
}

MAX_MISTAKES = 24
THUMB_SIDE = 128
MAX_LISTED = 200  # paths listed per group of skipped files or per warning; dataset.json has them all
TRAIN_COLOUR, VAL_COLOUR = "#1f6fb4", "#e0621b"


# ------------------------------------------------------------------------------- entry points


def write_report(run_dir: str | Path, out_path: str | Path) -> Path:
    """Render the report of ``run_dir`` and write it atomically to ``out_path``."""
    page = render_report(run_dir)
    out = Path(out_path)
    try:
        atomic.write_text(out, page)
    except OSError as exc:
        raise UserError(f"could not write the report to '{out}' ({exc.strerror or exc}); choose another place to save it.") from None
    return out


def render_report(run_dir: str | Path) -> str:
    """The HTML page for ``run_dir``. Reads the run's files and the images it names; writes nothing."""
    run = load_run(run_dir)
    sections = [
        _summary_section(run),
        _curves_section(run),
        _evaluation_section(run.metrics, run.classes, "val", "Validation", run.problems.get("metrics")),
        _mistakes_section(run),
        _calibration_section(run),
    ]
    if run.metrics and isinstance(run.metrics.get("test"), dict):
        sections.append(_evaluation_section(run.metrics["test"], run.classes, "test", "Test split", None))
    sections += [_dataset_section(run), _timing_section(run), _config_section(run)]
    return _page(run, sections)


# ------------------------------------------------------------------------------- reading a run


@dataclass
class Run:
    """What a run folder holds; each part is None when its file is missing or unreadable."""

    root: Path
    config: Optional[dict] = None
    dataset: Optional[DatasetIndex] = None
    history: Optional[list[dict]] = None
    metrics: Optional[dict] = None
    predictions: Optional[list[dict]] = None
    summary: Optional[dict] = None
    problems: dict[str, str] = field(default_factory=dict)  # part -> why it is not shown
    written: float = 0.0  # newest modification time among the run files

    @property
    def classes(self) -> list[str]:
        if self.metrics:
            return list(self.metrics["classes"])
        if self.dataset:
            return list(self.dataset.classes)
        return list((self.summary or {}).get("classes", []))

    @property
    def data_root(self) -> Optional[Path]:
        if self.dataset:
            return Path(self.dataset.root)
        if self.config and self.config.get("data_dir"):
            return Path(self.config["data_dir"])
        return None


def load_run(run_dir: str | Path) -> Run:
    root = Path(run_dir)
    if not root.exists():
        raise UserError(f"'{root}' does not exist; give the folder of a training run (the --out of 'tlstudio train').")
    if not root.is_dir():
        raise UserError(f"'{root}' is a file, not a run folder; give the folder of a training run (the --out of 'tlstudio train').")
    parts = RunFiles(root).read_parts(_READERS)
    if len(parts.missing) == len(RUN_PARTS):
        raise UserError(f"'{root}' is not a training run: it holds none of {', '.join(RUN_PARTS.values())}; {_which_folder_instead(root)}.")
    run = Run(root, written=parts.written, problems={part: f"{RUN_PARTS[part]} is missing" for part in parts.missing})
    run.problems.update(parts.problems)
    for part, value in parts.values.items():
        setattr(run, part, value)
    return run


def _which_folder_instead(root: Path) -> str:
    runs = sorted((p for p in (root / "runs").glob("*") if p.is_dir()), key=lambda p: p.stat().st_mtime) if (root / "runs").is_dir() else []
    if runs:
        return f"it looks like a project folder: give one of its runs, such as '{runs[-1]}'"
    return "give the folder that 'tlstudio train --out' wrote"


def _read_history(path: Path) -> list[dict]:
    rows = json_lines(path)
    for row in rows:
        int(row["epoch"])
    return rows


def _read_metrics(path: Path) -> dict:
    metrics = json_of(dict)(path)
    _check_metrics(metrics)
    if "test" in metrics:
        _check_metrics(metrics["test"])
    return metrics


def _check_metrics(metrics: dict) -> None:
    """Raise KeyError, TypeError or ValueError unless ``metrics`` has every figure the page shows."""
    classes, matrix = metrics["classes"], metrics["confusion_matrix"]
    if len(matrix) != len(classes) or any(len(row) != len(classes) for row in matrix):
        raise ValueError("the confusion matrix does not match the class list")
    _check_numbers(metrics, "accuracy", "balanced_accuracy")
    if not all(isinstance(count, int) for row in matrix for count in row):
        raise ValueError("the confusion matrix holds something other than counts")
    for figures in metrics.get("per_class", {}).values():
        _check_numbers(figures, "precision", "recall", "f1", "support")


def _check_numbers(obj: dict, *keys: str) -> None:
    for key in keys:
        float(obj[key])


def _read_predictions(path: Path) -> list[dict]:
    rows = json_of(list)(path)
    for row in rows:
        label, pred, n = int(row["label"]), int(row["pred"]), len(row["probs"])
        if not (0 <= label < n and 0 <= pred < n):
            raise ValueError(f"the prediction for {row.get('path')!r} names a class outside its probabilities")
    return rows


_READERS: dict[str, Callable[[Path], object]] = {
    "config": PLAIN_READERS["config"],
    "dataset": load_index,
    "history": _read_history,
    "metrics": _read_metrics,
    "predictions": _read_predictions,
    "summary": PLAIN_READERS["summary"],
}


# ------------------------------------------------------------------------------- small helpers


def _text(value: object) -> str:
    """``value`` escaped for HTML text or a quoted attribute.

    "://" is also written as entities, so that no string from a folder can put a web address in the
    page's source; browsers show the same characters. Control and bidi characters (which reorder
    text in a page too) are shown as visible escapes (``printable``).
    """
    return html.escape(printable(value), quote=True).replace("://", ":&#47;&#47;")


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def _number(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "—"}[value]
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "—"
    return str(value)


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}">\n<h2>{_text(title)}</h2>\n{body}\n</section>'


def _note(text: str, kind: str = "note") -> str:
    return f'<p class="{kind}">{text}</p>'


def _key_values(rows: Sequence[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{_text(k)}</th><td>{_text(_number(v))}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _unavailable(run: Run, part: str, what: str) -> str:
    return _note(f"{_text(what)} unavailable: {_text(run.problems.get(part, RUN_PARTS[part] + ' is missing'))}.", "missing")


# ------------------------------------------------------------------------------- page and summary


def _page(run: Run, sections: list[str]) -> str:
    title = f"tlstudio report: {run.root.resolve().name}"
    written = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.written))
    links = [("summary", "Summary"), ("curves", "Curves"), ("val", "Validation"), ("mistakes", "Mistakes")]
    if run.metrics and isinstance(run.metrics.get("test"), dict):
        links.append(("test", "Test"))
    links += [("dataset", "Dataset"), ("timing", "Timing"), ("config", "Settings")]
    nav = " · ".join(f'<a href="#{anchor}">{label}</a>' for anchor, label in links)
    return "\n".join(
        (
            "<!DOCTYPE html>",
            '<html lang="en">',
            '<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_text(title)}</title>",
            f"<style>{_CSS}</style></head>",
            "<body>",
            f"<header><h1>{_text(title)}</h1><p class=\"sub\">Run folder {_text(run.root.resolve())} · last written {written}</p>",
            f"<nav>{nav}</nav></header>",
            *sections,
            f'<footer>Made by tlstudio {_text(__version__)}. This page is a single file: it needs no network and no other files.</footer>',
            "</body></html>",
            "",
        )
    )


def _summary_section(run: Run) -> str:
    parts = [_missing_notice(run)] if run.problems else []
    parts.append(_status_line(run))
    tiles = _headline_tiles(run)
    if tiles:
        parts.append(f'<div class="tiles">{tiles}</div>')
    return _section("summary", "Summary", "\n".join(parts))


def _missing_notice(run: Run) -> str:
    items = "".join(f"<li>{_text(problem)}: {_text(LOST_WITHOUT[part])}.</li>" for part, problem in run.problems.items())
    return f'<div class="missing"><b>Some of this run\'s files are not shown.</b><ul>{items}</ul></div>'


def _status_line(run: Run) -> str:
    config, summary = run.config or {}, run.summary or {}
    backbone = summary.get("backbone") or config.get("backbone")
    freeze = summary.get("freeze_depth") or config.get("freeze_depth")
    model = f"{_text(backbone)}, freeze depth {_text(freeze)}" if backbone else "an unknown backbone"
    epochs_done = len(run.history or [])
    planned = config.get("epochs")
    if run.summary is not None:
        epochs = _number(summary.get("epochs", epochs_done))
        state = f"Finished: {_text(epochs)} epoch{'' if epochs == 1 else 's'}"
    elif run.history:
        state = f"Not finished (stopped, or still running): {epochs_done} of {_text(planned or '?')} epochs completed"
    else:
        state = "Not finished: no epoch completed"
    classes = ", ".join(_text(c) for c in run.classes) or "unknown"
    lead = _note(f"{state}, with {model}. Classes ({len(run.classes)}): {classes}.", "lead") + _origin_note(summary.get("origin")) + _edits_note(summary.get("data_edits"))
    if not summary.get("selection"):
        return lead
    how = selection_sentence(summary["selection"], (run.metrics or {}).get("n", 0))
    warnings = "".join(_note(_text(sentence), "missing") for sentence in diagnosis_sentences(summary.get("diagnosis") or {}))
    return lead + _note(_text(how)) + warnings


def _origin_note(origin: Optional[dict]) -> str:
    """Where a run started from one of the user's own earlier runs (``catalog.my_models``): which run, on what."""
    if not isinstance(origin, dict) or not origin.get("run_id"):
        return ""
    name = origin.get("run_name") or origin["run_id"]
    classes = ", ".join(_text(c) for c in origin.get("classes") or [])
    acc = origin.get("val_accuracy")
    scored = f", validation accuracy {_pct(acc)}" if isinstance(acc, (int, float)) else ""
    text = (f"Started from your run <b>{_text(name)}</b> ({_text(origin.get('backbone', ''))}, trained on "
            f"{_text(origin.get('data_dir', ''))} with classes {classes}{scored}) instead of ImageNet weights.")
    return f'<p class="note origin" data-origin-run="{_text(origin["run_id"])}">{text}</p>'


def _edits_note(record: Optional[dict]) -> str:
    """The user's decisions about single pictures (``quality.edits``), each picture named; flagged when validation was edited."""
    from tlstudio.core.quality.edits import describe

    text = describe(record)
    if not text:
        return ""
    items = "".join(f"<li>{_text(path)}: {'left out' if action == 'exclude' else 'now ' + _text(label)}</li>" for path, action, label in record["paths"])
    kind = "missing" if record.get("validation_edited") else "note"
    flag = ' data-validation-edited="1"' if record.get("validation_edited") else ""
    return f'<div class="{kind} edits"{flag}>{_text(text)}<ul>{items}</ul></div>'


def _headline_tiles(run: Run) -> str:
    tiles = []
    if run.metrics:
        m = run.metrics
        tiles += [("accuracy", _pct(m["accuracy"]), f"on {_text(m.get('n', '?'))} validation images"), ("balanced accuracy", _pct(m["balanced_accuracy"]), "mean recall over classes")]
        if "best_epoch" in m:
            tiles.append(("epoch kept", _text(m["best_epoch"]), "best on held-back training pictures"))
    if run.summary and "seconds" in run.summary:
        tiles.append(("time", _duration(run.summary["seconds"]), _text(run.summary.get("device", ""))))
    return "".join(f'<div class="tile"><div class="label">{label}</div><div class="value">{value}</div><div class="hint">{hint}</div></div>' for label, value, hint in tiles)


# ------------------------------------------------------------------------------- curves


@dataclass(frozen=True)
class Series:
    key: str  # the history column; also the markers' data-series attribute
    label: str
    colour: str
    points: list[tuple[float, float]]


def _series(history: list[dict], key: str, label: str, colour: str) -> Series:
    points = [(float(row["epoch"]), float(row[key])) for row in history if isinstance(row.get(key), (int, float)) and math.isfinite(row[key])]
    return Series(key, label, colour, points)


def _curves_section(run: Run) -> str:
    if not run.history:
        why = run.problems.get("history", "history.jsonl holds no completed epoch")
        return _section("curves", "Training curves", _note(f"Training curves are unavailable: {_text(why)}.", "missing"))
    best = (run.metrics or {}).get("best_epoch") or (run.summary or {}).get("best_epoch")
    h = run.history
    loss = [_series(h, "train_loss", "training", TRAIN_COLOUR), _series(h, "val_loss", "validation", VAL_COLOUR)]
    acc = [_series(h, "train_acc", "training", TRAIN_COLOUR), _series(h, "val_acc", "validation", VAL_COLOUR)]
    loss_top = max((y for s in loss for _, y in s.points), default=1.0)
    charts = (
        line_chart("Loss", loss, 0.0, _nice_ceiling(loss_top), lambda v: f"{v:.3g}", best),
        line_chart("Accuracy", acc, 0.0, 1.0, lambda v: f"{100 * v:.0f}%", best),
    )
    note = _note("Training figures are measured on augmented images while the model changes; validation figures on the held-out images after each epoch. Validation loss rising while training loss falls means overfitting.")
    return _section("curves", "Training curves", f'<div class="charts">{"".join(charts)}</div>\n{note}\n{_history_table(h)}')


def _calibration_section(run: Run) -> str:
    """The reliability diagram before and after temperature scaling, its ECE, and the "not sure" threshold."""
    from tlstudio.core.engine.calibration import read_calibration, sentence

    try:
        found = read_calibration(run.summary)
    except (TypeError, ValueError):
        found = None
    if found is None:
        return _section("calibration", "Confidence", _note("This run has no calibration: it was trained by an older tlstudio.", "missing"))
    chosen = found.chosen
    rows = [
        ("temperature", f"{found.temperature:.3f}, fitted on the {found.pictures} pictures of the {found.fitted_on}"),
        (f"validation ECE ({found.bins} bins)", f"{found.val_ece_before:.4f} before, {found.val_ece_after:.4f} after"),
        ("validation log-loss", f"{found.val_nll_before:.4f} before, {found.val_nll_after:.4f} after"),
        ("'not sure' below", f"{found.threshold:.2f}" + (f": answered {_pct(chosen.answered)} at {_pct(chosen.accuracy)} accuracy" if found.coverage else "")),
    ]
    words = _note(_text(sentence(chosen)) + " (measured on the pictures the temperature was fitted on, not the validation ones)") if found.coverage else ""
    body = f'<div class="charts">{reliability_chart(found)}</div>\n{_key_values(rows)}\n{words}'
    return _section("calibration", "Confidence", body)


def reliability_chart(found) -> str:
    """An SVG reliability diagram: accuracy against confidence per bin, before and after calibration (``data-series``)."""
    size, margin = 270, 40
    plot = size - 2 * margin

    def sx(v: float) -> float:
        return margin + v * plot

    def sy(v: float) -> float:
        return margin + (1 - v) * plot

    out = [f'<svg class="chart" viewBox="0 0 {size + 150} {size}" width="{size + 150}" height="{size}" role="img" aria-label="Reliability diagram">']
    out.append(f'<text x="{margin}" y="18" class="title">Reliability (validation)</text>')
    out.append(f'<rect x="{margin}" y="{margin}" width="{plot}" height="{plot}" class="frame"/>')
    out.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" class="grid"/>')
    for v in (0.0, 0.5, 1.0):
        out.append(f'<text x="{sx(v):.1f}" y="{size - margin + 16}" class="tick" text-anchor="middle">{v:g}</text>')
        out.append(f'<text x="{margin - 6}" y="{sy(v) + 4:.1f}" class="tick" text-anchor="end">{v:g}</text>')
    out.append(f'<text x="{margin + plot / 2}" y="{size - 6}" class="tick" text-anchor="middle">confidence</text>')
    for i, (key, bins, colour, label) in enumerate((
        ("before", found.reliability_before, TRAIN_COLOUR, f"before, ECE {found.val_ece_before:.3f}"),
        ("after", found.reliability_after, VAL_COLOUR, f"after, ECE {found.val_ece_after:.3f}"),
    )):
        used = [b for b in bins if b.count]
        out.append(f'<polyline points="{" ".join(f"{sx(b.confidence):.1f},{sy(b.accuracy):.1f}" for b in used)}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for b in used:
            out.append(f'<circle data-series="{key}" cx="{sx(b.confidence):.1f}" cy="{sy(b.accuracy):.1f}" r="3" fill="{colour}"><title>{b.count} pictures: confidence {b.confidence:.3f}, accuracy {b.accuracy:.3f}</title></circle>')
        y = margin + 14 + 18 * i
        out.append(f'<line x1="{size}" x2="{size + 18}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" stroke-width="3"/><text x="{size + 22}" y="{y}" class="tick">{_text(label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _nice_step(span: float, target: int = 5) -> float:
    raw = max(span, 1e-12) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _nice_ceiling(value: float) -> float:
    if value <= 0:
        return 1.0
    step = _nice_step(value)
    return math.ceil(value / step) * step


def _epoch_ticks(first: int, last: int, most: int = 10) -> list[int]:
    step = max(1, math.ceil((last - first + 1) / most))
    return list(range(first, last + 1, step))


def line_chart(title: str, series: Sequence[Series], y_min: float, y_max: float, y_format: Callable[[float], str], best_epoch: Optional[int] = None) -> str:
    """An SVG chart of per-epoch values: one polyline and one marker (``data-series``) per point."""
    width, height, left, right, top, bottom = 460, 270, 56, 14, 34, 40
    epochs = [x for s in series for x, _ in s.points] or [1.0]
    x_lo, x_hi = min(epochs), max(epochs)
    x_span = (x_hi - x_lo) or 1.0
    y_span = (y_max - y_min) or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (plot_w / 2 if x_hi == x_lo else (x - x_lo) / x_span * plot_w)

    def sy(y: float) -> float:
        return top + plot_h - (min(max(y, y_min), y_max) - y_min) / y_span * plot_h

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{_text(title)} per epoch">']
    out.append(f'<text x="{left}" y="18" class="title">{_text(title)}</text>')
    step = _nice_step(y_span)
    for i in range(int(round(y_span / step)) + 1):
        value = y_min + i * step
        y = sy(value)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{_text(y_format(value))}</text>')
    for epoch in _epoch_ticks(int(x_lo), int(x_hi)):
        x = sx(epoch)
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" class="tick" text-anchor="middle">{epoch}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" class="tick" text-anchor="middle">epoch</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="frame"/>')
    if best_epoch is not None and x_lo <= best_epoch <= x_hi:
        x = sx(best_epoch)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" class="best"/>')
        near_right = x > left + 0.85 * plot_w
        out.append(f'<text x="{x - 3 if near_right else x + 3:.1f}" y="{top - 4}" class="tick" text-anchor="{"end" if near_right else "start"}">best</text>')
    radius = 3.0 if len(epochs) <= 120 else 1.5
    for s in series:
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{s.colour}" stroke-width="2"/>')
        for x, y in s.points:
            out.append(f'<circle data-series="{s.key}" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="{radius}" fill="{s.colour}"><title>{_text(s.label)}, epoch {x:g}: {_text(y_format(y))}</title></circle>')
    for i, s in enumerate(series):
        x = left + 110 + i * 100
        out.append(f'<line x1="{x}" x2="{x + 18}" y1="14" y2="14" stroke="{s.colour}" stroke-width="3"/><text x="{x + 22}" y="18" class="tick">{_text(s.label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _history_table(history: list[dict]) -> str:
    columns = [("epoch", "epoch", str), ("train_loss", "training loss", "{:.4f}".format), ("train_acc", "training accuracy", _pct), ("val_loss", "validation loss", "{:.4f}".format), ("val_acc", "validation accuracy", _pct), ("lr", "learning rate", "{:.2e}".format), ("seconds", "seconds", "{:.1f}".format), ("images_per_s", "images/s", "{:.0f}".format)]
    columns = [c for c in columns if any(c[0] in row for row in history)]
    head = "".join(f"<th>{label}</th>" for _, label, _ in columns)

    def cell(row: dict, key: str, fmt) -> str:
        value = row.get(key)
        return _text(fmt(value)) if isinstance(value, (int, float)) else "—"

    body = "".join("<tr>" + "".join(f"<td>{cell(row, key, fmt)}</td>" for key, _, fmt in columns) + "</tr>" for row in history)
    return f'<details><summary>Every epoch ({len(history)})</summary><table class="num"><tr>{head}</tr>{body}</table></details>'


# ------------------------------------------------------------------------------- evaluation


def _evaluation_section(metrics: Optional[dict], classes: list[str], anchor: str, title: str, problem: Optional[str]) -> str:
    if not metrics:
        return _section(anchor, title, _note(f"The evaluation is unavailable: {_text(problem or 'metrics.json is missing')}.", "missing"))
    names = list(metrics.get("classes", classes))
    lead = _note(
        f"Accuracy {_pct(metrics['accuracy'])} and balanced accuracy {_pct(metrics['balanced_accuracy'])} on {_text(metrics.get('n', '?'))} images"
        + (f", with the weights of epoch {_text(metrics['best_epoch'])} (chosen on training pictures held back for it)." if "best_epoch" in metrics else ".")
    )
    matrix = confusion_table(metrics["confusion_matrix"], names, anchor)
    explain = _note("Rows are the true class, columns the predicted class. Each cell shows the count and its share of the row; the diagonal is correct.")
    return _section(anchor, title, "\n".join((lead, "<h3>Confusion matrix</h3>", matrix, explain, "<h3>Per class</h3>", per_class_table(metrics, names))))


def _cell_colour(fraction: float, correct: bool) -> tuple[str, str]:
    """Background and text colour: blue for the diagonal, red for confusions, stronger for a larger share."""
    base = (31, 111, 180) if correct else (200, 40, 40)
    strength = 0.85 * fraction
    rgb = tuple(round(255 + (c - 255) * strength) for c in base)
    return f"rgb{rgb}", "#fff" if strength > 0.5 else "#111"


def confusion_table(matrix: list[list[int]], classes: list[str], key: str) -> str:
    """The confusion matrix as a coloured table; each count is in ``data-true``/``data-pred`` cells."""
    head = "".join(f'<th class="col">{_text(c)}</th>' for c in classes)
    rows = []
    for i, (name, row) in enumerate(zip(classes, matrix)):
        total = sum(row)
        cells = []
        for j, count in enumerate(row):
            fraction = count / total if total else 0.0
            background, colour = _cell_colour(fraction, i == j)
            share = _pct(fraction) if total else "—"
            cells.append(f'<td class="cm" data-matrix="{key}" data-true="{i}" data-pred="{j}" style="background:{background};color:{colour}"><span class="count">{count}</span><span class="share">{share}</span></td>')
        rows.append(f'<tr><th class="row">{_text(name)}</th>{"".join(cells)}<td class="total">{total}</td></tr>')
    predicted = [sum(col) for col in zip(*matrix)] if matrix else []
    foot = "".join(f"<td class=\"total\">{n}</td>" for n in predicted)
    return (
        f'<div class="scroll"><table class="confusion"><tr><th class="corner">true ↓ · predicted →</th>{head}<th class="col">images</th></tr>'
        f'{"".join(rows)}<tr><th class="row">predicted</th>{foot}<td class="total">{sum(predicted)}</td></tr></table></div>'
    )


def per_class_table(metrics: dict, classes: list[str]) -> str:
    per_class = metrics.get("per_class", {})
    rows = []
    for name in classes:
        m = per_class.get(name)
        if m is None:
            continue
        weak = ' class="weak"' if m.get("support") and m.get("recall", 1.0) < 0.5 else ""
        rows.append(f"<tr{weak}><th>{_text(name)}</th><td>{_pct(m['precision'])}</td><td>{_pct(m['recall'])}</td><td>{_pct(m['f1'])}</td><td>{_text(m['support'])}</td></tr>")
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>images</th></tr>"
    explain = _note("Precision: of the images predicted as the class, the share that are. Recall: of the images of the class, the share found. Rows with a recall below 50% are marked.")
    return f'<table class="num perclass">{head}{"".join(rows)}</table>\n{explain}'


# ------------------------------------------------------------------------------- worst mistakes


@dataclass(frozen=True)
class Mistake:
    path: str  # relative to the data folder
    label: int
    pred: int
    p_true: float
    p_pred: float

    @property
    def loss(self) -> float:
        return -math.log(max(self.p_true, 1e-12))


def misclassified(predictions: list[dict], split: str = "val") -> list[Mistake]:
    """The wrong predictions of ``split``, worst (highest loss) first."""
    mistakes = [
        Mistake(row["path"], int(row["label"]), int(row["pred"]), float(row["probs"][int(row["label"])]), float(row["probs"][int(row["pred"])]))
        for row in predictions
        if row.get("split") == split and int(row["pred"]) != int(row["label"])
    ]
    return sorted(mistakes, key=lambda m: (-m.loss, m.path))


def thumbnail_data_uri(path: Path, side: int = THUMB_SIDE) -> str:
    """The image at ``path`` shrunk to fit ``side`` x ``side``, as a JPEG data URI."""
    image = open_image(path, min_side=side)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _why_unreadable(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "The file is no longer there (moved, renamed or deleted)."
    if isinstance(exc, ImageRejected):
        return REASON_TEXT.get(exc.reason, exc.reason)
    return f"The file could not be read ({exc})."


def _mistakes_section(run: Run) -> str:
    if run.predictions is None:
        return _section("mistakes", "Worst mistakes", _unavailable(run, "predictions", "The worst mistakes are"))
    mistakes = misclassified(run.predictions)
    if not mistakes:
        return _section("mistakes", "Worst mistakes", _note("Every validation image was classified correctly."))
    shown = mistakes[:MAX_MISTAKES]
    if len(mistakes) == 1:
        what = "The one misclassified validation image"
    elif len(mistakes) > len(shown):
        what = f"The {len(shown)} misclassified validation images (of {len(mistakes)}) the model was most sure about"
    else:
        what = f"The {len(shown)} misclassified validation images, those the model was most sure about first"
    lead = _note(f"{what}. Loss = −log p(true class), higher is worse. A wrong label in the data often shows up here.")
    root = run.data_root
    notes = [lead]
    if root is None:
        notes.append(_note("The data folder is not recorded in this run, so the images cannot be shown.", "missing"))
    elif not root.is_dir():
        notes.append(_note(f"The data folder {_text(root)} is not reachable from here, so the images cannot be shown.", "missing"))
    cards = "".join(_mistake_card(m, root, run.classes) for m in shown)
    return _section("mistakes", "Worst mistakes", "\n".join(notes) + f'\n<div class="grid">{cards}</div>')


def _mistake_card(m: Mistake, root: Optional[Path], classes: list[str]) -> str:
    def name(i: int) -> str:
        return _text(classes[i]) if 0 <= i < len(classes) else f"class {i}"

    if root is None:
        picture = '<div class="placeholder">The data folder is unknown.</div>'
    else:
        try:
            picture = f'<img src="{thumbnail_data_uri(root / m.path)}" alt="{_text(m.path)}">'
        except (ImageRejected, OSError) as exc:
            picture = f'<div class="placeholder">{_text(_why_unreadable(exc))}</div>'
    caption = (
        f"<div>true <b>{name(m.label)}</b> ({_pct(m.p_true)})</div>"
        f'<div>predicted <b class="wrong">{name(m.pred)}</b> ({_pct(m.p_pred)})</div>'
        f"<div>loss {m.loss:.2f}</div>"
        f'<div class="path">{_text(m.path)}</div>'
    )
    return f'<figure class="mistake">{picture}<figcaption>{caption}</figcaption></figure>'


# ------------------------------------------------------------------------------- dataset


def _dataset_section(run: Run) -> str:
    index = run.dataset
    if index is None:
        return _section("dataset", "Dataset", _unavailable(run, "dataset", "The dataset summary is"))
    if index.split_source == "folders":
        source = "as given by the folder's own train/val sub-folders"
    else:
        source = f"drawn per class with seed {index.seed} ({_pct(index.val_split)} validation" + (f", {_pct(index.test_split)} test)" if index.test_split else ")")
    lead = _note(f"Data folder {_text(index.root)}: {len(index.samples):,} images in {len(index.classes)} classes. Split {source}.")
    ignored = _note(f"{index.ignored:,} hidden, system or non-image items were passed over on purpose.") if index.ignored else ""
    return _section("dataset", "Dataset", "\n".join(p for p in (lead, _counts_table(index), ignored, _warnings_block(index), _skipped_block(index)) if p))


def _counts_table(index: DatasetIndex) -> str:
    counts = index.counts()
    splits = [sp for sp in SPLITS if sp != "test" or any(c["test"] for c in counts.values())]
    head = "".join(f"<th>{sp}</th>" for sp in splits)
    rows = "".join(f"<tr><th>{_text(c)}</th>" + "".join(f"<td>{counts[c][sp]:,}</td>" for sp in splits) + f"<td>{sum(counts[c].values()):,}</td></tr>" for c in index.classes)
    totals = [sum(counts[c][sp] for c in index.classes) for sp in splits]
    foot = "".join(f"<td>{t:,}</td>" for t in totals) + f"<td>{sum(totals):,}</td>"
    return f'<table class="num"><tr><th>class</th>{head}<th>total</th></tr>{rows}<tr class="sum"><th>total</th>{foot}</tr></table>'


def _path_list(paths: Sequence[str], details: Sequence[str] = ()) -> str:
    """A list of at most MAX_LISTED paths, each with its detail (the decoder's words) when given."""
    shown = list(paths)[:MAX_LISTED]
    details = list(details) + [""] * (len(shown) - len(details))
    items = "".join(f'<li><span class="path">{_text(p)}</span>{f" — {_text(d)}" if d else ""}</li>' for p, d in zip(shown, details))
    more = f"<li>… and {len(paths) - len(shown):,} more (all are in dataset.json)</li>" if len(paths) > len(shown) else ""
    return f"<ul>{items}{more}</ul>"


def _warnings_block(index: DatasetIndex) -> str:
    if not index.warnings:
        return "<h3>Scan warnings</h3>" + _note("None.")
    items = "".join(
        f"<li><b>{_text(w.kind)}</b>: {_text(w.text)}" + (f"<details><summary>{len(w.paths):,} files</summary>{_path_list(w.paths)}</details>" if w.paths else "") + "</li>"
        for w in index.warnings
    )
    return f"<h3>Scan warnings ({len(index.warnings)})</h3><ul>{items}</ul>"


def _skipped_block(index: DatasetIndex) -> str:
    if not index.skipped:
        return "<h3>Skipped files</h3>" + _note("None: every image file could be used.")
    by_reason: dict[str, list] = {}
    for s in index.skipped:
        by_reason.setdefault(s.reason, []).append(s)
    groups = "".join(
        f"<details open><summary>{_text(REASON_TEXT.get(reason, reason))} ({len(files):,})</summary>"
        f"{_path_list([s.path for s in files], [s.detail for s in files])}</details>"
        for reason, files in sorted(by_reason.items(), key=lambda item: -len(item[1]))
    )
    return f"<h3>Skipped files ({len(index.skipped):,}), left out of training</h3>{groups}"


# ------------------------------------------------------------------------------- timing, settings


def _timing_section(run: Run) -> str:
    rows: list[tuple[str, object]] = []
    s = run.summary or {}
    for key, label in (("device", "device"), ("precision", "precision"), ("image_size", "image size (px)"), ("epochs", "epochs"), ("best_epoch", "best epoch"), ("feature_cache", "cached features (frozen backbone)"), ("prefix_cache", "cached frozen stages (partial fine-tune)")):
        if key in s:
            rows.append((label, s[key]))
    if "trainable_params" in s and "total_params" in s:
        share = s["trainable_params"] / s["total_params"] if s["total_params"] else 0.0
        rows.append(("trained parameters", f"{s['trainable_params']:,} of {s['total_params']:,} ({_pct(share)})"))
    if s.get("frozen_stages"):
        rows.append(("frozen stages", s["frozen_stages"]))
    if "seconds" in s:
        rows.append(("total time", _duration(s["seconds"])))
    if run.history:
        rows.append(("time in epochs", _duration(sum(float(r.get("seconds", 0.0)) for r in run.history))))
        rates = [float(r["images_per_s"]) for r in run.history if isinstance(r.get("images_per_s"), (int, float))]
        if rates:
            rows.append(("training speed", f"{sum(rates) / len(rates):,.0f} images/s (mean over epochs)"))
    rows.append(("exported model", _export_text(run)))
    body = _key_values(rows)
    if run.summary is None:
        body = _unavailable(run, "summary", "Timing and device are") + "\n" + body
    return _section("timing", "Timing, device and export", body)


def _export_text(run: Run) -> str:
    export = (run.summary or {}).get("export")
    if isinstance(export, dict):
        verdict = "verified" if export.get("verified") else "NOT verified"
        agreement = export.get("agreement")
        share = f": a fresh process agreed on {_pct(agreement)} of {export.get('images', '?')} held images" if isinstance(agreement, (int, float)) else ""
        return f"{Path(str(export.get('path', 'model.pt'))).name}, {verdict}{share}"
    if run.config and run.config.get("export") is False:
        return "not exported (export was turned off)"
    return "not exported"


def _config_section(run: Run) -> str:
    if run.config is None:
        return _section("config", "Settings", _unavailable(run, "config", "The settings are"))
    return _section("config", "Settings", _key_values(list(run.config.items())))


_CSS = """
:root{--ink:#1b1f24;--muted:#5b6570;--line:#d8dde3;--bg:#fff;--soft:#f4f6f8;--bad:#c62828}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1120px;padding:24px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--ink);background:var(--bg)}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}h3{font-size:15px;margin:18px 0 6px}
.sub,.note,footer,.hint{color:var(--muted)}.lead{font-size:15px}
nav a{color:#1f6fb4;text-decoration:none}
.missing{background:#fff4e5;border-left:4px solid #f0a020;padding:8px 12px;margin:8px 0}
.missing ul{margin:4px 0 0;padding-left:20px}
.tiles{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.tile{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:160px;background:var(--soft)}
.tile .label{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}.tile .value{font-size:24px;font-weight:600}.tile .hint{font-size:12px;max-width:260px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
svg.chart{max-width:100%;height:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
svg .title{font-weight:600;font-size:14px;fill:var(--ink)}svg .tick{font-size:11px;fill:var(--muted)}
svg .grid{stroke:#eceff2}svg .frame{fill:none;stroke:var(--line)}svg .best{stroke:#888;stroke-dasharray:4 3}
table{border-collapse:collapse;margin:6px 0}th,td{border:1px solid var(--line);padding:4px 8px;vertical-align:top}
th{background:var(--soft);text-align:left;font-weight:600}
table.num td{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{width:240px}
tr.weak th,tr.weak td{background:#fdecea}tr.sum td,tr.sum th{font-weight:600}
.scroll{overflow-x:auto}
table.confusion td.cm{text-align:center;min-width:64px}table.confusion .count{display:block;font-size:15px;font-weight:600}
table.confusion .share{display:block;font-size:11px;opacity:.85}table.confusion td.total{text-align:center;color:var(--muted)}
table.confusion th.col{max-width:120px;word-break:break-word;font-size:12px}table.confusion th.corner{font-size:11px;color:var(--muted)}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
figure.mistake{margin:0;border:1px solid var(--line);border-radius:6px;padding:6px;font-size:12px;break-inside:avoid}
figure.mistake img{display:block;margin:0 auto 4px;width:100%;max-width:128px;height:auto}
.placeholder{height:110px;display:flex;align-items:center;justify-content:center;text-align:center;padding:6px;background:var(--soft);color:var(--muted);font-size:11px;margin-bottom:4px}
.wrong{color:var(--bad)}.path{color:var(--muted);word-break:break-all;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11px}
details{margin:4px 0}summary{cursor:pointer}
footer{margin-top:36px;border-top:1px solid var(--line);padding-top:8px;font-size:12px}
@media print{body{padding:0}details{display:block}section{break-inside:avoid-page}}
"""
