"""A training-event listener for tests: keeps every event and answers what a test asks of them."""

from __future__ import annotations

from tlstudio.core.events import PhaseStarted


class Recorder(list):
    def __call__(self, event) -> None:
        self.append(event)

    def of(self, kind) -> list:
        return [e for e in self if isinstance(e, kind)]

    def phases(self) -> list[str]:
        return [e.name for e in self.of(PhaseStarted)]

    def phase_total(self, name: str) -> int:
        return next(e.total for e in self.of(PhaseStarted) if e.name == name)
