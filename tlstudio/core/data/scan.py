"""Dataset intake: scan a folder of images into a ``DatasetIndex`` and split it.

Two layouts are understood:

- ``root/<class>/...``: one folder per class (sub-folders inside belong to that class); the
  split is drawn here, stratified by class and reproducible from a seed ("seeded").
- ``root/train/<class>/...`` with ``root/val/<class>/...`` (or valid, validation) and optionally
  ``root/test/<class>/...``: the folders' own split is kept exactly ("folders").

Every candidate image is fully decoded once to prove it usable (``images.probe_bytes``) and
hashed from the same read; only the small ``Sample`` records are kept, never pixels.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import stat
import time
import unicodedata
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from tlstudio.core.atomic import write_json
from tlstudio.core.data.index import (
    CASE_ONLY_WARNING,
    FEW_IMAGES_WARNING,
    IMBALANCE_WARNING,
    LABEL_CONFLICT_WARNING,
    LEAKAGE_WARNING,
    LOOKALIKE_FILES_WARNING,
    MERGED_FOLDERS_WARNING,
    MISSING_SPLIT_WARNING,
    BAD_NAME,
    SAME_FILE,
    SPLITS,
    STRAY_WARNING,
    UNREADABLE,
    DatasetError,
    DatasetIndex,
    Sample,
    Skipped,
    Warning_,
)
from tlstudio.core.errors import UserError
from tlstudio.core.events import EventCallback, PhaseStarted, Progress, StopToken, as_token, ignore_events
from tlstudio.core.data.images import ImageRejected, probe_bytes
from tlstudio.core.names import is_text, printable, raw_spelling
from tlstudio.core.throttle import Throttle

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
# System clutter that is never data (compared lower-case); any name starting with "." is skipped too.
IGNORED_NAMES = frozenset(
    {".ds_store", "thumbs.db", "desktop.ini", ".ipynb_checkpoints", "__macosx", "@eadir", ".git", "$recycle.bin", "system volume information"}
)
SPLIT_FOLDER_NAMES = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}

FEW_IMAGES = 5  # a class with fewer images than this gets a warning
IMBALANCE_RATIO = 10.0  # largest class / smallest class above this gets a warning


def scan_folder(
    root: str | os.PathLike,
    val_split: float = 0.2,
    test_split: float = 0.0,
    seed: int = 0,
    on_event: EventCallback = ignore_events,
    stop: Optional[StopToken] = None,
    workers: Optional[int] = None,
) -> DatasetIndex:
    """Find every class and image under ``root``, validate each image, split, and report.

    Raises DatasetError (one sentence naming the folder and what to do) when the folder cannot
    be used at all, and Cancelled when ``stop`` asks for it.
    """
    check_fractions(val_split, test_split)
    stop = as_token(stop)
    started = time.perf_counter()
    root_path = _usable_root(root)
    walk = _walk(root_path, stop)
    found = _inspect_all(root_path, walk.candidates, on_event, stop, workers or min(8, os.cpu_count() or 1))

    samples_found, reached_again = _each_file_once(root_path, [f for f in found if isinstance(f, _Found)])
    skipped = sorted(walk.skipped + reached_again + [f for f in found if isinstance(f, Skipped)], key=lambda s: s.path)
    classes = sorted(walk.classes)
    _check_every_class_has_images(root_path, classes, samples_found)

    if walk.layout == "folders":
        splits = [f.split for f in samples_found]
    else:
        splits = stratified_split([f.class_name for f in samples_found], [f.digest for f in samples_found], val_split, test_split, seed)
    label = {name: i for i, name in enumerate(classes)}
    samples = sorted(
        (Sample(f.path, label[f.class_name], split, f.size, f.mtime_ns, f.digest, f.width, f.height) for f, split in zip(samples_found, splits)),
        key=lambda s: (s.label, s.path),
    )
    seconds = time.perf_counter() - started
    index = DatasetIndex(
        root=str(root_path),
        classes=classes,
        samples=samples,
        skipped=skipped,
        ignored=walk.ignored,
        split_source=walk.layout,
        val_split=val_split,
        test_split=test_split,
        seed=seed,
        seconds=round(seconds, 3),
        files_per_s=round(len(walk.candidates) / seconds, 1) if seconds > 0 else 0.0,
    )
    index.warnings = dataset_warnings(index, walk.stray)
    return index


def check_fractions(val_split: float, test_split: float, names: tuple[str, str] = ("val_split", "test_split")) -> None:
    """Raise UserError naming the setting unless both fractions lie in [0, 1) and leave some training images."""
    for name, value in zip(names, (val_split, test_split)):
        try:
            valid = 0.0 <= float(value) < 1.0  # False for NaN too
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise UserError(f"{name} must be a fraction from 0 up to (not including) 1, for example 0.2; got {value}.")
    if val_split + test_split >= 1.0:
        raise UserError(f"{names[0]} + {names[1]} must be less than 1 so that some images are left for training; got {val_split} + {test_split}.")


# ---------------------------------------------------------------------------------------- walking


@dataclass(frozen=True)
class _Candidate:
    path: str  # relative to the root, POSIX separators
    class_name: str
    split: str  # from the folder in layout "folders"; "train" placeholder otherwise


@dataclass
class _Walk:
    layout: str = "seeded"
    classes: set[str] = field(default_factory=set)
    candidates: list[_Candidate] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    stray: list[str] = field(default_factory=list)  # images outside any class folder
    ignored: int = 0
    visited: set[tuple[int, int]] = field(default_factory=set)  # (st_dev, st_ino) of every folder entered


def _usable_root(root: str | os.PathLike) -> Path:
    path = Path(root).expanduser().resolve()
    if not path.exists():
        raise DatasetError(f"The folder '{printable(path)}' does not exist; choose an existing folder with one sub-folder of images per class.", str(path))
    if not path.is_dir():
        raise DatasetError(f"'{printable(path)}' is a file, not a folder; choose the folder that holds one sub-folder of images per class.", str(path))
    if not is_text(str(path)):
        raise DatasetError(
            f"The path '{raw_spelling(str(path))}' is not valid text (the \\x parts are bytes that are not UTF-8); rename those folders, then scan again.", str(path)
        )
    return path


def _walk(root: Path, stop: StopToken) -> _Walk:
    walk = _Walk()
    walk.visited.add(_identity(os.stat(root)))
    top = _folders(root, "", walk, stop)
    split_dirs = _split_folders(top)
    if split_dirs:
        walk.layout = "folders"
        used = {entry.name for entries in split_dirs.values() for entry in entries}
        for split, entries in split_dirs.items():
            for entry in entries:
                _walk_classes(Path(entry.path), entry.name, split, walk, stop)
        unused = sorted(entry.name for entries in top.values() for entry in entries if entry.name not in used)
        walk.ignored += len(unused)
        walk.stray.extend(f"{name}/" for name in unused)
    else:
        _walk_classes(root, "", "train", walk, stop, top)
    also = _badly_named(walk)
    if not walk.classes:
        raise DatasetError(
            f"'{printable(root)}' has no class folders{also}; put the images in one sub-folder per class (for example cats/ and dogs/) and scan again.", str(root)
        )
    if len(walk.classes) < 2:
        (only,) = walk.classes
        raise DatasetError(
            f"'{printable(root)}' has only one class folder ('{printable(only)}'){also}; add a sub-folder of images for at least one more class.", str(root)
        )
    return walk


def _badly_named(walk: _Walk) -> str:
    """Why a folder may seem to be missing from an error: some names are not text (already spelled with \\xNN)."""
    bad = sorted(s.path for s in walk.skipped if s.reason == BAD_NAME)
    if not bad:
        return ""
    listed = ", ".join(f"'{path}'" for path in bad[:3]) + (", ..." if len(bad) > 3 else "")
    return f" (not used: {listed}, whose names are not valid text; rename them)"


def _walk_classes(folder: Path, rel: str, split: str, walk: _Walk, stop: StopToken, listed: Optional[dict] = None) -> None:
    """Every class folder in ``folder``; folders whose names are one name in two Unicode forms feed one class."""
    for class_name, entries in (listed if listed is not None else _folders(folder, rel, walk, stop)).items():
        for entry in entries:
            _walk_class(Path(entry.path), _join(rel, entry.name), class_name, split, walk, stop)


def _folders(folder: Path, rel: str, walk: _Walk, stop: StopToken) -> dict[str, list[os.DirEntry]]:
    """The sub-folders of ``folder`` not entered before, by NFC-normalised name; loose files are passed over.

    Names equal in NFC form (a folder copied from macOS is NFD) share a key: all of them are kept.
    """
    folders: dict[str, list[os.DirEntry]] = defaultdict(list)
    for entry in _entries(folder, rel, walk, stop):
        kind = _kind(entry, walk)
        if kind == "folder":
            folders[unicodedata.normalize("NFC", entry.name)].append(entry)
        elif kind in _SKIPPED_KINDS:
            walk.skipped.append(_skipped_entry(rel, entry.name, kind))
        else:
            walk.ignored += 1
            if kind == "image":
                walk.stray.append(_join(rel, entry.name))
    return dict(folders)


def _split_folders(top: dict[str, list[os.DirEntry]]) -> dict[str, list[os.DirEntry]]:
    """{split: [folder, ...]} when ``top`` holds a train folder and a val-like folder, else {}.

    Split folders are recognised whatever their case; every folder that names a split is used
    (``train`` and ``Train``, ``val`` and ``valid``), so none of their images is dropped.
    """
    found = {}
    for split, names in SPLIT_FOLDER_NAMES.items():
        entries = [entry for name in sorted(top) if name.casefold() in names for entry in top[name]]
        if entries:
            found[split] = entries
    return found if "train" in found and "val" in found else {}


def _walk_class(folder: Path, rel: str, class_name: str, split: str, walk: _Walk, stop: StopToken) -> None:
    """Every image under a class folder, at any depth, becomes a candidate of that class."""
    walk.classes.add(class_name)
    pending = [(folder, rel)]
    while pending:
        folder, rel = pending.pop()
        for entry in _entries(folder, rel, walk, stop):
            path = _join(rel, entry.name)
            kind = _kind(entry, walk)
            if kind == "folder":
                pending.append((Path(entry.path), path))
            elif kind == "image":
                walk.candidates.append(_Candidate(path, class_name, split))
            elif kind in _SKIPPED_KINDS:
                walk.skipped.append(_skipped_entry(rel, entry.name, kind))
            else:
                walk.ignored += 1


_BROKEN_LINK = "broken link: what it points to does not exist (or the link points to itself)"
_SKIPPED_KINDS = ("broken link", "bad name")


def _skipped_entry(rel: str, name: str, kind: str) -> Skipped:
    if kind == "bad name":  # the index must be JSON (UTF-8): the bytes that are not text are spelled \xNN
        return Skipped(_join(rel, raw_spelling(name)), BAD_NAME)
    return Skipped(_join(rel, name), UNREADABLE, _BROKEN_LINK)


def _kind(entry: os.DirEntry, walk: _Walk) -> str:
    """"folder" (not entered before; now marked), "image", "broken link", "bad name" or "ignored".

    Ignored: hidden and system names, files that are not images by extension, folders already
    entered (a link looping back up, or a second link to the same folder), pipes and sockets.
    A folder, image or link whose name is not text (bytes that are not UTF-8) is a "bad name".
    """
    kind = _kind_by_type(entry, walk)
    return "bad name" if kind != "ignored" and not is_text(entry.name) else kind


def _kind_by_type(entry: os.DirEntry, walk: _Walk) -> str:
    name = entry.name
    if name.startswith(".") or name.lower() in IGNORED_NAMES or _hidden_on_windows(entry):
        return "ignored"
    try:
        if entry.is_dir():
            return "folder" if _enter(entry, walk) else "ignored"
        if entry.is_file():
            return "image" if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS else "ignored"
        return "broken link" if entry.is_symlink() else "ignored"
    except OSError:
        return "broken link"


def _entries(folder: Path, rel: str, walk: _Walk, stop: StopToken) -> list[os.DirEntry]:
    stop.check()
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        walk.skipped.append(Skipped(rel or ".", UNREADABLE, f"folder could not be listed: {exc.strerror or exc}"))
        return []


def _enter(entry: os.DirEntry, walk: _Walk) -> bool:
    """Mark a folder as entered; False when it was entered before (following links never loops)."""
    key = _identity(entry.stat())
    if key in walk.visited:
        return False
    walk.visited.add(key)
    return True


def _identity(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def _hidden_on_windows(entry: os.DirEntry) -> bool:
    if os.name != "nt":  # elsewhere the attribute does not exist, and asking would cost a stat per file
        return False
    try:
        attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    except OSError:
        return False
    return bool(attributes & (stat.FILE_ATTRIBUTE_HIDDEN | stat.FILE_ATTRIBUTE_SYSTEM))


def _join(rel: str, name: str) -> str:
    return f"{rel}/{name}" if rel else name


# -------------------------------------------------------------------------------------- validating


@dataclass(frozen=True)
class _Found:
    path: str
    class_name: str
    split: str
    size: int
    mtime_ns: int
    digest: str
    width: int
    height: int
    identity: tuple[int, int] = (0, 0)  # (st_dev, st_ino): two paths to one file (links, hard links) share it


def _inspect_all(root: Path, candidates: list[_Candidate], on_event: EventCallback, stop: StopToken, workers: int) -> list[_Found | Skipped]:
    """Validate every candidate in parallel (Pillow and hashlib release the GIL); results keep the candidates' order."""
    total = len(candidates)
    on_event(PhaseStarted("scanning", total))
    results: list[_Found | Skipped | None] = [None] * total
    throttle = Throttle(0.05)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="scan")
    try:
        futures = {pool.submit(_inspect, root, c, stop): i for i, c in enumerate(candidates)}
        for done, future in enumerate(as_completed(futures), start=1):
            stop.check()
            results[futures[future]] = future.result()
            if throttle.ready() or done == total:
                on_event(Progress(done, total))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results  # type: ignore[return-value] - every slot is filled once the loop completes


def _inspect(root: Path, candidate: _Candidate, stop: StopToken) -> _Found | Skipped:
    stop.check()
    try:
        with open(root / candidate.path, "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read()
    except OSError as exc:
        return Skipped(candidate.path, UNREADABLE, exc.strerror or str(exc))
    digest = hashlib.blake2b(data, digest_size=16).hexdigest()
    try:
        width, height = probe_bytes(data)
    except ImageRejected as exc:
        return Skipped(candidate.path, exc.reason, exc.detail, exc.pixels)
    return _Found(candidate.path, candidate.class_name, candidate.split, len(data), st.st_mtime_ns, digest, width, height, _identity(st))


def _each_file_once(root: Path, found: list[_Found]) -> tuple[list[_Found], list[Skipped]]:
    """``found`` with every file once, and a SAME_FILE skip for each other path that reached it.

    Of the paths to one file (a link to a file in the data set, a hard link), the one that is not
    itself a link is used, else the first by name. Files without an identity (st_ino 0, as some
    file systems report) are all kept.
    """
    by_file: dict[object, list[_Found]] = defaultdict(list)
    for f in found:
        by_file[f.identity if f.identity[1] else f.path].append(f)
    again: dict[str, Skipped] = {}
    for paths in (g for g in by_file.values() if len(g) > 1):
        used, *others = sorted(paths, key=lambda f: (os.path.islink(root / f.path), f.path))
        for f in others:
            again[f.path] = Skipped(f.path, SAME_FILE, _same_file_detail(used, f))
    return [f for f in found if f.path not in again], list(again.values())


def _same_file_detail(used: _Found, again: _Found) -> str:
    detail = f"the same file as {printable(used.path)}, which is used"
    if again.class_name == used.class_name:
        return detail
    here, there = printable(again.class_name), printable(used.class_name)
    return f"{detail} in class '{there}'; if it belongs in '{here}', remove it from '{there}'"


def _check_every_class_has_images(root: Path, classes: list[str], found: Sequence[_Found]) -> None:
    if not found:
        raise DatasetError(f"No usable image was found in '{printable(root)}'; check that the class folders hold JPEG, PNG, BMP, GIF, TIFF or WebP files.", str(root))
    present = {f.class_name for f in found}
    empty = [c for c in classes if c not in present]
    if empty:
        names, where = ", ".join(f"'{printable(c)}'" for c in empty), printable(root)
        raise DatasetError(
            f"The class folder {names} in '{where}' has no usable image; add images to it or remove the folder, then scan again."
            if len(empty) == 1
            else f"The class folders {names} in '{where}' have no usable image; add images to them or remove the folders, then scan again.",
            str(root),
        )


# --------------------------------------------------------------------------------------- splitting


def identical_groups_by_class(classes: Sequence, digests: Sequence[str]) -> dict:
    """``{class: [[item, ...], ...]}``: the items grouped by content digest (identical files form one group,
    filed under the smallest of their classes), groups in digest order: stable across runs and platforms."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(digests):
        groups[digest].append(i)
    by_class: dict = defaultdict(list)
    for digest in sorted(groups):
        members = groups[digest]
        by_class[min(classes[i] for i in members)].append(members)
    return by_class


def stratified_split(class_names: Sequence[str], digests: Sequence[str], val_split: float, test_split: float, seed: int) -> list[str]:
    """The split ("train", "val" or "test") of each item, given its class name and content digest.

    Pure and deterministic: items with the same digest (identical files) form one group that
    goes to one split, even across classes; each class is split on its own, by its own
    seeded shuffle, so its val/test counts are within one image of the fractions asked for.
    A class with at least two images always gets a val image when ``val_split`` > 0 (and a
    test image, from three images on, when ``test_split`` > 0).
    """
    by_class = identical_groups_by_class(class_names, digests)
    out = ["train"] * len(digests)
    for class_name in sorted(by_class):
        class_groups = by_class[class_name]
        rng = random.Random(f"{seed}/{class_name}")  # str seeds are hashed with SHA-512: stable across runs and platforms
        rng.shuffle(class_groups)
        for split, members in zip(_assign_groups([len(g) for g in class_groups], val_split, test_split), class_groups):
            for i in members:
                out[i] = split
    return out


def _assign_groups(sizes: list[int], val_split: float, test_split: float) -> list[str]:
    """Fill val, then test, with whole groups in the given order up to their quota; the rest trains."""
    total = sum(sizes)
    quota = {"val": _quota(total, val_split, minimum=2), "test": _quota(total, test_split, minimum=3)}
    while quota["val"] + quota["test"] >= total and total > 0:  # always keep a training image
        quota["test" if quota["test"] else "val"] -= 1
    filled = {"train": 0, "val": 0, "test": 0}
    splits = []
    for size in sizes:
        split = next((s for s in ("val", "test") if filled[s] + size <= quota[s]), "train")
        filled[split] += size
        splits.append(split)
    for split in ("val", "test"):  # only large duplicate groups left a quota empty: give it the smallest training group
        if quota[split] and not filled[split]:
            candidates = [i for i, s in enumerate(splits) if s == "train" and sizes[i] < filled["train"]]
            if candidates:
                i = min(candidates, key=lambda i: sizes[i])
                splits[i], filled["train"], filled[split] = split, filled["train"] - sizes[i], sizes[i]
    return splits


def _quota(total: int, fraction: float, minimum: int) -> int:
    """Images for a split: the rounded share, but at least one once a class has ``minimum`` images."""
    if fraction <= 0:
        return 0
    share = math.floor(total * fraction + 0.5)  # round half up: Python's round() would send 2.5 to 2
    return max(share, 1) if total >= minimum else share


# ---------------------------------------------------------------------------------------- warnings


def dataset_warnings(index: DatasetIndex, stray: Sequence[str] = ()) -> list[Warning_]:
    """Everything that will not stop training but that a person should look at."""
    warnings = [*_merged_folders(index), *_case_only_classes(index), *_lookalike_files(index)]
    warnings += [*_few_images(index), *_imbalance(index), *_identical_files(index)]
    if index.split_source == "folders":
        warnings += _missing_splits(index)
    if stray:
        text = f"{len(stray)} item(s) are not inside a class folder and were left out; move them into one if they belong to a class."
        warnings.append(Warning_(STRAY_WARNING, text, tuple(stray)))
    return warnings


def _quoted(names) -> str:
    return " and ".join(f"'{printable(n)}'" for n in names)


def _few_images(index: DatasetIndex) -> list[Warning_]:
    per_class = Counter(index.classes[s.label] for s in index.samples)
    return [
        Warning_(FEW_IMAGES_WARNING, f"Class '{printable(name)}' has only {per_class[name]} image(s); a class needs at least {FEW_IMAGES}, better 20 or more, to be learned and measured.", classes=(name,))
        for name in index.classes
        if per_class[name] < FEW_IMAGES
    ]


def _imbalance(index: DatasetIndex) -> list[Warning_]:
    per_class = Counter(index.classes[s.label] for s in index.samples)
    if len(per_class) < 2:
        return []
    (big, largest), (small, smallest) = max(per_class.items(), key=lambda kv: kv[1]), min(per_class.items(), key=lambda kv: kv[1])
    if largest <= IMBALANCE_RATIO * smallest:
        return []
    text = (
        f"The classes are very unbalanced: '{printable(big)}' has {largest} images but '{printable(small)}' only {smallest} (more than {IMBALANCE_RATIO:g} to 1); "
        "add images to the small classes if you can; with class weighting on Automatic (the default), training tries "
        "weighting the rare classes up and keeps what scores best on balanced accuracy."
    )
    return [Warning_(IMBALANCE_WARNING, text)]


def _identical_files(index: DatasetIndex) -> list[Warning_]:
    """Identical files (same digest) in two classes, or in two splits."""
    copies_of: dict[str, list[Sample]] = defaultdict(list)
    for s in index.samples:
        copies_of[s.digest].append(s)
    warnings = []
    for copies in sorted((c for c in copies_of.values() if len(c) > 1), key=lambda c: min(s.path for s in c)):
        paths = tuple(sorted(s.path for s in copies))
        classes = sorted({index.classes[s.label] for s in copies})
        if len(classes) > 1:
            warnings.append(Warning_(LABEL_CONFLICT_WARNING, f"The same picture is filed under {_quoted(classes)}; keep it in the right class only.", paths))
        splits = [sp for sp in SPLITS if any(s.split == sp for s in copies)]
        if len(splits) > 1:
            text = f"The same picture is in {' and '.join(splits)}; results on held-out images will look better than they are. Keep one copy only."
            warnings.append(Warning_(LEAKAGE_WARNING, text, paths))
    return warnings


def _missing_splits(index: DatasetIndex) -> list[Warning_]:
    warnings = []
    for name, counts in index.counts().items():
        missing = [sp for sp in ("train", "val") if not counts[sp]]
        if missing:
            text = f"Class '{printable(name)}' has no images in its {' or '.join(missing)} folder; add some so it can be learned and measured."
            warnings.append(Warning_(MISSING_SPLIT_WARNING, text, classes=(name,)))
    return warnings


def _class_folder(index: DatasetIndex, sample: Sample) -> str:
    """The class folder a sample was found in: ``cats/``, or ``train/cats/`` in layout "folders"."""
    depth = 2 if index.split_source == "folders" else 1
    return "/".join(sample.path.split("/")[:depth]) + "/"


def _merged_folders(index: DatasetIndex) -> list[Warning_]:
    """Classes fed by more than one folder in one place: names equal in NFC form, or two folders of one split."""
    folders: dict[tuple[int, str], set[str]] = defaultdict(set)
    for s in index.samples:
        folders[(s.label, s.split if index.split_source == "folders" else "")].add(_class_folder(index, s))
    warnings = []
    for (label, split), paths in sorted(folders.items()):
        if len(paths) < 2:
            continue
        name, where = index.classes[label], f" ({split})" if split else ""
        why = []
        if len({p.rstrip("/").split("/")[-1] for p in paths}) > 1:
            why.append(f"'{printable(name)}' is written in two Unicode forms that look the same (as folders copied from a Mac often are)")
        if len({p.split("/")[0] for p in paths}) > 1 and split:
            why.append(f"{_quoted(sorted({p.split('/')[0] for p in paths}))} are all {split} folders")
        text = (
            f"{len(paths)} folders were put together as class '{printable(name)}'{where}: {'; and '.join(why)}. "
            "If that is right, move the images into one folder; if they are different classes, rename one."
        )
        warnings.append(Warning_(MERGED_FOLDERS_WARNING, text, tuple(sorted(paths))))
    return warnings


def _case_only_classes(index: DatasetIndex) -> list[Warning_]:
    """Classes whose names differ only in letter case: they stay separate classes (the user may mean it)."""
    alike: dict[str, list[str]] = defaultdict(list)
    for name in index.classes:
        alike[unicodedata.normalize("NFC", name).casefold()].append(name)
    folders: dict[str, set[str]] = defaultdict(set)
    for s in index.samples:
        folders[index.classes[s.label]].add(_class_folder(index, s))
    warnings = []
    for names in (n for n in alike.values() if len(n) > 1):
        text = (
            f"The classes {_quoted(names)} differ only in letter case, so they are trained as {len(names)} different classes. "
            "If they are one class, move the images into one folder; if not, rename one so that the names differ by more than case "
            "(Windows and macOS cannot keep such folders side by side)."
        )
        warnings.append(Warning_(CASE_ONLY_WARNING, text, tuple(sorted(p for n in names for p in folders[n]))))
    return warnings


def _lookalike_files(index: DatasetIndex) -> list[Warning_]:
    """Files in one folder whose names are equal in NFC form: both are used, but a Mac would see one name."""
    alike: dict[str, list[str]] = defaultdict(list)
    for s in index.samples:
        folder, _, name = s.path.rpartition("/")
        alike[f"{folder}/{unicodedata.normalize('NFC', name)}"].append(s.path)
    warnings = []
    for paths in sorted(sorted(p) for p in alike.values() if len(p) > 1):
        text = (
            f"{len(paths)} files in one folder have the name '{printable(paths[0].rpartition('/')[2])}' written in different Unicode forms "
            "that look the same; each is used, but copied to a Mac they would collide and only one would be kept. Rename all but one."
        )
        warnings.append(Warning_(LOOKALIKE_FILES_WARNING, text, tuple(paths)))
    return warnings


# ------------------------------------------------------------------------------------- persisting


def save_index(index: DatasetIndex, path: str | os.PathLike) -> None:
    write_json(path, index.to_dict())


def load_index(path: str | os.PathLike) -> DatasetIndex:
    try:
        return DatasetIndex.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"'{printable(path)}' is not a readable dataset index ({printable(exc)}); scan the data folder again.") from None
