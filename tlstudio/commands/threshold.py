"""`tlstudio threshold RUN_DIR P`: say "not sure" when the top calibrated probability is below P.

P is written into summary.json and into each exported file of the run (model.pt, model.onnx), which
then answer "not sure" below it ('tlstudio predict', Try it, Classify a folder); 0 always answers.
The files keep the network that was verified: only the threshold changes. The coverage curve of the
run (on the pictures the calibration was fitted on, never the validation ones) says what P costs.
"""

from __future__ import annotations

from tlstudio.core.engine.calibration import point_on, read_calibration, sentence
from tlstudio.core.inference.formats import apply_threshold
from tlstudio.core.runs.files import RunFiles


def register(subparsers) -> None:
    p = subparsers.add_parser("threshold", help="answer 'not sure' below a confidence, in a run's exported files", description=__doc__)
    p.add_argument("run_dir", metavar="RUN_DIR", help="the folder a run wrote (the --out of 'tlstudio train')")
    p.add_argument("threshold", metavar="P", type=float, help="the top probability below which the answer is 'not sure' (0: always answer), e.g. 0.9")
    p.set_defaults(func=run)


def run(args) -> int:
    written = apply_threshold(args.run_dir, args.threshold)
    files = RunFiles(args.run_dir)
    calibration = read_calibration(files.read_json(files.summary, {}))
    for path in written:
        print(f"wrote {path}")
    if calibration is not None and calibration.coverage:
        print(sentence(point_on(calibration.coverage, calibration.threshold)) + f" (on the {calibration.pictures} pictures of the {calibration.fitted_on})")
    return 0
