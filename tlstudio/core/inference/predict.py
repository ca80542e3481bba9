"""Run an exported model file on images: the CLI's `predict` and the studio's "Try it" both come here.

Only the file is used: its class names and preprocessing travel inside it. Images are opened with
the one safe opener and shrunk to the file's resize size exactly as training's evaluation did, so a
prediction here equals the app's for the same picture. A TorchScript file is a program, so it is
loaded only when the trust store (``trust.py``) knows its hash: tlstudio made it, or the user said yes.

A file carries a "not sure" threshold (``not_sure_below`` in its info; 0 for an older file): a picture
whose top probability is below it is answered "not sure" (``Prediction.not_sure``), its probabilities
still listed.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import torch

from tlstudio.core.data.scan import IGNORED_NAMES, IMAGE_EXTENSIONS
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, PhaseStarted, Progress, StopToken, as_token, ignore_events
from tlstudio.core.inference.export import export_info_from, not_sure_below_of, read_model_bytes, torchscript_quietly
from tlstudio.core.inference.trust import TRUSTED, UntrustedModel, is_trusted, remember, sha256_bytes
from tlstudio.core.data.images import ImageRejected, load_rgb_array
from tlstudio.core.data.pixel_store import centre_square
from tlstudio.core.inference.batches import batched_outputs
from tlstudio.core.engine.calibration import NOT_SURE
from tlstudio.core.throttle import Throttle

PREDICT_BATCH = 16  # pictures decoded and run together


@dataclass(frozen=True)
class Prediction:
    path: str
    probs: tuple[float, ...] = ()  # one per class, in the model's class order; empty when the file failed
    error: str = ""  # why the file could not be used
    not_sure: bool = False  # the top probability is below the file's threshold: no answer is given

    @property
    def ok(self) -> bool:
        return not self.error

    def answer(self, class_names: Sequence[str]) -> Optional[str]:
        """The class answered; None when the file failed or the model is not sure."""
        if not self.ok or self.not_sure:
            return None
        return class_names[int(np.argmax(self.probs))]

    def top(self, k: int, class_names: Sequence[str]) -> list[tuple[str, float]]:
        order = np.argsort(-np.asarray(self.probs))[:k]
        return [(class_names[i], float(self.probs[i])) for i in order]


@dataclass
class ExportedModel:
    """A loaded tlstudio model file."""

    path: Path
    info: dict = field(repr=False)
    module: torch.jit.ScriptModule = field(repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike, trust: bool = False) -> "ExportedModel":
        """The model file at ``path``, run only if the trust store knows its hash or ``trust`` is True (then it is remembered).

        Raises ``UntrustedModel`` for a file this installation did not make and nobody trusted: it is a program."""
        path = Path(path)
        data = read_model_bytes(path, "Pass the model.pt that 'tlstudio train' wrote.")  # one read: the bytes hashed are the bytes run
        info = export_info_from(io.BytesIO(data), path)  # refuses files that are not tlstudio models, without running them
        sha256 = sha256_bytes(data)
        known = is_trusted(sha256)
        if not known and not trust:
            raise UntrustedModel(path, sha256)
        try:
            with torchscript_quietly():
                module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - a damaged archive can make the loader raise almost anything
            raise UserError(f"'{path}' could not be loaded as a TorchScript model ({type(exc).__name__}). Export it again.") from None
        if not known:
            remember(sha256, TRUSTED, path)
        return cls(path, info, module.eval())

    @property
    def class_names(self) -> list[str]:
        return list(self.module.class_names)

    @property
    def resize_size(self) -> int:
        return int(self.module.resize_size)

    @property
    def not_sure_below(self) -> float:
        """Below this top probability the answer is "not sure" (0: always answer)."""
        return not_sure_below_of(self.info)

    def predict_file(self, path: str | os.PathLike) -> Prediction:
        return self._predict_batch([Path(path)], StopToken())[0]

    def _square(self, path: Path) -> np.ndarray | Prediction:
        """The picture as training's evaluation saw it (short side at the resize size, centre square), or why it cannot be used."""
        try:
            return centre_square(load_rgb_array(path, short_side=self.resize_size), self.resize_size)
        except ImageRejected as exc:
            return Prediction(str(path), error=exc.reason)
        except OSError as exc:
            return Prediction(str(path), error=exc.strerror or str(exc))

    def _predict_batch(self, paths: Sequence[Path], stop: StopToken) -> list[Prediction]:
        squares = [self._square(path) for path in paths]
        good = [i for i, square in enumerate(squares) if isinstance(square, np.ndarray)]
        if not good:
            return squares
        x = torch.from_numpy(np.stack([squares[i] for i in good])).permute(0, 3, 1, 2)
        for probs, span in batched_outputs(self.module, len(good), len(good), lambda span: x[span.start : span.stop], torch.device("cpu"), None, stop):
            threshold = self.not_sure_below
            for i, p in zip(good[span.start : span.stop], probs.numpy()):
                squares[i] = Prediction(str(paths[i]), tuple(float(v) for v in p), not_sure=bool(float(p.max()) < threshold))
        return squares

    def predict_paths(
        self, paths: Iterable[str | os.PathLike], on_event: EventCallback = ignore_events, stop: Optional[StopToken] = None
    ) -> list[Prediction]:
        """Every image in ``paths`` (files, or folders searched recursively), in order."""
        stop = as_token(stop)
        files = expand_paths(paths)
        on_event(PhaseStarted("predicting", len(files)))
        throttle = Throttle()
        out: list[Prediction] = []
        for start in range(0, len(files), PREDICT_BATCH):
            out += self._predict_batch(files[start : start + PREDICT_BATCH], stop)
            if throttle.ready() or len(out) == len(files):
                on_event(Progress(len(out), len(files), files[len(out) - 1].name))
        return out


def predictions_csv(predictions: Sequence[Prediction], class_names: Sequence[str], k: int = 1) -> str:
    """The CSV of ``tlstudio predict --csv``: path, the top ``k`` classes with their probabilities, the answer
    (the top class, or "not sure" below the file's threshold) and why a file failed.

    The one writer: the CLI, the studio's Classify a folder and Try it's Save Results all write this."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    header = ["path"]
    for i in range(1, k + 1):
        header += [f"class_{i}", f"probability_{i}"]
    writer.writerow(header + ["answer", "error"])
    for p in predictions:
        row = [p.path]
        for name, prob in p.top(k, class_names) if p.ok else [("", "")] * k:
            row += [name, f"{prob:.6f}" if prob != "" else ""]
        writer.writerow(row + [answer_text(p, class_names), p.error])
    return buf.getvalue()


def answer_text(p: Prediction, class_names: Sequence[str]) -> str:
    """What a person reads as the answer: the class, "not sure", or nothing for a file that failed."""
    if not p.ok:
        return ""
    return NOT_SURE if p.not_sure else str(p.answer(class_names))


def write_predictions_csv(dest: str | os.PathLike, predictions: Sequence[Prediction], class_names: Sequence[str], k: int = 1) -> None:
    """``predictions_csv`` written atomically to ``dest`` (a full disk is a DiskError naming it)."""
    from tlstudio.core.atomic import write_text

    write_text(dest, predictions_csv(predictions, class_names, k))


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given; folders become their image files, searched recursively and sorted, clutter skipped."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out.extend(_images_under(path))
        else:
            raise UserError(f"'{path}' does not exist. Pass image files or folders of images.")
    return out


def _images_under(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):  # os.walk does not follow symlinked folders: no loops
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d.lower() not in IGNORED_NAMES)
        for name in sorted(filenames):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(Path(dirpath) / name)
    return found
