"""What the machine was doing while a benchmark ran: other processes' CPU load and this process's memory (Linux)."""

from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path

_STAT = Path("/proc/stat")
_STATUS = Path("/proc/self/status")


def _busy_seconds() -> float | None:
    """CPU seconds the whole machine spent busy since boot (user, nice, system, irq, softirq, steal), or None."""
    try:
        fields = _STAT.read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class OtherLoad:
    """Share of the machine's CPU capacity used by other processes (and hypervisor steal) since creation.

    On a shared machine another process's work slows every timing here; a figure taken
    while ``share()`` is high is not comparable with one taken while it is low.
    """

    def __init__(self) -> None:
        self.wall, self.busy, self.own = time.perf_counter(), _busy_seconds(), _own_seconds()

    def share(self) -> float | None:
        busy = _busy_seconds()
        if busy is None or self.busy is None:
            return None
        wall = max(1e-9, time.perf_counter() - self.wall)
        others = (busy - self.busy) - (_own_seconds() - self.own)
        return max(0.0, others) / (wall * (os.cpu_count() or 1))

    def text(self) -> str:
        share = self.share()
        return "other load: unknown" if share is None else f"other processes used {share:.0%} of the CPU meanwhile"


# ------------------------------------------------------------------------------------ memory


def status_kib() -> dict[str, int]:
    """The kB fields of /proc/self/status that describe memory (VmRSS, VmHWM, RssAnon, RssFile, RssShmem)."""
    out = {}
    try:
        for line in _STATUS.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to /proc/self/clear_refs); False where refused."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def ru_maxrss_bytes() -> int:
    """This process's lifetime peak RSS (kilobytes on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if os.uname().sysname == "Darwin" else peak * 1024


class RssSampler:
    """Samples /proc/self/status every ``interval`` s on a thread and keeps the peaks of each field (bytes).

    VmHWM (reset at start where the kernel allows) catches peaks between samples for the
    total; RssAnon (heap, numpy arrays, Python objects) versus RssFile (pages of mapped
    files, which the kernel can drop and re-read) is what only sampling can tell apart.
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak: dict[str, int] = {}
        self.start: dict[str, int] = {}
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for key, kib in status_kib().items():
            if kib * 1024 > self.peak.get(key, 0):
                self.peak[key] = kib * 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self.hwm_reset = reset_peak()
        self.start = {k: v * 1024 for k, v in status_kib().items()}
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.end = {k: v * 1024 for k, v in status_kib().items()}

    def peak_total(self) -> int:
        """Peak VmRSS: VmHWM when it was reset at the start, else the sampled peak."""
        return max(self.peak.get("VmHWM", 0) if self.hwm_reset else 0, self.peak.get("VmRSS", 0))
