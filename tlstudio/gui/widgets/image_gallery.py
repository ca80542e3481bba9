"""A captioned grid of pictures from a run's validation results (a confusion-matrix cell, the worst mistakes).

Thumbnails come from ``ThumbnailLoader``: only tiles a view paints ask for their picture, and
the decode happens on the loader's thread pool, never on the GUI thread. Each gallery has its
own loader, so replacing one gallery's pictures never drops another gallery's queued decodes.
Selecting a tile emits ``image_selected(path)``; the Evaluate panel shows where the model looked.
Double-click opens the picture; the context menu has Open and Show in Folder (``file_actions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from PySide6.QtCore import QItemSelectionModel, QModelIndex, QObject, QSize, Qt, Signal
from PySide6.QtWidgets import QLabel, QListView, QStackedWidget, QVBoxLayout, QWidget

from tlstudio.gui.widgets.thumbnails import FileActions, ThumbnailLoader, ThumbnailModel

TILE = 96


@dataclass(frozen=True)
class GalleryItem:
    path: str  # absolute
    caption: str  # under the tile, one or two short lines
    tooltip: str = ""
    loss: Optional[float] = None  # -log p(true class), where the gallery is ordered by it


class GalleryModel(ThumbnailModel):
    """``ThumbnailModel`` (lazy thumbnails) plus a caption and a tooltip per tile."""

    def __init__(self, items: Sequence[GalleryItem], loader: ThumbnailLoader, parent: Optional[QObject] = None):
        super().__init__([it.path for it in items], loader, parent)
        self.items = list(items)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self.items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.caption
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.tooltip or item.path
        if role == Qt.ItemDataRole.UserRole:
            return item.path
        return super().data(index, role)


class ImageGallery(QWidget):
    image_selected = Signal(str)  # absolute path of the tile the user selected

    def __init__(self, empty_text: str = "", parent: Optional[QWidget] = None):
        super().__init__(parent)
        self.loader = ThumbnailLoader(size=TILE, parent=self)
        self.model: Optional[GalleryModel] = None
        self.title = QLabel()
        self.title.setWordWrap(True)
        self.empty = QLabel(empty_text)
        self.empty.setObjectName("hint")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view = QListView()
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setIconSize(QSize(TILE, TILE))
        self.view.setGridSize(QSize(TILE + 36, TILE + 44))
        self.view.setWordWrap(True)
        self.view.setUniformItemSizes(True)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.view.setToolTip("Click a picture to see where the model looked; double-click to open it.")
        self.file_actions = FileActions(self.view, self)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.stack, 1)
        self.show_items([], "", empty_text)

    def show_items(self, items: Sequence[GalleryItem], title: str = "", empty_text: Optional[str] = None) -> None:
        """Replace the tiles. With no items, ``empty_text`` (or the last one) says why."""
        self.loader.forget()
        old = self.model
        old_selection = self.view.selectionModel()
        self.model = GalleryModel(items, self.loader, self)
        self.view.setModel(self.model)
        self.view.selectionModel().currentChanged.connect(self._on_current)
        if old is not None:
            old.deleteLater()
        if old_selection is not None:
            old_selection.deleteLater()  # setModel does not delete the previous selection model
        self.title.setText(title)
        self.title.setVisible(bool(title))
        if empty_text is not None:
            self.empty.setText(empty_text)
        self.stack.setCurrentWidget(self.view if items else self.empty)

    # ------------------------------------------------------------ for the panel and tests
    def paths(self) -> list[str]:
        return list(self.model.paths) if self.model is not None else []

    def items(self) -> list[GalleryItem]:
        return list(self.model.items) if self.model is not None else []

    def count(self) -> int:
        return len(self.paths())

    def loaded(self) -> int:
        """How many thumbnails arrived from the loader."""
        return self.model.loaded() if self.model is not None else 0

    def select(self, row: int) -> None:
        """Select tile ``row`` as a click would."""
        if self.model is None or not 0 <= row < self.model.rowCount():
            return
        index = self.model.index(row)
        self.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def settle(self) -> None:
        """Drop queued thumbnail decodes and wait for the one in progress (the window is closing)."""
        self.loader.settle()

    def shutdown(self) -> None:
        self.loader.shutdown()

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and self.model is not None:
            self.image_selected.emit(self.model.paths[current.row()])
