"""The strategy sweep: its plan, estimate, record, chart data and the honest recommendation (selection scores only)."""

import json
from dataclasses import replace

import pytest

from tests.synthetic import make_colour_dataset
from tlstudio.cli import main
from tlstudio.core.config import TrainConfig
from tlstudio.core.data.scan import scan_folder
from tlstudio.core.errors import UserError
from tlstudio.core.events import Progress, StopToken
from tlstudio.core.runs import project as pj
from tlstudio.core.runs import sweep
from tlstudio.core.runs.sweep_report import render_html


def result(name, score, seconds, val=0.5, status=sweep.FINISHED, test=None):
    return sweep.MemberResult(name, "frozen", name.title(), status=status, seconds=seconds, selection_score=score,
                              val_accuracy=val, val_balanced_accuracy=val, test_balanced_accuracy=test)


# ------------------------------------------------------------------ the pure parts
def test_plan_is_cheapest_first_with_every_bundled_backbone_frozen():
    members = sweep.plan_sweep(TrainConfig())
    kinds = [m.kind for m in members]
    assert kinds == sorted(kinds, key=sweep.KINDS.index)
    assert [m.config.backbone for m in members if m.kind == "frozen"] == sweep.bundled_backbones()
    partial = [m for m in members if m.kind == "partial"]
    assert [int(m.config.freeze_depth) for m in partial] == sweep.partial_depths(TrainConfig.backbone)
    assert len({m.config.seed for m in members}) == 1 and not any(m.config.export for m in members)
    scratch = next(m for m in members if m.kind == "scratch")
    assert scratch.config.pretrained is False and scratch.config.freeze_depth == "none"


def test_skip_takes_kinds_and_names_and_refuses_unknown_words():
    members = sweep.plan_sweep(TrainConfig(), skip=["full", "scratch", "partial:8"])
    assert {m.kind for m in members} == {"frozen", "partial"} and "partial:8" not in {m.name for m in members}
    with pytest.raises(UserError):
        sweep.plan_sweep(TrainConfig(), skip=["fozen"])
    with pytest.raises(UserError):
        sweep.plan_sweep(TrainConfig(), skip=list(sweep.KINDS))


def test_estimate_grows_with_what_trains():
    members = sweep.plan_sweep(TrainConfig(epochs=5))
    members = [m for m in members if m.kind != "frozen" or m.config.backbone == TrainConfig.backbone]
    estimates = sweep.estimate_sweep(members, {"train": 200, "val": 50, "test": 0}, 2, speed=lambda cfg: 20.0)
    seconds = [e.seconds for e in estimates]
    assert seconds == sorted(seconds) and seconds[0] < seconds[-1] / 5


def test_the_cheapest_member_within_the_tolerance_is_chosen():
    results = [result("a", 0.90, 10), result("b", 0.895, 100), result("c", 0.90 + sweep.TOLERANCE + 0.001, 1000)]
    rec = sweep.recommend(results)
    assert rec.best == "c" and rec.chosen == "c"  # a and b are more than the tolerance below c
    results[2].selection_score = 0.905
    rec = sweep.recommend(results)
    assert rec.best == "c" and rec.chosen == "a"  # a and b are within it: the cheaper (first planned) one
    assert rec.points_behind == pytest.approx(0.5) and rec.speed_ratio == pytest.approx(100.0)


def test_validation_and_test_figures_cannot_change_the_choice():
    results = [result("a", 0.80, 10, val=0.99, test=0.99), result("b", 0.95, 100, val=0.10, test=0.10)]
    before = sweep.recommend(results)
    for r in results:
        r.val_accuracy, r.val_balanced_accuracy, r.test_balanced_accuracy = 1 - r.val_accuracy, 0.5, 0.5
    after = sweep.recommend(results)
    assert before.chosen == after.chosen == "b" and before.best == after.best == "b"


def test_unfinished_members_are_not_recommended():
    results = [result("a", 0.99, 1, status=sweep.STOPPED), result("b", 0.7, 5)]
    assert sweep.recommend(results).chosen == "b"
    assert sweep.recommend([result("a", None, 1)]) is None


def test_selection_score_reads_cross_validation_or_the_kept_epoch():
    frozen = {"selection": {"method": "cross-validation", "metric": "balanced_accuracy"}, "head_fit": {"cv_balanced_accuracy": 0.8, "cv_accuracy": 0.9}}
    assert sweep.selection_score(frozen, []) == (0.8, "cross-validation")
    tuned = {"selection": {"method": "selection split", "metric": "accuracy"}, "best_epoch": 2}
    history = [{"epoch": 1, "sel_acc": 0.5, "val_acc": 1.0}, {"epoch": 2, "sel_acc": 0.75, "val_acc": 0.0}, {"epoch": 3, "sel_acc": 0.6}]
    assert sweep.selection_score(tuned, history) == (0.75, "selection split")


# ------------------------------------------------------------------ real runs on a generated set
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_colour_dataset(tmp_path_factory.mktemp("sweep") / "data", classes=("red", "blue"), per_class=10, size=48)


def tiny_members(data):
    """The default backbone frozen and its cheapest partial fine-tune, 1 epoch at 64 px."""
    config = TrainConfig(data_dir=str(data), image_size=64, test_split=0.2)
    members = sweep.plan_sweep(config, skip=["full", "scratch"], epochs=1)
    frozen = next(m for m in members if m.kind == "frozen" and m.config.backbone == config.backbone)
    partial = next(m for m in members if m.kind == "partial")
    return [frozen, partial]


def new_project(tmp_path, data, name="p"):
    project = pj.Project.create(tmp_path / name)
    project.set_data(data, 0.2, 0.2, 0)
    project.save()
    return project


def test_chart_and_record_equal_the_runs_own_metrics(tmp_path, data):
    project = new_project(tmp_path, data)
    members = tiny_members(data)
    index = scan_folder(data, 0.2, 0.2, 0)
    record = sweep.run_sweep(project, members, index=index)
    on_disk = sweep.load_record(sweep.record_path(project, record.id))
    assert on_disk.to_dict() == record.to_dict()
    assert [m.status for m in record.members] == [sweep.FINISHED, sweep.FINISHED] and not record.stopped
    points = {p.name: p for p in sweep.chart_points(record.members)}
    for m in record.members:
        run = project.run_files(m.run_id).root
        metrics = json.loads((run / "metrics.json").read_text())
        summary = json.loads((run / "summary.json").read_text())
        history = [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines() if line.strip()]
        assert points[m.name].val_balanced_accuracy == metrics["balanced_accuracy"]
        assert points[m.name].val_accuracy == metrics["accuracy"]
        assert points[m.name].seconds == summary["seconds"]
        assert m.test_balanced_accuracy == metrics["test"]["balanced_accuracy"]
        assert (m.selection_score, m.selection_method) == sweep.selection_score(summary, history)
    assert record.members[0].selection_method == "cross-validation" and record.members[1].selection_method == "selection split"
    assert record.recommendation == sweep.recommend(record.members)
    assert "<svg" in render_html(record) and "http" not in render_html(record).replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_stopping_in_the_second_member_keeps_the_first_intact(tmp_path, data):
    project = new_project(tmp_path, data)
    members = tiny_members(data)
    stop = StopToken()
    second = {"started": False}

    def on_event(event):
        if isinstance(event, sweep.MemberStarted) and event.index == 1:
            second["started"] = True
        elif second["started"] and isinstance(event, Progress):
            stop.stop()

    record = sweep.run_sweep(project, [*members, replace(members[1], name="again")], on_event, stop)
    assert record.stopped
    assert [m.status for m in record.members] == [sweep.FINISHED, sweep.STOPPED, sweep.NOT_STARTED]
    first = project.load_run(record.members[0].run_id)
    assert first.record.status == pj.FINISHED and first.metrics["balanced_accuracy"] == record.members[0].val_balanced_accuracy
    assert (first.files.root / "summary.json").is_file()
    assert project.record(record.members[1].run_id).status == pj.CANCELLED
    assert record.recommendation.chosen == members[0].name  # the only finished member
    assert sweep.load_record(sweep.record_path(project, record.id)).to_dict() == record.to_dict()


def test_cli_sweep_prints_json_and_writes_the_report(tmp_path, data, capsys):
    skip = ",".join(["full", "scratch", *(n for n in sweep.bundled_backbones()[1:] for n in [f"frozen:{n}"])])
    partial = [f"partial:{d}" for d in sweep.partial_depths(TrainConfig.backbone)]
    code = main(["sweep", str(data), "--out", str(tmp_path / "s"), "--skip", ",".join([skip, *partial]), "--epochs", "1", "--image-size", "64"  , "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert [m["status"] for m in record["members"]] == [sweep.FINISHED] and record["recommendation"]["chosen"] == record["members"][0]["name"]
    assert record["members"][0]["estimated_seconds"] > 0
    assert (tmp_path / "s.tlstudio" / "sweeps" / record["id"] / "report.html").is_file()


def test_cli_sweep_refuses_a_bad_skip_before_any_work(tmp_path, data, capsys):
    assert main(["sweep", str(data), "--out", str(tmp_path / "s"), "--skip", "everything"]) == 2
    assert not (tmp_path / "s.tlstudio").exists()
