"""Knowledge distillation benchmark: a Lite0 student of a Lite2 teacher against the same Lite0 trained alone.

    nice -n 10 .venv/bin/python -m tests.bench.transfer_distill                 # 3 seeds, both sets
    nice -n 10 .venv/bin/python -m tests.bench.transfer_distill --quick         # one seed, 2 epochs: a smoke run
    nice -n 10 .venv/bin/python -m tests.bench.transfer_distill --seeds 0 --sets pbc_blood_cells

On ../shared/datasets/pbc_blood_cells (80/20 split drawn by each seed) and hymenoptera (its own train/val
split; the seed draws the selection split, the augmented views and the initialisation), per seed:

- teacher: EfficientNet-Lite2, partial fine-tune (``--freeze-depth 6``), the sweep's epochs, 160 px, no augmentation
  (``IMAGE_SIZE``, ``AUGMENT``: what fits 2 CPU cores);
- alone: EfficientNet-Lite0 at the same freeze depth and epochs, labels only;
- distilled: the same Lite0 run with the teacher (``config.teacher``), at the default temperature and weight
  (``config.DISTILL_TEMPERATURE``, ``config.DISTILL_WEIGHT``, fixed before this benchmark ran).

All three share the split, so every figure is on the same validation pictures, which no arm chose anything on.
Speed is CPU evaluation images/s of each exported network at its own input size, the three timed in turns in
one process (``engine.distill.compare_distillation``). Each (seed, set) is appended to ``results.jsonl`` in
the work folder as it ends, so a stopped benchmark keeps what it measured.

Time: one seed of pbc took 54 min on 2 CPU cores shared with four other benchmarks (load 7-13): teacher 694 s,
alone 192 s, distilled 2,378 s (its epochs ran while the load was highest; on generated data a distilled epoch
costs what a plain one does). Three seeds of both sets need a quiet machine or a GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.accuracy_sets import HYMENOPTERA, PBC, pbc_available, seeded_split  # noqa: E402
from tlstudio.core.config import DISTILL_TEMPERATURE, DISTILL_WEIGHT, TrainConfig  # noqa: E402
from tlstudio.core.data.scan import scan_folder  # noqa: E402
from tlstudio.core.engine.distill import compare_distillation  # noqa: E402
from tlstudio.core.engine.trainer import Trainer  # noqa: E402
from tlstudio.core.runs.sweep import SWEEP_EPOCHS  # noqa: E402

SETS = ("pbc_blood_cells", "hymenoptera")
TEACHER, STUDENT, FREEZE = "efficientnet_lite2", "efficientnet_lite0", "6"
# What fits 2 shared CPU cores: 160 px and one view (no augmentation) make the frozen prefix's cache ~10x cheaper
# than each backbone's own size with the light preset's 5 views (the Lite2 teacher alone took over 25 minutes a seed
# on pbc that way). Without augmentation the student trains on exactly the crop the teacher's outputs are for.
IMAGE_SIZE, AUGMENT = 160, "none"
ARMS = ("student", "alone", "teacher")


def available_sets(names=SETS) -> dict:
    out = {}
    if "pbc_blood_cells" in names and pbc_available():
        out["pbc_blood_cells"] = scan_folder(PBC, val_split=0.2, seed=0)
    if "hymenoptera" in names and (HYMENOPTERA / "train").is_dir():
        out["hymenoptera"] = scan_folder(HYMENOPTERA)
    return out


def measure_one(name: str, index, seed: int, work: Path, epochs: int, image_size: int) -> dict:
    """Teacher, alone and distilled runs of one set and seed, and their comparison."""
    if name == "pbc_blood_cells":
        index = seeded_split(index, seed)
    folder, cache = work / name / f"seed{seed}", work / "cache"
    base = TrainConfig(data_dir=str(index.root), freeze_depth=FREEZE, epochs=epochs, image_size=image_size, augment=AUGMENT, seed=seed, export=False)
    runs = {
        "teacher": replace(base, backbone=TEACHER),
        "alone": replace(base, backbone=STUDENT),
        "student": replace(base, backbone=STUDENT, teacher=str(folder / "teacher")),
    }
    seconds = {}
    for arm in ("teacher", "alone", "student"):
        t0 = time.perf_counter()
        Trainer(runs[arm], folder / arm, cache_dir=cache, index=index).run()
        seconds[arm] = round(time.perf_counter() - t0, 1)
    report = compare_distillation(folder / "student", folder / "teacher", folder / "alone", repeats=10)
    return {"set": name, "seed": seed, "epochs": epochs, "image_size": image_size, "seconds": seconds, **report.to_dict()}


def measure_distillation(seeds=(0, 1, 2), quick: bool = False, work_dir: Optional[Path] = None, sets=SETS, log=print) -> dict:
    """Per set: every seed's figures and the means; ``quick``: the first seed and 2 epochs."""
    seeds, epochs, size = (tuple(seeds)[:1], 2, IMAGE_SIZE) if quick else (tuple(seeds), SWEEP_EPOCHS, IMAGE_SIZE)
    work = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="tlstudio-distill-"))
    data = available_sets(sets)
    results = []
    for seed in seeds:  # seed by seed: a benchmark stopped early has whole seeds of every set
        for name, index in data.items():
            row = measure_one(name, index, seed, work, epochs, size)
            results.append(row)
            with open(work / "results.jsonl", "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
            log(one_line(row))
    return {"temperature": DISTILL_TEMPERATURE, "weight": DISTILL_WEIGHT, "freeze_depth": FREEZE, "epochs": epochs, "image_size": size, "augment": AUGMENT,
            "work_dir": str(work), "runs": results, "means": means(results)}


def means(results: list[dict]) -> dict:
    out = {}
    for name in sorted({r["set"] for r in results}):
        rows = [r for r in results if r["set"] == name]
        m = {f"{arm}_{k}": float(np.mean([r[arm][k] for r in rows])) for arm in ARMS for k in ("accuracy", "balanced_accuracy", "images_per_s")}
        m["gain_accuracy"] = m["student_accuracy"] - m["alone_accuracy"]
        m["gain_balanced_accuracy"] = m["student_balanced_accuracy"] - m["alone_balanced_accuracy"]
        m["speedup_vs_teacher"] = float(np.mean([r["speedup"] for r in rows]))
        m["seeds"] = [r["seed"] for r in rows]
        m.update({f"{arm}_params": rows[0][arm]["params"] for arm in ("student", "teacher")})
        m.update({f"{arm}_megabytes": rows[0][arm]["megabytes"] for arm in ("student", "teacher")})
        out[name] = m
    return out


def one_line(r: dict) -> str:
    arms = "  ".join(f"{arm} {r[arm]['accuracy']:.3f}/{r[arm]['balanced_accuracy']:.3f} {r[arm]['images_per_s']:.0f} img/s" for arm in ARMS)
    return f"{r['set']:16s} seed {r['seed']}: {arms}  (s: {r['seconds']})"


def table(result: dict) -> str:
    lines = [f"T = {result['temperature']:g}, weight = {result['weight']:g}, freeze depth {result['freeze_depth']}, {result['epochs']} epochs, "
             f"{result['image_size']} px, augmentation {result['augment']}",
             f"{'set':16s} {'seeds':8s} {'distilled acc/bal':>18s} {'alone acc/bal':>15s} {'teacher acc/bal':>16s} {'gain (pts)':>11s} "
             f"{'student MB':>10s} {'teacher MB':>10s} {'img/s ratio':>11s}"]
    for name, m in result["means"].items():
        lines.append(
            f"{name:16s} {','.join(map(str, m['seeds'])):8s} {m['student_accuracy']:.3f}/{m['student_balanced_accuracy']:.3f}"
            f"{'':5s}{m['alone_accuracy']:.3f}/{m['alone_balanced_accuracy']:.3f}{'':4s}{m['teacher_accuracy']:.3f}/{m['teacher_balanced_accuracy']:.3f}"
            f"{100 * m['gain_accuracy']:+10.1f} {m['student_megabytes']:10.1f} {m['teacher_megabytes']:10.1f} {m['speedup_vs_teacher']:10.2f}x"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--sets", default=",".join(SETS))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--work", default=None, help="folder for the runs and caches (default: a new temporary folder)")
    p.add_argument("--json", default=None, help="also write the result as JSON to this file")
    args = p.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(","))
    result = measure_distillation(seeds, args.quick, Path(args.work) if args.work else None, tuple(args.sets.split(",")), log=lambda s: print(s, flush=True))
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
