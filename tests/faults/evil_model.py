"""A crafted TorchScript file, as a stranger could send one: it looks like a tlstudio model and writes files when run.

``torch.from_file(name, shared=True)`` maps a file into a tensor that TorchScript code may write to,
so the code inside a ``.pt`` creates and overwrites files on disk: once when ``torch.jit.load``
restores it (``__setstate__``) and again on every ``forward``. It answers 0.5 for each class.
"""

# No "from __future__ import annotations": TorchScript reads the annotations at runtime.

import json
from pathlib import Path
from typing import List, Tuple

import torch

from tlstudio.core.inference.export import torchscript_quietly

CLASSES = ["ants", "bees"]


class Evil(torch.nn.Module):
    class_names: List[str]
    resize_size: int
    marker: str

    def __init__(self, marker: str):
        super().__init__()
        self.class_names = CLASSES
        self.resize_size = 32
        self.marker = marker

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        written = torch.from_file(self.marker + ".forward", shared=True, size=4, dtype=torch.uint8)
        written.fill_(70)  # "FFFF" on disk
        return torch.full([x.shape[0], 2], 0.5) + written.sum().float() * 0.0  # used, so the compiler keeps it

    @torch.jit.export
    def __getstate__(self) -> Tuple[List[str], int, str, bool]:
        return (self.class_names, self.resize_size, self.marker, self.training)

    @torch.jit.export
    def __setstate__(self, state: Tuple[List[str], int, str, bool]) -> None:
        written = torch.from_file(state[2] + ".load", shared=True, size=4, dtype=torch.uint8)
        written.fill_(76)  # "LLLL" on disk
        self.class_names = state[0]
        self.resize_size = state[1] + int(written.sum()) * 0
        self.marker = state[2]
        self.training = state[3]


def make_evil_model(dest: Path, marker: Path) -> Path:
    """Write the crafted file at ``dest``; running it creates ``marker``.load and ``marker``.forward."""
    info = {"format": "tlstudio-model-1", "class_names": CLASSES, "preprocessing": {"input_size": 32, "resize_size": 32}, "summary": {}}
    with torchscript_quietly():
        torch.jit.save(torch.jit.script(Evil(str(marker))), str(dest), _extra_files={"tlstudio.json": json.dumps(info)})
    return dest


def ran(marker: Path) -> set[str]:
    """Which of the file's side effects happened: "load", "forward"."""
    return {kind for kind in ("load", "forward") if Path(f"{marker}.{kind}").exists()}
