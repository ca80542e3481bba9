"""The ensemble's model file: each member's network with its own preprocessing, their probabilities averaged.

The file keeps the export contract (``export.py``): ``forward`` takes RGB images of any size as uint8,
uint16 or float and returns probabilities, here the equal-weight mean of the members' calibrated
ones. Each member is an ``ExportedClassifier`` (its resize, crop, mean/std and temperature inside),
so members of different backbones and input sizes each see the picture as their own run did. The
file's own ``resize_size``/``input_size``/``mean``/``std`` are those of the member with the largest
resize (what ``predict`` shrinks a picture to before feeding it); every member's are in
``members[i]`` and in the info's ``members``. ``temperature`` is 1 (each member carries its own) and
``not_sure_below`` 0: a threshold would have to be chosen without the validation pictures, and the
members' calibration pictures differ.

The fresh-process check feeds each member the very pixels its run evaluated (the decoded square at
its own resize size) and compares the mean with the runs' saved validation probabilities; it also
runs ``forward`` on the square ``predict`` gives (one resize for the smaller members more, so a
near tie may flip) and reports that agreement.
"""

# No "from __future__ import annotations": TorchScript reads the class annotations at runtime.

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from tlstudio.core.atomic import json_line, write_buffered
from tlstudio.core.catalog.checksum import sha256_of_file
from tlstudio.core.data.images import ImageRejected, load_rgb_array
from tlstudio.core.data.pixel_store import centre_square
from tlstudio.core.data.preprocess import Preprocessing
from tlstudio.core.errors import UserError
from tlstudio.core.events import StopToken
from tlstudio.core.inference import trust
from tlstudio.core.inference.child_run import CHILD_PROGRESS_LINE, run_followed
from tlstudio.core.inference.export import INFO_FILE, ExportedClassifier, child_command, refuse_non_finite, run_child_code, torchscript_quietly
from tlstudio.core.inference.trained_model import TrainedModel

KIND = "ensemble"  # the info's "kind": an ensemble file, beside the plain model files
CHILD_FLAG = "--verify-ensemble-child"
MIN_AGREEMENT = 0.99  # members fed their own pixels: the same numbers, so every top class must match (up to a rare tie)
MIN_FILE_AGREEMENT = 0.95  # forward on predict's square: the smaller members resize once more (torch's filter, not Pillow's)


class EnsembleClassifier(nn.Module):
    """The mean of the members' probabilities; each member an ``ExportedClassifier`` with its own preprocessing."""

    class_names: List[str]
    input_size: int
    resize_size: int
    mean: List[float]
    std: List[float]
    temperature: float
    not_sure_below: float
    member_resize_sizes: List[int]

    def __init__(self, members: Sequence[torch.jit.ScriptModule], classes: Sequence[str], outer: Preprocessing, resize_sizes: Sequence[int]):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.class_names = [str(c) for c in classes]
        self.input_size = int(outer.input_size)
        self.resize_size = int(outer.resize_size)
        self.mean = [float(v) for v in outer.mean]
        self.std = [float(v) for v in outer.std]
        self.temperature = 1.0
        self.not_sure_below = 0.0
        self.member_resize_sizes = [int(s) for s in resize_sizes]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        probs: List[torch.Tensor] = []
        for member in self.members:
            probs.append(member(images))
        return torch.stack(probs, 0).mean(0)


def member_module(trained: TrainedModel) -> torch.jit.ScriptModule:
    """One member as the scripted ``ExportedClassifier`` its own export would hold (network traced, threshold 0)."""
    network = trained.model.float().cpu().eval()
    refuse_non_finite(network)
    size = trained.pre.input_size
    with torch.no_grad(), torchscript_quietly():
        traced = torch.jit.trace(network, torch.zeros(2, 3, size, size), check_trace=False)
        for n in (1, 3):  # a trace that baked in the batch size fails here, not on the user's machine
            if traced(torch.zeros(n, 3, size, size)).shape[0] != n:
                raise RuntimeError(f"the traced {trained.spec.name} returned the wrong number of rows for a batch of {n}")
        return torch.jit.script(ExportedClassifier(traced, trained.pre, trained.classes, trained.temperature, 0.0))


def outer_preprocessing(members: Sequence[TrainedModel]) -> Preprocessing:
    """What the file is fed: the member with the largest resize size (the others shrink from it)."""
    return max((m.pre for m in members), key=lambda pre: (pre.resize_size, pre.input_size))


def build_ensemble(members: Sequence[TrainedModel], classes: Sequence[str]) -> torch.jit.ScriptModule:
    scripted = [member_module(m) for m in members]
    outer = outer_preprocessing(members)
    with torchscript_quietly():
        return torch.jit.script(EnsembleClassifier(scripted, classes, outer, [m.pre.resize_size for m in members]))


def save_ensemble(module: torch.jit.ScriptModule, info: dict, dest: Path) -> Path:
    """Atomically, in memory first (a full disk is a DiskError), and recorded in the trust store: tlstudio made it."""
    with torchscript_quietly():
        write_buffered(dest, lambda buf: torch.jit.save(module, buf, _extra_files={INFO_FILE: json_line(info)}))
    trust.remember(sha256_of_file(dest), trust.EXPORTED, dest)
    return dest


@dataclass(frozen=True)
class EnsembleCheck:
    """The fresh process's answer on the held validation pictures."""

    ok: bool
    n: int
    agreement: float  # members fed their runs' own pixels, averaged, vs the runs' saved probabilities averaged: same top class
    max_abs_diff: float
    file_agreement: float  # forward on the square 'predict' feeds vs the same saved probabilities
    file_max_abs_diff: float
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


# The child imports nothing but torch: it is what a user's machine has.
_CHILD = r"""
import json, sys, torch
model_path, images_path = sys.argv[-2:]
model = torch.jit.load(model_path, map_location="cpu")
held = torch.load(images_path, weights_only=True)
members = list(model.members.children())
probs, forward = [], []
with torch.no_grad():
    for pictures in held:
        own = [m(p.permute(2, 0, 1).unsqueeze(0))[0] for m, p in zip(members, pictures[1:])]
        probs.append(torch.stack(own).mean(0).tolist())
        forward.append(model(pictures[0].permute(2, 0, 1).unsqueeze(0))[0].tolist())
        PROGRESS_LINE
print(json.dumps({"class_names": list(model.class_names), "probs": probs, "forward": forward}))
""".replace("PROGRESS_LINE", CHILD_PROGRESS_LINE)


def run_child() -> int:
    """``tlstudio --verify-ensemble-child MODEL IMAGES`` (the check's fresh process in a frozen bundle)."""
    return run_child_code(_CHILD, "<verify-ensemble>")


def square(path: Path, size: int) -> np.ndarray:
    """The picture as a run's evaluation (and ``predict``) holds it: short side ``size``, its centre square."""
    try:
        return np.ascontiguousarray(centre_square(load_rgb_array(path, short_side=size), size))
    except (ImageRejected, OSError) as exc:
        why = exc.reason if isinstance(exc, ImageRejected) else (exc.strerror or str(exc))
        raise UserError(f"the validation picture '{path}' can no longer be read ({why}), so the ensemble cannot be checked. "
                        "Put the data folder back as it was when the runs were trained.") from None


def held_pictures(paths: Sequence[Path], member_sizes: Sequence[int], outer_size: int, stop: StopToken) -> list[list[np.ndarray]]:
    """Per picture: the square ``predict`` feeds, then each member's own square."""
    out = []
    for path in paths:
        stop.check()
        out.append([square(path, outer_size)] + [square(path, s) for s in member_sizes])
    return out


def verify_ensemble(
    model_path: Path, pictures: Sequence[Sequence[np.ndarray]], expected_probs: np.ndarray, timeout: float = 900,
    stop: Optional[StopToken] = None, on_progress: Callable[[int], None] = lambda _done: None,
) -> EnsembleCheck:
    expected = np.asarray(expected_probs, dtype=np.float64)
    if len(pictures) == 0:
        return EnsembleCheck(True, 0, 1.0, 0.0, 1.0, 0.0, "no validation pictures to compare")
    with tempfile.TemporaryDirectory(prefix="tlstudio-verify-ensemble-") as tmp:
        held = Path(tmp) / "images.pt"
        tensors = [[torch.from_numpy(a) for a in group] for group in pictures]
        write_buffered(held, lambda buf: torch.save(tensors, buf))
        proc = run_followed(child_command(_CHILD, CHILD_FLAG, model_path, held), timeout, stop, on_progress)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return EnsembleCheck(False, len(expected), 0.0, float("inf"), 0.0, float("inf"), f"a fresh process could not run the file: {tail[0]}")
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    got, forward = np.asarray(found["probs"], dtype=np.float64), np.asarray(found["forward"], dtype=np.float64)
    agreement = float((got.argmax(1) == expected.argmax(1)).mean())
    file_agreement = float((forward.argmax(1) == expected.argmax(1)).mean())
    diff, file_diff = float(np.abs(got - expected).max()), float(np.abs(forward - expected).max())
    ok = agreement >= MIN_AGREEMENT and file_agreement >= MIN_FILE_AGREEMENT
    message = (
        f"{'agreed' if ok else 'disagreed'}: the members on their runs' own pixels gave the runs' top class on {agreement:.1%} of "
        f"{len(expected)} validation pictures (largest probability difference {diff:.1e}); the file on the picture as 'predict' "
        f"feeds it, on {file_agreement:.1%} (largest difference {file_diff:.3f})"
    )
    return EnsembleCheck(ok, len(expected), agreement, diff, file_agreement, file_diff, message)

