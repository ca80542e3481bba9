"""What every message a user can cause must be: one readable answer, never a bug report."""

from __future__ import annotations

BUG_MARKS = ("internal error", "Traceback (most recent call last)", "this is a bug in tlstudio", "terminate called")


def assert_readable(text: str) -> None:
    """``text`` (stderr, a dialog, a log) carries no traceback and does not call the user's mistake a bug."""
    for mark in BUG_MARKS:
        assert mark not in text, f"{mark!r} in: {text}"
