"""The strategy sweep view: members with estimates, a sweep in its worker shown as the record says, and Stop."""

from __future__ import annotations

import pytest

from tlstudio.core.config import TrainConfig
from tlstudio.core.runs import project as pj
from tlstudio.core.runs import sweep
from tlstudio.core.runs.sweep_report import table_rows


@pytest.fixture
def view(qtbot, tmp_path):
    from tests.synthetic import make_colour_dataset
    from tlstudio.gui.app import make_application
    from tlstudio.gui.widgets.sweep_view import SweepView

    make_application()
    data = make_colour_dataset(tmp_path / "data", classes=("red", "blue"), per_class=10, size=48)
    project = pj.Project.create(tmp_path / "p")
    project.set_data(data, 0.2, 0.0, 0)
    project.config = TrainConfig(image_size=64, batch_size=8).to_dict()
    project.save()
    widget = SweepView(project)
    qtbot.addWidget(widget)
    # The default backbone frozen and the cheapest partial fine-tune: seconds on 2 CPU cores.
    others = [f"frozen:{name}" for name in sweep.bundled_backbones() if name != TrainConfig.backbone]
    partial = sweep.partial_depths(TrainConfig.backbone)
    with qtbot.waitSignal(widget.estimated, timeout=60_000):
        widget.plan(skip=["full", "scratch", *others, *(f"partial:{d}" for d in partial[1:])], epochs=1)
    qtbot.waitUntil(lambda: widget.job is None, timeout=10_000)
    return widget


def test_members_are_listed_with_their_estimates(view):
    names = [view.member_list.item(i).data(256) for i in range(view.member_list.count())]  # Qt.UserRole
    assert names == [m.name for m in view.members] and len(names) == 2
    assert set(view.estimates) == set(names) and all(s > 0 for s in view.estimates.values())
    assert view.checked_names() == set(names) and view.start_button.isEnabled()


def test_a_sweep_shows_the_record_in_chart_and_table(qtbot, view):
    with qtbot.waitSignal(view.sweep_finished, timeout=120_000) as blocker:
        view.start()
    record = blocker.args[0]
    assert [m.status for m in record.members] == [sweep.FINISHED, sweep.FINISHED]
    qtbot.waitUntil(lambda: view.job is None, timeout=10_000)
    shown = view.chart_values()
    assert [n for n, _, _ in shown] == [m.name for m in record.members]
    for (_, seconds, acc), m in zip(shown, record.members):
        assert seconds == pytest.approx(m.seconds) and acc == pytest.approx(m.val_balanced_accuracy)
    cells = [tuple(view.table.item(r, c).text() for c in range(view.table.columnCount())) for r in range(view.table.rowCount())]
    assert cells == table_rows(sweep.load_record(sweep.record_path(view.project, record.id)).members)
    assert view.recommendation.text() == sweep.recommendation_sentence(record.recommendation, record.members)


def test_unchecked_members_do_not_run_and_stop_ends_the_sweep(qtbot, view):
    view.set_checked(view.members[0].name, False)
    view.start()
    assert [r.name for r in view.results] == [view.members[1].name]
    view.job.event.connect(lambda e: view.stop() if isinstance(e, sweep.MemberStarted) else None)
    with qtbot.waitSignal(view.sweep_finished, timeout=60_000) as blocker:
        pass
    record = blocker.args[0]
    assert record.stopped and [m.status for m in record.members] == [sweep.STOPPED]
    qtbot.waitUntil(lambda: view.job is None and view.start_button.isEnabled(), timeout=10_000)
