"""The shared real data sets as the accuracy benchmark and its tests read them, and the independent reference probe.

- ``hymenoptera``: its own train/ and val/ folders (one split);
- ``pbc_blood_cells``: 1,150 white-blood-cell images, 12:1, split 80/20 by a seed;
- ``pbc_blood_cells 30:1``: the same with its rarest class cut to 1/30 of the largest
  (a seeded draw, the same for every split seed), split 80/20 by a seed.

The reference is scikit-learn's ``LogisticRegression`` on standardised centre-crop features
of the same training rows, C from a wide grid by stratified 5-fold cross-validation on the
training rows (scored by balanced accuracy), run to convergence: unweighted and with balanced
class weights.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from tlstudio.core.data.scan import scan_folder, stratified_split
from tlstudio.core.data.index import DatasetIndex

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
HYMENOPTERA = SHARED / "hymenoptera"
PBC = SHARED / "pbc_blood_cells"
REFERENCE_C = tuple(np.logspace(-4, 2, 13))


def pbc_available() -> bool:
    return (PBC / "neutrophil").is_dir()


def seeded_split(index: DatasetIndex, seed: int, val_split: float = 0.2) -> DatasetIndex:
    names = [index.classes[s.label] for s in index.samples]
    splits = stratified_split(names, [s.digest for s in index.samples], val_split, 0.0, seed)
    samples = [replace(s, split=split) for s, split in zip(index.samples, splits)]
    return replace(index, samples=samples, split_source="seeded", val_split=val_split, seed=seed)


def rare_subsample(index: DatasetIndex, ratio: int = 30, draw_seed: int = 0) -> DatasetIndex:
    """The rarest class cut to ceil(largest / ratio) images, drawn with ``draw_seed``; the rest unchanged."""
    counts = np.bincount([s.label for s in index.samples], minlength=len(index.classes))
    rare = int(counts.argmin())
    keep = math.ceil(counts.max() / ratio)
    members = sorted(s.path for s in index.samples if s.label == rare)
    kept = set(random.Random(f"rare/{draw_seed}").sample(members, keep))
    return replace(index, samples=[s for s in index.samples if s.label != rare or s.path in kept])


@dataclass(frozen=True)
class DataSet:
    name: str
    index: DatasetIndex


def data_sets(seeds: tuple[int, ...]) -> list[tuple[str, list[DataSet]]]:
    """Each available set with one index per split seed (hymenoptera: its own split, once)."""
    out = []
    if (HYMENOPTERA / "train").is_dir():
        out.append(("hymenoptera", [DataSet("hymenoptera", scan_folder(HYMENOPTERA))]))
    if pbc_available():
        full = scan_folder(PBC, val_split=0.2, seed=0)
        out.append(("pbc_blood_cells", [DataSet(f"pbc seed {s}", seeded_split(full, s)) for s in seeds]))
        rare = rare_subsample(full)
        out.append(("pbc_blood_cells 30:1", [DataSet(f"pbc 30:1 seed {s}", seeded_split(rare, s)) for s in seeds]))
    return out


@dataclass(frozen=True)
class Reference:
    accuracy: float
    balanced_accuracy: float
    C: float


def reference_probe(train_x, train_y, val_x, val_y, class_weight: Optional[str], seed: int) -> Reference:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    from tlstudio.core.report.metrics import accuracy_scores

    scaler = StandardScaler().fit(np.asarray(train_x, dtype=np.float64))
    search = GridSearchCV(
        LogisticRegression(max_iter=20_000, tol=1e-6, class_weight=class_weight),
        {"C": list(REFERENCE_C)},
        cv=StratifiedKFold(5, shuffle=True, random_state=seed),
        scoring="balanced_accuracy",
        n_jobs=2,
    )
    search.fit(scaler.transform(np.asarray(train_x, dtype=np.float64)), train_y)
    preds = search.predict(scaler.transform(np.asarray(val_x, dtype=np.float64)))
    accuracy, balanced = accuracy_scores(val_y, preds)
    return Reference(accuracy, balanced, float(search.best_params_["C"]))
