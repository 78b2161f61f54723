"""The architecture's rules, checked on every test run.

- The Qt-free modules load no Qt: importing the engine, the explorer's model and edits, and
  the training session in a fresh interpreter loads no PySide6 and no pyqtgraph. (Inside
  pytest, pytest-qt has already imported PySide6, so checking ``sys.modules`` here would
  prove nothing: each import runs in a subprocess of its own.)
- Imports point down only: ``lint-imports`` keeps the contracts of ``pyproject.toml``
  ([tool.importlinter]: layers app → ui → explorer | training → imageio → limits → engine,
  the two tabs' widgets independent, nothing imports the benchmarks, a pure engine).
- No module outside the engine grows past :data:`MAX_LINES` lines: split it by
  responsibility instead; no function there passes :data:`MAX_FUNCTION_LINES` lines without
  a comment just above it saying why.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "cnn_explorer"
MAX_LINES = 500
MAX_FUNCTION_LINES = 60

GUI = ("PySide6", "shiboken6", "pyqtgraph", "PyQt5", "PyQt6", "PySide2")
#: Module(s) imported together → top-level packages they must not load.
QT_FREE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "engine": (
        (
            "cnn_explorer.engine",
            "cnn_explorer.engine.activations",
            "cnn_explorer.engine.linear",
            "cnn_explorer.engine.losses",
        ),
        (*GUI, "threadpoolctl", "matplotlib", "torch"),
    ),
    "explorer.model": (("cnn_explorer.explorer.model",), GUI),
    "explorer.edits": (("cnn_explorer.explorer.edits",), GUI),
    "training.session": (("cnn_explorer.training.session",), GUI),
    "insight": (("cnn_explorer.insight.jobs",), GUI),
}

SCRIPT = """
import importlib, json, sys
for name in {modules!r}:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})))
"""


@pytest.mark.parametrize("what", list(QT_FREE))
def test_qt_free_modules_load_no_qt_in_a_fresh_interpreter(what: str) -> None:
    modules, forbidden = QT_FREE[what]
    if importlib.util.find_spec(modules[0]) is None:
        pytest.skip(f"{modules[0]} does not exist yet")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(modules=modules, forbidden=forbidden)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing {', '.join(modules)} loaded {loaded}"


def _lint_imports() -> str | None:
    """The lint-imports next to this interpreter (the venv's), else on PATH."""
    here = Path(sys.executable).with_name("lint-imports")
    return str(here) if here.exists() else shutil.which("lint-imports")


def test_import_contracts_are_kept() -> None:
    exe = _lint_imports()
    if exe is None or importlib.util.find_spec("importlinter") is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run(
        [exe, "--no-cache"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        check=False,
    )
    report = result.stdout[result.stdout.find("Contracts") :] or result.stdout
    assert result.returncode == 0, f"lint-imports:\n{report}\n{result.stderr}"
    assert "0 broken" in result.stdout, report


def test_no_module_outside_the_engine_is_over_500_lines() -> None:
    engine = PACKAGE / "engine"
    too_long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if engine in path.parents:
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            too_long[str(path.relative_to(REPO_ROOT))] = lines
    assert not too_long, f"over {MAX_LINES} lines (split them by responsibility): {too_long}"


def test_a_long_function_outside_the_engine_says_why() -> None:
    engine = PACKAGE / "engine"
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if engine in path.parents:
            continue
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            if length > MAX_FUNCTION_LINES and not lines[start - 2].strip().startswith("#"):
                unexplained.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {node.name}")
    assert not unexplained, f"over {MAX_FUNCTION_LINES} lines with no comment why: {unexplained}"
