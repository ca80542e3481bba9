"""Run a verifying child process that can be stopped, paused and followed, picture by picture.

The export checks (TorchScript, ONNX) run the exported file in a fresh Python process. That takes
from seconds to minutes on a CPU, so the parent must not sit in ``subprocess.run``: a Stop (or the
window closing) kills the child at once, a Pause holds it (POSIX: SIGSTOP, and the held time does
not count against the timeout), and each picture the child has checked becomes a progress count.
The child reports a picture by writing ``PROGRESS_MARK <done>`` on its stderr.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

from tlstudio.core.events import Cancelled, StopToken

PROGRESS_MARK = "tlstudio-progress"
POLL_S = 0.1

# The line a child's loop writes after each picture (code that runs inside the child).
CHILD_PROGRESS_LINE = f'print("{PROGRESS_MARK}", len(probs), file=sys.stderr, flush=True)'


@dataclass(frozen=True)
class ChildOutput:
    returncode: int
    stdout: str
    stderr: str  # without the progress lines


def _read_lines(stream, sink: list[str], done: list[int]) -> None:
    """Collect ``stream``'s lines in ``sink``; a progress line only updates ``done[0]`` (read by the polling thread)."""
    for line in stream:
        head, _, count = line.strip().partition(" ")
        if head == PROGRESS_MARK and count.isdigit():
            done[0] = int(count)
        else:
            sink.append(line)


class _Hold:
    """Holds the child while the token is paused (POSIX), and counts the held seconds."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.since, self.seconds = proc, None, 0.0
        self.can_hold = hasattr(signal, "SIGSTOP")

    def follow(self, paused: bool) -> None:
        if not self.can_hold or paused == (self.since is not None):
            return
        if paused:
            self.proc.send_signal(signal.SIGSTOP)
            self.since = time.monotonic()
        else:
            self.proc.send_signal(signal.SIGCONT)
            self.seconds += time.monotonic() - self.since
            self.since = None


def run_followed(
    command: list[str], timeout: float, stop: Optional[StopToken] = None, on_progress: Callable[[int], None] = lambda _done: None
) -> ChildOutput:
    """Run ``command`` to its end; raise Cancelled (the child killed) on a stop, TimeoutExpired past ``timeout`` running seconds.

    ``on_progress`` is called on this thread, with the count of pictures the child has reported, each time it grows."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out: list[str] = []
    err: list[str] = []
    done, shown = [0], 0
    readers = [
        threading.Thread(target=_read_lines, args=(proc.stdout, out, [0]), daemon=True),
        threading.Thread(target=_read_lines, args=(proc.stderr, err, done), daemon=True),
    ]
    for reader in readers:
        reader.start()
    hold, started = _Hold(proc), time.monotonic()
    try:
        while proc.poll() is None:
            if stop is not None and stop.stopped:
                raise Cancelled()
            hold.follow(stop is not None and stop.paused)
            if done[0] > shown:
                shown = done[0]
                on_progress(shown)
            if time.monotonic() - started - hold.seconds > timeout and hold.since is None:
                raise subprocess.TimeoutExpired(command, timeout)
            try:
                proc.wait(POLL_S)
            except subprocess.TimeoutExpired:
                pass
    finally:
        if proc.poll() is None:
            proc.kill()  # a stop, a timeout or an error here: the child never outlives the check
            proc.wait()
        for reader in readers:
            reader.join()
    if done[0] > shown:
        on_progress(done[0])
    return ChildOutput(proc.returncode, "".join(out), "".join(err))
