"""The engine is pure NumPy: importing it must not drag in Qt or pyqtgraph.

Why a fresh interpreter: inside pytest, pytest-qt has already imported PySide6, so checking
``sys.modules`` here would prove nothing. The subprocess imports only the engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("PySide6", "pyqtgraph", "PyQt5", "PyQt6", "PySide2", "matplotlib", "torch")

SCRIPT = f"""
import json, sys
import cnn_explorer.engine
import cnn_explorer.engine.activations, cnn_explorer.engine.linear, cnn_explorer.engine.losses
bad = sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r})
print(json.dumps(bad))
"""


def test_engine_import_loads_no_gui_or_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing cnn_explorer.engine loaded {loaded}"
