"""A thumbnail grid per class, loaded lazily off the GUI thread.

Only items a view actually paints ask for their picture (``DecorationRole``), so a hidden
class tab or a scrolled-away row never costs a decode. Each picture is decoded on a
``QThreadPool`` by the core's safe loader and handed back as a ``QImage`` (safe to build off
the GUI thread; a ``QPixmap`` is not, so that conversion happens on arrival).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QRunnable, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import QListView, QTabWidget, QWidget

THUMB = 88


class ThumbnailLoader(QObject):
    """Decodes thumbnails on its own small pool; ``ready(path, image)`` arrives on the GUI thread."""

    ready = Signal(str, QImage)

    def __init__(self, size: int = THUMB, threads: int = 1, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.size = size
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)  # one decoder is plenty for a grid and leaves training its cores
        self._requested: set[str] = set()
        self._closed = False

    def request(self, path: str) -> None:
        if self._closed or path in self._requested:
            return
        self._requested.add(path)
        self.pool.start(_Decode(self, path, self.size))

    def forget(self) -> None:
        """Drop queued requests (a new scan replaces the grid)."""
        self.pool.clear()
        self._requested.clear()

    def shutdown(self) -> None:
        """Stop taking requests and wait for the decode in progress (a few milliseconds)."""
        self._closed = True
        self.pool.clear()
        self.pool.waitForDone()


class _Decode(QRunnable):
    def __init__(self, loader: ThumbnailLoader, path: str, size: int):
        super().__init__()
        self.loader, self.path, self.size = loader, path, size

    def run(self) -> None:  # on a pool thread: numpy and QImage only
        from tlstudio.core.images import load_rgb_array

        try:
            rgb = load_rgb_array(self.path, short_side=self.size)
            image = to_qimage(centre_square(rgb))
        except Exception:  # noqa: BLE001 - a broken file shows as an empty tile; the scan report explains it
            image = QImage()
        if not self.loader._closed:
            self.loader.ready.emit(self.path, image)


def centre_square(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return rgb[top : top + s, left : left + s]


def to_qimage(rgb: np.ndarray) -> QImage:
    """A QImage that owns its pixels (``copy()``), so the numpy buffer may go away."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ThumbnailModel(QAbstractListModel):
    def __init__(self, paths: list[str], loader: ThumbnailLoader, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.paths = paths
        self.loader = loader
        self._row = {p: i for i, p in enumerate(paths)}
        self._pixmaps: dict[int, QPixmap] = {}
        self._placeholder = QPixmap(loader.size, loader.size)
        self._placeholder.fill(QColor(225, 225, 225))
        loader.ready.connect(self._on_ready)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own signature
        return 0 if parent.isValid() else len(self.paths)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row = index.row()
        if role == Qt.ItemDataRole.DecorationRole:
            pixmap = self._pixmaps.get(row)
            if pixmap is None:
                self.loader.request(self.paths[row])  # painted for the first time: decode it now
                return self._placeholder
            return pixmap
        if role == Qt.ItemDataRole.ToolTipRole:
            return Path(self.paths[row]).name
        return None

    def loaded(self) -> int:
        return len(self._pixmaps)

    @Slot(str, QImage)
    def _on_ready(self, path: str, image: QImage) -> None:
        row = self._row.get(path)
        if row is None:
            return
        if image.isNull():
            image = QImage(self.loader.size, self.loader.size, QImage.Format.Format_RGB888)
            image.fill(QColor(250, 210, 210))
        self._pixmaps[row] = QPixmap.fromImage(image)
        idx = self.index(row)
        self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class ClassGallery(QTabWidget):
    """One tab per class, each a grid of that class's images (training and validation together)."""

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.loader = ThumbnailLoader(parent=self)
        self.models: dict[str, ThumbnailModel] = {}
        self.setDocumentMode(True)

    def show_classes(self, by_class: dict[str, list[str]]) -> None:
        """``{class name: [absolute image paths]}``; replaces what was shown."""
        self.loader.forget()
        self.clear()
        for model in self.models.values():
            model.deleteLater()
        self.models = {}
        for name, paths in by_class.items():
            model = ThumbnailModel(paths, self.loader, self)
            view = QListView()
            view.setViewMode(QListView.ViewMode.IconMode)
            view.setIconSize(QSize(self.loader.size, self.loader.size))
            view.setGridSize(QSize(self.loader.size + 8, self.loader.size + 8))
            view.setUniformItemSizes(True)
            view.setResizeMode(QListView.ResizeMode.Adjust)
            view.setMovement(QListView.Movement.Static)
            view.setSelectionMode(QListView.SelectionMode.NoSelection)
            view.setModel(model)
            self.models[name] = model
            self.addTab(view, f"{name} ({len(paths)})")

    def shutdown(self) -> None:
        self.loader.shutdown()
