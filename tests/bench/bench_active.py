"""What to label next, measured: labelling the 40 top-ranked pictures against 40 random ones.

    .venv/bin/python -m tests.bench.bench_active [--seeds 0 1 2 3 4] [--cache DIR]

On ../shared/datasets/pbc_blood_cells (split 80/20 by each seed, as ``tests.accuracy_sets`` does), 90% of the
training labels are hidden (drawn by the seed, at least one picture of each class kept). The frozen head is
fitted on the 10% and ranks the hidden pictures (``quality.active``); their true labels are revealed for the
top 40, or for 40 drawn at random, and the head is fitted again. Printed: the validation balanced accuracy
of each arm per seed and their means. Nothing is chosen on the validation pictures. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.accuracy_sets import PBC, pbc_available, seeded_split  # noqa: E402
from tlstudio.core.data.scan import scan_folder  # noqa: E402
from tlstudio.core.quality.active import fit_head, probabilities, rank_for_labelling  # noqa: E402
from tlstudio.core.quality.embeddings import embed_dataset  # noqa: E402
from tlstudio.core.report.metrics import accuracy_scores  # noqa: E402

KEPT = 0.10
BUDGET = 40


def hidden_split(labels: np.ndarray, seed: int, kept: float = KEPT) -> tuple[np.ndarray, np.ndarray]:
    """(labelled positions, hidden positions) of the training pictures: ``kept`` of each class stays labelled (at least one)."""
    rng = np.random.default_rng([seed, 90])
    known = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        known += list(members[: max(1, int(round(kept * len(members))))])
    known = np.sort(np.asarray(known))
    return known, np.setdiff1d(np.arange(len(labels)), known)


def balanced_after(x, y, digests, val_x, val_y, classes: int, rows: np.ndarray, seed: int) -> float:
    head = fit_head(x[rows], y[rows], [digests[i] for i in rows], classes, seed)
    return accuracy_scores(val_y, probabilities(head, val_x).argmax(1))[1]


def one_seed(emb, seed: int) -> dict:
    index = seeded_split(emb.index, seed)
    splits = np.asarray([s.split for s in index.samples])
    train, val = np.flatnonzero(splits == "train"), np.flatnonzero(splits == "val")
    x, y, digests = emb.features[train], emb.labels[train], [index.samples[i].digest for i in train]
    known, hidden = hidden_split(y, seed)
    classes = len(index.classes)
    ranked = rank_for_labelling(x[known], y[known], [digests[i] for i in known], x[hidden], classes, k=BUDGET, seed=seed)
    top = hidden[[r.position for r in ranked]]
    drawn = np.random.default_rng([seed, 40]).choice(hidden, BUDGET, replace=False)
    val_x, val_y = emb.features[val], emb.labels[val]
    figures = {arm: balanced_after(x, y, digests, val_x, val_y, classes, np.concatenate([known, extra]), seed)
               for arm, extra in (("ranked", top), ("random", drawn), ("none", np.zeros(0, dtype=np.int64)))}
    return {"seed": seed, "labelled": len(known), **figures}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--cache", default=None, help="cache for decoded images and features (default: the per-user cache)")
    args = parser.parse_args(argv)
    if not pbc_available():
        print(f"skipped: {PBC} is absent")
        return 0
    from tlstudio.core.paths import cache_dir

    emb = embed_dataset(scan_folder(PBC, val_split=0.2, seed=0), args.cache or cache_dir())
    rows = [one_seed(emb, s) for s in args.seeds]
    print(f"{'seed':>4} {'labelled':>8} {'10% only':>9} {'+40 random':>11} {'+40 ranked':>11}")
    for r in rows:
        print(f"{r['seed']:>4} {r['labelled']:>8} {100 * r['none']:>8.1f}% {100 * r['random']:>10.1f}% {100 * r['ranked']:>10.1f}%")
    mean = {arm: float(np.mean([r[arm] for r in rows])) for arm in ("none", "random", "ranked")}
    print(f"mean {'':>8} {100 * mean['none']:>8.1f}% {100 * mean['random']:>10.1f}% {100 * mean['ranked']:>10.1f}%  "
          f"(ranked - random: {100 * (mean['ranked'] - mean['random']):+.1f} points of validation balanced accuracy)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
