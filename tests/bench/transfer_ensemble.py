"""Ensembles measured: frozen EfficientNet-Lite0, Lite1 and Lite2 runs combined, against their best member.

    nice -n 10 .venv/bin/python -m tests.bench.transfer_ensemble            # 2 sets x 3 seeds
    nice -n 10 .venv/bin/python -m tests.bench.transfer_ensemble --quick    # one set, one seed
    ... --augment none --verify-images 20   # one cached view per picture instead of five: about 4x less embedding

On hymenoptera (its own train/ and val/ folders; the seed changes only the run's own choices) and
on pbc_blood_cells (split 80/20 by the seed, as ``tests.accuracy_sets`` does), each seed trains one
frozen run per backbone (``TrainConfig(freeze_depth="all")``, defaults otherwise) and combines
them with equal weights (``combine_runs``): nothing is chosen on the validation pictures whose
figures are reported. Members' figures are their own runs' metrics; the ensemble's are its mean
calibrated probabilities on the same validation pictures; its export is checked in a fresh process.
Runs already finished in ``work_dir`` are reused, so a second call only combines again.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.accuracy_sets import HYMENOPTERA, PBC, pbc_available, seeded_split  # noqa: E402
from tlstudio.core.config import TrainConfig  # noqa: E402
from tlstudio.core.data.index import DatasetIndex  # noqa: E402
from tlstudio.core.data.scan import scan_folder  # noqa: E402
from tlstudio.core.engine.trainer import Trainer  # noqa: E402
from tlstudio.core.runs.files import FINISHED, RunFiles  # noqa: E402
from tlstudio.core.inference.ensemble import VERIFY_IMAGES, combine_runs  # noqa: E402

BACKBONES = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")


def set_indexes(seeds: Sequence[int], quick: bool) -> dict[str, dict[int, DatasetIndex]]:
    """{set name: {seed: index}} for the sets present; hymenoptera keeps its own split for every seed."""
    out: dict[str, dict[int, DatasetIndex]] = {}
    if (HYMENOPTERA / "train").is_dir():
        index = scan_folder(HYMENOPTERA)
        out["hymenoptera"] = {s: index for s in seeds}
    if pbc_available() and not (quick and out):
        full = scan_folder(PBC, val_split=0.2, seed=0)
        out["pbc_blood_cells"] = {s: seeded_split(full, s) for s in seeds}
    return out


def train_member(index: DatasetIndex, backbone: str, seed: int, run_dir: Path, cache: Path, augment: Optional[str] = None) -> Path:
    """One frozen run (reused when ``run_dir`` already holds a finished one)."""
    status = RunFiles(run_dir).read_status()
    if status is None or status.state != FINISHED:
        extra = {"augment": augment} if augment else {}
        cfg = TrainConfig(data_dir=index.root, backbone=backbone, freeze_depth="all", seed=seed, device="cpu", export=False, **extra)
        Trainer(cfg, run_dir, cache_dir=cache, index=index).run()
    return run_dir


def member_runs(seeds: Sequence[int], quick: bool, work: Path, augment: Optional[str] = None) -> Iterator[tuple[str, int, list[Path]]]:
    """(set, seed, its member runs), seed by seed (every set's first seed before any set's second)."""
    indexes = set_indexes(seeds, quick)
    for seed in seeds:
        for name, by_seed in indexes.items():
            yield name, seed, [train_member(by_seed[seed], b, seed, work / name / f"seed{seed}" / b, work / "cache", augment) for b in BACKBONES]


def figures_of(result) -> dict:
    best = result.best_member
    return {
        "members": {m.backbone: {"run": m.run_id, "acc": m.val_accuracy, "bal": m.val_balanced_accuracy} for m in result.members},
        "ensemble": {"acc": result.val_accuracy, "bal": result.val_balanced_accuracy},
        "best_member": {"backbone": best.backbone, "acc": best.val_accuracy, "bal": best.val_balanced_accuracy},
        "verified": result.verification.ok, "agreement": result.verification.agreement, "max_abs_diff": result.verification.max_abs_diff,
        "images_checked": result.verification.n,
    }


def mean_of(per_seed: list[dict]) -> dict:
    m = lambda get: float(np.mean([get(r) for r in per_seed]))  # noqa: E731
    out = {
        "members": {b: {k: m(lambda r, b=b, k=k: r["members"][b][k]) for k in ("acc", "bal")} for b in per_seed[0]["members"]},
        "ensemble": {k: m(lambda r, k=k: r["ensemble"][k]) for k in ("acc", "bal")},
        "best_member": {k: m(lambda r, k=k: r["best_member"][k]) for k in ("acc", "bal")},
    }
    out["gain_points"] = {k: 100 * (out["ensemble"][k] - out["best_member"][k]) for k in ("acc", "bal")}
    return out


def measure_ensembles(seeds: Sequence[int] = (0, 1, 2), quick: bool = False, work_dir: Optional[Path] = None, augment: Optional[str] = None,
                      verify_images: int = VERIFY_IMAGES, on_result: Callable[[str, int, dict], None] = lambda _set, _seed, _figures: None) -> dict:
    """{"sets": {name: {"seeds": {seed: figures}, "mean": figures}}, "goal_met": bool}; quick: the first seed on one set.

    ``augment`` overrides the runs' augmentation preset (None: TrainConfig's default). "Best member" is
    the member with the highest validation accuracy, per seed: an oracle pick, so the ensemble is
    compared with more than a user could choose without the validation pictures."""
    seeds = tuple(seeds)[:1] if quick else tuple(seeds)
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="tlstudio-ensemble-bench-"))
    found: dict[str, dict] = {}
    for name, seed, members in member_runs(seeds, quick, work, augment):
        figures = figures_of(combine_runs(members, work / name / f"seed{seed}" / "ensemble", verify_images=verify_images))
        found.setdefault(name, {})[seed] = figures
        on_result(name, seed, figures)
    out: dict = {"sets": {n: {"seeds": s, "mean": mean_of(list(s.values()))} for n, s in found.items()}, "work_dir": str(work), "augment": augment}
    gains = [s["mean"]["gain_points"]["acc"] for s in out["sets"].values()]
    out["goal_met"] = bool(gains) and max(gains) > 0 and min(gains) >= 0
    return out


def print_table(result: dict) -> None:
    for name, found in result["sets"].items():
        print(f"\n{name}")
        backbones = list(found["mean"]["members"])
        print("  seed  " + "  ".join(f"{b.replace('efficientnet_', ''):>13}" for b in backbones) + "       ensemble    best member  verified")
        rows = [(str(s), r) for s, r in found["seeds"].items()] + [("mean", found["mean"])]
        for label, r in rows:
            cells = "  ".join(f"{r['members'][b]['acc']:.4f}/{r['members'][b]['bal']:.4f}" for b in backbones)
            check = f"{r['agreement']:.0%} of {r['images_checked']}" if "agreement" in r else ""
            print(f"  {label:>4}  {cells}  {r['ensemble']['acc']:.4f}/{r['ensemble']['bal']:.4f}  "
                  f"{r['best_member']['acc']:.4f}/{r['best_member']['bal']:.4f}  {check}")
        gain = found["mean"]["gain_points"]
        print(f"  (accuracy/balanced accuracy) ensemble - best member, mean: {gain['acc']:+.2f} / {gain['bal']:+.2f} points")
    print(f"\ngoal (above the best member on one set, not below on the other): {'met' if result['goal_met'] else 'NOT met'}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed on one set")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the runs go (kept; finished runs there are reused)")
    parser.add_argument("--augment", default=None, help="the runs' augmentation preset instead of the default (none: one view, about 4x faster)")
    parser.add_argument("--verify-images", type=int, default=VERIFY_IMAGES, help="validation pictures each ensemble file is checked on in a fresh process")
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file, after each seed")
    args = parser.parse_args(argv)
    partial: dict = {}

    def show(name: str, seed: int, figures: dict) -> None:
        partial.setdefault(name, {})[str(seed)] = figures
        best, ens = figures["best_member"], figures["ensemble"]
        print(f"{name} seed {seed}: ensemble {ens['acc']:.4f}/{ens['bal']:.4f}, best member ({best['backbone']}) {best['acc']:.4f}/{best['bal']:.4f}, "
              f"members " + ", ".join(f"{b}: {m['acc']:.4f}/{m['bal']:.4f}" for b, m in figures["members"].items()), flush=True)
        if args.json:
            args.json.write_text(json.dumps(partial, indent=2))

    result = measure_ensembles(quick=args.quick, work_dir=args.work_dir, augment=args.augment, verify_images=args.verify_images, on_result=show)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
