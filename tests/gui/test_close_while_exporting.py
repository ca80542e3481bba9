"""Closing the window while a run exports its model file: the window is gone within 5 s whichever comes first (the
user's Yes or the run's end), and a run cut off while exporting is a stopped run, with no unchecked file left, that
Resume Run exports later."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from tests.gui.conftest import make_window, scan  # noqa: E402
from tlstudio.core.events import PhaseStarted  # noqa: E402
from tlstudio.core.runs import project as pj  # noqa: E402
from tlstudio.core.runs.files import FINISHED, STOPPED  # noqa: E402
from tlstudio.gui.widgets.kept_epoch import kept_epoch_to_evaluate  # noqa: E402

pytestmark = pytest.mark.gui

EXIT_MS = 5_000


def start_and_wait_for_the_export(qtbot, window, colours):
    """Start a fast run that exports; return its job once its export phase has begun."""
    scan(qtbot, window, colours)
    window.studio.config.export = True
    phases: list[str] = []
    job = window.train_panel.start()
    assert job is not None
    job.event.connect(lambda e: phases.append(e.name) if isinstance(e, PhaseStarted) else None)
    qtbot.waitUntil(lambda: "exporting" in phases, timeout=180_000)
    return job


def leftovers(run_dir) -> list[str]:
    return sorted(p.name for p in run_dir.rglob("*") if ".tmp" in p.name or "unverified" in p.name)


def test_yes_while_exporting_closes_within_5_s_and_the_run_is_exported_later(qtbot, window, colours, settings):
    job = start_and_wait_for_the_export(qtbot, window, colours)
    run_id, project = window.train_panel.run_id, window.studio.project

    window.close()  # the test's confirm answers Yes
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=EXIT_MS)

    assert job.thread.isFinished() and job.result.cancelled
    run = project.load_run(run_id)
    assert run.files.read_status().state == STOPPED and project.record(run_id).status == pj.CANCELLED
    assert not run.has_model and leftovers(run.files.root) == []

    again = make_window(qtbot, settings)  # relaunched: the stopped run is there, and Resume Run exports it
    try:
        again.project_actions.open_project(str(project.root))
        again.studio.set_current_run(run_id)
        assert again.train_panel.resume_button.isEnabled() and kept_epoch_to_evaluate(again.studio.run(run_id))
        with qtbot.waitSignal(again.train_panel.run_finished, timeout=240_000) as finished:
            again.train_panel.resume_button.click()
        assert not finished.args[0].cancelled
        run = again.studio.run(run_id)
        assert run.has_model and run.record.summary["export"]["verified"] and run.files.read_status().state == FINISHED
        assert leftovers(run.files.root) == []
    finally:
        assert again.studio.jobs.wait_all(60_000)
        again.close()
        again.deleteLater()


def test_a_run_that_ends_its_export_while_the_question_is_open_closes_within_5_s(qtbot, window, colours):
    job = start_and_wait_for_the_export(qtbot, window, colours)

    def answer_after_the_run_ended(title, question):
        qtbot.waitUntil(lambda: not window.studio.jobs.busy(), timeout=180_000)  # the export ends meanwhile
        return True

    window.confirm = answer_after_the_run_ended
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=EXIT_MS)
    assert job.thread.isFinished() and not job.result.cancelled
    assert window.studio.run(job.result.run_dir.name).has_model
