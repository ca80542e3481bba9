"""The new pictures of an adaptation: read safely, decoded once into the squares the network's crops come from.

A folder of unlabelled pictures is searched recursively (sub-folders are not classes here). A labelled
folder has one sub-folder per class of the run. Unreadable files are skipped and counted; a folder with
no usable picture is refused, naming the folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tlstudio.core.data.images import ImageRejected, load_rgb_array
from tlstudio.core.data.pixel_store import centre_square
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, PhaseStarted, Progress, StopToken, as_token, ignore_events
from tlstudio.core.inference.predict import expand_paths
from tlstudio.core.names import printable
from tlstudio.core.throttle import Throttle

MIN_PICTURES = 4  # fewer cannot estimate any statistic of a domain
MAX_PICTURES = 2000  # a seeded draw beyond this: the statistics are settled long before


@dataclass
class Pictures:
    folder: Path
    squares: np.ndarray  # (n, size, size, 3) uint8: short side resized to ``size``, centre square
    paths: list[Path]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    labels: Optional[np.ndarray] = None  # class indices of the run, for a labelled folder
    found: int = 0  # image files found (before a draw beyond MAX_PICTURES)

    def __len__(self) -> int:
        return len(self.paths)


def _folder(folder: str | os.PathLike, what: str) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise UserError(f"the {what} folder '{printable(path)}' does not exist or is not a folder. Choose the folder that holds the pictures.")
    return path


def _decode(paths: Sequence[Path], size: int, on_event: EventCallback, stop: StopToken) -> tuple[list[np.ndarray], list[int], list[tuple[str, str]]]:
    on_event(PhaseStarted("decoding new pictures", len(paths)))
    throttle, squares, kept, skipped = Throttle(), [], [], []
    for i, path in enumerate(paths):
        stop.check()
        try:
            squares.append(centre_square(load_rgb_array(path, short_side=size), size))
            kept.append(i)
        except ImageRejected as exc:
            skipped.append((str(path), exc.reason))
        except OSError as exc:
            skipped.append((str(path), type(exc).__name__))
        if throttle.ready() or i + 1 == len(paths):
            on_event(Progress(i + 1, len(paths)))
    return squares, kept, skipped


def _drawn(paths: list[Path], seed: int) -> list[Path]:
    if len(paths) <= MAX_PICTURES:
        return paths
    keep = np.sort(np.random.default_rng(seed).choice(len(paths), MAX_PICTURES, replace=False))
    return [paths[i] for i in keep]


def _refuse_too_few(folder: Path, what: str, found: int, usable: int, skipped: list) -> None:
    if usable >= MIN_PICTURES:
        return
    if found == 0:
        why = "holds no image files (JPEG, PNG, BMP, GIF, TIFF or WebP)"
    elif usable == 0:
        why = f"holds {found} image files, but none could be read ({skipped[0][1]} for '{printable(Path(skipped[0][0]).name)}')"
    else:
        why = f"holds only {usable} readable pictures"
    raise UserError(f"the {what} folder '{printable(folder)}' {why}. Adaptation needs at least {MIN_PICTURES}: choose a folder with more pictures.")


def read_new_pictures(folder: str | os.PathLike, size: int, seed: int = 0, on_event: EventCallback = ignore_events,
                      stop: Optional[StopToken] = None, what: str = "new pictures") -> Pictures:
    """Every picture under ``folder`` (recursively; at most ``MAX_PICTURES``, a seeded draw), as ``size`` squares."""
    path = _folder(folder, what)
    found = expand_paths([path])
    paths = _drawn(found, seed)
    squares, kept, skipped = _decode(paths, size, on_event, as_token(stop))
    _refuse_too_few(path, what, len(found), len(kept), skipped)
    return Pictures(path, np.stack(squares), [paths[i] for i in kept], skipped, found=len(found))


def read_labelled_pictures(folder: str | os.PathLike, classes: Sequence[str], size: int, on_event: EventCallback = ignore_events,
                           stop: Optional[StopToken] = None) -> Pictures:
    """A folder with one sub-folder per class of the run (some may be missing); other sub-folders are refused."""
    path = _folder(folder, "labelled pictures")
    subfolders = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [p.name for p in subfolders if p.name not in classes]
    if unknown:
        raise UserError(
            f"the labelled pictures folder '{printable(path)}' has sub-folder '{printable(unknown[0])}', which is not one of the run's classes "
            f"({', '.join(map(printable, classes))}). Rename or remove it."
        )
    paths, labels = [], []
    for sub in subfolders:
        found = expand_paths([sub])
        paths += found
        labels += [list(classes).index(sub.name)] * len(found)
    squares, kept, skipped = _decode(paths, size, on_event, as_token(stop))
    _refuse_too_few(path, "labelled pictures", len(paths), len(kept), skipped)
    return Pictures(path, np.stack(squares), [paths[i] for i in kept], skipped, np.asarray(labels, dtype=np.int64)[kept], found=len(paths))
