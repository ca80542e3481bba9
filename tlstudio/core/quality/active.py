"""What to label next: unlabelled pictures ranked by how much a label would teach the model.

The model is the frozen-feature head (``engine.linear_head``, fitted on the labelled pictures as a frozen run
fits it). A picture is worth labelling when the head is unsure of it: its uncertainty is one minus the
margin between its two most probable classes. Uncertainty alone picks near-copies of one confusing
picture, so the ranking is greedy: each next picture maximises its uncertainty times its cosine distance
to the pictures already picked (and to the labelled ones), so the top 20 spread over what the model does
not know yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from tlstudio.core.engine.linear_head import LinearHead, fit_linear_head
from tlstudio.core.errors import UserError
from tlstudio.core.events import PhaseStarted, Progress, StopToken, as_token


@dataclass(frozen=True)
class LabelNext:
    position: int  # into the unlabelled pictures given
    uncertainty: float  # 1 - (p1 - p2): 1 when the two likeliest classes tie
    guess: int  # the head's answer, offered as the first choice
    confidence: float


def unit_rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    x = x - x.mean(0, keepdims=True) if len(x) > 1 else x
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fit_head(features: np.ndarray, labels: np.ndarray, digests: Sequence[str], num_classes: int, seed: int = 0,
             stop: Optional[StopToken] = None) -> LinearHead:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    if (counts > 0).sum() < 2:
        raise UserError("label pictures of at least two classes first: the model that ranks the rest needs them.")
    return fit_linear_head([features], labels, digests, num_classes, seed=seed, stop=stop, folds=int(min(5, max(2, counts[counts > 0].min()))))


def probabilities(head: LinearHead, features: np.ndarray) -> np.ndarray:
    logits = np.asarray(features, dtype=np.float32) @ head.weight.T + head.bias
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(1, keepdims=True)


def rank_for_labelling(labelled: np.ndarray, labels: np.ndarray, digests: Sequence[str], pool: np.ndarray, num_classes: int,
                       k: int = 20, seed: int = 0, stop: Optional[StopToken] = None) -> list[LabelNext]:
    """The ``k`` pictures of ``pool`` (features of unlabelled pictures) to label next, best first."""
    stop = as_token(stop)
    if len(pool) == 0:
        return []
    head = fit_head(labelled, labels, digests, num_classes, seed, stop)
    p = probabilities(head, pool)
    top2 = np.sort(p, axis=1)[:, -2:] if p.shape[1] > 1 else np.concatenate([np.zeros((len(p), 1)), p], 1)
    uncertainty = 1.0 - (top2[:, 1] - top2[:, 0])
    rows = unit_rows(np.concatenate([pool, labelled]))  # centred on all the pictures, so directions mean differences
    picked = greedy_spread(uncertainty, rows[: len(pool)], rows[len(pool):], k, stop)
    return [LabelNext(int(i), float(uncertainty[i]), int(p[i].argmax()), float(p[i].max())) for i in picked]


def greedy_spread(uncertainty: np.ndarray, pool: np.ndarray, known: np.ndarray, k: int, stop: StopToken) -> list[int]:
    """Greedy picks maximising uncertainty x cosine distance to what is picked or known (unit rows)."""
    nearest = np.full(len(pool), 2.0, dtype=np.float32)  # cosine distance to the nearest picked or known picture (at most 2)
    for start in range(0, len(known), 1024):
        nearest = np.minimum(nearest, 1.0 - (pool @ known[start : start + 1024].T).max(1))
    picked: list[int] = []
    available = np.ones(len(pool), dtype=bool)
    for _ in range(min(k, len(pool))):
        stop.check()
        score = np.where(available, uncertainty * np.clip(nearest, 0.0, None), -1.0)
        best = int(score.argmax())
        picked.append(best)
        available[best] = False
        nearest = np.minimum(nearest, 1.0 - pool @ pool[best])
    return picked


# ------------------------------------------------------------------ new pictures of a folder
@dataclass(frozen=True)
class NewPick:
    path: str  # absolute
    uncertainty: float
    guess: str  # the head's answer, offered first
    confidence: float


def rank_new_pictures(index, new_dir, cache_dir, k: int = 20, seed: int = 0, device: str = "auto",
                      on_event=None, stop: Optional[StopToken] = None) -> list[NewPick]:
    """The ``k`` pictures under ``new_dir`` to label next, for the labelled training pictures of ``index``."""
    from tlstudio.core.adapt.pictures import read_new_pictures
    from tlstudio.core.catalog import backbones as bb
    from tlstudio.core.catalog.build import build_backbone
    from tlstudio.core.data.augment import Augmenter
    from tlstudio.core.data.preprocess import preprocessing_for
    from tlstudio.core.engine.device import autocast_dtype, embedding_batch, resolve_device
    from tlstudio.core.engine.features import embed
    from tlstudio.core.events import ignore_events
    from tlstudio.core.quality.embeddings import DEFAULT_BACKBONE, embed_dataset

    on_event, stop = on_event or ignore_events, as_token(stop)
    emb = embed_dataset(index, cache_dir, DEFAULT_BACKBONE, seed, device, on_event, stop)
    train = emb.rows("train")
    spec = bb.get_backbone(DEFAULT_BACKBONE)
    pre, dev = preprocessing_for(spec), resolve_device(device)
    new = read_new_pictures(new_dir, pre.resize_size, seed, on_event, stop)
    network = build_backbone(spec.name, pretrained=True).eval().to(dev)
    crop = Augmenter("none", pre.input_size, pre.interpolation)
    on_event(PhaseStarted("embedding new pictures", len(new)))
    done = [0]

    def step(n: int) -> None:
        done[0] += n
        on_event(Progress(done[0], len(new)))

    pool = np.asarray(embed(network, lambda i: crop.eval_view(new.squares[i]), len(new), pre, dev, embedding_batch(dev, 32), autocast_dtype(dev, "auto"),
                            False, lambda shape: np.empty(shape, dtype=np.float16), step, stop), dtype=np.float32)
    ranked = rank_for_labelling(emb.features[train], emb.labels[train], [index.samples[i].digest for i in train], pool, len(index.classes), k, seed, stop)
    return [NewPick(str(new.paths[r.position]), r.uncertainty, index.classes[r.guess], r.confidence) for r in ranked]
