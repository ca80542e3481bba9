"""The README's promises stay true: CI runs exactly the README's test command."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(r"^```(?:bash|sh)\n(.+?)\n```", text, flags=re.M | re.S)


def test_ci_runs_the_readme_test_command_then_the_thread_stress_twice():
    ci_lines = [ln for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith(("#", "set ", "cd "))]
    assert len(ci_lines) == 2
    assert ci_lines[0] in _readme_commands()
    stress = ci_lines[1]
    assert stress == ".venv/bin/python -m tests.stress_gui --runs 2"
    assert any(cmd.startswith(".venv/bin/python -m tests.stress_gui") for cmd in _readme_commands())


def test_readme_has_install_and_start_command():
    assert any(cmd.endswith(".venv/bin/tlstudio") for cmd in _readme_commands())



def test_readme_pictures_are_in_the_repo_and_small():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    pictures = re.findall(r"\]\(([^)]+\.png)\)", text)  # shown or linked
    assert len(pictures) >= 11  # a screenshot of each step at two sizes, and of the report
    for rel in pictures:
        path = REPO / rel
        assert path.is_file(), f"README shows {rel}, which is not in the repo"
        assert path.stat().st_size < 200_000, f"{rel} is {path.stat().st_size:,} bytes: keep screenshots small"


def test_readme_benchmark_commands_name_modules_that_exist():
    modules = re.findall(r"-m (tests\.bench\.\w+)", (REPO / "README.md").read_text(encoding="utf-8"))
    assert {"tests.bench.bench_speed", "tests.bench.bench_memory"} <= set(modules)
    for module in modules:
        assert (REPO / (module.replace(".", "/") + ".py")).is_file(), module
