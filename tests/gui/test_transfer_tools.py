"""The Evaluate step's "Adapt, shrink, combine" page: each action a background job whose result is the core's.

One project with two finished frozen runs (Lite0 and Lite1 on the same split) is trained once for the module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PySide6")

from tests.gui.conftest import fast  # noqa: E402
from tests.shifted import write_shifted  # noqa: E402
from tests.synthetic import make_colour_dataset  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def project_with_two_runs(tmp_path_factory) -> tuple[Path, list[str], Path]:
    """``(project folder, its two run ids, the data folder)``."""
    from tlstudio.core.engine.trainer import Trainer
    from tlstudio.core.runs import project as pj

    root = tmp_path_factory.mktemp("transfer_tools")
    data = make_colour_dataset(root / "colours", per_class=10).resolve()
    project = pj.Project.create(root / "Two runs")
    project.set_data(str(data), 0.3, 0.0, 0)
    ids = []
    for backbone in ("efficientnet_lite0", "efficientnet_lite1"):
        cfg = project.train_config()
        fast(cfg)
        cfg.backbone, cfg.epochs = backbone, 1
        files = project.new_run(cfg)
        project.finish_run(files.root.name, pj.FINISHED, Trainer(cfg, files.root, cache_dir=project.cache_dir).run().summary)
        ids.append(files.root.name)
    project.save()
    return project.root, ids, data


def run_box(qtbot, box, timeout_ms: int = 240_000):
    """Press the box's button and wait for its job to end; the core's result (the box's words say why when there is none)."""
    box.start_button.click()
    assert box.is_running(), box.status.text()
    qtbot.waitUntil(lambda: not box.is_running(), timeout=timeout_ms)
    assert box.result is not None, box.status.text()
    return box.result


def open_tools(window, project: Path, run_id: str):
    window.studio.open_project(project)
    window.studio.set_current_run(run_id)
    window.go_to("Evaluate")
    return window.evaluate_panel.transfer


def test_combining_two_runs_gives_the_mean_of_their_validation_answers(qtbot, window, project_with_two_runs):
    from tlstudio.core.inference.ensemble import mean_probabilities, read_run

    project, ids, _ = project_with_two_runs
    tools = open_tools(window, project, ids[0])
    tools.set_ticked([ids[0]])
    tools.combine.start_button.click()
    assert not tools.combine.is_running()  # one run is not enough: refused in place, nothing started
    tools.set_ticked(ids)
    result = run_box(qtbot, tools.combine)
    _, labels, mean = mean_probabilities([read_run(Path(project) / "runs" / i) for i in ids])
    assert result.val_accuracy == pytest.approx(float(np.mean(mean.argmax(1) == labels)))
    assert result.model_path.is_file() and result.model_path.parent.parent == Path(project) / "ensembles"
    assert sorted(m.run_id for m in result.members) == sorted(ids)
    assert tools.combine.start_button.isEnabled()


def test_adapting_makes_a_new_run_of_the_project_and_shows_it(qtbot, window, project_with_two_runs, tmp_path):
    project, ids, data = project_with_two_runs
    tools = open_tools(window, project, ids[0])
    assert not tools.adapt.start_button.isEnabled()  # no folder of new pictures yet
    pictures = [(p, p.parent.name) for p in sorted(data.rglob("*.jpg"))[::2]]
    window.data_panel.set_new_pictures(write_shifted(pictures, tmp_path / "new", "colour-cast"))
    assert tools.adapt.start_button.isEnabled()
    result = run_box(qtbot, tools.adapt)
    runs = {r.id: r for r in window.studio.runs()}
    assert result.run_dir.name in runs and runs[result.run_dir.name].has_model
    assert window.studio.current_run == result.run_dir.name
    assert result.pictures == len(pictures)
    assert runs[result.run_dir.name].record.summary["adaptation"]["method"] == result.method


def test_stopping_an_adaptation_leaves_no_half_run(qtbot, window, project_with_two_runs, tmp_path):
    project, ids, data = project_with_two_runs
    tools = open_tools(window, project, ids[0])
    window.data_panel.set_new_pictures(write_shifted([(p, p.parent.name) for p in sorted(data.rglob("*.jpg"))], tmp_path / "new", "grey"))
    before = {r.id for r in window.studio.runs()}
    tools.adapt.start_button.click()
    tools.adapt.stop()
    qtbot.waitUntil(lambda: not tools.adapt.is_running(), timeout=120_000)
    assert tools.adapt.result is None
    assert {r.id for r in window.studio.project.list_runs()} == before


def test_the_smaller_model_trains_on_the_train_step_and_is_compared_with_its_teacher(qtbot, window, project_with_two_runs):
    project, ids, _ = project_with_two_runs
    teacher = ids[1]
    tools = open_tools(window, project, teacher)
    assert not tools.smaller.start_button.isEnabled()  # the teacher itself has no teacher to compare with
    tools.student.setCurrentIndex(tools.student.findData("efficientnet_lite0"))
    tools.trained_stages.setValue(1)
    with qtbot.waitSignal(window.train_panel.run_finished, timeout=240_000) as blocker:
        tools.train_student.click()
        assert window.current_step() == "Train"
    assert blocker.args[0] is not None and not blocker.args[0].cancelled
    student = window.studio.current_run
    assert window.studio.run(student).config.teacher == str(Path(project) / "runs" / teacher)
    tools = open_tools(window, project, student)
    assert tools.smaller.start_button.isEnabled()
    report = run_box(qtbot, tools.smaller)
    assert report.teacher.backbone == "efficientnet_lite1" and report.student.backbone == "efficientnet_lite0"
    assert report.student.params < report.teacher.params and report.same_validation
