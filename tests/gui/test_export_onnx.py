"""The Export step's ONNX format: a run without model.onnx gets one made in the background and verified, the copy
runs in onnxruntime, the verification shows, and the onnxruntime code replaces the PyTorch code."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("PySide6")

from tests.gui.exported_run import make_project_with_exported_run  # noqa: E402
from tlstudio.core.runs import project as pj  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def project_with_run(tmp_path):
    """A project with one finished frozen run that has its model.pt but no model.onnx."""
    return make_project_with_exported_run(tmp_path)[0]


def test_onnx_export_makes_verifies_and_copies_the_file(qtbot, window, project_with_run, tmp_path):
    import onnxruntime as ort

    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000):
        window.studio.open_project(project_with_run)
    window.go_to("Export")
    ex = window.export_panel
    run = window.studio.run(window.studio.current_run)
    assert run is not None and run.has_model and not (run.files.root / "model.onnx").exists()

    ex.as_onnx.setChecked(True)
    assert ex.export_button.isEnabled() and "Verified" not in ex.verification.text()
    assert "onnxruntime" in ex.snippet.toPlainText() and "torch" not in ex.snippet.toPlainText()
    dest = tmp_path / "out" / "colours"  # the suffix is added
    with qtbot.waitSignal(ex.exported, timeout=120_000) as blocker:
        ex.export_to(dest)
    assert blocker.args == [str(dest) + ".onnx"]
    qtbot.waitUntil(lambda: ex.job is None and ex.export_button.isEnabled(), timeout=10_000)

    # The run now has its verified model.onnx, and the project's record of the run says so.
    record = window.studio.project.record(run.id)
    report = record.summary["export_onnx"]
    assert report["verified"] and report["agreement"] == 1.0 and (run.files.root / "model.onnx").is_file()
    assert record.summary["export"]["verified"] and record.status == pj.FINISHED  # the TorchScript report stays
    assert "Verified" in ex.verification.text() and "colours.onnx" in ex.snippet.toPlainText()

    session = ort.InferenceSession(str(dest) + ".onnx", providers=["CPUExecutionProvider"])
    names = json.loads(session.get_modelmeta().custom_metadata_map["tlstudio.json"])["class_names"]
    probs = session.run(None, {"images": np.zeros((2, 3, 50, 70), np.uint8)})[0]
    assert names == ["blue", "green", "red"] and probs.shape == (2, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)

    # A second export copies the verified file without making it again: the run folder is not touched.
    again, summary = tmp_path / "again.onnx", run.files.root / "summary.json"
    stamp = summary.stat().st_mtime_ns
    with qtbot.waitSignal(ex.exported, timeout=30_000):
        ex.export_to(again)
    assert again.read_bytes() == (run.files.root / "model.onnx").read_bytes() and summary.stat().st_mtime_ns == stamp

    # TorchScript again: its code and its verification come back.
    qtbot.waitUntil(lambda: ex.job is None, timeout=10_000)
    ex.as_torchscript.setChecked(True)
    assert "torch.jit.load" in ex.snippet.toPlainText() and "Verified" in ex.verification.text()
