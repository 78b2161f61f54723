"""Regression guard for PySide6-Essentials 6.12.0 on Python 3.11.

That release drops a reference to ``True`` on every ``Signal.emit()``; after enough emits
the interpreter aborts with ``Fatal Python error: bool_dealloc``. An app that repaints with
pyqtgraph emits thousands of signals a minute, so it would die within minutes.
``pyproject.toml`` pins ``<6.12`` on Python < 3.12; this test proves the installed pair
survives 200,000 emits in a child process (a crash cannot take pytest down with it).
"""

from __future__ import annotations

import os
import subprocess
import sys

CHILD = """
import sys
from PySide6.QtCore import QCoreApplication, QObject, Signal

class Emitter(QObject):
    fired = Signal(bool)

app = QCoreApplication([])
emitter = Emitter()
count = 0

def on_fired(flag: bool) -> None:
    global count
    count += flag

emitter.fired.connect(on_fired)
refs_before = sys.getrefcount(True)
for _ in range(200_000):
    emitter.fired.emit(True)
refs_after = sys.getrefcount(True)
assert count == 200_000, count
# A leak of one reference per emit would show as a drop of ~200,000.
assert refs_before - refs_after < 1000, (refs_before, refs_after)
print("ok", count)
"""


def test_many_signal_emits_do_not_abort_the_interpreter() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, (
        f"child exited {result.returncode} (PySide6 signal refcount bug?):\n{result.stderr[-2000:]}"
    )
    assert result.stdout.strip() == "ok 200000"
