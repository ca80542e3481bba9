"""The README's promises stay true: CI runs exactly the README's test command."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```(?:bash|sh)\n(.+?)\n```", text, flags=re.M | re.S)


def test_ci_runs_the_readme_test_command():
    ci_lines = [ln for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith(("#", "set ", "cd "))]
    assert len(ci_lines) == 1
    assert ci_lines[0] in _readme_commands()


def test_readme_has_install_and_start_command():
    assert any(cmd.endswith(".venv/bin/tlstudio") for cmd in _readme_commands())

