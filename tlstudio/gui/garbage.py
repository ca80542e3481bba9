"""Python's cyclic garbage collector runs on the GUI thread only.

A collection frees every unreachable cycle at once, on whichever thread happens to
allocate when a threshold is crossed. When that is a worker thread (building a torchvision
model, importing a module) and a cycle holds a Qt wrapper, the Qt object is destroyed on the
wrong thread, and the process dies with a segmentation fault at random. So automatic
collection is switched off for the whole process and this timer on the GUI thread collects
instead, generation by generation as the thresholds say, like CPython itself would.
Reference counting, which frees almost everything, is unaffected.
"""

from __future__ import annotations

import gc
from typing import Optional

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500


class GuiThreadCollector(QObject):
    """Owns the collection for as long as it lives: automatic GC is off, a GUI-thread timer collects."""

    def __init__(self, parent: Optional[QObject] = None, interval_ms: int = INTERVAL_MS):
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        self.collections = 0
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start(interval_ms)

    def collect_due(self) -> None:
        """Collect the oldest generation whose count passed its threshold (it includes the younger ones)."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self.thresholds[generation]:
                gc.collect(generation)
                self.collections += 1
                return


def collect_on_the_gui_thread(app: QObject) -> GuiThreadCollector:
    """Install the collector once per application (parented to it, so it lives as long as the app)."""
    existing = app.findChild(GuiThreadCollector)
    return existing if existing is not None else GuiThreadCollector(app)


def freeze_long_lived_objects() -> None:
    """Move every object alive now out of the cyclic garbage collector's reach (``gc.freeze``).

    A full collection holds the GIL for as long as it takes to walk every tracked object;
    with torch, timm and Qt loaded that is ~400,000 objects and 250-300 ms, long enough to
    freeze the window on the GUI thread. The objects alive before a run
    (modules, widgets, the catalog) live as long as the app anyway; freezing them is cheap and
    keeps later collections short. Cost: a reference cycle that is already garbage now is never freed.
    """
    gc.freeze()
