"""What a scan found: the classes, every usable image with its split, every skipped file and why.

This is the contract between intake (``tlstudio.core.data.scan``) and everything after it
(training, caches, evaluation, the GUI). Plain data, JSON round-trip.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from tlstudio.core.errors import UserError
from tlstudio.core.names import printable_json

SPLITS = ("train", "val", "test")

# Reasons a file is skipped. The GUI and the report show REASON_TEXT.
EMPTY = "empty"
NOT_AN_IMAGE = "not an image"
TRUNCATED = "truncated"
TOO_MANY_PIXELS = "too many pixels"
UNREADABLE = "unreadable"
UNSUPPORTED_MODE = "unsupported mode"
SAME_FILE = "same file"  # reached a second time, through a link or a hard link; its detail names the path used
BAD_NAME = "name not text"  # bytes that are not UTF-8: such a name cannot go into the index, a model or a report

REASON_TEXT = {
    EMPTY: "The file is empty (0 bytes). Copy it again from its source.",
    NOT_AN_IMAGE: "The file is not an image, or its format is not supported.",
    TRUNCATED: "The image is cut off (incomplete download or copy). Copy it again from its source.",
    TOO_MANY_PIXELS: "The image is so large that it could exhaust memory (possible decompression bomb). Downscale it first.",
    UNREADABLE: "The file could not be read (permissions or a disk error).",
    UNSUPPORTED_MODE: "The image uses a colour mode that cannot be converted to RGB.",
    SAME_FILE: "The same file is reached a second time, through a link or a hard link; it is used once only, under the other name shown.",
    BAD_NAME: "The name is not valid text (the bytes shown as \\xNN are not UTF-8, as with names from an old PC or zip file); a folder named so is not entered. Rename it, then scan again.",
}

# Kinds of dataset warnings (Warning_.kind); each warning's text says what to do.
FEW_IMAGES_WARNING = "few images"
IMBALANCE_WARNING = "imbalance"
LABEL_CONFLICT_WARNING = "label conflict"
LEAKAGE_WARNING = "leakage"
MISSING_SPLIT_WARNING = "missing split"
STRAY_WARNING = "not in a class folder"
# Folders whose names are equal once written the same way (Unicode NFC form; split folders also
# whatever their case) were merged into one class: nothing is lost, but the user should know.
MERGED_FOLDERS_WARNING = "merged folders"
# Class names equal but for letter case: kept as two classes (the user may mean it), flagged.
CASE_ONLY_WARNING = "names differ only in case"
# Files in one folder whose names are equal in Unicode NFC form: both used, flagged.
LOOKALIKE_FILES_WARNING = "look-alike file names"


@dataclass(frozen=True)
class Sample:
    path: str  # relative to the data root, POSIX separators
    label: int  # index into DatasetIndex.classes
    split: str  # "train" | "val" | "test"
    size: int  # bytes
    mtime_ns: int
    digest: str  # content hash (hex); identical files share it
    width: int
    height: int


@dataclass(frozen=True)
class Skipped:
    path: str  # relative to the data root
    reason: str  # one of the reason constants above
    detail: str = ""  # the decoder's own words, for the curious
    pixels: int = 0  # the image's pixel count, for TOO_MANY_PIXELS (0: not known, or another reason)


@dataclass(frozen=True)
class Warning_:
    kind: str  # one of the *_WARNING constants above
    text: str  # a sentence a non-programmer understands
    paths: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()  # the class names a per-class warning is about (few images, missing split)


@dataclass
class DatasetIndex:
    root: str
    classes: list[str]
    samples: list[Sample]
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    ignored: int = 0  # hidden/system/non-image files passed over on purpose
    split_source: str = "folders"  # "folders" (existing train/val folders) or "seeded"
    val_split: float = 0.2
    test_split: float = 0.0
    seed: int = 0
    seconds: float = 0.0
    files_per_s: float = 0.0

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """{class name: {split: count}} for every class and split."""
        out = {c: {sp: 0 for sp in SPLITS} for c in self.classes}
        for s in self.samples:
            out[self.classes[s.label]][s.split] += 1
        return out

    def abspath(self, sample: Sample | Skipped) -> Path:
        return Path(self.root) / sample.path

    def to_dict(self) -> dict:
        d = asdict(self)
        d["counts"] = self.counts()
        return d

    def to_json(self) -> str:
        """Readable JSON; characters that hide or reorder text are \\u escapes (they load back the same)."""
        return printable_json(json.dumps(self.to_dict(), indent=2, ensure_ascii=False))

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetIndex":
        d = dict(d)
        d.pop("counts", None)
        d["samples"] = [Sample(**s) for s in d["samples"]]
        d["skipped"] = [Skipped(**s) for s in d.get("skipped", [])]
        d["warnings"] = [Warning_(**{**w, "paths": tuple(w.get("paths", ())), "classes": tuple(w.get("classes", ()))}) for w in d.get("warnings", [])]
        return cls(**d)


class DatasetError(UserError):
    """A fatal problem with the folder itself; the message names the folder and what to do."""

    def __init__(self, message: str, path: Optional[str] = None):
        super().__init__(message)
        self.path = path
