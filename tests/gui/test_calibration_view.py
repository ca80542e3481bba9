"""The Evaluate step's Confidence tab: the run's calibration figures shown as they are, and Apply writes the threshold."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")

from tests.gui.exported_run import make_project_with_exported_run  # noqa: E402
from tlstudio.core.engine.calibration import point_on, read_calibration  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    from tlstudio.cli import main

    _, model = make_project_with_exported_run(tmp_path_factory.mktemp("confidence"))
    assert main(["export", str(model.parent), "--format", "onnx"]) == 0
    return model.parent


@pytest.fixture
def view(qtbot):
    from tlstudio.gui.notifier import Notifier
    from tlstudio.gui.studio import Studio
    from tlstudio.gui.widgets.calibration_view import CalibrationView

    notifier = Notifier()
    notifier.show_dialogs = False
    studio = Studio(notifier)
    widget = CalibrationView(studio)
    qtbot.addWidget(widget)
    yield widget
    assert studio.jobs.wait_all(60_000)


def summary_of(run_root) -> dict:
    return json.loads((run_root / "summary.json").read_text())


def test_the_tab_shows_the_runs_own_calibration(view, run_root):
    view.show_run(run_root)
    expected = read_calibration(summary_of(run_root))
    assert view.calibration == expected and expected.coverage
    assert view.threshold.value() == pytest.approx(expected.threshold)
    view.threshold.setValue(0.5)
    assert view.point() == point_on(expected.coverage, 0.5)
    assert view.apply.isEnabled()


def test_apply_writes_the_threshold_into_both_exports(qtbot, view, run_root):
    import onnx

    from tlstudio.core.inference.export import read_export_info
    from tlstudio.core.inference.onnx_file import read_onnx_info

    view.show_run(run_root)
    view.threshold.setValue(0.75)
    with qtbot.waitSignal(view.applied, timeout=60_000) as signal:
        view.apply.click()
    assert signal.args == [pytest.approx(0.75)]
    assert read_export_info(run_root / "model.pt")["not_sure_below"] == pytest.approx(0.75)
    assert read_onnx_info(run_root / "model.onnx")["not_sure_below"] == pytest.approx(0.75)
    meta = {p.key: p.value for p in onnx.load(str(run_root / "model.onnx")).metadata_props}
    assert float(meta["not_sure_below"]) == pytest.approx(0.75)
    assert read_calibration(summary_of(run_root)).threshold == pytest.approx(0.75)
    assert view.calibration.threshold == pytest.approx(0.75)  # the tab shows the run as it now is
