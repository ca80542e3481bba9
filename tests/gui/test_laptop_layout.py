"""Every step fits a 1024 x 640 laptop screen with a 20-class dataset: nothing clipped, nothing hidden.

One run is trained once for the module (frozen backbone, one epoch) on 20 generated classes with long
names, so the Evaluate step has a 20 x 20 confusion matrix and a 20-row per-class table, and the Data
step has a skipped file whose reason it must show.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QPoint, QRect, Qt  # noqa: E402
from PySide6.QtGui import QFontMetrics, QTextDocument  # noqa: E402
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QComboBox, QLabel, QTabBar, QWidget  # noqa: E402

from tests.gui.conftest import fast  # noqa: E402
from tests.synthetic import colour_image  # noqa: E402
from tlstudio.core.runs import project as pj  # noqa: E402

pytestmark = pytest.mark.gui

SCREEN = (1024, 640)
N_CLASSES = 20
STEPS = range(5)
MIN_CELL = 24


def class_names() -> list[str]:
    """Twenty names, some long enough that no layout could show them whole in a header."""
    names = [f"species {k:02d}" for k in range(N_CLASSES)]
    names[3] = "species 03 with a really long folder name from the microscope"
    names[11] = "Ünïcode_ränge_and_spaces   eleven"
    return names


def make_twenty_classes(root: Path, per_class: int = 8) -> Path:
    rng = np.random.default_rng(3)
    for k, name in enumerate(class_names()):
        r, g, b = colorsys.hsv_to_rgb(k / N_CLASSES, 0.8 if k % 2 else 0.5, 0.9)
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            colour_image(rng, (int(r * 255), int(g * 255), int(b * 255))).save(folder / f"{k}_{i:03d}.jpg", "JPEG")
    (root / class_names()[0] / "broken picture with a long name that will not open.jpg").write_bytes(b"not a picture at all")
    return root


@pytest.fixture(scope="module")
def twenty_class_project(tmp_path_factory) -> Path:
    """A project with one finished 20-class run: a frozen bundled backbone, its head fitted once."""
    from tlstudio.core.engine.trainer import Trainer

    base = tmp_path_factory.mktemp("laptop")
    data = make_twenty_classes(base / "twenty").resolve()
    project = pj.Project.create(base / "Laptop")
    project.set_data(str(data), 0.25, 0.0, 0)
    cfg = project.train_config()
    fast(cfg)
    cfg.epochs, cfg.freeze_depth = 1, "all"
    files = project.new_run(cfg)
    result = Trainer(cfg, files.root, cache_dir=project.cache_dir).run()
    project.finish_run(files.root.name, pj.FINISHED, result.summary)
    project.save()
    return project.root


def fit_to_screen(window, screen: tuple[int, int] = SCREEN) -> None:
    """Size the window so that, frame included, it covers exactly the screen (the laptop's by default)."""
    window.resize(*screen)
    settle()
    frame, inside = window.frameGeometry(), window.geometry()
    window.resize(screen[0] - (frame.width() - inside.width()), screen[1] - (frame.height() - inside.height()))
    settle()


@pytest.fixture
def laptop(qtbot, window, twenty_class_project):
    """The window on a 1024 x 640 screen with the 20-class project open and scanned."""
    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000):
        window.studio.open_project(twenty_class_project)
    fit_to_screen(window)
    return window


def settle() -> None:
    for _ in range(3):
        QApplication.processEvents()


# Each step as it first shows, and every tab of the Evaluate step (the attribute of its page).
VIEWS = [(0, ""), (1, ""), (2, ""), (3, "overview"), (3, "per_class"), (3, "mistakes"), (3, "try_it"), (3, "comparison"), (4, "")]
VIEW_IDS = [f"step{step}{'-' + tab if tab else ''}" for step, tab in VIEWS]


def show(window, step: int, tab: str = "") -> QWidget:
    window.go_to(step)
    if tab:
        window.evaluate_panel.show_tab(getattr(window.evaluate_panel, tab))
    settle()
    panel = window.panels[step]
    assert panel.isVisible()
    return panel


def visible_children(panel: QWidget, kind=QWidget) -> list:
    return [w for w in panel.findChildren(kind) if w.isVisible() and w.window() is panel.window()]


def describe(w: QWidget) -> str:
    text = w.text() if isinstance(w, QLabel) else ""
    return f"{type(w).__name__}({w.objectName() or ''}{' ' + repr(text[:40]) if text else ''})"


def plain(text: str) -> str:
    doc = QTextDocument()
    doc.setHtml(text) if Qt.mightBeRichText(text) else doc.setPlainText(text)
    return " ".join(doc.toPlainText().split())


def label_fits(label: QLabel) -> bool:
    if label.wordWrap():
        return label.heightForWidth(label.width()) <= label.height()
    return label.sizeHint().width() <= label.width()


def label_has_full_text_tip(label: QLabel) -> bool:
    shown = plain(label.text()).replace("…", "").strip()
    return bool(shown) and shown in plain(label.toolTip())


# Horizontal scrolling that is the content itself, not a layout too wide for the screen: none. The
# training log wraps its lines, the picture grids wrap their rows and the Data step's class tabs scroll
# with the tab bar's own arrows (not a scroll bar).
SCROLLS_SIDEWAYS: frozenset[str] = frozenset()


def test_the_window_fits_a_laptop_screen(laptop):
    """``fit_to_screen`` asked for the screen less the frame (offscreen Qt draws a 2 px frame round a window)."""
    frame, inside = laptop.frameGeometry(), laptop.geometry()
    assert frame.width() <= SCREEN[0] and frame.height() <= SCREEN[1], (frame.width(), frame.height())
    asked = (SCREEN[0] - (frame.width() - inside.width()), SCREEN[1] - (frame.height() - inside.height()))
    assert (laptop.width(), laptop.height()) == asked  # no minimum size held the window larger than it was asked to be


@pytest.mark.parametrize(("step", "tab"), VIEWS, ids=VIEW_IDS)
def test_every_step_is_as_wide_as_the_window_allows(laptop, step, tab):
    panel = show(laptop, step, tab)
    assert shown_part(panel).width() == panel.width()


@pytest.mark.parametrize(("step", "tab"), VIEWS, ids=VIEW_IDS)
def test_no_step_needs_a_horizontal_scroll_bar(laptop, step, tab):
    panel = show(laptop, step, tab)
    areas = visible_children(panel, QAbstractScrollArea) + [a for a in ancestors(panel) if isinstance(a, QAbstractScrollArea)]
    scrolled = [describe(a) for a in areas if a.horizontalScrollBar().isVisible() and type(a).__name__ not in SCROLLS_SIDEWAYS]
    assert not scrolled


def ancestors(widget: QWidget) -> list[QWidget]:
    """The widgets around ``widget`` up to its window (the step's own scroll area among them)."""
    out, parent = [], widget.parentWidget()
    while parent is not None:
        out.append(parent)
        parent = parent.parentWidget()
    return out


def shown_part(widget: QWidget) -> QRect:
    """The part of ``widget`` (in window coordinates) that its parents and the window leave in view."""
    window = widget.window()
    shown = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    parent = widget.parentWidget()
    while parent is not None and parent is not window:
        shown &= QRect(parent.mapTo(window, QPoint(0, 0)), parent.size())
        parent = parent.parentWidget()
    return shown & window.rect()


def own_part(w: QWidget) -> bool:
    """Qt's own parts of a widget it sizes itself (a tab bar's scroll arrows), not a layout's doing."""
    return isinstance(w.parent(), QTabBar)


@pytest.mark.parametrize(("step", "tab"), VIEWS, ids=VIEW_IDS)
def test_no_widget_is_squeezed_below_its_minimum(laptop, step, tab):
    panel = show(laptop, step, tab)
    squeezed = [f"{describe(w)} {w.width()} < {w.minimumSizeHint().width()}" for w in visible_children(panel) if w.width() < w.minimumSizeHint().width() and not own_part(w)]
    assert not squeezed


@pytest.mark.parametrize(("step", "tab"), VIEWS, ids=VIEW_IDS)
def test_every_label_shows_its_whole_text_or_a_tooltip_with_it(laptop, step, tab):
    assert not cut_labels(show(laptop, step, tab))


def cut_drop_downs(panel: QWidget) -> list[str]:
    cut = []
    for combo in visible_children(panel, QComboBox):
        fm = QFontMetrics(combo.font())
        room = combo.width() - 40  # the arrow and the frame
        longest = max((fm.horizontalAdvance(combo.itemText(i)) for i in range(combo.count())), default=0)
        if longest > room and combo.currentText() not in combo.toolTip():
            cut.append(f"{type(combo).__name__}: {combo.currentText()!r}")
    return cut


def cut_labels(panel: QWidget) -> list[str]:
    return [describe(w) for w in visible_children(panel, QLabel) if w.text() and not label_fits(w) and not label_has_full_text_tip(w)]


@pytest.mark.parametrize(("step", "tab"), VIEWS, ids=VIEW_IDS)
def test_every_drop_down_fits_its_longest_item_or_says_it_in_a_tooltip(laptop, step, tab):
    assert not cut_drop_downs(show(laptop, step, tab))


DESKTOP = (1400, 900)


def test_at_1400_by_900_no_drop_down_or_label_is_cut(laptop):
    """Where the first report saw "Light: small crops" and "Automatic (GPU v" cut short."""
    fit_to_screen(laptop, DESKTOP)
    cut = {VIEW_IDS[k]: cut_drop_downs(show(laptop, step, tab)) + cut_labels(show(laptop, step, tab)) for k, (step, tab) in enumerate(VIEWS)}
    assert not {view: c for view, c in cut.items() if c}


def test_at_1400_by_900_the_training_settings_show_their_words_whole(laptop):
    fit_to_screen(laptop, DESKTOP)
    show(laptop, 2)
    settings = laptop.train_panel.settings
    for combo in (settings.augment, settings.weighting, settings.selection, settings.device):
        for i in range(combo.count()):
            combo.setCurrentIndex(i)
            assert combo.shown_text() == combo.currentText()


def test_every_confusion_cell_is_big_enough_and_the_whole_matrix_shows(laptop):
    show(laptop, 3, "overview")
    view = laptop.evaluate_panel.confusion
    assert view.model().rowCount() == N_CLASSES
    assert all(w >= MIN_CELL and h >= MIN_CELL for w, h in view.cell_sizes())
    inside = view.viewport().rect()
    last = view.visualRect(view.model().index(N_CLASSES - 1, N_CLASSES - 1))
    assert inside.contains(last), (inside, last)  # no row or column hidden behind a scroll bar


def test_confusion_headers_hold_the_full_class_names(laptop):
    show(laptop, 3, "overview")
    model = laptop.evaluate_panel.confusion.model()
    for orientation in (Qt.Orientation.Horizontal, Qt.Orientation.Vertical):
        tips = [model.headerData(k, orientation, Qt.ItemDataRole.ToolTipRole) for k in range(N_CLASSES)]
        assert all(name in tip for name, tip in zip(class_names_as_shown(laptop), tips))


def class_names_as_shown(window) -> list[str]:
    return window.evaluate_panel.classes


def test_a_click_on_a_cell_still_shows_its_pictures(qtbot, laptop):
    show(laptop, 3, "overview")
    evaluate = laptop.evaluate_panel
    view = evaluate.confusion
    counts = view.values()
    i = next(k for k in range(N_CLASSES) if counts[k][k])
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(view.model().index(i, i)).center())
    assert evaluate.gallery.count() == counts[i][i]


def test_the_per_class_table_sorts_numerically_and_shows_every_column(laptop):
    show(laptop, 3, "per_class")
    table = laptop.evaluate_panel.per_class
    assert table.rowCount() == N_CLASSES
    viewport = table.viewport().width()
    assert sum(table.columnWidth(c) for c in range(table.columnCount())) <= viewport
    for c in range(1, table.columnCount()):
        assert table.columnWidth(c) >= table.sizeHintForColumn(c)  # the numbers are whole
    for col in (1, 2, 3, 4):
        table.horizontalHeader().sectionClicked.emit(col)
        table.sortItems(col, Qt.SortOrder.AscendingOrder)
        values = table.column_values(col)
        assert values == sorted(values), col
        table.sortItems(col, Qt.SortOrder.DescendingOrder)
        assert table.column_values(col) == sorted(values, reverse=True), col


def test_the_run_comparison_shows_every_column_whole(laptop):
    show(laptop, 3, "comparison")
    table = laptop.evaluate_panel.comparison.table
    assert sum(table.columnWidth(c) for c in range(table.columnCount())) <= table.viewport().width()
    for c in range(1, table.columnCount()):
        assert table.columnWidth(c) >= max(table.sizeHintForColumn(c), table.horizontalHeader().sectionSizeHint(c))


def test_the_loss_plot_reads_in_epochs_during_the_first_epoch(laptop):
    show(laptop, 2)
    plots = laptop.train_panel.plots
    for k in range(150, 401, 10):  # batches at fractions of the first epoch
        plots.add_step(k / 1000, 2.0 - k / 1000)
    plots.flush()
    plots.loss_plot.getPlotItem().vb.autoRange()
    settle()
    for plot in (plots.loss_plot, plots.acc_plot):
        for side in ("bottom", "left"):
            axis = plot.getAxis(side)
            axis.updateAutoSIPrefix()
            assert axis.autoSIPrefixScale == 1.0, (side, axis.labelString())


def legends_and_plots(window):
    """Every pyqtgraph plot of the window, with its legend if it has one."""
    import pyqtgraph as pg

    for widget in window.findChildren(pg.PlotWidget):
        item = widget.getPlotItem()
        if item.legend is not None:
            yield widget, item.legend, item.vb


def test_no_legend_covers_a_plot(laptop):
    show(laptop, 3, "comparison")
    found = 0
    for widget, legend, viewbox in legends_and_plots(laptop):
        legend_rect = legend.mapRectToScene(legend.boundingRect())
        plot_rect = viewbox.mapRectToScene(viewbox.boundingRect())
        assert not legend_rect.intersects(plot_rect), widget
        found += 1
    assert found >= 3  # the two live plots and the comparison's


def test_every_training_setting_says_what_it_means(laptop):
    settings = laptop.train_panel.settings
    assert set(settings.labels) >= {"epochs", "batch_size", "lr"}
    for key, label in settings.labels.items():
        assert label.toolTip() and label.buddy() is not None, key


def test_a_skipped_file_shows_its_whole_reason(laptop):
    from tlstudio.core.data.index import REASON_TEXT

    show(laptop, 0)
    report = laptop.data_panel.report
    skipped = laptop.studio.index.skipped
    assert skipped
    row = report.tree.topLevelItem(0).child(0)
    reason = REASON_TEXT.get(skipped[0].reason, skipped[0].reason)
    assert reason in row.toolTip(1)
    report.tree.setCurrentItem(row)
    settle()
    assert report.detail.isVisible() and reason in report.detail.text()
    assert label_fits(report.detail)
