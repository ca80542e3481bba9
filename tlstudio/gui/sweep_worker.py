"""The strategy sweep off the GUI thread: its estimate and its runs, each a ``workers.Job`` (a QThread, queued signals).

The work functions only touch plain data (the project on disk, the scanned index); the view hears
their events (``sweep.MemberStarted``/``MemberEnded`` and the runs' own) and their result as signals.
With the studio's ``Jobs`` the jobs are listed there (failures reach its notifier); without, they run alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from tlstudio.core.runs import sweep
from tlstudio.gui.workers import Job, Jobs, Work


@dataclass(frozen=True)
class Estimated:
    """The estimate job's result: the scanned pictures (shared by every member's run) and each member's seconds."""

    index: object  # DatasetIndex
    estimates: tuple[sweep.MemberEstimate, ...]


def start(jobs: Optional[Jobs], name: str, title: str, fn: Work) -> Job:
    if jobs is not None:
        return jobs.start(name, title, fn)
    job = Job(name, title, fn)
    job.start()
    return job


def estimate_work(project, members: Sequence[sweep.SweepMember], index=None) -> Work:
    data_dir, val, test, seed = project.data_dir, project.val_split, project.test_split, project.seed

    def work(on_event, stop) -> Estimated:
        from tlstudio.core.data.scan import scan_folder

        scanned = index if index is not None else scan_folder(data_dir, val, test, seed, on_event, stop)
        estimates = sweep.estimate_sweep(members, sweep.split_sizes(scanned), len(scanned.classes), stop)
        return Estimated(scanned, tuple(estimates))

    return work


def sweep_work(project, members: Sequence[sweep.SweepMember], index, estimates: Sequence[sweep.MemberEstimate]) -> Work:
    members, estimates = list(members), list(estimates)

    def work(on_event, stop) -> sweep.SweepRecord:
        return sweep.run_sweep(project, members, on_event, stop, index=index, estimates=estimates)

    return work
