"""``check_dataset``: everything the checks of a folder find, before any training, as one typed report.

Phases: decoding and caching features (``quality.embeddings``), then fitting the head's folds
(suspected wrong labels, on the training pictures), then comparing pictures (near-duplicates
and outliers, on every split). Each phase speaks in events and stops at the stop token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from tlstudio.core.data.index import DatasetIndex
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, PhaseStarted, Progress, StopToken, as_token, ignore_events
from tlstudio.core.quality.embeddings import DEFAULT_BACKBONE, Embeddings, embed_dataset
from tlstudio.core.quality.label_issues import Suspect, out_of_fold_probs, suspects
from tlstudio.core.quality.near_duplicates import CONFLICT, LEAKAGE, MARGIN, NearDuplicate, near_duplicates
from tlstudio.core.quality.outliers import Outlier, outliers

REPORT_VERSION = 1


@dataclass
class CheckReport:
    data_dir: str
    backbone: str
    pictures: int
    training_pictures: int
    suspects: list[Suspect]  # ranked, least confident in their folder label first
    near_duplicates: list[NearDuplicate]  # most similar first
    outliers: list[Outlier]  # every picture, ranked within its class (``flagged`` ones are far from every class)
    margin: float = MARGIN  # how far above both pictures' usual neighbours a near-duplicate stands
    cache_reused: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> list[NearDuplicate]:
        return [p for p in self.near_duplicates if p.cross_class]

    @property
    def leaks(self) -> list[NearDuplicate]:
        return [p for p in self.near_duplicates if p.cross_split]

    @property
    def flagged_outliers(self) -> list[Outlier]:
        return sorted((o for o in self.outliers if o.flagged), key=lambda o: -o.z)

    def counts(self) -> dict[str, int]:
        return {
            "suspected_wrong_labels": len(self.suspects),
            "near_duplicates": len(self.near_duplicates),
            "label_conflicts": len(self.conflicts),
            "leakage": len(self.leaks),
            "outliers": len(self.flagged_outliers),
        }

    def to_dict(self) -> dict:
        return {
            "version": REPORT_VERSION,
            "data_dir": self.data_dir,
            "backbone": self.backbone,
            "pictures": self.pictures,
            "training_pictures": self.training_pictures,
            "margin": self.margin,
            "cache_reused": self.cache_reused,
            "counts": self.counts(),
            "suspects": [s.to_dict() for s in self.suspects],
            "near_duplicates": [p.to_dict() for p in self.near_duplicates],
            "outliers": [o.to_dict() for o in self.outliers],
            "notes": list(self.notes),
            "kinds": {"conflict": CONFLICT, "leakage": LEAKAGE},
        }


def check_dataset(
    index: DatasetIndex,
    cache_dir: Optional[str | Path],
    backbone: str = DEFAULT_BACKBONE,
    seed: int = 0,
    device: str = "auto",
    on_event: EventCallback = ignore_events,
    stop: Optional[StopToken] = None,
) -> CheckReport:
    stop = as_token(stop)
    if not index.samples:
        raise UserError(f"'{index.root}' has no usable pictures to check; add images in one sub-folder per class.")
    emb = embed_dataset(index, cache_dir, backbone, seed, device, on_event, stop)
    return report_from_embeddings(emb, seed, on_event, stop)


def report_from_embeddings(emb: Embeddings, seed: int = 0, on_event: EventCallback = ignore_events, stop: Optional[StopToken] = None) -> CheckReport:
    """The findings on features already computed (tests and benchmarks relabel an index without re-embedding)."""
    stop = as_token(stop)
    index, x, labels = emb.index, emb.features, emb.labels
    paths = [s.path for s in index.samples]
    splits = [s.split for s in index.samples]
    notes: list[str] = []
    train = emb.rows("train")
    found: list[Suspect] = []
    if _enough_for_folds(labels[train], len(index.classes)):
        on_event(PhaseStarted("fitting the head's folds", 0))
        digests = [index.samples[i].digest for i in train]
        probs = out_of_fold_probs(x[train], labels[train], digests, len(index.classes), seed, stop, lambda d, t: on_event(Progress(d, t, "fits")))
        found = suspects([paths[i] for i in train], labels[train], probs, index.classes)
    else:
        notes.append("Suspected wrong labels need at least 2 training pictures in each of 2 or more classes; none were looked for.")
    stop.check()
    on_event(PhaseStarted("comparing pictures", len(paths)))
    pairs = near_duplicates(x, emb.thumbnails, paths, labels, splits, [s.digest for s in index.samples], index.classes)
    far = outliers(x, paths, labels, splits, index.classes)
    on_event(Progress(len(paths), len(paths)))
    return CheckReport(str(index.root), emb.backbone, len(paths), len(train), found, pairs, far, cache_reused=emb.reused, notes=notes)


def _enough_for_folds(labels: np.ndarray, num_classes: int) -> bool:
    counts = np.bincount(labels, minlength=num_classes)
    return int((counts >= 2).sum()) >= 2
