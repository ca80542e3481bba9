"""A terminal listener for core events: one live status line on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO

from tlstudio.core.events import EpochEnded, Failed, Finished, Message, PhaseStarted, Progress, StepEnded


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class TerminalProgress:
    def __init__(self, stream: Optional[TextIO] = None):
        self.stream = stream if stream is not None else sys.stderr  # resolved now: sys.stderr may be swapped (tests)
        self.live = self.stream.isatty()
        self.phase = ""
        self.epoch_text = ""
        self._last_draw = 0.0

    def __call__(self, event) -> None:
        if isinstance(event, PhaseStarted):
            self.phase = event.name
            self._line(f"{event.name}" + (f" ({event.total})" if event.total else ""), final=True)
        elif isinstance(event, Progress):
            if self.live and (time.monotonic() - self._last_draw > 0.1 or event.done == event.total):
                pct = 100 * event.done / event.total if event.total else 0
                width = 24
                filled = int(width * pct / 100)
                bar = "#" * filled + "-" * (width - filled)
                self._line(f"{self.phase:<17} [{bar}] {pct:5.1f}% {event.detail} {self.epoch_text}")
        elif isinstance(event, StepEnded):
            self.epoch_text = f"loss {event.loss:.3f} {event.images_per_s:.0f} img/s"
        elif isinstance(event, EpochEnded):
            best = " *kept" if event.is_best else ""  # the best so far on the held-back training pictures
            self._line(
                f"epoch {event.epoch:>3}/{event.epochs}  loss {event.train_loss:.4f}  acc {event.train_acc:.3f}  "
                f"val loss {event.val_loss:.4f}  val acc {event.val_acc:.3f}  {event.images_per_s:.0f} img/s  "
                f"{event.seconds:.1f}s  ETA {_duration(event.eta_s)}{best}",
                final=True,
            )
        elif isinstance(event, Message):
            self._line(("warning: " if event.level == "warning" else "") + event.text, final=True)
        elif isinstance(event, Failed) and self.live:
            self._line("")  # the command prints the error itself, once
        elif isinstance(event, Finished) and event.cancelled:
            self._line("stopped: the last completed epoch's checkpoint is kept ('tlstudio train --resume RUN_DIR' continues it, 'tlstudio evaluate RUN_DIR' measures it)", final=True)

    def _line(self, text: str, final: bool = False) -> None:
        self._last_draw = time.monotonic()
        if self.live:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()
