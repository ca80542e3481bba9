"""`tlstudio distill TEACHER_RUN_DIR --backbone NAME [--freeze-depth K] [--epochs N] --out RUN_DIR [--compare] [--json]`.

"Make it smaller": trains a student (a smaller backbone) on the teacher run's softened outputs plus the labels
(knowledge distillation, see tlstudio.core.engine.distill), on the teacher's pictures and split, and prints the
student against the teacher: accuracy, balanced accuracy, size and images/s on this computer. With --compare,
the same student is also trained on the labels alone (into RUN_DIR-alone) and shown beside them.
The student is a normal run: export, evaluate and predict take RUN_DIR like any other.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tlstudio.commands.progress import TerminalProgress
from tlstudio.commands.train import _positive_int
from tlstudio.core.config import DISTILL_TEMPERATURE, DISTILL_WEIGHT, TrainConfig
from tlstudio.core.errors import UserError
from tlstudio.core.names import printable

ALONE_SUFFIX = "-alone"


def register(subparsers) -> None:
    p = subparsers.add_parser("distill", help="train a smaller model from a finished run (knowledge distillation)", description=__doc__)
    p.add_argument("teacher", metavar="TEACHER_RUN_DIR", help="the finished run the student learns from")
    p.add_argument("--backbone", required=True, help="the student's backbone, usually a smaller one (see 'tlstudio backbones')")
    p.add_argument("--freeze-depth", default=None, help="the student's frozen stages: K or 'none' (default: the teacher's)")
    p.add_argument("--out", metavar="RUN_DIR", required=True, help="where the student's run goes")
    p.add_argument("--epochs", type=_positive_int, default=None, help="the student's epochs (default: the teacher's)")
    p.add_argument("--image-size", type=_positive_int, default=None, help="the student's input size in pixels (default: its backbone's own)")
    p.add_argument("--temperature", type=float, default=DISTILL_TEMPERATURE, help=f"softening of both outputs (default {DISTILL_TEMPERATURE:g})")
    p.add_argument("--distill-weight", type=float, default=DISTILL_WEIGHT, help=f"weight of the teacher's outputs against the labels' 1 - weight (default {DISTILL_WEIGHT:g})")
    p.add_argument("--compare", action="store_true", help=f"also train the same student on the labels alone (into RUN_DIR{ALONE_SUFFIX}) and compare")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--cache", metavar="DIR", default=None, help="cache for decoded images and features (default: the per-user cache)")
    p.add_argument("--no-export", action="store_true", help="skip the student's TorchScript export")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON on stdout")
    p.set_defaults(func=run)


def student_config(args) -> TrainConfig:
    from dataclasses import replace

    from tlstudio.core.catalog import backbones
    from tlstudio.core.engine.distill import distill_config
    from tlstudio.core.runs.files import RunFiles, read_config

    files = RunFiles(args.teacher)
    if not files.config.is_file():
        raise UserError(f"'{printable(args.teacher)}' is not a training run: it has no config.json. Give the folder of a finished run.")
    teacher = read_config(files.config)
    freeze = args.freeze_depth if args.freeze_depth is not None else teacher.freeze_depth
    if freeze == "all" and args.freeze_depth is None:
        raise UserError(f"the teacher '{printable(args.teacher)}' has a frozen backbone: give the student's --freeze-depth (a number of stages such as 6, or 'none').")
    # The teacher's recipe (batch size, learning rate, augmentation, epochs ...) but for what is asked here.
    base = replace(teacher, epochs=args.epochs or teacher.epochs, image_size=args.image_size, device=args.device, export=not args.no_export,
                   distill_temperature=args.temperature, distill_weight=args.distill_weight)
    config = distill_config(base, args.teacher, args.backbone, freeze)
    config.freeze.stages_of(backbones.get_backbone(config.backbone))  # a bad depth fails here, before any work
    if not Path(config.data_dir).is_dir():
        raise UserError(f"the teacher's pictures '{printable(config.data_dir)}' are not there any more: the student trains on them.")
    return config


def run(args) -> int:
    from dataclasses import replace

    from tlstudio.core.engine.distill import compare_distillation
    from tlstudio.core.engine.trainer import Trainer
    from tlstudio.core.paths import cache_dir

    config = student_config(args)
    out = Path(args.out)
    cache = args.cache or cache_dir()
    result = Trainer(config, out, cache_dir=cache).run(TerminalProgress())
    if result.cancelled:
        return 130
    alone = None
    if args.compare:
        alone = out.with_name(out.name + ALONE_SUFFIX)
        print(f"the same student on the labels alone, into '{printable(alone)}':", file=sys.stderr)
        if Trainer(replace(config, teacher=""), alone, cache_dir=cache).run(TerminalProgress()).cancelled:
            return 130
    report = compare_distillation(out, args.teacher, alone)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print_report(report)
    return 0


def print_report(report) -> None:
    arms = [("student", report.student), ("alone", report.alone), ("teacher", report.teacher)]
    print(f"{'':9s} {'backbone':20s} {'accuracy':>9s} {'balanced':>9s} {'params':>11s} {'MB':>7s} {'images/s':>9s}")
    for name, f in arms:
        if f is not None:
            print(f"{name:9s} {f.backbone:20s} {f.accuracy:9.4f} {f.balanced_accuracy:9.4f} {f.params:11,d} {f.megabytes:7.1f} {f.images_per_s:9.1f}")
    print(f"the student evaluates {report.speedup:.2f}x as many images per second as the teacher on this computer (measured in turns, one process).")
    if not report.same_validation:
        print("the runs were measured on different validation pictures: their accuracies do not compare.", file=sys.stderr)
    print(f"student run: {printable(report.student.run_dir)}")
