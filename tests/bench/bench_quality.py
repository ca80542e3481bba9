"""What the checks of a folder find on the shared sets (issue 17, items 1 and 2).

    nice -n 10 .venv/bin/python -m tests.bench.bench_quality [--cache DIR] [--seeds 0 1 2] [--into uniform prior]
        [--only labels duplicates outliers]

- suspected wrong labels: 5% of the training labels flipped at random (seeded, in the index: the
  folder is never touched): the share of the flipped pictures among the top 2 x (number flipped)
  suspects; 15% flipped: validation accuracy of a frozen head trained on the clean labels, on the
  noisy ones, and on the noisy ones without the suspects (hymenoptera and pbc_blood_cells; on pbc also with
  the new class drawn by class size, as uniform draws bury its 40 training basophils under ~30 wrong ones);
- near-duplicates: 50 hymenoptera pictures with generated copies (resized to 70%, JPEG quality 40,
  5% crop): how many are found, and the false pairs among the rest of hymenoptera and the blood cells,
  with the similarity margins the threshold sits in;
- outliers: 10 blood-cell pictures dropped into hymenoptera's 'ants' (training): their ranks among the
  class's outliers (goal: all in the top 20).

Everything runs on the frozen features of the default backbone (efficientnet_lite0), through the
feature cache, on the CPU.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from tlstudio.core.data.index import DatasetIndex
from tlstudio.core.data.scan import scan_folder
from tlstudio.core.engine.linear_head import fit_linear_head
from tlstudio.core.quality.embeddings import Embeddings, embed_dataset
from tlstudio.core.quality.label_issues import find_label_issues, out_of_fold_probs
from tlstudio.core.quality.near_duplicates import FLOOR, MARGIN, SIMILAR, similar_pairs
from tlstudio.core.quality.outliers import outliers
from tlstudio.core.report.metrics import accuracy_scores

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"
HYMENOPTERA = SHARED / "hymenoptera"
PBC = SHARED / "pbc_blood_cells"


# ----------------------------------------------------------------------------------- label noise


UNIFORM, PRIOR = "uniform", "prior"  # a flipped label goes to any other class alike, or in proportion to the classes' sizes


def flip_labels(index: DatasetIndex, fraction: float, seed: int, into: str = UNIFORM) -> tuple[DatasetIndex, set[str]]:
    """``index`` with round(fraction x training pictures) training labels moved to another class at random.

    Uniformly, a 12:1 set's rarest folder receives about as many wrong pictures as it has right ones
    (pbc: ~30 flipped into the 40 training basophils at 15%); ``PRIOR`` draws the new class by size."""
    rng = random.Random(f"flip/{seed}")
    train = [i for i, s in enumerate(index.samples) if s.split == "train"]
    chosen = rng.sample(train, int(round(fraction * len(train))))
    sizes = np.bincount([index.samples[i].label for i in train], minlength=len(index.classes))
    samples = list(index.samples)
    for i in chosen:
        others = [c for c in range(len(index.classes)) if c != samples[i].label]
        new = rng.choices(others, [float(sizes[c]) for c in others])[0] if into == PRIOR else rng.choice(others)
        samples[i] = replace(samples[i], label=new)
    return replace(index, samples=samples), {index.samples[i].path for i in chosen}


def relabelled(emb: Embeddings, index: DatasetIndex) -> Embeddings:
    return replace(emb, index=index)


@dataclass(frozen=True)
class SuspectRecall:
    flipped: int
    found_in_top: int  # flipped pictures among the top 2 x flipped suspects
    suspects: int  # all the suspects flagged
    flipped_among_suspects: int
    found_in_top_ranked: int  # flipped pictures among the 2 x flipped training pictures least confident in their label (flagged or not)

    @property
    def recall_in_top(self) -> float:
        return self.found_in_top / max(1, self.flipped)


def suspect_recall(emb: Embeddings, fraction: float, seed: int, into: str = UNIFORM) -> SuspectRecall:
    noisy, flipped = flip_labels(emb.index, fraction, seed, into)
    train = emb.rows("train")
    labels = np.array([s.label for s in noisy.samples])[train]
    paths = [noisy.samples[i].path for i in train]
    probs = out_of_fold_probs(emb.features[train], labels, [noisy.samples[i].digest for i in train], len(noisy.classes), seed)
    ranked = [paths[i] for i in find_label_issues(labels, probs)]
    top = ranked[: 2 * len(flipped)]
    least = [paths[i] for i in np.argsort(probs[np.arange(len(labels)), labels], kind="stable")[: 2 * len(flipped)]]
    return SuspectRecall(len(flipped), len(set(top) & flipped), len(ranked), len(set(ranked) & flipped), len(set(least) & flipped))


@dataclass(frozen=True)
class NoiseCost:
    clean: float  # validation accuracy, trained on the clean labels
    noisy: float
    cleaned: float  # noisy labels, the suspects left out of training
    suspects: int
    flipped: int

    @property
    def recovered(self) -> float:
        lost = self.clean - self.noisy
        return (self.cleaned - self.noisy) / lost if lost > 0 else float("nan")


def head_accuracy(emb: Embeddings, index: DatasetIndex, train: np.ndarray, seed: int) -> float:
    labels = np.array([s.label for s in index.samples])
    true = emb.labels  # the validation pictures keep their own (clean) labels
    val = emb.rows("val")
    head = fit_linear_head([emb.features[train]], labels[train], [index.samples[i].digest for i in train], len(index.classes), seed=seed)
    preds = (emb.features[val] @ head.weight.T + head.bias).argmax(1)
    return accuracy_scores(true[val], preds)[0]


def noise_cost(emb: Embeddings, fraction: float, seed: int, into: str = UNIFORM) -> NoiseCost:
    noisy, flipped = flip_labels(emb.index, fraction, seed, into)
    train = emb.rows("train")
    labels = np.array([s.label for s in noisy.samples])
    probs = out_of_fold_probs(emb.features[train], labels[train], [noisy.samples[i].digest for i in train], len(noisy.classes), seed)
    issues = find_label_issues(labels[train], probs)
    kept = np.setdiff1d(train, train[issues])
    return NoiseCost(
        head_accuracy(emb, emb.index, train, seed), head_accuracy(emb, noisy, train, seed), head_accuracy(emb, noisy, kept, seed), len(issues), len(flipped)
    )


# ----------------------------------------------------------------------------------- near-duplicates


def generated_copy(src: Path, dest: Path, seed: int) -> None:
    """``src`` resized to 70%, 5% cropped off (at a seeded place) and saved as JPEG quality 40."""
    rng = random.Random(f"copy/{seed}/{src.name}")
    with Image.open(src) as im:
        im = im.convert("RGB")
        w, h = int(im.width * 0.7), int(im.height * 0.7)
        im = im.resize((w, h), Image.BICUBIC)
        cw, ch = int(round(w * 0.95)), int(round(h * 0.95))
        left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
        im.crop((left, top, left + cw, top + ch)).save(dest, "JPEG", quality=40)


def copies_folder(index: DatasetIndex, dest: Path, count: int, seed: int) -> list[str]:
    """``count`` training pictures' generated copies, ``dest/<class>/<k>.jpg``: the originals' paths, by ``k``."""
    picked = random.Random(f"copies/{seed}").sample([s for s in index.samples if s.split == "train"], count)
    for k, s in enumerate(picked):
        folder = dest / index.classes[s.label]
        folder.mkdir(parents=True, exist_ok=True)
        generated_copy(Path(index.root) / s.path, folder / f"{k:03d}.jpg", seed)
    return [s.path for s in picked]


def copy_features(index: DatasetIndex, count: int, seed: int, cache: Path, work: Path) -> tuple[Embeddings, list[str]]:
    """The embeddings of ``count`` generated copies (from their files), in the originals' order, and the originals."""
    originals = copies_folder(index, work, count, seed)
    emb = embed_dataset(scan_folder(work, val_split=0.0), cache, device="cpu")
    order = np.argsort([int(Path(s.path).stem) for s in emb.index.samples])
    return replace(emb, features=emb.features[order], thumbnails=emb.thumbnails[order]), originals


@dataclass(frozen=True)
class DuplicateFinding:
    copies: int
    found: int  # copies paired with their original
    false_pairs: int  # any other pair reported
    weakest_copy: float  # the lowest margin of a copy over its and its original's usual neighbours
    closest_distinct: float  # the highest margin of a pair of distinct pictures (all the sets measured)
    false_examples: tuple[tuple[str, str, float, float], ...] = ()


def duplicate_finding(sets: Sequence[tuple[Embeddings, Optional[Embeddings], list[str]]]) -> DuplicateFinding:
    """Per set: its embeddings, its copies' embeddings and the copies' originals (None and [] for a set without copies)."""
    copies = found = false = 0
    weakest, closest, examples = np.inf, -np.inf, []
    for emb, copied, originals in sets:
        n = len(emb.index.samples)
        paths = [s.path for s in emb.index.samples] + [f"copy of {p}" for p in originals]
        x, thumbs = emb.features, emb.thumbnails
        if copied is not None:
            x, thumbs = np.concatenate([x, copied.features]), np.concatenate([thumbs, copied.thumbnails])
        where = {p: i for i, p in enumerate(paths[:n])}
        true_pairs = {(where[p], n + k) for k, p in enumerate(originals)}
        pairs = similar_pairs(x, thumbs, margin=-np.inf, floor=-np.inf)  # every pair with its margin: the measurement
        reported = [(i, j, s, m) for i, j, s, m in pairs if (m >= MARGIN and s >= FLOOR) or s >= SIMILAR]
        found += sum((i, j) in true_pairs for i, j, _, _ in reported)
        others = [(paths[i], paths[j], round(s, 4), round(m, 4)) for i, j, s, m in reported if (i, j) not in true_pairs]
        false += len(others)
        examples += others[:5]
        copies += len(originals)
        margins = {(i, j): m for i, j, _, m in pairs}
        if true_pairs:
            weakest = min(weakest, min(margins[p] for p in true_pairs))
        closest = max(closest, max((m for p, m in margins.items() if p not in true_pairs), default=-np.inf))
    return DuplicateFinding(copies, found, false, round(float(weakest), 4), round(float(closest), 4), tuple(examples))


# ----------------------------------------------------------------------------------- outliers


def intruder_ranks(host: Embeddings, guests: np.ndarray, host_class: int) -> list[int]:
    """The ranks (1 = farthest) of ``guests`` among the outliers of ``host_class`` once they are dropped into it (training)."""
    x = np.concatenate([host.features, guests])
    labels = np.concatenate([host.labels, np.full(len(guests), host_class)])
    paths = [s.path for s in host.index.samples] + [f"guest {k}" for k in range(len(guests))]
    splits = [s.split for s in host.index.samples] + ["train"] * len(guests)
    ranked = outliers(x, paths, labels, splits, host.index.classes)
    return sorted(o.rank for o in ranked if o.path.startswith("guest "))


def guest_features(index: DatasetIndex, count: int, seed: int, cache: Path) -> np.ndarray:
    picked = random.Random(f"guests/{seed}").sample(list(index.samples), count)
    sub = replace(index, samples=[replace(s, split="train") for s in picked])
    return embed_dataset(sub, cache, device="cpu").features


# ----------------------------------------------------------------------------------- main


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", default=None, help="feature cache (default: a temporary folder)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--into", nargs="+", choices=(UNIFORM, PRIOR), default=[UNIFORM, PRIOR], help="how a flipped label's new class is drawn (pbc only for prior)")
    parser.add_argument("--only", nargs="+", default=["labels", "duplicates", "outliers"])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache) if args.cache else Path(tmp) / "cache"
        sets = {}
        if (HYMENOPTERA / "train").is_dir():
            sets["hymenoptera"] = embed_dataset(scan_folder(HYMENOPTERA), cache, device="cpu")
        if (PBC / "neutrophil").is_dir():
            sets["pbc_blood_cells"] = embed_dataset(scan_folder(PBC, val_split=0.2, seed=0), cache, device="cpu")
        for name, emb, into in [(n, e, m) for n, e in sets.items() for m in args.into if "labels" in args.only and (m == UNIFORM or n != "hymenoptera")]:
            for seed in args.seeds:
                r = suspect_recall(emb, 0.05, seed, into)
                print(f"{name} 5% flipped ({into}), seed {seed}: {r.found_in_top}/{r.flipped} flipped in the top {2 * r.flipped} suspects "
                      f"({r.recall_in_top:.0%}); {r.suspects} suspects flagged, {r.flipped_among_suspects} of them flipped; "
                      f"{r.found_in_top_ranked}/{r.flipped} among the {2 * r.flipped} least confident in their label", flush=True)
            for seed in args.seeds:
                c = noise_cost(emb, 0.15, seed, into)
                print(f"{name} 15% flipped ({into}), seed {seed}: val accuracy clean {c.clean:.4f}, noisy {c.noisy:.4f}, noisy without the "
                      f"{c.suspects} suspects {c.cleaned:.4f} (cost {100 * (c.clean - c.noisy):.2f} points, recovered {c.recovered:.0%}); "
                      f"{c.flipped} flipped", flush=True)
        if "hymenoptera" in sets and "duplicates" in args.only:
            hym = sets["hymenoptera"]
            copied, originals = copy_features(hym.index, 50, 0, cache, Path(tmp) / "copies")
            measured = [(hym, copied, originals)]
            if "pbc_blood_cells" in sets:
                measured.append((sets["pbc_blood_cells"], None, []))
            d = duplicate_finding(measured)
            print(f"near-duplicates (margin {MARGIN}): {d.found}/{d.copies} copies found, {d.false_pairs} false pairs; "
                  f"weakest copy's margin {d.weakest_copy:.4f}, highest margin of distinct pictures {d.closest_distinct:.4f}", flush=True)
            for example in d.false_examples:
                print(f"  false pair: {example}")
        if "hymenoptera" in sets and "pbc_blood_cells" in sets and "outliers" in args.only:
            hym = sets["hymenoptera"]
            ants = hym.index.classes.index("ants")
            for seed in args.seeds:
                ranks = intruder_ranks(hym, guest_features(sets["pbc_blood_cells"].index, 10, seed, cache), ants)
                print(f"outliers, seed {seed}: 10 blood cells in 'ants' rank {ranks} among its {int((hym.labels == ants).sum()) + 10} pictures "
                      f"({sum(r <= 20 for r in ranks)}/10 in the top 20)", flush=True)


if __name__ == "__main__":
    main()
