"""The exported model: one TorchScript file that runs in plain PyTorch, with its preprocessing inside.

Contract (DESIGN.md): ``forward`` takes RGB images as uint8 [0, 255], uint16 [0, 65535] (what
``torchvision.io.decode_image`` gives for a 16-bit PNG) or float [0, 1], shaped NCHW (or CHW for
one image), of any size; it resizes the short side to ``resize_size`` (antialiased bilinear),
centre-crops ``input_size``, normalises with ``mean``/``std`` and returns the calibrated class
probabilities [N, classes]: softmax(logits / ``temperature``), see ``engine.calibration``. The file
carries ``class_names``, ``input_size``, ``resize_size``, ``mean``, ``std``, ``temperature`` and
``not_sure_below`` (answer "not sure" when the top probability is below it; 0: always answer) as
attributes, and the training summary as the extra file ``tlstudio.json`` (with ``temperature`` and
``not_sure_below`` at its top level too).

``set_not_sure_below`` changes only the threshold of a file tlstudio wrote: the network is not traced
again, so the cheapest honest check is that every tensor and the code of the rewritten file are the
ones of the verified file (the fresh-process check would compare the same numbers again).

A TorchScript file is a program, so tlstudio reads that information straight from the file's zip
archive (``read_export_info`` never loads it), and every file it writes is recorded in the trust
store (``trust.py``): those are the ones it runs without asking.
"""

# No "from __future__ import annotations": TorchScript reads the class annotations at runtime.

import io
import json
import os
import sys
import tempfile
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tlstudio.core.atomic import json_line, write_buffered
from tlstudio.core.errors import UserError
from tlstudio.core.data.preprocess import Preprocessing
from tlstudio.core.catalog.checksum import sha256_of_file
from tlstudio.core.events import StopToken
from tlstudio.core.inference import trust
from tlstudio.core.inference.child_run import CHILD_PROGRESS_LINE, run_followed

INFO_FILE = "tlstudio.json"
FORMAT = "tlstudio-model-1"
MAX_INFO_BYTES = 16 << 20  # the info is a few kB; a bigger member is not ours


class ExportedClassifier(nn.Module):
    """Preprocessing + traced network + softmax, scripted as one module."""

    class_names: List[str]
    input_size: int
    resize_size: int
    mean: List[float]
    std: List[float]
    temperature: float
    not_sure_below: float

    def __init__(self, network: torch.jit.ScriptModule, pre: Preprocessing, classes: Sequence[str], temperature: float = 1.0, not_sure_below: float = 0.0):
        super().__init__()
        self.network = network
        self.temperature = float(temperature)
        self.not_sure_below = float(not_sure_below)
        self.register_buffer("temperature_t", torch.tensor(float(temperature)))
        self.class_names = [str(c) for c in classes]
        self.input_size = int(pre.input_size)
        self.resize_size = int(pre.resize_size)
        self.mean = [float(v) for v in pre.mean]
        self.std = [float(v) for v in pre.std]
        self.register_buffer("mean_t", torch.tensor(self.mean).view(1, 3, 1, 1))
        self.register_buffer("std_t", torch.tensor(self.std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError("expected RGB images shaped [N, 3, H, W] or [3, H, W]")
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        elif x.dtype == torch.uint16:
            x = x.float() / 65535.0
        elif x.is_floating_point():
            x = x.float()
        else:
            raise ValueError("expected images as uint8 [0, 255], uint16 [0, 65535] or float [0, 1]")
        h, w = x.shape[2], x.shape[3]
        short = min(h, w)
        if short != self.resize_size:
            new_h = max(1, int(round(h * self.resize_size / short)))
            new_w = max(1, int(round(w * self.resize_size / short)))
            if h <= w:
                new_h = self.resize_size
            if w <= h:
                new_w = self.resize_size
            x = F.interpolate(x, size=[new_h, new_w], mode="bilinear", align_corners=False, antialias=True)
            x = x.clamp(0.0, 1.0)
            h, w = new_h, new_w
        # Same offsets as training: centre square of side resize_size, then its centre crop.
        top = (h - self.resize_size) // 2 + (self.resize_size - self.input_size) // 2
        left = (w - self.resize_size) // 2 + (self.resize_size - self.input_size) // 2
        x = x[:, :, top : top + self.input_size, left : left + self.input_size]
        x = (x - self.mean_t) / self.std_t
        return torch.softmax(self.network(x.contiguous()).float() / self.temperature_t, dim=1)


@contextmanager
def torchscript_quietly():
    # TorchScript is the export contract (plain torch.jit.load on any machine); torch's notice that
    # it prefers torch.export is not something the user can act on.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit.* is deprecated", category=FutureWarning)
        yield


def export_torchscript(network: nn.Module, pre: Preprocessing, classes: Sequence[str], summary: dict, dest: str | os.PathLike) -> Path:
    """Write ``network`` (normalised images -> logits) as a self-contained TorchScript file at ``dest``.

    Refuses a network with a tensor that is not finite: it would give NaN for every picture."""
    network = network.float().cpu().eval()
    refuse_non_finite(network)
    example = torch.zeros(2, 3, pre.input_size, pre.input_size)
    with torch.no_grad(), torchscript_quietly():
        traced = torch.jit.trace(network, example, check_trace=False)
        # A trace that baked in the batch size would fail here rather than on the user's machine.
        for n in (1, 3):
            got = traced(torch.zeros(n, 3, pre.input_size, pre.input_size))
            if got.shape[0] != n:
                raise RuntimeError(f"the traced network returned {got.shape[0]} rows for a batch of {n}")
        temperature, not_sure_below = calibration_of(summary)
        module = torch.jit.script(ExportedClassifier(traced, pre, classes, temperature, not_sure_below))
    info = {
        "format": FORMAT, "class_names": list(map(str, classes)), "preprocessing": pre.to_dict(), "summary": summary, "torch": torch.__version__,
        "temperature": temperature, "not_sure_below": not_sure_below,
    }
    return _save(module, info, Path(dest))


def _save(module: torch.jit.ScriptModule, info: dict, dest: Path) -> Path:
    with torchscript_quietly():  # in memory first: a full disk is a DiskError, not torch's writer aborting the process
        write_buffered(dest, lambda buf: torch.jit.save(module, buf, _extra_files={INFO_FILE: json_line(info)}))
    trust.remember(sha256_of_file(dest), trust.EXPORTED, dest)  # a copy of this file is the same program: trusted too
    return dest


def calibration_of(summary: Optional[dict]) -> tuple:
    """(temperature, not-sure threshold) from a training summary; (1, 0) for one without a calibration."""
    found = (summary or {}).get("calibration") or {}
    return float(found.get("temperature", 1.0)), float(found.get("threshold", 0.0))


def not_sure_below_of(info: dict) -> float:
    """The threshold a model file's info carries (0 for a file from before thresholds: it always answers)."""
    return float(info.get("not_sure_below", 0.0) or 0.0)


def set_not_sure_below(path: "str | os.PathLike", threshold: float, summary: dict) -> Path:
    """Rewrite the TorchScript file at ``path`` with ``threshold`` (and ``summary``, which carries it), atomically.

    Only a file the trust store knows is loaded (it is a program). Refused unless the rewritten file's
    tensors and code equal the original's: the network that was verified is the one that stays."""
    path = Path(path)
    data = read_model_bytes(path, "Export the run again.")
    if not trust.is_trusted(trust.sha256_bytes(data)):
        raise UserError(f"'{path}' is not a file this tlstudio wrote, so its threshold is not changed. Export the run again.")
    info = export_info_from(io.BytesIO(data), path)
    with torchscript_quietly():
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        module.not_sure_below = float(threshold)
        buf = io.BytesIO()
        torch.jit.save(module, buf)
        again = torch.jit.load(io.BytesIO(buf.getvalue()), map_location="cpu")
    if not _same_network(module, again) or float(again.not_sure_below) != float(threshold):
        raise RuntimeError(f"rewriting '{path}' changed more than its threshold; it was left as it was")
    info.update(not_sure_below=float(threshold), summary=summary)
    return _save(module, info, path)


def _same_network(a: torch.jit.ScriptModule, b: torch.jit.ScriptModule) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return a.code == b.code and sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def first_non_finite(network: nn.Module) -> Optional[str]:
    """The name of the first weight or buffer holding a NaN or an infinity, or None."""
    for name, tensor in network.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def refuse_non_finite(network: nn.Module) -> None:
    bad = first_non_finite(network)
    if bad is not None:
        raise UserError(
            f"the model cannot be exported: its tensor '{bad}' holds values that are not finite numbers, so it would answer "
            "NaN for every picture. Train again with a lower learning rate, or import the backbone's weights file again."
        )


def read_export_info(path: str | os.PathLike) -> dict:
    """The information a tlstudio model file carries (class names, preprocessing, training summary).

    Read from the zip archive itself: loading a TorchScript file would run the code inside it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file '{path}' does not exist. Pass the model.pt that 'tlstudio train' wrote.")
    try:
        with open(path, "rb") as fh:
            return export_info_from(fh, path)
    except OSError as exc:
        raise UserError(f"could not read the model file '{path}': {exc.strerror or exc}.") from None


def export_info_from(archive_file: BinaryIO, path: Path) -> dict:
    """``read_export_info`` for a file already open (or its bytes in a BytesIO); ``path`` names it in messages."""
    not_a_model = UserError(f"'{path}' is not a TorchScript model file. Pass the model.pt that tlstudio exported.")
    try:
        with zipfile.ZipFile(archive_file) as archive:
            names = archive.namelist()
            found = sorted((n for n in names if n.endswith("/extra/" + INFO_FILE)), key=len)
            if not found:
                if any(n.endswith(("/data.pkl", "/constants.pkl")) for n in names):
                    raise UserError(f"'{path}' is a TorchScript file but not one tlstudio exported (it has no {INFO_FILE}).")
                raise not_a_model
            member = archive.getinfo(found[0])
            if member.file_size > MAX_INFO_BYTES:
                raise not_a_model
            info = json.loads(archive.read(member)[:MAX_INFO_BYTES])
    except UserError:
        raise
    except Exception:  # noqa: BLE001 - not a zip, a damaged one, unreadable JSON: all mean "not a model file we can read"
        raise not_a_model from None
    if not isinstance(info, dict):
        raise not_a_model
    return info


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    agreement: float  # fraction of images with the same top-1 class
    n: int
    max_abs_diff: float  # largest probability difference
    message: str


# The child imports nothing but torch: it is what a user's machine has.
_CHILD = r"""
import json, sys, torch
model_path, images_path = sys.argv[-2:]
model = torch.jit.load(model_path, map_location="cpu")
images = torch.load(images_path, weights_only=True)
probs = []
with torch.no_grad():
    for img in images:
        probs.append(model(img.permute(2, 0, 1).unsqueeze(0))[0].tolist())
        PROGRESS_LINE
print(json.dumps({"class_names": list(model.class_names), "probs": probs}))
""".replace("PROGRESS_LINE", CHILD_PROGRESS_LINE)


CHILD_FLAG = "--verify-export-child"


def child_command(code: str, flag: str, model_path, held) -> list[str]:
    """The fresh process that runs ``code`` on ``model_path`` and the ``held`` images: python -c, or in a bundle ``tlstudio FLAG``."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: the executable is tlstudio itself, not python
        return [sys.executable, flag, str(model_path), str(held)]
    return [sys.executable, "-c", code, str(model_path), str(held)]


def run_child_code(code: str, label: str) -> int:
    """A verifying child inside a frozen bundle (``child_command``'s ``flag``): run ``code`` on its arguments."""
    exec(compile(code, label, "exec"), {"__name__": "__verify__"})
    return 0


def run_child() -> int:
    """``tlstudio --verify-export-child MODEL IMAGES``."""
    return run_child_code(_CHILD, "<verify-export>")


def read_model_bytes(path: str | os.PathLike, hint: str) -> bytes:
    """The whole model file (the bytes checked are then the bytes run); ``hint`` says which file to pass instead."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file '{path}' does not exist. {hint}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"could not read the model file '{path}': {exc.strerror or exc}.") from None


def verify_in_fresh_process(
    model_path: str | os.PathLike, images: Sequence[np.ndarray], expected_probs: np.ndarray, min_agreement: float = 0.99, timeout: float = 600,
    stop: Optional[StopToken] = None, on_progress: Callable[[int], None] = lambda _done: None,
) -> VerifyResult:
    """Load ``model_path`` in a new Python process on CPU, run it on ``images`` (HxWx3 uint8) and compare.

    A stop kills the child and raises Cancelled; ``on_progress`` gets the number of pictures checked so far."""
    expected = np.asarray(expected_probs, dtype=np.float64)
    if len(images) == 0:
        return VerifyResult(True, 1.0, 0, 0.0, "no held images to compare")
    with tempfile.TemporaryDirectory(prefix="tlstudio-verify-") as tmp:
        held = Path(tmp) / "images.pt"
        write_buffered(held, lambda buf: torch.save([torch.from_numpy(np.ascontiguousarray(a)) for a in images], buf))
        return compare_in_child(child_command(_CHILD, CHILD_FLAG, model_path, held), expected, min_agreement, timeout, stop, on_progress)


def compare_in_child(
    command: list[str], expected_probs: np.ndarray, min_agreement: float, timeout: float,
    stop: Optional[StopToken] = None, on_progress: Callable[[int], None] = lambda _done: None,
) -> VerifyResult:
    """Run ``command``, a fresh process on CPU whose last stdout line is ``{"probs": [...]}``, and compare with ``expected_probs``.

    Shared by the TorchScript and the ONNX checks."""
    expected = np.asarray(expected_probs, dtype=np.float64)
    proc = run_followed(command, timeout, stop, on_progress)
    n = len(expected)  # one row per held image
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        return VerifyResult(False, 0.0, n, float("inf"), f"a fresh process could not run the file: {tail[0]}")
    got = np.asarray(json.loads(proc.stdout.strip().splitlines()[-1])["probs"], dtype=np.float64)
    agreement = float((got.argmax(1) == expected.argmax(1)).mean())
    diff = float(np.abs(got - expected).max())
    ok = agreement >= min_agreement
    verdict = "agreed" if ok else "disagreed"
    return VerifyResult(ok, agreement, n, diff, f"{verdict} on {agreement:.1%} of {n} images (largest probability difference {diff:.3f})")
