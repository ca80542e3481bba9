"""The words for a job's phase, its unit, how far it is and its time left: one wording for the Train step and the status bar."""

from __future__ import annotations

from typing import Optional

from tlstudio.core.eta import PhaseState

PHASE_TEXT = {
    "scanning": "Reading the folder",
    "decoding": "Decoding the pictures once",
    "caching features": "Running the frozen layers once",
    "fitting the head": "Fitting the new head (trying settings on the training pictures)",
    "training": "Training",
    "evaluating": "Checking the model on the validation pictures",
    "exporting": "Exporting and verifying the model file",
    "downloading": "Downloading",
}

# What a phase's done/total counts. A phase not listed counts "steps".
PHASE_UNIT = {
    "scanning": "files",
    "decoding": "pictures",
    "caching features": "pictures",
    "fitting the head": "fits",
    "training": "batches",
    "evaluating": "pictures",
    "exporting": "pictures checked",  # by a fresh process running the exported file
    "downloading": "MB",
}


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def phase_name(name: str) -> str:
    return PHASE_TEXT.get(name, name.capitalize())


def amount(state: PhaseState) -> str:
    """'420 of 1,378 pictures', or '' while the phase's size is unknown."""
    if state.total <= 0:
        return ""
    if state.name == "downloading":  # counted in bytes, read in MB as the Model step shows them
        return f"{min(state.done, state.total) / 1e6:.1f} of {state.total / 1e6:.1f} MB"
    return f"{min(state.done, state.total):,} of {state.total:,} {PHASE_UNIT.get(state.name, 'steps')}"


def time_left(state: PhaseState, paused: bool) -> str:
    """'about 12 s left', 'paused', or '' while there is nothing to estimate from."""
    if paused:
        return "paused"
    if state.seconds_left is None:
        return ""
    return f"about {duration(state.seconds_left)} left"


def phase_line(state: PhaseState, paused: bool) -> str:
    """'Running the frozen layers once: 420 of 1,378 pictures, about 12 s left', or its paused form."""
    if not state.name:
        return "Paused" if paused else "Starting…"
    what, count = phase_name(state.name), amount(state)
    if paused:
        return f"Paused: {what}" + (f", {count} done" if count else "")
    left = time_left(state, paused)
    if not count:
        return f"{what}…"
    return f"{what}: {count}" + (f", {left}" if left else "…")


def status_line(title: str, state: PhaseState, paused: bool, detail: Optional[str] = None) -> str:
    """The status bar's line for a job: its title and its phase line."""
    line = phase_line(state, paused)
    said = paused or not detail or detail == PHASE_UNIT.get(state.name)  # "(fits)" after "3 of 12 fits" says it twice
    extra = "" if said else f" ({detail})"
    if line.startswith(title):  # nor "Training: Training: ..."
        return line + extra
    return f"{title}: {line}{extra}"
