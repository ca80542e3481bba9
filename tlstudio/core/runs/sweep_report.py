"""The strategy sweep's report: one self-contained HTML page (no network) with the chart, the table and the recommendation.

The chart is an inline SVG of validation balanced accuracy against training time (a log scale: the members'
times span orders of magnitude). ``table_rows`` is the one table the CLI, the GUI and this page all show.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Optional, Sequence

from tlstudio.core import atomic
from tlstudio.core.runs.sweep import MemberResult, SweepRecord, chart_points, recommendation_sentence

COLUMNS = ("member", "status", "estimated s", "seconds", "selection score", "val accuracy", "val balanced", "test balanced", "run")


def _pct(value: Optional[float]) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _secs(value: Optional[float]) -> str:
    return "" if value is None else f"{value:.1f}"


def table_rows(members: Sequence[MemberResult]) -> list[tuple[str, ...]]:
    """One row of text per member, in COLUMNS order."""
    return [
        (m.title, m.status, _secs(m.estimated_seconds), _secs(m.seconds), _pct(m.selection_score), _pct(m.val_accuracy),
         _pct(m.val_balanced_accuracy), _pct(m.test_balanced_accuracy), m.run_id)
        for m in members
    ]


def chart_svg(record: SweepRecord, width: int = 640, height: int = 360) -> str:
    points = chart_points(record.members)
    if not points:
        return "<p>No member has finished yet: no chart.</p>"
    left, right, top, bottom = 60, 20, 20, 50
    xs = [math.log10(max(p.seconds, 0.1)) for p in points]
    x0, x1 = math.floor(min(xs)), math.ceil(max(xs)) if math.ceil(max(xs)) > math.floor(min(xs)) else math.floor(min(xs)) + 1
    y0 = max(0.0, math.floor(10 * min(p.val_balanced_accuracy for p in points)) / 10 - 0.1)
    y1 = 1.0

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y0) / max(1e-9, y1 - y0) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="accuracy against training time">',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" stroke="#999"/>']
    for e in range(x0, x1 + 1):
        parts.append(f'<text x="{sx(e):.1f}" y="{height - bottom + 18}" text-anchor="middle" font-size="11">{10 ** e:g} s</text>')
    for k in range(6):
        y = y0 + k * (y1 - y0) / 5
        parts.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" text-anchor="end" font-size="11">{100 * y:.0f}%</text>')
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle" font-size="12">training time (log scale)</text>')
    parts.append(f'<text x="14" y="{(top + height - bottom) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 14 {(top + height - bottom) / 2})">validation balanced accuracy</text>')
    chosen = record.recommendation.chosen if record.recommendation else None
    for p, x in zip(points, xs):
        colour = "#d62728" if p.name == chosen else "#1f77b4"
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(p.val_balanced_accuracy):.1f}" r="5" fill="{colour}"><title>{html.escape(p.title)}</title></circle>')
        parts.append(f'<text x="{sx(x) + 7:.1f}" y="{sy(p.val_balanced_accuracy) - 7:.1f}" font-size="11">{html.escape(p.title)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_html(record: SweepRecord) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in table_rows(record.members))
    sentence = html.escape(recommendation_sentence(record.recommendation, record.members))
    stopped = "<p><b>The sweep was stopped</b>: the members after the stopped one did not start.</p>" if record.stopped else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Strategy sweep {html.escape(record.id)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}</style>
</head><body>
<h1>Which way of transferring works best on these pictures?</h1>
<p class="recommendation"><b>{sentence}</b></p>
<p>The recommendation reads only each member's selection score (a frozen head's cross-validated score, a fine-tune's kept epoch
on its held-back training pictures), and prefers the fastest member within {100 * record.tolerance:g} point(s) of the best.
The validation figures below played no part in it, so they stay untouched estimates.</p>
{stopped}
{chart_svg(record)}
<table><tr>{head}</tr>{rows}</table>
</body></html>
"""


def write_report(record: SweepRecord, path: str | Path) -> Path:
    path = Path(path)
    atomic.write_text(path, render_html(record))
    return path
