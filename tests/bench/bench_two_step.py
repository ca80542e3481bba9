"""Two-step transfer benchmark: a blood-cell task started from a run on other blood cells, against the same task from ImageNet.

    .venv/bin/python -m tests.bench.bench_two_step             # 3 split seeds: about 5 min on 2 CPU cores
    .venv/bin/python -m tests.bench.bench_two_step --seeds 0   # one seed
    .venv/bin/python -m tests.bench.bench_two_step --pair mononuclear-first   # the other pair

Reads ../shared/datasets/pbc_blood_cells (five cell types, one folder each). Step one fine-tunes
EfficientNet-Lite0 on three of them (basophil, eosinophil, neutrophil: the granulocytes) with its
last stages training (``--freeze-depth 7 --image-size 160 --epochs 4``, seed 0). Step two is a new
task on the other two (lymphocyte against monocyte), the same settings from both starts: a frozen
backbone and the head solved on its features (``--freeze-depth all``, no augmentation, 160 px), its
validation split drawn by seeds 0, 1, 2, once started from step one's run (``start_from``) and once
from ImageNet. Each task folder is a temporary folder of symbolic links to the class folders: nothing
is copied. Prints per-seed and mean (balanced) validation accuracy of both starts and the gain.
``--pair mononuclear-first`` measures the other way round: lymphocyte, monocyte and neutrophil first,
then basophil against eosinophil (the two rarest types: 130 pictures, so 26 validation ones).
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

from tlstudio.core.catalog.my_models import read_my_model, start_config  # noqa: E402
from tlstudio.core.config import TrainConfig  # noqa: E402
from tlstudio.core.engine.trainer import Trainer  # noqa: E402

PBC = REPO.parent / "shared" / "datasets" / "pbc_blood_cells"
PAIRS = {  # name -> (step one's cell types, step two's)
    "granulocytes-first": (("basophil", "eosinophil", "neutrophil"), ("lymphocyte", "monocyte")),
    "mononuclear-first": (("lymphocyte", "monocyte", "neutrophil"), ("basophil", "eosinophil")),
}
SOURCE_SETTINGS = dict(backbone="efficientnet_lite0", freeze_depth="7", image_size=160, epochs=4, seed=0)
TARGET_SETTINGS = dict(backbone="efficientnet_lite0", freeze_depth="all", image_size=160, augment="none")


def task_folder(root: Path, classes: tuple[str, ...]) -> Path:
    """``root`` with one symbolic link per class folder of the shared data set."""
    root.mkdir(parents=True)
    for name in classes:
        (root / name).symlink_to(PBC / name, target_is_directory=True)
    return root


def train(config: TrainConfig, out: Path, cache: Path) -> dict:
    started = time.perf_counter()
    result = Trainer(config, out, cache_dir=cache).run()
    return {"acc": result.metrics["accuracy"], "bal": result.metrics["balanced_accuracy"], "seconds": time.perf_counter() - started}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--pair", choices=PAIRS, default="granulocytes-first")
    args = parser.parse_args(argv)
    source_classes, target_classes = PAIRS[args.pair]
    if not all((PBC / c).is_dir() for c in source_classes + target_classes):
        print(f"{PBC} is not present: nothing to measure.")
        return 0
    with tempfile.TemporaryDirectory(prefix="tlstudio_two_step_") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        source_data, target_data = task_folder(work / "source_task", source_classes), task_folder(work / "target_task", target_classes)
        source = train(TrainConfig(data_dir=str(source_data), device="cpu", export=False, **SOURCE_SETTINGS), work / "source_run", cache)
        print(f"step one, {'/'.join(source_classes)} ({SOURCE_SETTINGS}): val accuracy {source['acc']:.4f}, balanced {source['bal']:.4f}, {source['seconds']:.0f} s")
        mine = read_my_model(work / "source_run")
        rows = []
        for seed in args.seeds:
            target = TrainConfig(data_dir=str(target_data), device="cpu", export=False, seed=seed, **TARGET_SETTINGS)
            two_step = train(start_config(target, mine), work / f"two_step_{seed}", cache)
            imagenet = train(target, work / f"imagenet_{seed}", cache)
            rows.append((seed, two_step, imagenet))
            print(
                f"step two, {' vs '.join(target_classes)}, seed {seed}: two-step acc {two_step['acc']:.4f} bal {two_step['bal']:.4f} ({two_step['seconds']:.0f} s) | "
                f"ImageNet acc {imagenet['acc']:.4f} bal {imagenet['bal']:.4f} ({imagenet['seconds']:.0f} s)"
            )
        for key, label in (("acc", "accuracy"), ("bal", "balanced accuracy")):
            a = np.array([r[1][key] for r in rows])
            b = np.array([r[2][key] for r in rows])
            wins = int((a > b).sum())
            print(
                f"mean {label} over seeds {args.seeds}: two-step {a.mean():.4f}, ImageNet {b.mean():.4f}, "
                f"gain {100 * (a.mean() - b.mean()):+.1f} points (two-step better on {wins} of {len(rows)} seeds)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
