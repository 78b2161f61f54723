"""Random actions through the real window's widgets, checked against a plain forward pass.

``python -m cnn_explorer.bench.soak [--actions 18000] [--seed 0] [--check-every 500]``

A seeded stream of what a user does with the explorer: typing numbers and garbage into the
input grid and the kernel table, paint strokes, resizes (down to 1×1), grayscale ↔ RGB,
presets, fill / clear / invert, every control of the layer form with any value it offers,
adding / removing / duplicating / moving / enabling layers, kernel presets, random and
normalised kernels, bias edits, colour-scale modes, clicking map cells, bursts of undo and
redo, and saving and reopening the project. Every ``check_every`` actions (and at the end)
it waits until the explorer is settled and requires every map to equal
``Explorer.plain_forward()`` bit for bit. It fails on an uncaught exception (anywhere: Qt
slots included, through ``sys.excepthook``), on an action that kept the GUI thread busy for
more than ``max_block_s``, and on a mismatch. The test suite runs a bounded version
(``tests/ui/test_random_actions.py``); this command is the long soak.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

GARBAGE = ("", "abc", "1e39", "-", "nan", "1,5", "  7 ", "0x10", "½", "1e-50", "--3")


class SoakError(AssertionError):
    """What went wrong, after which action (the seed and index reproduce it)."""


class RandomActions:
    """Drives a shown ``MainWindow`` with seeded random actions through its widgets."""

    def __init__(self, win: Any, seed: int, folder: str, max_block_s: float = 2.0) -> None:
        from PySide6.QtWidgets import QApplication, QPushButton

        self.win, self.doc = win, win.doc
        self.rng = np.random.default_rng(seed)
        self.app = QApplication.instance()
        self.folder, self.max_block_s = folder, max_block_s
        self.buttons = {
            b.text(): b
            for b in (*win.grid.findChildren(QPushButton), *win.kernel.findChildren(QPushButton))
        }
        self.actions: dict[str, Callable[[], None]] = {
            name[4:]: getattr(self, name) for name in dir(self) if name.startswith("act_")
        }
        self.log: list[str] = []

    # ------------------------------------------------------------------ helpers
    def _int(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def _number(self) -> str:
        if self.rng.random() < 0.2:
            return str(GARBAGE[self._int(0, len(GARBAGE) - 1)])
        return f"{self.rng.normal() * 3:.3g}"

    def _set_data(self, view: Any, text: str) -> None:
        from PySide6.QtCore import Qt

        model = view.model()
        if model.rowCount() and model.columnCount():
            index = model.index(
                self._int(0, model.rowCount() - 1), self._int(0, model.columnCount() - 1)
            )
            model.setData(index, text, Qt.ItemDataRole.EditRole)

    def _pick(self, widget: Any) -> None:
        """Any value the widget offers: a spin box's range, a combo box's items."""
        if hasattr(widget, "count"):
            if widget.count():
                widget.setCurrentIndex(self._int(0, widget.count() - 1))
        elif hasattr(widget, "decimals"):
            widget.setValue(float(self.rng.uniform(widget.minimum(), widget.maximum())))
        elif hasattr(widget, "setValue"):
            hi = min(widget.maximum(), widget.minimum() + 40)  # big sizes are slow, not new
            widget.setValue(
                self._int(widget.minimum(), hi if self.rng.random() < 0.9 else widget.maximum())
            )
        else:
            widget.setChecked(not widget.isChecked())

    # ------------------------------------------------------------------ actions
    def act_type_cell(self) -> None:
        self._set_data(self.win.grid.table, self._number())

    def act_type_weight(self) -> None:
        self._set_data(self.win.kernel.table, self._number())

    def act_paint(self) -> None:
        from PySide6.QtCore import QPoint, Qt
        from PySide6.QtTest import QTest

        grid = self.win.grid
        grid.paint_btn.setChecked(True)
        port = grid.table.viewport()
        points = [
            QPoint(self._int(0, port.width() - 1), self._int(0, port.height() - 1))
            for _ in range(3)
        ]
        QTest.mousePress(port, Qt.MouseButton.LeftButton, pos=points[0])
        for p in points[1:]:
            QTest.mouseMove(port, p)
        QTest.mouseRelease(port, Qt.MouseButton.LeftButton, pos=points[-1])
        grid.paint_btn.setChecked(False)

    def act_resize(self) -> None:
        spin = self.win.grid.rows_spin if self.rng.random() < 0.5 else self.win.grid.cols_spin
        spin.setValue(1 if self.rng.random() < 0.1 else self._int(2, 40))

    def act_grid_control(self) -> None:
        grid = self.win.grid
        which = self._int(0, 5)
        if which < 3:
            self._pick([grid.channels_combo, grid.channel_combo, grid.brush][which])
        else:
            self._pick(grid.preset_combo)
            self.buttons[("Load preset", "Fill", "Clear", "Invert")[which - 2]].click()

    def act_stack(self) -> None:
        stack = self.win.layers
        n = stack.list.count()
        if n:
            stack.list.setCurrentRow(self._int(0, n - 1))
        which = self._int(0, 5)
        if which == 0:
            actions = stack.add_btn.menu().actions()
            actions[self._int(0, len(actions) - 1)].trigger()
        else:
            button = (stack.remove_btn, stack.dup_btn, stack.up_btn, stack.down_btn, None)[
                which - 1
            ]
            if button is not None and button.isEnabled():
                button.click()
            elif n:
                item = stack.list.item(self._int(0, n - 1))
                from PySide6.QtCore import Qt

                checked = item.checkState() == Qt.CheckState.Checked
                item.setCheckState(Qt.CheckState.Unchecked if checked else Qt.CheckState.Checked)

    def act_layer_form(self) -> None:
        from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QSpinBox

        page = self.win.layers.form.pages.currentWidget()
        kinds = (QSpinBox, QDoubleSpinBox, QComboBox, QCheckBox)
        controls = [w for kind in kinds for w in page.findChildren(kind) if w.isEnabled()]
        if controls:
            self._pick(controls[self._int(0, len(controls) - 1)])

    def act_kernel(self) -> None:
        k = self.win.kernel
        which = self._int(0, 6)
        if which < 5:
            self._pick(
                [k.filter_spin, k.channel_spin, k.bias_spin, k.kh_spin, k.preset_combo][which]
            )
            if which == 4:
                k.preset_btn.click()
        else:
            self.buttons[("Random", "Normalise")[which - 5]].click()

    def act_view(self) -> None:
        maps = self.win.maps
        if self.rng.random() < 0.5:
            self._pick(maps.scale_combo if self.rng.random() < 0.7 else maps.numbers_check)
            return
        res = self.doc.results
        m = self._int(0, len(res.maps) - 1)
        c, h, w = res.maps[m].shape
        from cnn_explorer.explorer.explain import Selection

        maps.cell_clicked.emit(
            Selection(m, self._int(0, c - 1), self._int(0, h - 1), self._int(0, w - 1))
        )

    def act_undo_redo(self) -> None:
        for _ in range(self._int(1, 12)):
            action = self.win.undo_action if self.rng.random() < 0.6 else self.win.redo_action
            action.trigger()

    def act_save_and_reopen(self) -> None:
        path = os.path.join(self.folder, "soak.cnnx")
        if not self.win.save_to(path):
            raise SoakError(f"could not save: {self.win.last_status}")
        if not self.win.open_path(path):
            raise SoakError(f"a project it saved does not reopen: {self.win.last_status}")

    # ------------------------------------------------------------------ the run
    def settle(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.doc.settled:
            if time.monotonic() > deadline:
                raise SoakError(f"not settled after {timeout_s} s (busy={self.doc.busy})")
            self.app.processEvents()
            time.sleep(0.002)

    def check(self) -> None:
        """Wait until settled, then every map must equal a plain forward pass, bit for bit."""
        self.settle()
        fresh = self.doc.model.plain_forward()
        maps = self.doc.results.maps
        if len(maps) != len(fresh):
            raise SoakError(f"{len(maps)} maps on screen, a plain forward gives {len(fresh)}")
        for i, (a, b) in enumerate(zip(maps, fresh, strict=True)):
            if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
                raise SoakError(f"map {i} differs from a plain forward pass")

    def run(self, actions: int, check_every: int = 50) -> dict[str, int]:
        """Make ``actions`` random actions; returns how often each kind ran."""
        names = sorted(self.actions)
        weights = np.array([0.3 if n == "save_and_reopen" else 1.0 for n in names])
        counts = dict.fromkeys(names, 0)
        errors: list[str] = []
        old_hook = sys.excepthook
        sys.excepthook = lambda kind, exc, tb: errors.append(f"{kind.__name__}: {exc}")
        try:
            for i in range(actions):
                name = names[int(self.rng.choice(len(names), p=weights / weights.sum()))]
                counts[name] += 1
                self.log.append(name)
                t0 = time.perf_counter()
                self.actions[name]()
                self.app.processEvents()
                took = time.perf_counter() - t0
                if errors:
                    raise SoakError(f"action {i} ({name}) raised {errors[0]}")
                if took > self.max_block_s:
                    raise SoakError(f"action {i} ({name}) blocked the GUI for {took:.1f} s")
                if (i + 1) % check_every == 0:
                    self.check()
            self.check()
        finally:
            sys.excepthook = old_hook
        return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--actions", type=int, default=18_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--check-every", type=int, default=500)
    args = p.parse_args(argv)
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from cnn_explorer.ui.common.messages import RecordingReporter
    from cnn_explorer.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    win = MainWindow(restore_state=False)
    win.persist_settings = False
    win.reporter = RecordingReporter(win)
    win.resize(1440, 900)
    win.show()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        try:
            counts = RandomActions(win, args.seed, folder).run(args.actions, args.check_every)
        except SoakError as exc:
            print(f"FAILED (seed {args.seed}): {exc}")
            return 1
        finally:
            win.doc.undo_stack.setClean()
            win.close()
            app.processEvents()
    took = time.perf_counter() - t0
    print(f"{args.actions} actions, seed {args.seed}, {took:.0f} s: all maps exact at every check")
    print(", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
