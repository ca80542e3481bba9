"""Checks of a folder (issue 17 items 1 and 2): suspected wrong labels, near-duplicates, leakage, outliers.

Fast tests on generated features and a small generated folder (bundled efficientnet_lite0 features);
then the measured figures on ../shared/datasets (skipped when absent, about a minute each).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from PIL import Image, ImageDraw
from tlstudio.cli import main
from tlstudio.core.data.scan import scan_folder
from tlstudio.core.events import Cancelled, PhaseStarted, StopToken
from tlstudio.core.quality.check import check_dataset
from tlstudio.core.quality.label_issues import find_label_issues
from tlstudio.core.quality.near_duplicates import CONFLICT, DUPLICATE, LEAKAGE, near_duplicates, similar_pairs
from tlstudio.core.quality.outliers import outliers

# ----------------------------------------------------------------------------------- confident learning


def noisy_probs(rng: np.random.Generator, n: int, k: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels with ``noise`` of them flipped, and probabilities of a fair model that knows the true class."""
    true = rng.integers(0, k, n)
    labels = np.where(rng.random(n) < noise, rng.integers(0, k, n), true)
    logits = rng.normal(0, 1.0, (n, k))
    logits[np.arange(n), true] += rng.uniform(0.0, 4.0, n)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return labels, probs


@pytest.mark.parametrize("k,n,noise,seed", [(2, 300, 0.1, 0), (3, 500, 0.2, 1), (5, 1000, 0.15, 2), (4, 80, 0.3, 3), (2, 60, 0.2, 4)])
def test_confident_learning_selects_what_cleanlab_selects(k, n, noise, seed):
    cleanlab = pytest.importorskip("cleanlab.filter")
    labels, probs = noisy_probs(np.random.default_rng(seed), n, k, noise)
    theirs = cleanlab.find_label_issues(labels, probs, n_jobs=1)
    ours = find_label_issues(labels, probs)
    assert theirs.sum() > 0
    assert set(ours) == set(np.flatnonzero(theirs))
    assert list(probs[ours, labels[ours]]) == sorted(probs[ours, labels[ours]])  # least confident in its label first


def test_a_picture_the_model_files_where_it_is_is_never_a_suspect():
    labels, probs = noisy_probs(np.random.default_rng(7), 400, 3, 0.2)
    found = find_label_issues(labels, probs)
    assert len(found) and np.all(probs[found].argmax(1) != labels[found])


# ----------------------------------------------------------------------------------- on features


def test_near_duplicates_are_reported_within_a_class_across_classes_and_across_splits():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (40, 64)).astype(np.float32)
    copies = x[[3, 10, 20]] + rng.normal(0, 0.05, (3, 64)).astype(np.float32)
    feats = np.concatenate([x, copies])
    t = rng.normal(0, 1, (40, 256)).astype(np.float32)
    thumbs = np.concatenate([t, t[[3, 10, 20]] + rng.normal(0, 0.05, (3, 256)).astype(np.float32)])
    labels = [i % 2 for i in range(40)] + [1, 1, 0]  # 3 is class 1: the same; 10 is class 0: a conflict
    splits = ["train"] * 40 + ["train", "train", "val"]  # 20's copy is in val: leakage
    paths = [f"p{i}" for i in range(43)]
    pairs = near_duplicates(feats, thumbs, paths, labels, splits, [str(i) for i in range(43)], ["a", "b"])
    assert {(p.first, p.second): p.kinds for p in pairs} == {("p3", "p40"): (DUPLICATE,), ("p10", "p41"): (CONFLICT,), ("p20", "p42"): (LEAKAGE,)}
    assert all(p.similarity > 0.99 and not p.identical for p in pairs)
    assert similar_pairs(x, t) == []  # distinct pictures stand no higher above their neighbours than chance


def test_pictures_far_from_every_class_rank_first_in_their_class():
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (2, 32)) * 4
    x = np.concatenate([centres[0] + rng.normal(0, 1, (30, 32)), centres[1] + rng.normal(0, 1, (30, 32)), rng.normal(0, 1, (3, 32)) * 4 - 6])
    labels = np.array([0] * 30 + [1] * 30 + [0] * 3)
    found = outliers(x.astype(np.float32), [f"p{i}" for i in range(63)], labels, ["train"] * 63, ["a", "b"])
    first = {o.path for o in found if o.label == "a" and o.rank <= 3}
    assert first == {"p60", "p61", "p62"}
    assert {o.path for o in found if o.flagged} >= first


# ----------------------------------------------------------------------------------- a generated folder


SHAPES = {"circle": (210, 50, 40), "square": (40, 170, 60), "triangle": (50, 70, 210)}  # each class: its shape in its colour


def scene(rng: np.random.Generator, shape: str, size: int = 128) -> Image.Image:
    """A smooth random background, a few random distractors and the class's shape at a random place and size."""
    im = Image.fromarray(rng.integers(0, 256, (6, 6, 3)).astype(np.uint8)).resize((size, size), Image.BICUBIC)
    draw = ImageDraw.Draw(im)
    for _ in range(4):
        x, y, w, h = rng.integers(0, size, 2).tolist() + rng.integers(6, size // 5, 2).tolist()
        draw.rectangle((x, y, x + w, y + h // 3), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    side = int(rng.integers(size * 2 // 5, size * 3 // 5))
    x, y = (int(v) for v in rng.integers(0, size - side, 2))
    colour = tuple(int(np.clip(c + rng.normal(0, 15), 0, 255)) for c in SHAPES[shape])
    if shape == "circle":
        draw.ellipse((x, y, x + side, y + side), fill=colour)
    elif shape == "square":
        draw.rectangle((x, y, x + side, y + side), fill=colour)
    else:
        draw.polygon([(x, y + side), (x + side, y + side), (x + side // 2, y)], fill=colour)
    return im


def _copy(src: Path, dest: Path) -> None:
    from tests.bench.bench_quality import generated_copy

    dest.parent.mkdir(parents=True, exist_ok=True)
    generated_copy(src, dest, seed=0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """train/ and val/ of circles, squares, triangles; two circles filed under square; three generated copies:
    one in its own class (a duplicate), one under another class (a conflict), one in val (leakage)."""
    root = tmp_path_factory.mktemp("quality") / "data"
    rng = np.random.default_rng(0)
    for split, count in (("train", 20), ("val", 4)):
        for name in SHAPES:
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                scene(rng, name).save(root / split / name / f"{name}_{i:02d}.jpg", quality=95)
    for i in range(2):
        scene(rng, "circle").save(root / "train" / "square" / f"wrong_{i}.jpg", quality=95)
    _copy(root / "train/triangle/triangle_00.jpg", root / "train/triangle/copy_same.jpg")
    _copy(root / "train/circle/circle_01.jpg", root / "train/triangle/copy_conflict.jpg")
    _copy(root / "train/square/square_02.jpg", root / "val/square/copy_leak.jpg")
    cache = root.parent / "cache"
    events = []
    report = check_dataset(scan_folder(root), cache, device="cpu", on_event=events.append)
    return root, cache, report, events


def test_the_circles_filed_under_square_are_top_suspects(folder):
    _, _, report, _ = folder
    found = {s.path: s for s in report.suspects[:3]}
    wrong = [found.get(f"train/square/wrong_{i}.jpg") for i in range(2)]
    assert all(s is not None and s.label == "square" and s.predicted == "circle" and s.confidence > 0.5 for s in wrong), report.suspects
    assert len(report.suspects) <= 4, report.suspects  # of 66 training pictures


def test_generated_copies_are_found_with_their_kind(folder):
    _, _, report, _ = folder
    pairs = {frozenset((p.first, p.second)): p for p in report.near_duplicates}
    same = pairs.pop(frozenset(("train/triangle/triangle_00.jpg", "train/triangle/copy_same.jpg")))
    conflict = pairs.pop(frozenset(("train/circle/circle_01.jpg", "train/triangle/copy_conflict.jpg")))
    leak = pairs.pop(frozenset(("train/square/square_02.jpg", "val/square/copy_leak.jpg")))
    assert (same.kinds, conflict.kinds, leak.kinds) == ((DUPLICATE,), (CONFLICT,), (LEAKAGE,))
    assert not pairs, pairs  # no distinct pictures paired
    assert report.counts()["label_conflicts"] == 1 and report.counts()["leakage"] == 1


def test_the_check_speaks_in_phases(folder):
    _, _, _, events = folder
    phases = [e.name for e in events if isinstance(e, PhaseStarted)]
    assert phases[:2] == ["decoding", "caching features"] and "comparing pictures" in phases


def test_a_later_frozen_run_reuses_the_checks_features(folder, tmp_path):
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.engine.trainer import Trainer

    root, cache, _, _ = folder
    cfg = TrainConfig(data_dir=str(root), freeze_depth="all", epochs=1, device="cpu", export=False)
    result = Trainer(cfg, tmp_path / "run", cache_dir=cache).run()
    assert result.summary["cache_reused"]


def test_cli_json_gives_the_typed_findings(folder, capsys):
    root, cache, report, _ = folder
    assert main(["check", str(root), "--json", "--cache", str(cache), "--device", "cpu"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["counts"] == report.counts() and record["cache_reused"]
    assert record["suspects"][0] == report.suspects[0].to_dict()
    assert {LEAKAGE} <= {k for p in record["near_duplicates"] for k in p["kinds"]}


def test_cli_prints_counts_and_the_top_items(folder, capsys):
    root, cache, report, _ = folder
    assert main(["check", str(root), "--cache", str(cache), "--device", "cpu", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert f"suspected wrong labels: {len(report.suspects)}\n" in out
    shown = [line for line in out.splitlines() if "looks like" in line]
    assert len(shown) == 1 and shown[0].startswith(f"  {report.suspects[0].path}: ")


def test_a_stopped_check_raises_cancelled(folder):
    root, _, _, _ = folder
    stop = StopToken()
    stop.stop()
    with pytest.raises(Cancelled):
        check_dataset(scan_folder(root), None, device="cpu", stop=stop)


# ----------------------------------------------------------------------------------- the shared sets

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets"


@pytest.fixture(scope="module")
def hymenoptera_features(tmp_path_factory):
    from tlstudio.core.quality.embeddings import embed_dataset

    if not (SHARED / "hymenoptera" / "train").is_dir():
        pytest.skip("../shared/datasets/hymenoptera is not present")
    cache = tmp_path_factory.mktemp("hymenoptera-cache")
    return embed_dataset(scan_folder(SHARED / "hymenoptera"), cache, device="cpu"), cache


@pytest.mark.slow
def test_hymenoptera_5_percent_flipped_are_among_the_top_suspects(hymenoptera_features):
    from tests.bench.bench_quality import suspect_recall

    r = suspect_recall(hymenoptera_features[0], 0.05, seed=0)
    print(f"hymenoptera 5% flipped: {r.found_in_top}/{r.flipped} in the top {2 * r.flipped} suspects ({r.suspects} flagged)")
    assert r.recall_in_top >= 0.7


@pytest.mark.slow
def test_hymenoptera_15_percent_flipped_cost_is_mostly_recovered_without_the_suspects(hymenoptera_features):
    """The done-criterion is conditional ("where the noise costs at least 2 points"): with this head most
    seeds' 15% flips cost 0 to 2 validation pictures (0 to 1.3 points); seed 2 costs 6, and is the case tested.
    The benchmark reports seeds 0 to 4."""
    from tests.bench.bench_quality import noise_cost

    c = noise_cost(hymenoptera_features[0], 0.15, seed=2)
    print(f"hymenoptera 15% flipped: clean {c.clean:.4f}, noisy {c.noisy:.4f}, without the {c.suspects} suspects {c.cleaned:.4f}")
    assert c.clean - c.noisy >= 0.02
    assert c.recovered >= 0.5


@pytest.mark.slow
def test_hymenoptera_generated_copies_are_all_found_and_nothing_else(hymenoptera_features, tmp_path):
    from tests.bench.bench_quality import copy_features, duplicate_finding

    emb, cache = hymenoptera_features
    copied, originals = copy_features(emb.index, 50, 0, cache, tmp_path / "copies")
    d = duplicate_finding([(emb, copied, originals)])
    print(f"hymenoptera copies: {d.found}/{d.copies} found, {d.false_pairs} false pairs, weakest copy {d.weakest_copy}, closest distinct {d.closest_distinct}")
    assert (d.found, d.false_pairs) == (50, 0), d.false_examples


@pytest.mark.slow
def test_blood_cells_dropped_into_ants_are_its_top_outliers(hymenoptera_features):
    from tests.bench.bench_quality import guest_features, intruder_ranks

    if not (SHARED / "pbc_blood_cells" / "neutrophil").is_dir():
        pytest.skip("../shared/datasets/pbc_blood_cells is not present")
    emb, cache = hymenoptera_features
    guests = guest_features(scan_folder(SHARED / "pbc_blood_cells"), 10, 0, cache)
    ranks = intruder_ranks(emb, guests, emb.index.classes.index("ants"))
    print(f"blood cells in ants: ranks {ranks}")
    assert max(ranks) <= 20
