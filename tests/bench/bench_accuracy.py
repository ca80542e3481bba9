"""Accuracy benchmark: tlstudio's default frozen run beside two independent reference probes on the same features.

    .venv/bin/python -m tests.bench.bench_accuracy            # 3 split seeds, partial fine-tunes: about 25 min on 2 CPU cores
    .venv/bin/python -m tests.bench.bench_accuracy --quick    # split seed 0 only, no fine-tunes: about 8 min

For every data set under ../shared/datasets (hymenoptera with its own split; pbc_blood_cells and
its 30:1 subsample, each split 80/20 by seeds 0, 1, 2; see ``tests.accuracy_sets``) it runs
``tlstudio train DATA`` with the default settings (frozen EfficientNet-Lite0, light augmentation:
the head is fitted on every cached view of every training picture) and fits two references on
the same training rows' centre-crop features, in the same run: scikit-learn's logistic regression,
standardised, C by stratified 5-fold cross-validation on balanced accuracy, unweighted and with
balanced class weights. Validation figures are means over the split seeds, with the gaps in points.
Then the partial fine-tune (``--freeze-depth 7 --image-size 160 --epochs 3``, split seed 0), and
the head fit's speed: cross-validation and refit on 10,000 generated pictures x 5 views against
one plain fit of the same rows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.accuracy_sets import data_sets, reference_probe  # noqa: E402
from tlstudio.core.config import TrainConfig  # noqa: E402
from tlstudio.core.engine.trainer import Trainer  # noqa: E402


def rows_of(index, split: str) -> list[int]:
    return [i for i, s in enumerate(index.samples) if s.split == split]


def frozen_figures(ds, cache: Path, work: Path) -> dict:
    cfg = TrainConfig(data_dir=ds.index.root, seed=ds.index.seed, device="cpu", export=False)
    started = time.perf_counter()
    trainer = Trainer(cfg, work / ds.name.replace(" ", "_"), cache_dir=cache, index=ds.index)
    result = trainer.run()
    seconds = time.perf_counter() - started
    labels = np.array([s.label for s in ds.index.samples])
    train, val = rows_of(ds.index, "train"), rows_of(ds.index, "val")
    feats = trainer.features
    refs = {cw or "none": reference_probe(feats.train[0], labels[train], feats.val, labels[val], cw, ds.index.seed) for cw in (None, "balanced")}
    head = result.summary["head_fit"]
    return {
        "acc": result.metrics["accuracy"], "bal": result.metrics["balanced_accuracy"], "seconds": seconds,
        "head_seconds": head["seconds"], "rows": head["rows"], "weighting": head["class_weighting"], "l2": head["l2"],
        "ref_none": (refs["none"].accuracy, refs["none"].balanced_accuracy), "ref_bal": (refs["balanced"].accuracy, refs["balanced"].balanced_accuracy),
    }


def partial_figures(ds, cache: Path, work: Path) -> dict:
    cfg = TrainConfig(data_dir=ds.index.root, seed=ds.index.seed, device="cpu", export=False, freeze_depth="7", image_size=160, epochs=3)
    started = time.perf_counter()
    result = Trainer(cfg, work / (ds.name.replace(" ", "_") + "_partial"), cache_dir=cache, index=ds.index).run()
    return {"acc": result.metrics["accuracy"], "bal": result.metrics["balanced_accuracy"], "seconds": time.perf_counter() - started,
            "epoch": result.summary["best_epoch"], "weighting": result.summary["class_weighting"]}


def mean(values) -> float:
    return float(np.mean(list(values)))


def report_set(name: str, runs: list[dict]) -> None:
    acc, bal = mean(r["acc"] for r in runs), mean(r["bal"] for r in runs)
    ref_none = (mean(r["ref_none"][0] for r in runs), mean(r["ref_none"][1] for r in runs))
    ref_bal = (mean(r["ref_bal"][0] for r in runs), mean(r["ref_bal"][1] for r in runs))
    best_mean = max(sum(ref_none) / 2, sum(ref_bal) / 2)
    best_bal = max(ref_none[1], ref_bal[1])
    print(f"\n{name} (mean of {len(runs)} split seed{'s' if len(runs) > 1 else ''})")
    print(f"  tlstudio frozen default   accuracy {acc:.4f}  balanced {bal:.4f}  mean {(acc + bal) / 2:.4f}  "
          f"{mean(r['seconds'] for r in runs):.1f} s (head fit {mean(r['head_seconds'] for r in runs):.1f} s on {runs[0]['rows']} rows)")
    chosen = ", ".join("%s / L2 %g" % (r["weighting"], r["l2"]) for r in runs)
    print(f"    chose: {chosen}")
    print(f"  reference, unweighted     accuracy {ref_none[0]:.4f}  balanced {ref_none[1]:.4f}  mean {sum(ref_none) / 2:.4f}")
    print(f"  reference, balanced       accuracy {ref_bal[0]:.4f}  balanced {ref_bal[1]:.4f}  mean {sum(ref_bal) / 2:.4f}")
    print(f"  gap to the better reference: mean {100 * ((acc + bal) / 2 - best_mean):+.1f} points (goal >= -1.0), "
          f"balanced {100 * (bal - best_bal):+.1f} points (goal >= -2.0)")


def head_fit_speed(pictures: int = 10_000, views: int = 5, d: int = 1280, classes: int = 5) -> None:
    import torch

    from tlstudio.core.engine import linear_head as lh
    from tlstudio.core.events import StopToken

    rng = np.random.default_rng(0)
    labels = rng.choice(classes, size=pictures, p=[0.55, 0.25, 0.1, 0.06, 0.04])
    centres = rng.normal(size=(classes, d)).astype(np.float32) * 0.15
    base = centres[labels] + rng.normal(size=(pictures, d)).astype(np.float32)
    rows = [base.astype(np.float16)] + [(base + 0.5 * rng.normal(size=base.shape).astype(np.float32)).astype(np.float16) for _ in range(views - 1)]
    digests = [str(i) for i in range(pictures)]
    started = time.perf_counter()
    head = lh.fit_linear_head(rows, labels, digests, classes)
    cv_seconds = time.perf_counter() - started
    # One plain fit: the chosen setting on every row from a zero start, as a run without cross-validation would do.
    fold_of = np.zeros(pictures, dtype=np.int64)
    data = lh._data(rows, labels, fold_of, classes, torch.device("cpu"))
    weighting = "none" if head.weighting == "prior" else head.weighting
    problem = lh._problem(data.x, data.row_labels, [(0, len(data.row_labels))], weighting, classes)
    zero = (torch.zeros(classes, d), torch.zeros(classes))
    started = time.perf_counter()
    lh.solve(data.x, data.y, problem, head.l2, zero, StopToken())
    plain = time.perf_counter() - started
    print(f"\nhead fit on {pictures:,} generated pictures x {views} views ({pictures * views:,} rows, {d} features, {classes} classes, imbalanced):")
    print(f"  cross-validation ({head.folds} folds, {len(head.candidates)} settings) and refit: {cv_seconds:.1f} s (goal < 60 s); "
          f"one plain fit: {plain:.1f} s; ratio {cv_seconds / plain:.1f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_accuracy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="split seed 0 only, no partial fine-tunes")
    args = parser.parse_args(argv)
    seeds = (0,) if args.quick else (0, 1, 2)
    sets = data_sets(seeds)
    if not sets:
        print("no data set under ../shared/datasets: nothing to measure")
    with tempfile.TemporaryDirectory(prefix="tlstudio-accuracy-") as tmp:
        work, cache = Path(tmp) / "runs", Path(tmp) / "cache"
        for name, members in sets:
            report_set(name, [frozen_figures(ds, cache, work) for ds in members])
            if not args.quick:
                p = partial_figures(members[0], cache, work)
                print(f"  partial fine-tune (freeze 7, 160 px, 3 epochs, {members[0].name}): accuracy {p['acc']:.4f}  balanced {p['bal']:.4f}  "
                      f"{p['seconds']:.1f} s, epoch {p['epoch']} kept, weighting {p['weighting']}")
    head_fit_speed()
    return 0


if __name__ == "__main__":
    sys.exit(main())
