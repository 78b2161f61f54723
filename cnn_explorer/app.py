"""Command line entry point: ``cnn-explorer [FILE] [--screenshot OUT.png]``,
``cnn-explorer train DATA_DIR [...]``, ``cnn-explorer run MODEL INPUT [...]`` and
``cnn-explorer export MODEL --to OUT.onnx|OUT.py`` (MODEL may be a ``.cnnx`` project:
:mod:`cnn_explorer.project_models` reads it for the two commands).

Without ``--screenshot`` it opens the window (on FILE, a project or an image, or on the
built-in worked example). With ``--screenshot`` it renders the main window to a PNG and
exits, using the offscreen platform when there is no display (CI, headless servers).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

_T0 = time.perf_counter()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="cnn-explorer",
        description="See how a convolutional neural network works: edit inputs and kernels, "
        "stack layers, watch every feature map update.",
    )
    p.add_argument(
        "file",
        nargs="?",
        help="project (.cnnx), image (PNG, JPEG, BMP, GIF) or model file (.onnx, .keras, .h5, "
        ".safetensors, .pt, .pth, .npz) to open",
    )
    p.add_argument("--screenshot", metavar="OUT.png", help="render the window to a PNG and exit")
    p.add_argument("--size", default="1440x900", help="window size for --screenshot (WxH)")
    p.add_argument(
        "--select",
        metavar="MAP,CH,ROW,COL",
        help="select a feature-map cell (shows its explanation), e.g. 1,0,0,1",
    )
    p.add_argument(
        "--animate",
        metavar="STEPS",
        type=int,
        help="with --screenshot: open the sliding window on the selected cell, take STEPS steps",
    )
    p.add_argument(
        "--image-size",
        metavar="ROWSxCOLS",
        help="grid size for an image FILE (default: its aspect ratio, 64 on the longer side)",
    )
    p.add_argument(
        "--lesson",
        metavar="STEP",
        type=int,
        help="open the guided lesson set up at step STEP (1 = the worked example)",
    )
    p.add_argument(
        "--select-cell",
        metavar="NODE:CH,ROW,COL",
        help="with a model FILE: select a cell of a node's output in the Model tab",
    )
    p.add_argument("--quit-after-show", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _pair(text: str, sep: str = "x") -> tuple[int, int]:
    a, b = text.lower().split(sep)
    return int(a), int(b)


def _subcommand(name: str, argv: list[str]) -> int:
    """The headless commands; ``run`` and ``export`` read projects too (the reader lives
    above both the command lines' package and the project files': see project_models)."""
    if name == "train":
        from cnn_explorer.training.cli import main as train_main

        return train_main(argv)
    from cnn_explorer.project_models import read_project_model

    if name == "run":
        from cnn_explorer.interchange.cli import main as run_main

        return run_main(argv, project_reader=read_project_model)
    from cnn_explorer.interchange.export_cli import main as export_main

    return export_main(argv, project_reader=read_project_model)


def main(argv: list[str] | None = None) -> int:
    """Run the app (or ``cnn-explorer train|run|export ...`` headless); returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["train"], ["run"], ["export"]):
        return _subcommand(argv[0], argv[1:])
    args = parse_args(argv)
    headless = args.screenshot or args.quit_after_show
    if headless and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("CNN Explorer")
    app.setApplicationName("cnn-explorer")
    app.setApplicationDisplayName("CNN Explorer")

    from cnn_explorer.ui.common.messages import ImageOptions, Reporter
    from cnn_explorer.ui.main_window import MainWindow

    win = MainWindow(restore_state=not headless)
    _install_excepthook(win)
    if headless:
        win.persist_settings = False
        win.reporter = _StderrReporter(win)
        w, h = _pair(args.size)
        win.resize(w, h)
        # No dialog asks for an image's size here: say which size it became.
        win.images.status.connect(lambda text, error: error or _note(text))
    ok = True
    if args.file:
        opts = None
        if args.image_size:
            r, c = _pair(args.image_size)
            opts = ImageOptions(r, c, win.images.channels_for(args.file))
        ok = win.load_image(args.file, opts) if opts is not None else win.open_path(args.file)
    if args.lesson:
        win.teaching.open_lesson(max(0, args.lesson - 1))
    win.show()
    if args.quit_after_show:
        app.processEvents()
        print(f"shown {time.perf_counter() - _T0:.3f}", flush=True)
        win.doc.shutdown()
        return 0
    if args.screenshot:
        return _screenshot(app, win, args, ok)
    if not isinstance(win.reporter, Reporter):  # pragma: no cover
        return 1
    return app.exec()


def _screenshot(app: object, win: object, args: argparse.Namespace, ok: bool) -> int:
    from cnn_explorer.explorer.explain import Selection

    win.images.wait(60_000)  # type: ignore[attr-defined]
    for _ in range(3):  # a model file: its import, then its forward pass
        win.model_tab.wait(120_000)  # type: ignore[attr-defined]
    app.processEvents()  # type: ignore[attr-defined]
    doc = win.doc  # type: ignore[attr-defined]
    doc.recompute_now()
    doc.wait_idle()
    app.processEvents()  # type: ignore[attr-defined]
    win.maps.relayout()  # type: ignore[attr-defined]
    app.processEvents()  # type: ignore[attr-defined]
    if args.select:
        m, c, r, q = (int(v) for v in args.select.split(","))
        doc.select_cell(Selection(m, c, r, q))
        app.processEvents()  # type: ignore[attr-defined]
        win.maps.reveal_selection()  # type: ignore[attr-defined]
    if args.select_cell and win.model_tab.doc.ready:  # type: ignore[attr-defined]
        ok = _select_model_cell(win, args.select_cell) and ok
    for _ in range(3):
        app.processEvents()  # type: ignore[attr-defined]
    if args.animate is not None:  # the sliding window on the selected cell, STEPS on
        win.show_sliding_window()  # type: ignore[attr-defined]
        app.processEvents()  # type: ignore[attr-defined]
        for _ in range(args.animate):
            win.sliding.step_forward()  # type: ignore[attr-defined]
        for _ in range(3):
            app.processEvents()  # type: ignore[attr-defined]
    win.maps.finish_drawing()  # type: ignore[attr-defined]
    app.processEvents()  # type: ignore[attr-defined]
    out = os.path.abspath(args.screenshot)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    saved = win.grab().save(out, "PNG")  # type: ignore[attr-defined]
    doc.shutdown()
    if not saved:
        print(f"cnn-explorer: could not write {out}", file=sys.stderr)
        return 1
    return 0 if ok and not getattr(win.reporter, "errors", 0) else 2  # type: ignore[attr-defined]


def _select_model_cell(win: object, text: str) -> bool:
    """``NODE:CH,ROW,COL`` (or ``NODE:I`` for vectors) → the Model tab's selection."""
    from cnn_explorer.explorer.graph_view_model import GraphCell

    node, _, where = text.rpartition(":")
    try:
        index = tuple(int(v) for v in where.split(","))
        win.model_tab.doc.select_node(node)  # type: ignore[attr-defined]
        win.model_tab.doc.select_cell(GraphCell(node, index))  # type: ignore[attr-defined]
    except (KeyError, IndexError, ValueError) as exc:
        print(f"cnn-explorer: --select-cell {text}: {exc}", file=sys.stderr)
        return False
    return True


def _note(text: str) -> None:
    print(f"cnn-explorer: {text}", file=sys.stderr)


def _install_excepthook(win: object) -> None:
    """An unexpected exception in a slot is printed and shown in the status bar; the
    window stays up (Qt would otherwise carry on silently or abort)."""
    import traceback

    def hook(kind: type[BaseException], exc: BaseException, tb: object) -> None:
        traceback.print_exception(kind, exc, tb)  # type: ignore[arg-type]
        with contextlib.suppress(Exception):
            msg = f"Internal error: {exc!r} (details on the console)"
            win.show_status(msg, error=True)  # type: ignore[attr-defined]

    sys.excepthook = hook


class _StderrReporter:
    """Headless runs print messages instead of showing dialogs."""

    def __init__(self, parent: object) -> None:
        self.parent = parent
        self.errors = 0  # files that failed in the background (a model import) count too

    def error(self, title: str, text: str) -> None:
        self.errors += 1
        print(f"cnn-explorer: {title}: {text}", file=sys.stderr)

    def info(self, title: str, text: str) -> None:
        print(f"cnn-explorer: {title}: {text}", file=sys.stderr)

    def ask_save_changes(self, before: str = "closing", note: str = "") -> str:
        return "discard"

    def open_path(self, *_a: object) -> None:
        return None

    def save_path(self, *_a: object) -> None:
        return None

    def folder_path(self, *_a: object) -> None:
        return None

    def image_options(self, _w: int, _h: int, default: object, _preview: object = None) -> object:
        return default

    def input_size(self, _reason: str, _default: object) -> None:
        return None  # headless: the error that follows says what is missing

    def import_report(self, model: object) -> object:
        print(model.report.text(), file=sys.stderr)  # type: ignore[attr-defined]
        return model.preprocessing  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
