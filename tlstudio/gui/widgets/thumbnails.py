"""A thumbnail grid per class, loaded lazily off the GUI thread.

Only items a view actually paints ask for their picture (``DecorationRole``), so a hidden
class tab or a scrolled-away row never costs a decode. Each picture is decoded by the core's
safe loader on a plain Python thread pool and handed back as a numpy array; the ``QImage``
and ``QPixmap`` are made on arrival, on the GUI thread, so no Qt object is ever created or
dropped on a worker thread.

``FileActions`` gives any view of pictures "Open" and "Show in Folder" (a context menu; double-click
opens), through the desktop's own programs.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPoint, QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QColor, QDesktopServices, QImage, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView, QMenu, QTabWidget, QWidget

from tlstudio.core.names import printable

THUMB = 88


class ThumbnailLoader(QObject):
    """Decodes thumbnails on its own small pool; ``ready(path, rgb or None)`` arrives on the GUI thread."""

    ready = Signal(str, object)  # the path and its centre square as an RGB uint8 array, None when it cannot be read

    def __init__(self, size: int = THUMB, threads: int = 1, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.size = size
        # One decoder is plenty for a grid and leaves training its cores.
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="thumbnails")
        self._pending: set[Future] = set()
        self._requested: set[str] = set()
        self._closed = False

    def request(self, path: str) -> None:
        if self._closed or path in self._requested:
            return
        self._requested.add(path)
        future = self._pool.submit(self._decode, path)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)

    def _decode(self, path: str) -> None:  # on a pool thread: numpy only, then a queued signal
        from tlstudio.core.data.images import load_rgb_array

        try:
            rgb: Optional[np.ndarray] = np.ascontiguousarray(centre_square(load_rgb_array(path, short_side=self.size)))
        except Exception:  # noqa: BLE001 - a broken file shows as an empty tile; the scan report explains it
            rgb = None
        if not self._closed:
            self.ready.emit(path, rgb)

    def forget(self) -> None:
        """Drop queued requests (a new scan replaces the grid)."""
        for future in list(self._pending):
            future.cancel()
        self._requested.clear()

    def settle(self) -> None:
        """Drop queued requests and wait for the decode in progress."""
        self.forget()
        wait(list(self._pending))

    def shutdown(self) -> None:
        """Stop taking requests and wait for the decode in progress (a few milliseconds)."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)


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


PATH_ROLE = Qt.ItemDataRole.UserRole + 7  # an item's absolute file path, for FileActions


class FileActions(QObject):
    """"Open" and "Show in Folder" for the pictures of ``view``: a context menu, and double-click opens.

    An item's file is its ``PATH_ROLE`` data (every ``ThumbnailModel`` gives it). ``opener`` is called
    with the URL; it is an attribute so that tests check the URL without launching a program."""

    def __init__(self, view: QAbstractItemView, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.view = view
        self.opener: Callable[[QUrl], object] = QDesktopServices.openUrl
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(self._on_menu_requested)
        view.doubleClicked.connect(self.open_index)

    @staticmethod
    def path_at(index: QModelIndex) -> str:
        path = index.data(PATH_ROLE) if index.isValid() else None
        return path if isinstance(path, str) else ""

    def open_index(self, index: QModelIndex) -> None:
        path = self.path_at(index)
        if path:
            self.open_file(path)

    def open_file(self, path: str) -> None:
        self.opener(QUrl.fromLocalFile(str(Path(path).absolute())))

    def show_in_folder(self, path: str) -> None:
        self.opener(QUrl.fromLocalFile(str(Path(path).absolute().parent)))

    def menu(self, index: QModelIndex) -> Optional[QMenu]:
        """The context menu for the item at ``index`` (None for no picture); its actions are named "open" and "show_in_folder"."""
        path = self.path_at(index)
        if not path:
            return None
        menu = QMenu(self.view)
        for name, text, slot in (("open", "Open", self.open_file), ("show_in_folder", "Show in Folder", self.show_in_folder)):
            action = QAction(text, menu)
            action.setObjectName(name)
            action.triggered.connect(lambda _checked=False, slot=slot: slot(path))
            menu.addAction(action)
        return menu

    def _on_menu_requested(self, pos: QPoint) -> None:
        menu = self.menu(self.view.indexAt(pos))
        if menu is not None:
            menu.exec(self.view.viewport().mapToGlobal(pos))
            menu.deleteLater()


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
            return printable(Path(self.paths[row]).name)
        if role == PATH_ROLE:
            return self.paths[row]
        return None

    def loaded(self) -> int:
        return len(self._pixmaps)

    @Slot(str, object)
    def _on_ready(self, path: str, rgb: Optional[np.ndarray]) -> None:
        row = self._row.get(path)
        if row is None:
            return
        if rgb is None:
            image = QImage(self.loader.size, self.loader.size, QImage.Format.Format_RGB888)
            image.fill(QColor(250, 210, 210))
        else:
            image = to_qimage(rgb)
        self._pixmaps[row] = QPixmap.fromImage(image)
        idx = self.index(row)
        self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class ClassGallery(QTabWidget):
    """One tab per class, each a grid of that class's images (training and validation together)."""

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.loader = ThumbnailLoader(parent=self)
        self.models: dict[str, ThumbnailModel] = {}
        self.file_actions: dict[str, FileActions] = {}  # per class tab
        self.opener: Callable[[QUrl], object] = QDesktopServices.openUrl  # every tab's Open and Show in Folder go here
        self.setDocumentMode(True)

    def show_classes(self, by_class: dict[str, list[str]]) -> None:
        """``{class name: [absolute image paths]}``; replaces what was shown."""
        self.loader.forget()
        self.clear()
        for model in self.models.values():
            model.deleteLater()
        self.models, self.file_actions = {}, {}
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
            view.setToolTip("Double-click a picture to open it; right-click for Show in Folder.")
            self.models[name] = model
            self.file_actions[name] = actions = FileActions(view, view)
            actions.opener = self._open
            self.addTab(view, f"{printable(name)} ({len(paths)})")

    def _open(self, url: QUrl) -> object:
        return self.opener(url)

    def shutdown(self) -> None:
        self.loader.shutdown()
