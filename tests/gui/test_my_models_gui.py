"""My models on the Model step: the project's finished runs listed, one picked as the start of the next run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import Qt  # noqa: E402

from tests.gui.conftest import scan, train  # noqa: E402
from tests.gui.exported_run import make_project_with_exported_run  # noqa: E402
from tests.synthetic import make_colour_dataset  # noqa: E402
from tlstudio.core.catalog import backbones as bb  # noqa: E402
from tlstudio.gui.panels import model_panel  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def project_with_run(tmp_path_factory) -> tuple[Path, Path]:
    """``(project folder, its finished run's folder)``."""
    root, model = make_project_with_exported_run(tmp_path_factory.mktemp("my_models_gui"))
    return root, model.parent


def click(qtbot, view, item) -> None:
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualItemRect(item).center())


def test_my_models_lists_the_finished_run_and_picking_it_sets_the_start(qtbot, window, project_with_run):
    project, run = project_with_run
    window.studio.open_project(project)
    window.go_to(1)
    box = window.model_panel.my_models
    assert [m.folder for m in box.models] == [run.resolve()]
    assert box.models[0].backbone == "efficientnet_lite0" and box.models[0].classes == ("blue", "green", "red")
    # Another backbone first, so that the pick must bring the run's own back, with its stages.
    window.model_panel.select_backbone("mobilenet_v3_small")
    assert window.studio.config.backbone == "mobilenet_v3_small"
    click(qtbot, box.list, box.list.item(0))
    cfg = window.studio.config
    assert cfg.start_from == str(run.resolve())
    assert cfg.backbone == "efficientnet_lite0" and cfg.image_size == 64
    assert window.model_panel.freeze.n_stages == len(bb.get_backbone("efficientnet_lite0").stages)
    assert box.list.currentRow() == 0
    # A catalog backbone picked afterwards starts from ImageNet again.
    window.model_panel.select_backbone("mobilenet_v3_small")
    assert cfg.start_from == "" and box.list.currentRow() == -1


def test_a_run_folder_of_another_project_is_picked_through_the_folder_dialog(qtbot, window, project_with_run, tmp_path, monkeypatch):
    _, run = project_with_run
    answers = iter([str(tmp_path), str(run)])  # first a folder that is no run: refused in place, nothing set
    monkeypatch.setattr(model_panel, "ask_existing_folder", lambda *_a, **_k: next(answers))
    panel = window.model_panel
    panel.my_models.other_button.click()
    assert window.studio.config.start_from == ""
    panel.my_models.other_button.click()
    assert window.studio.config.start_from == str(run.resolve())
    assert window.studio.config.backbone == "efficientnet_lite0"


def test_a_run_started_from_my_model_records_its_origin(qtbot, window, project_with_run, tmp_path):
    project, run = project_with_run
    window.studio.open_project(project)
    scan(qtbot, window, make_colour_dataset(tmp_path / "two", ("yellow", "green"), per_class=8, seed=3))
    window.model_panel.use_my_model(run)
    window.studio.config.epochs = 1
    result = train(qtbot, window)
    assert result is not None
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["origin"]["run_folder"] == str(run.resolve())
    assert summary["classes"] == ["green", "yellow"]
    # The new run is finished too: the list now offers both.
    qtbot.waitUntil(lambda: len(window.model_panel.my_models.models) == 2, timeout=10_000)
