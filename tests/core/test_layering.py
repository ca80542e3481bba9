"""The headless core never depends on Qt: the CLI, the tests and other machines drive it without a display."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "tlstudio.gui")
CORE = sorted((REPO / "tlstudio" / "core").rglob("*.py"))
HEADLESS = [*CORE, *sorted((REPO / "tlstudio" / "commands").glob("*.py")), REPO / "tlstudio" / "cli.py"]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _imported_modules(path: Path) -> set[str]:
    """Like ``_imports``, with ``from package import module`` read as the module."""
    names = _imports(path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_headless_module_imports_qt():
    offenders = {
        str(path.relative_to(REPO)): sorted(n for n in _imports(path) if n.startswith(FORBIDDEN))
        for path in HEADLESS
        if path.name != "cli.py"  # cli.py opens the GUI lazily inside main(); checked at run time below
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_core_and_cli_loads_no_qt():
    modules = [module_name(p) for p in HEADLESS if p.name != "cli.py"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "import tlstudio.cli; tlstudio.cli.build_parser()\n"
        f"bad = [m for m in sys.modules if m.startswith({FORBIDDEN!r})]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr


def test_no_function_in_core_is_longer_than_60_lines():
    long = {
        f"{path.relative_to(REPO)}:{node.name}": node.end_lineno - node.lineno + 1
        for path in CORE
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60
    }
    assert long == {}


def test_core_modules_import_each_other_without_a_cycle():
    """Counting imports inside functions too: a lazy import hides a cycle, it does not remove it."""
    modules = {module_name(p): p for p in CORE}
    graph = {m: {n for n in _imported_modules(p) if n in modules and n != m and not m.startswith(n + ".")} for m, p in modules.items()}
    state: dict[str, int] = {}

    def cycle_from(m: str, path: list[str]):
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*path, m, n]
            if n not in state and (found := cycle_from(n, [*path, m])):
                return found
        state[m] = 2
        return None

    cycles = [c for m in sorted(graph) if m not in state and (c := cycle_from(m, []))]
    assert cycles == []
