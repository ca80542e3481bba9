"""The Evaluate step's run actions, through the window: train the shown run's from-scratch baseline on the
Train step and see what transfer learning added; export the run's self-contained HTML report off the GUI thread.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from tests.gui.conftest import fast, scan, train  # noqa: E402
from tests.synthetic import make_colour_dataset  # noqa: E402
from tlstudio.core.runs import project as pj  # noqa: E402

pytestmark = pytest.mark.gui


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_baseline_button_trains_the_run_from_scratch_and_shows_the_uplift(qtbot, window, tmp_path):
    studio = window.studio
    studio.new_project(tmp_path / "Baseline")
    scan(qtbot, window, make_colour_dataset(tmp_path / "colours", per_class=12))
    studio.config.epochs = 2
    result = train(qtbot, window)
    assert result is not None and not result.cancelled
    source = studio.run(studio.current_run)
    window.go_to("Evaluate")
    ev = window.evaluate_panel
    button = ev.actions.baseline_button
    assert button.isEnabled()
    assert ev.comparison.uplift_data is None and "Train a Baseline from Scratch" in ev.comparison.uplift.text()

    settings = studio.config.to_dict()
    saved = read_json(studio.project.file)["config"]
    with qtbot.waitSignal(window.train_panel.run_finished, timeout=180_000) as finished:
        button.click()  # a short trial measures how long it would take; the window's confirm agrees
        assert not button.isEnabled()
        qtbot.waitUntil(lambda: window.train_panel.job is not None, timeout=120_000)
        assert window.current_step() == "Train"
        assert not button.isEnabled()  # one run at a time
    assert finished.args[0] is not None and not finished.args[0].cancelled

    baseline = studio.run(studio.current_run)
    assert baseline.id != source.id and baseline.record.status == pj.FINISHED
    made, original = read_json(baseline.files.config), read_json(source.files.config)
    assert made["pretrained"] is False and made["freeze_depth"] == "none"
    assert original["pretrained"] is True and original["freeze_depth"] == "all"
    for key in ("data_dir", "epochs", "image_size", "seed", "val_split", "batch_size"):
        assert made[key] == original[key], key
    assert studio.config.to_dict() == settings  # the user's settings are theirs
    assert read_json(studio.project.file)["config"] == saved

    window.go_to("Evaluate")
    ev.tabs.setCurrentWidget(ev.comparison)
    comparison = ev.comparison
    pm, bm = read_json(source.files.metrics), read_json(baseline.files.metrics)
    u, text = comparison.uplift_data, comparison.uplift.text()
    assert u is not None and comparison.uplift.isVisible()
    assert (Path(u["pretrained_run"]).name, Path(u["baseline_run"]).name) == (source.id, baseline.id)
    assert (u["pretrained_accuracy"], u["baseline_accuracy"]) == (pm["accuracy"], bm["accuracy"])
    assert text.startswith("Transfer learning")
    assert f"pretrained {pm['accuracy']:.1%} vs from scratch {bm['accuracy']:.1%}" in text
    assert f"({pm['balanced_accuracy']:.1%} vs {bm['balanced_accuracy']:.1%})" in text
    assert "trained in" in text and "differ" not in text  # the same settings but the start
    assert {source.id, baseline.id} <= set(comparison.plotted())  # both curves, side by side
    assert not ev.actions.baseline_button.isEnabled()  # the shown run is the baseline itself

    # The pretrained run shows the same comparison, and could train another baseline.
    studio.set_current_run(source.id)
    assert Path(comparison.uplift_data["baseline_run"]).name == baseline.id
    assert comparison.uplift.text() == text
    assert ev.actions.baseline_button.isEnabled()


@pytest.fixture
def finished_run(qtbot, window, tmp_path):
    """A project with one short finished run (trained with the core trainer), open in the window on Evaluate."""
    from tlstudio.core.engine.trainer import Trainer

    data = make_colour_dataset(tmp_path / "colours", per_class=8).resolve()
    project = pj.Project.create(tmp_path / "Report")
    project.set_data(str(data), 0.25, 0.0, 0)
    cfg = project.train_config()
    fast(cfg)
    cfg.epochs = 1
    files = project.new_run(cfg)
    result = Trainer(cfg, files.root, cache_dir=project.cache_dir).run()
    project.finish_run(files.root.name, pj.FINISHED, result.summary)
    with qtbot.waitSignal(window.data_panel.scan_done, timeout=60_000):
        window.studio.open_project(project.root)
    window.go_to("Evaluate")
    return window.studio.run(window.studio.current_run)


def test_export_report_writes_a_self_contained_page_in_the_background(qtbot, window, finished_run, tmp_path, monkeypatch):
    from tlstudio.core.report import html as html_report

    writers = []
    real = html_report.write_report

    def recording(*args, **kwargs):
        writers.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(html_report, "write_report", recording)
    actions = window.evaluate_panel.actions
    proposed = []
    out = tmp_path / "out" / "for-a-colleague"  # no suffix: .html is added
    actions.ask_report_path = lambda start: proposed.append(start) or str(out)
    assert actions.report_button.isEnabled()
    with qtbot.waitSignal(actions.report_written, timeout=60_000) as written:
        actions.report_button.click()
        assert not actions.report_button.isEnabled()  # one report at a time
    assert proposed == [str(window.studio.project.root / f"{finished_run.id}-report.html")]  # first in the project's folder
    path = Path(written.args[0])
    assert path == out.with_name("for-a-colleague.html") and path.is_file()
    assert writers and writers[0] is not threading.main_thread()
    page = path.read_text(encoding="utf-8")
    classes = read_json(finished_run.files.metrics)["classes"]
    assert sorted(classes) == ["blue", "green", "red"]
    assert all(f">{name}<" in page for name in classes)
    assert "http://" not in page and "https://" not in page
    assert str(path) in window.statusBar().currentMessage()
    qtbot.waitUntil(actions.report_button.isEnabled, timeout=10_000)

    # The next report is proposed in the same folder; a place that cannot be written is a readable error.
    actions.ask_report_path = lambda start: proposed.append(start) or ""
    actions.report_button.click()
    assert proposed[-1] == str(path.parent / f"{finished_run.id}-report.html")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with qtbot.waitSignal(window.notifier.notified, timeout=60_000) as notified:
        window.evaluate_panel.export_report(blocker / "report.html")
    assert notified.args[0].user_error and "could not write the report" in notified.args[0].message
    qtbot.waitUntil(actions.report_button.isEnabled, timeout=10_000)
