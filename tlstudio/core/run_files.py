"""The files of one training run (``runs/<id>/`` in a project, or the CLI's ``--out``), written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from tlstudio.core import atomic


class RunFiles:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    config = property(lambda self: self.root / "config.json")
    dataset = property(lambda self: self.root / "dataset.json")
    history = property(lambda self: self.root / "history.jsonl")
    metrics = property(lambda self: self.root / "metrics.json")
    predictions = property(lambda self: self.root / "predictions.json")
    summary = property(lambda self: self.root / "summary.json")
    checkpoints = property(lambda self: self.root / "checkpoints")
    best = property(lambda self: self.root / "checkpoints" / "best.pt")
    last = property(lambda self: self.root / "checkpoints" / "last.pt")
    model = property(lambda self: self.root / "model.pt")

    def prepare(self) -> None:
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        if self.history.exists():
            self.history.unlink()  # a new run into the same folder starts a new history

    def write_json(self, path: Path, obj: Any) -> None:
        atomic.write_json(path, obj)

    def append_history(self, row: dict) -> None:
        atomic.append_line(self.history, json.dumps(row))

    def read_history(self) -> list[dict]:
        if not self.history.exists():
            return []
        return [json.loads(line) for line in self.history.read_text(encoding="utf-8").splitlines() if line.strip()]

    def save_checkpoint(self, path: Path, state: dict) -> None:
        with atomic.atomic_path(path) as tmp:
            torch.save(state, tmp)

    def load_checkpoint(self, path: Path) -> dict:
        return torch.load(path, map_location="cpu", weights_only=True)
