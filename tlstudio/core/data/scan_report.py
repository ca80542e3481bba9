"""The scan report in words: what was found, what was left out and why, what to look at.

Plain text for a terminal, a log or an e-mail to a colleague; the CLI prints it and the GUI
copies it. The decoder's own words for each skipped file are in the JSON index, not here. Every
name from the disk is shown through ``printable``: no character in it can hide or reorder the text.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict

from tlstudio.core.data.index import REASON_TEXT, SAME_FILE, SPLITS, TOO_MANY_PIXELS, DatasetIndex, Skipped
from tlstudio.core.names import printable


def format_report(index: DatasetIndex) -> str:
    sections = [
        _heading(index),
        _count_table(index),
        _skipped(index.skipped),
        _ignored(index.ignored),
        _warnings(index),
        f"Scanned in {index.seconds:.1f} s ({index.files_per_s:.0f} files/s).",
    ]
    return "\n\n".join(sections) + "\n"


def _heading(index: DatasetIndex) -> str:
    n = len(index.samples)
    return "\n".join(
        (
            f"Data folder: {printable(index.root)}",
            f"{n} image{'' if n == 1 else 's'} in {len(index.classes)} classes.",
            f"Split: {_split_source(index)}",
        )
    )


def _split_source(index: DatasetIndex) -> str:
    if index.split_source == "folders":
        folders = "train/val/test" if index.split("test") else "train/val"
        return f"as given by the folder's own {folders} sub-folders."
    shares = [("train", 1.0 - index.val_split - index.test_split), ("val", index.val_split), ("test", index.test_split)]
    parts = ", ".join(f"{_percent(share)} {name}" for name, share in shares if share > 0)
    return f"drawn per class with seed {index.seed}: {parts}."


def _percent(fraction: float) -> str:
    return f"{round(100 * fraction, 1):g}%"


def _count_table(index: DatasetIndex) -> str:
    counts = index.counts()
    splits = [sp for sp in SPLITS if sp != "test" or index.test_split > 0 or any(c["test"] for c in counts.values())]
    header = ["class", *splits, "total"]
    rows = [[printable(name), *(str(counts[name][sp]) for sp in splits), str(sum(counts[name].values()))] for name in index.classes]
    totals = [sum(counts[name][sp] for name in index.classes) for sp in splits]
    rows.append(["total", *(str(t) for t in totals), str(sum(totals))])
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0] + " " * (widths[0] - _width(cells[0]))
        rest = (" " * (w - len(c)) + c for c, w in zip(cells[1:], widths[1:]))
        return "  ".join((first, *rest)).rstrip()

    return "\n".join(line(cells) for cells in [header, *rows])


def _width(text: str) -> int:
    """Columns a terminal gives ``text``: wide East Asian characters take two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _skipped(skipped: list[Skipped]) -> str:
    if not skipped:
        return "Skipped files: none."
    by_reason: dict[str, list[str]] = defaultdict(list)
    for s in skipped:
        by_reason[s.reason].append(printable(s.path) + (f" ({printable(s.detail)})" if s.reason in (SAME_FILE, TOO_MANY_PIXELS) and s.detail else ""))
    order = [r for r in REASON_TEXT if r in by_reason] + sorted(r for r in by_reason if r not in REASON_TEXT)
    lines = [f"Skipped files ({len(skipped)}), left out of training:"]
    for reason in order:
        lines.append(f"  {REASON_TEXT.get(reason, reason)}")
        lines.extend(f"    {path}" for path in sorted(by_reason[reason]))
    return "\n".join(lines)


def _ignored(ignored: int) -> str:
    if not ignored:
        return "Ignored on purpose: none."
    return f"Ignored on purpose: {ignored} hidden, system or non-image item{'' if ignored == 1 else 's'}."


def _warnings(index: DatasetIndex) -> str:
    if not index.warnings:
        return "Warnings: none."
    lines = [f"Warnings ({len(index.warnings)}):"]
    for w in index.warnings:
        lines.append(f"  {w.kind}: {printable(w.text)}")
        lines.extend(f"    {printable(path)}" for path in w.paths)
    return "\n".join(lines)
