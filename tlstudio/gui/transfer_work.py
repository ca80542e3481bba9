"""The work of the Evaluate step's adapt / shrink / combine actions, and their results in words.

Each ``*_work`` returns a ``workers.Work`` (``fn(on_event, stop) -> result``) that touches only plain data:
the project on disk and the core's functions. The ``describe_*`` functions turn the core's typed results
into the short rich text their box shows; every figure there comes from that result.
"""

from __future__ import annotations

import html
from datetime import datetime
from pathlib import Path
from typing import Optional, Sequence

from tlstudio.core.errors import UserError
from tlstudio.core.runs import project as pj
from tlstudio.core.runs.project import Project, RunInfo
from tlstudio.gui.workers import Work

METHOD_WORDS = {"adabn": "AdaBN", "coral": "CORAL", "adabn+coral": "AdaBN + CORAL"}


def _pct(v: Optional[float]) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


# ------------------------------------------------------------------ adapt
def adapt_work(project: Project, run: RunInfo, new_pictures: str, method: str) -> Work:
    if not new_pictures:
        raise UserError("there is no folder of new pictures. Choose one on the Data step (New pictures), then adapt.")
    source_dir, config = run.files.root, run.config

    def work(on_event, stop):
        from tlstudio.core.adapt.adapt_run import adapt_run

        files = project.new_run(config, remember=False)
        try:
            result = adapt_run(source_dir, new_pictures, files.root, method=method, cache_dir=project.cache_dir, on_event=on_event, stop=stop)
        except BaseException:
            if not project.discard_run(files.root.name):
                project.finish_run(files.root.name, pj.FAILED, message="adaptation did not finish")
            raise
        project.finish_run(files.root.name, pj.FINISHED, files.read_json(files.summary, {}) or {})
        project.rename_run(files.root.name, f"{(run.record.name or run.id)[:50]} adapted ({METHOD_WORDS.get(method, method)})")
        return result

    return work


def new_run_id(result) -> str:
    """The run a result made, when it made one (an adaptation)."""
    folder = getattr(result, "run_dir", None)
    return Path(folder).name if folder else ""


def describe_adaptation(result) -> str:
    before, after = result.before, result.after
    lines = [
        f"<b>Adapted to {result.pictures} new pictures</b> ({html.escape(METHOD_WORDS.get(result.method, result.method))}): "
        "a new run, now shown above." + (f" {result.skipped} could not be read and were skipped." if result.skipped else ""),
        f"How well a classifier tells the two kinds of pictures apart: {_pct(before.gap.classifier_accuracy)} before, "
        f"{_pct(after.gap.classifier_accuracy)} after (50% means they look alike to the model).",
        f"Validation accuracy on the training kind of pictures: {_pct(before.source_val_accuracy)} before, {_pct(after.source_val_accuracy)} after.",
    ]
    if after.labelled_accuracy is not None:
        lines.append(f"On your {result.labelled_pictures} labelled new pictures: {_pct(before.labelled_accuracy)} before, {_pct(after.labelled_accuracy)} after.")
    return "<br>".join(lines)


# ------------------------------------------------------------------ make it smaller
def student_config(project: Project, teacher: RunInfo, backbone: str, trained_stages: int):
    """The smaller model's TrainConfig: the project's settings, the teacher's split, ``trained_stages`` last stages fine-tuned."""
    from tlstudio.core.catalog.backbones import get_backbone
    from tlstudio.core.engine.distill import distill_config

    n = len(get_backbone(backbone).stages)
    depth = "all" if trained_stages <= 0 else ("none" if trained_stages >= n else str(n - trained_stages))
    return distill_config(project.train_config(), teacher.files.root, backbone, depth)


def teacher_of(run: RunInfo) -> Optional[dict]:
    """The teacher a run was distilled from (its summary), or None."""
    teacher = (run.record.summary or {}).get("teacher")
    return teacher if isinstance(teacher, dict) and teacher.get("run_dir") else None


def compare_work(student: RunInfo) -> Work:
    teacher_dir, student_dir = teacher_of(student)["run_dir"], student.files.root
    if not Path(teacher_dir).is_dir():
        raise UserError(f"the teacher '{teacher_dir}' is not there any more, so there is nothing to compare with.")

    def work(on_event, stop):
        from tlstudio.core.engine.distill import compare_distillation

        return compare_distillation(student_dir, teacher_dir, stop=stop)

    return work


def describe_distillation(report) -> str:
    s, t = report.student, report.teacher
    rows = "".join(
        f"<tr><td>{name}</td><td>{html.escape(m.backbone)}</td><td>{_pct(m.accuracy)}</td><td>{_pct(m.balanced_accuracy)}</td>"
        f"<td>{m.megabytes:.1f} MB</td><td>{m.images_per_s:,.0f}</td></tr>"
        for name, m in (("Smaller model", s), ("Teacher", t))
    )
    head = "<tr><th></th><th>backbone</th><th>accuracy</th><th>balanced</th><th>size</th><th>images/s</th></tr>"
    note = "" if report.same_validation else "<br><b>Measured on different validation pictures: compare with care.</b>"
    return f"<table>{head}{rows}</table>The smaller model is {report.speedup:.1f}x as fast here.{note}"


# ------------------------------------------------------------------ combine
def combine_work(project: Project, runs: Sequence[RunInfo]) -> Work:
    run_dirs = [r.files.root for r in runs]
    dest = project.root / "ensembles" / datetime.now().strftime("%Y-%m-%d_%H-%M-%S")

    def work(on_event, stop):
        from tlstudio.core.inference.ensemble import combine_runs

        return combine_runs(run_dirs, dest, on_event, stop)

    return work


def describe_ensemble(result) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(m.run_id)}</td><td>{html.escape(m.backbone)}</td><td>{_pct(m.val_accuracy)}</td><td>{_pct(m.val_balanced_accuracy)}</td></tr>"
        for m in result.members
    )
    rows += f"<tr><td><b>Combined</b></td><td></td><td><b>{_pct(result.val_accuracy)}</b></td><td><b>{_pct(result.val_balanced_accuracy)}</b></td></tr>"
    head = "<tr><th>run</th><th>backbone</th><th>accuracy</th><th>balanced</th></tr>"
    return (f"<table>{head}{rows}</table>On the same {result.val_pictures} validation pictures. "
            f"Model file (checked in a fresh process): {html.escape(str(result.model_path))}")
