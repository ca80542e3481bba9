"""Domain adaptation benchmark: target accuracy with no adaptation, AdaBN, CORAL and AdaBN + CORAL.

    nice -n 10 .venv/bin/python -m tests.bench.transfer_adapt            # 3 seeds, both sets
    nice -n 10 .venv/bin/python -m tests.bench.transfer_adapt --quick    # hymenoptera, seed 0

For each set and seed: a frozen EfficientNet-Lite0 run (``SOURCE``), then for each shift a target folder
made of shifted copies (``tests/shifted.py``) of pictures held out from both the run's training and
validation pictures: hymenoptera's val/ folder is split in two by the seed (half the run's validation,
half the target); pbc_blood_cells is split 60/20/20 by the seed, the test fifth the target. Each method
adapts the run to the target folder without its labels (``adapt_run`` never reads the class sub-folder
names); the labels only score. Reported per arm: target accuracy and the adapted model's accuracy on the
run's own (source-domain) validation pictures; means over the seeds. Settings are fixed here, beforehand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.shifted import write_shifted  # noqa: E402
from tlstudio.core.adapt.adapt_run import METHODS, adapt_run  # noqa: E402
from tlstudio.core.config import TrainConfig  # noqa: E402
from tlstudio.core.data.index import DatasetIndex  # noqa: E402
from tlstudio.core.data.scan import scan_folder, stratified_split  # noqa: E402
from tlstudio.core.engine.trainer import Trainer  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"
HYMENOPTERA, PBC = SHARED / "hymenoptera", SHARED / "pbc_blood_cells"
SHIFTS = ("none", "grey", "colour-cast")
# Lite0 frozen, the default head; one view at 160 px so that 3 seeds x 2 sets fit the 2 shared CPU cores.
SOURCE = dict(backbone="efficientnet_lite0", freeze_depth="all", augment="none", image_size=160, export=False)


def hymenoptera_index(seed: int) -> DatasetIndex:
    index = scan_folder(HYMENOPTERA)
    val = [i for i, s in enumerate(index.samples) if s.split == "val"]
    halves = stratified_split([index.classes[index.samples[i].label] for i in val], [index.samples[i].digest for i in val], 0.5, 0.0, seed)
    samples = list(index.samples)
    for i, half in zip(val, halves):
        samples[i] = replace(samples[i], split="val" if half == "train" else "test")
    return replace(index, samples=samples)


def pbc_index(seed: int) -> DatasetIndex:
    return scan_folder(PBC, val_split=0.2, test_split=0.2, seed=seed)


SETS = {"hymenoptera": (HYMENOPTERA, hymenoptera_index), "pbc_blood_cells": (PBC, pbc_index)}


def one_seed(name: str, seed: int, work: Path, cache: Path, log) -> list[dict]:
    root, make_index = SETS[name]
    index = make_index(seed)
    run_dir = work / f"{name}-{seed}" / "run"
    Trainer(TrainConfig(data_dir=str(root), seed=seed, **SOURCE), run_dir, cache_dir=cache, index=index).run()
    held = [(Path(index.root) / s.path, index.classes[s.label]) for s in index.samples if s.split == "test"]
    rows = []
    for shift in SHIFTS:
        target = write_shifted(held, work / f"{name}-{seed}" / f"target-{shift}", shift)
        row = {"set": name, "seed": seed, "shift": shift, "pictures": len(held)}
        for method in METHODS:
            result = adapt_run(run_dir, target, work / f"{name}-{seed}" / f"{shift}-{method}", method=method, labelled_dir=target, cache_dir=cache, export=False)
            row["none"], row["none_source"] = result.before.labelled_accuracy, result.before.source_val_accuracy
            row["gap_before"] = result.before.gap.classifier_accuracy
            row[method], row[f"{method}_source"], row[f"{method}_gap"] = result.after.labelled_accuracy, result.after.source_val_accuracy, result.after.gap.classifier_accuracy
        rows.append(row)
        log(json.dumps(row))
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for name in dict.fromkeys(r["set"] for r in rows):
        for shift in SHIFTS:
            group = [r for r in rows if r["set"] == name and r["shift"] == shift]
            if not group:
                continue
            mean = {k: float(np.mean([r[k] for r in group])) for k in group[0] if k not in ("set", "seed", "shift")}
            out.append({"set": name, "shift": shift, "seeds": [r["seed"] for r in group], **mean})
    return out


def table(summary: list[dict]) -> str:
    arms = ("none",) + METHODS
    head = f"{'set':<16} {'shift':<12} {'seeds':<6}" + "".join(f"{a:>13}" for a in arms) + "   source val: " + " ".join(f"{a:>11}" for a in arms)
    lines = [head, "-" * len(head)]
    for s in summary:
        target = "".join(f"{s[a]:13.4f}" for a in arms)
        source = " ".join(f"{s[a + '_source']:11.4f}" for a in arms)
        lines.append(f"{s['set']:<16} {s['shift']:<12} {len(s['seeds']):<6}{target}   source val: {source}")
    lines.append("target accuracy: mean over seeds of the shifted held-out pictures; source val: the same model on the run's validation pictures.")
    return "\n".join(lines)


def measure_adaptation(seeds=(0, 1, 2), quick: bool = False, work_dir: Optional[Path] = None, sets=None, log=print) -> dict:
    """Every arm on every set, shift and seed: {"rows": per seed, "summary": means over seeds}."""
    sets = sets or (("hymenoptera",) if quick else tuple(SETS))
    seeds = (seeds[0],) if quick else tuple(seeds)
    own = work_dir is None
    work = Path(tempfile.mkdtemp(prefix="tlstudio-adapt-")) if own else Path(work_dir)
    cache = work / "cache"
    rows = []
    try:
        for name in sets:
            if not SETS[name][0].is_dir():
                log(f"{name}: not found under {SHARED}, skipped")
                continue
            for seed in seeds:
                rows += one_seed(name, seed, work, cache, log)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
    return {"rows": rows, "summary": summarise(rows), "settings": {**SOURCE, "shifts": SHIFTS, "methods": METHODS}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="hymenoptera, seed 0 only")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--sets", nargs="+", choices=tuple(SETS), default=None)
    p.add_argument("--work", type=Path, default=None, help="keep the runs and targets here (default: a temporary folder)")
    args = p.parse_args(argv)
    found = measure_adaptation(tuple(args.seeds), args.quick, args.work, args.sets, log=lambda text: print(text, flush=True))
    print(table(found["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
