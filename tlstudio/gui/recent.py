"""Recent projects and recent image folders, kept in QSettings (with the window layout, the only things kept there)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu, QWidget

MAX_RECENT = 8


class RecentList:
    def __init__(self, settings: QSettings, key: str, limit: int = MAX_RECENT):
        self.settings, self.key, self.limit = settings, key, limit

    def items(self) -> list[str]:
        value = self.settings.value(self.key, [])
        if isinstance(value, str):  # QSettings returns a lone string for a one-item list in INI files
            value = [value]
        return [str(v) for v in (value or []) if v]

    def existing(self) -> list[str]:
        return [p for p in self.items() if Path(p).exists()]

    def add(self, path: str | Path) -> None:
        path = str(path)
        items = [path] + [p for p in self.items() if p != path]
        self.settings.setValue(self.key, items[: self.limit])

    def remove(self, path: str | Path) -> None:
        self.settings.setValue(self.key, [p for p in self.items() if p != str(path)])

    def clear(self) -> None:
        self.settings.setValue(self.key, [])


class RecentMenu(QMenu):
    """A submenu that lists a RecentList's existing paths each time it opens."""

    def __init__(self, title: str, recent: RecentList, on_choose: Callable[[str], None], parent: Optional[QWidget] = None):
        super().__init__(title, parent)
        self.recent, self.on_choose = recent, on_choose
        self.aboutToShow.connect(self.fill)

    def fill(self) -> None:
        self.clear()
        items = self.recent.existing()
        for path in items:
            action = self.addAction(Path(path).name)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _checked=False, p=path: self.on_choose(p))
        if not items:
            self.addAction("Nothing yet").setEnabled(False)
        else:
            self.addSeparator()
            self.addAction("Clear List", self.recent.clear)
