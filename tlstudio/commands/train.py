"""`tlstudio train DATA_DIR --backbone NAME --freeze-depth all|none|K --epochs N --out RUN_DIR`.

`tlstudio train --resume RUN_DIR` continues a stopped, crashed or killed run from its last
completed epoch, with the settings and pictures it was started with.

`--from-scratch` trains the same network from random weights with every layer training: the
baseline that shows what the pretrained weights add (see tlstudio.core.runs.baseline).

`--nproc N` trains in N processes on this machine (torchrun; one per GPU, or a share of the CPU cores each);
on a cluster, `torchrun --nnodes M --nproc-per-node N -m tlstudio train ...` runs the same training.

`--start-from RUN_DIR` starts from a finished run instead of ImageNet: its backbone, with the weights
of its kept epoch, and its image size; the head is new (two-step transfer, see tlstudio.core.catalog.my_models).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tlstudio.commands.progress import TerminalProgress
from tlstudio.core.config import AUGMENT_PRESETS, CLASS_WEIGHTING, SELECTION_METRICS, TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.names import printable


def _batch_size(text: str) -> int:
    if text == "auto":
        return 0
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 4096 or 'auto', not '{text}'") from None
    if not 1 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"must be from 1 to 4096 or 'auto' (the largest that fits the GPU), not {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def register(subparsers) -> None:
    d = TrainConfig()
    p = subparsers.add_parser("train", help="train a classifier on a folder of images and export it", description=__doc__)
    p.add_argument("data_dir", metavar="DATA_DIR", nargs="?", help="folder with one sub-folder per class (or train/ and val/ folders)")
    p.add_argument("--out", metavar="RUN_DIR", help="where the run's files go (config, history, metrics, checkpoints, model.pt)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped, crashed or killed run from its last completed epoch, with its own settings")
    p.add_argument("--backbone", default=d.backbone, help=f"pretrained backbone (see 'tlstudio backbones'; default {d.backbone})")
    p.add_argument("--freeze-depth", default=None, help=f"'all' trains only the new head, 'none' fine-tunes everything, K freezes the first K stages (default {d.freeze_depth}; none with --from-scratch)")
    p.add_argument(
        "--from-scratch",
        action="store_true",
        help="start from random weights instead of ImageNet ones and train everything: the baseline that shows what transfer learning adds",
    )
    p.add_argument(
        "--start-from",
        metavar="RUN_DIR",
        default=None,
        help="start from a finished run's kept weights instead of ImageNet's (its backbone and image size; a new head for these classes)",
    )
    p.add_argument("--epochs", type=_positive_int, default=d.epochs)
    p.add_argument("--batch-size", type=_batch_size, default=d.batch_size, help="images per step, or 'auto' on a GPU (default 32)")
    p.add_argument("--lr", type=float, default=d.lr, help=f"learning rate of the new head; a pretrained backbone gets a tenth, one from scratch all of it (default {d.lr})")
    p.add_argument("--image-size", type=_positive_int, default=None, help="input size in pixels (default: the backbone's own)")
    p.add_argument("--augment", choices=AUGMENT_PRESETS, default=d.augment)
    p.add_argument(
        "--class-weights",
        choices=CLASS_WEIGHTING,
        default=d.class_weights,
        help="'auto': cross-validation on the training pictures chooses between none, balanced weights and a prior correction",
    )
    p.add_argument(
        "--selection-metric",
        choices=SELECTION_METRICS,
        default=d.selection_metric,
        help="what the run's choices (epoch, L2 strength, class weighting) maximise on the training pictures (default balanced_accuracy)",
    )
    p.add_argument("--patience", type=int, default=None, help="epochs without a better score on the held-back training pictures before a fine-tune stops (default: a third of the epochs, at least 3; 0: never)")
    p.add_argument("--val-split", type=float, default=d.val_split, help="validation fraction when the folder has no val/ folder (default 0.2)")
    p.add_argument("--test-split", type=float, default=d.test_split)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default=d.device, help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--workers", type=int, default=None, help="data loader workers (default: sized from the CPU count)")
    p.add_argument("--cache", metavar="DIR", default=None, help="cache for decoded images and features (default: the per-user cache)")
    p.add_argument("--no-cache", action="store_true", help="re-run the frozen layers every epoch instead of caching their output")
    p.add_argument("--augment-on-device", action="store_true", help="crop, flip and colour-jitter whole batches on the GPU instead of per image in the data loader workers (helps when the CPU cannot keep up)")
    p.add_argument("--compile", action="store_true", help="train through torch.compile: on a GPU and for long runs only, as compiling takes a minute or more")
    p.add_argument(
        "--nproc", type=_positive_int, default=1,
        help="train in N processes on this machine (one per GPU, or an equal share of the CPU cores each); --batch-size is their global batch",
    )
    p.add_argument("--no-export", action="store_true", help="skip the TorchScript export")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.set_defaults(func=run, resume_conflicts=_settings_of(p))


RESUME_KEEPS = {"resume", "cache", "json", "help", "nproc"}  # the options that may come with --resume


def _settings_of(parser: argparse.ArgumentParser) -> dict[str, tuple[str, object]]:
    """{dest: (how it is written, its default)} for every setting a resumed run takes from its own config."""
    return {a.dest: (a.option_strings[0] if a.option_strings else a.metavar, a.default) for a in parser._actions if a.dest not in RESUME_KEEPS}


def resume_conflicts(args) -> list[str]:
    return [written for dest, (written, default) in args.resume_conflicts.items() if getattr(args, dest, default) != default]


def config_from_args(args) -> TrainConfig:
    from_scratch = getattr(args, "from_scratch", False)
    freeze = args.freeze_depth
    text = str(freeze).strip().lower()
    if from_scratch and freeze is not None and text not in ("none", "0"):
        if text == "all":
            why = "a randomly initialised backbone that stays frozen learns nothing, only a head on random features would train"
        elif text.isdigit():
            why = "frozen stages would keep their random weights and never learn"
        else:
            why = "with --from-scratch it can only be 'none'"
        raise UserError(f"--from-scratch --freeze-depth {freeze}: {why}. Omit --freeze-depth: from scratch, everything trains.")
    config = TrainConfig(
        data_dir=str(Path(args.data_dir)),
        backbone=args.backbone,
        freeze_depth=str(freeze if freeze is not None else TrainConfig.freeze_depth),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        image_size=args.image_size,
        augment=args.augment,
        class_weights=args.class_weights,
        selection_metric=args.selection_metric,
        patience=args.patience,
        val_split=args.val_split,
        test_split=args.test_split,
        seed=args.seed,
        device=args.device,
        workers=args.workers,
        feature_cache=not args.no_cache,
        device_augment=args.augment_on_device,
        torch_compile=args.compile,
        export=not args.no_export,
    ).validate()
    if from_scratch:
        from tlstudio.core.runs.baseline import baseline_config

        config = baseline_config(config)
    if getattr(args, "start_from", None):
        config = started_config(config, args)
    return config


def started_config(config: TrainConfig, args) -> TrainConfig:
    """``config`` started from the finished run ``--start-from`` names (refused here, before any work, when it cannot be)."""
    from tlstudio.core.catalog.my_models import read_my_model, start_config

    if getattr(args, "from_scratch", False):
        raise UserError("--start-from starts from that run's trained weights, --from-scratch from random ones: give one of the two.")
    model = read_my_model(args.start_from)
    if args.backbone != TrainConfig.backbone and args.backbone != model.backbone:
        raise UserError(f"--start-from '{printable(args.start_from)}' is a {model.backbone} run: leave out --backbone {args.backbone}, it comes from that run.")
    started = start_config(config, model)
    if args.image_size is not None:
        started.image_size = args.image_size  # asked for: the source's own size is only the default
    return started.validate()


def run(args) -> int:
    from tlstudio.core.catalog import backbones
    from tlstudio.core.paths import cache_dir
    from tlstudio.core.data.preprocess import preprocessing_for
    from tlstudio.core.engine.trainer import Trainer

    from tlstudio.commands import processes

    processes.refuse_nested(args.nproc)
    if args.nproc > 1:
        return processes.launch(args.nproc, processes.without_nproc(args.argv))
    if args.resume:
        return resume(args)
    if not args.data_dir or not args.out:
        raise UserError("give the folder of images and --out RUN_DIR (or --resume RUN_DIR to continue a run).")
    config = config_from_args(args)
    spec = backbones.get_backbone(config.backbone)  # bad settings fail here, before any work
    config.freeze.stages_of(spec)
    preprocessing_for(spec, config.image_size)
    data = Path(config.data_dir)
    if not data.is_dir():
        raise UserError(f"'{printable(data)}' is not a folder. Give the folder that holds one sub-folder per class.")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out '{printable(out)}' is a file. Give a folder for the run's files.")
    if config.start_from:
        print(f"starting from the run '{printable(config.start_from)}' ({config.backbone}): its kept weights, a new head for these classes.", file=sys.stderr)
    if not config.pretrained:
        print(
            "from scratch: the backbone starts from random weights and every layer trains; "
            "compare its accuracy with a pretrained run's to see what transfer learning adds.",
            file=sys.stderr,
        )
    ranks = processes.prepare_rank(config.device)
    return report(Trainer(config, out, cache_dir=args.cache or cache_dir(), ranks=ranks), args)


def resume(args) -> int:
    from tlstudio.core.paths import cache_dir
    from tlstudio.core.engine.trainer import Trainer

    given = resume_conflicts(args)
    if given:
        raise UserError(f"--resume continues '{printable(args.resume)}' with the settings it was started with (its config.json); leave out {', '.join(given)}.")
    if not Path(args.resume).is_dir():
        raise UserError(f"--resume '{printable(args.resume)}' is not a folder. Give the run folder (the --out of the run to continue).")
    from tlstudio.commands import processes
    from tlstudio.core.runs.files import read_config

    try:
        device = read_config(Path(args.resume) / "config.json").device
    except (OSError, ValueError, UserError):
        device = "auto"  # Trainer.resume says what is wrong with the folder
    ranks = processes.prepare_rank(device)
    return report(Trainer.resume(args.resume, cache_dir=args.cache or cache_dir(), ranks=ranks), args)


def report(trainer, args) -> int:
    """Run, print the outcome; 130 when stopped (Ctrl+C). A rank other than 0 prints nothing: rank 0 reports the run."""
    from tlstudio.commands import processes
    from tlstudio.core import distributed

    ranks = trainer.ranks
    try:
        stop = processes.rank_stop(ranks) if ranks.active else None
        result = trainer.run(processes.rank_progress(ranks, TerminalProgress()), stop)
    finally:
        distributed.leave()
    if not ranks.is_main:
        return 130 if result.cancelled else 0
    if args.json:
        print(json.dumps(result.summary, indent=2))
    elif not result.cancelled:
        print_outcome(result.summary, result.metrics)
    return 130 if result.cancelled else 0


def print_outcome(s: dict, metrics: dict) -> None:
    from tlstudio.core.report.fit_report import diagnosis_sentences, selection_sentence

    kept = f", epoch {s['best_epoch']} kept" if s.get("best_epoch") else ""
    print(f"val accuracy {s['val_accuracy']:.4f} (balanced {s['val_balanced_accuracy']:.4f}){kept}, {s['seconds']:.1f} s")
    if s.get("stopped_after"):
        print(f"{s['stopped_after']}: these are the figures of the epoch kept so far; resume the run to train the rest.")
    early = s.get("stopped_early")
    if early:
        print(f"stopped early after epoch {early['epoch']}: the held-back training pictures scored no better for {early['patience']} epochs (epoch {early['best_epoch']} kept).")
    if s.get("selection"):
        print(selection_sentence(s["selection"], metrics.get("n", 0)))
    for sentence in diagnosis_sentences(s.get("diagnosis") or {}):
        print(sentence, file=sys.stderr)
    if "export" in s:
        print(f"model: {printable(s['export']['path'])}")
    if "export_onnx" in s:  # 'tlstudio export --format onnx'
        print(f"onnx model: {printable(s['export_onnx']['path'])}: a fresh onnxruntime process {s['export_onnx']['message']}")
