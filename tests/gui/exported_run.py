"""A project with one finished frozen run that has its verified model.pt, trained once per test module."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.gui.conftest import fast
from tests.synthetic import make_colour_dataset


def make_project_with_exported_run(root: Path) -> tuple[Path, Path]:
    """``(project folder, the run's model.pt)``."""
    from tlstudio.core.engine.trainer import Trainer
    from tlstudio.core.runs import project as pj

    data = make_colour_dataset(root / "colours", per_class=8).resolve()
    project = pj.Project.create(root / "Exported")
    project.set_data(str(data), 0.25, 0.0, 0)
    cfg = project.train_config()
    fast(cfg)
    cfg.export, cfg.epochs = True, 1
    files = project.new_run(cfg)
    project.finish_run(files.root.name, pj.FINISHED, Trainer(cfg, files.root, cache_dir=project.cache_dir).run().summary)
    project.save()
    return project.root, files.model


def new_pictures(data: Path, dest: Path, copies: int = 1) -> Path:
    """``dest`` holding the colour pictures at several depths (``copies`` times over) and one broken JPEG."""
    sources = sorted(data.rglob("*.jpg"))
    for n in range(copies):
        for i, src in enumerate(sources):
            folder = dest / f"batch{n}" / ("deeper/still" if i % 3 == 0 else "deeper" if i % 3 == 1 else "")
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, folder / f"{i:03d}_{src.name}")
    whole = sources[0].read_bytes()
    (dest / "broken.jpg").write_bytes(whole[: len(whole) * 2 // 3])
    (dest / "notes.txt").write_text("not a picture")
    return dest


def assert_same_predictions_csv(ours: Path, theirs: Path) -> None:
    """Our CSV is ``tlstudio predict``'s: the same columns, rows, order, answers and errors, and the same probabilities to
    probabilities within 1e-5 (the window's worker runs torch on one core fewer than the command did, so sums are taken
    in another order, and dividing by the run's temperature carries that difference into the sixth decimal)."""
    import csv

    mine, cli = (list(csv.reader(p.read_text(encoding="utf-8").splitlines())) for p in (ours, theirs))
    assert mine[0] == cli[0] and len(mine) == len(cli) > 1
    probability = [i for i, name in enumerate(cli[0]) if name.startswith("probability_")]
    for a, b in zip(mine[1:], cli[1:]):
        assert [v for i, v in enumerate(a) if i not in probability] == [v for i, v in enumerate(b) if i not in probability]
        assert all(abs(float(a[i] or 0) - float(b[i] or 0)) <= 1e-5 for i in probability), (a, b)
