"""The headless core never depends on Qt: the CLI, the tests and other machines drive it without a display."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "tlstudio.gui")
HEADLESS = [*sorted((REPO / "tlstudio" / "core").glob("*.py")), *sorted((REPO / "tlstudio" / "commands").glob("*.py")), REPO / "tlstudio" / "cli.py"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_headless_module_imports_qt():
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in _imports(path) if n.startswith(FORBIDDEN))
        for path in HEADLESS
        if path.name != "cli.py"  # cli.py opens the GUI lazily inside main(); checked at run time below
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_core_and_cli_loads_no_qt():
    modules = [f"tlstudio.core.{p.stem}" for p in HEADLESS if p.parent.name == "core" and p.stem != "__init__"]
    modules += [f"tlstudio.commands.{p.stem}" for p in HEADLESS if p.parent.name == "commands" and p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "import tlstudio.cli; tlstudio.cli.build_parser()\n"
        f"bad = [m for m in sys.modules if m.startswith({FORBIDDEN!r})]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
