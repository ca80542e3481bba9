"""`tlstudio export RUN_DIR`: a verified model file of the epoch a run kept, in RUN_DIR.

--format torchscript (the default) writes model.pt, which runs in plain PyTorch; --format onnx writes
model.onnx, which runs without Python code in onnxruntime (opset 18, preprocessing inside, class names
in its metadata). Either is only kept after a fresh process has run it and agreed with the trained model.

A finished run was exported when it finished (unless trained with --no-export); a stopped or
crashed one is evaluated and exported as it is, marked "stopped after epoch k of n".
"""

from __future__ import annotations

from tlstudio.commands import evaluate


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export the model of a run, also of one that was stopped", description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="the folder a run wrote (the --out of 'tlstudio train')")
    p.add_argument("--cache", metavar="DIR", default=None, help="cache for decoded images and features (default: the per-user cache)")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON on stdout")
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript", help="model.pt for PyTorch (default) or model.onnx for onnxruntime")
    p.set_defaults(func=evaluate.run, export=True)
