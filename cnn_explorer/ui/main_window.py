"""The main window: composes the panels, menus, docks and status bar.

No computing here: panels talk to the document; this file wires files (open, save, export,
recent), undo/redo actions, the busy indicator and window-state persistence.
"""

from __future__ import annotations

import os

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QSettings, QSignalBlocker, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QTabWidget,
    QWidget,
)

from cnn_explorer import imageio
from cnn_explorer.explorer import presets
from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.project import SUFFIX, ProjectError, read_project, save_project
from cnn_explorer.explorer.specs import worked_example_layers
from cnn_explorer.ui.common.messages import ImageOptions, Reporter
from cnn_explorer.ui.explorer.explanation_panel import ExplanationPanel
from cnn_explorer.ui.explorer.feature_map_view import SCALE_MODES, FeatureMapView
from cnn_explorer.ui.explorer.grid_editor import GridEditor
from cnn_explorer.ui.explorer.kernel_editor import KernelEditor
from cnn_explorer.ui.explorer.layer_stack import LayerStack

PROJECT_FILTER = f"CNN Explorer project (*{SUFFIX})"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif)"
MAX_RECENT = 8
ASYNC_IMAGE_PIXELS = 2_000_000
"""Decode images with more source pixels than this off the GUI thread."""


class _ImageJobSignals(QObject):
    done = Signal(object, object)  # (path, array | ImageLoadError)


class _ImageJob(QRunnable):
    def __init__(self, path: str, opts: ImageOptions) -> None:
        super().__init__()
        self.path, self.opts = path, opts
        self.signals = _ImageJobSignals()

    def run(self) -> None:
        try:
            result: object = imageio.load_image(
                self.path, (self.opts.rows, self.opts.cols), self.opts.channels
            )
        except Exception as exc:
            result = exc
        self.signals.done.emit(self.path, result)


class MainWindow(QMainWindow):
    """CNN Explorer's window."""

    image_loaded = Signal(str)  # emitted after an image became the input (or failed: "")

    def __init__(self, doc: Document | None = None, *, restore_state: bool = True) -> None:
        super().__init__()
        self.doc = doc or Document(self)
        if self.doc.parent() is None:
            self.doc.setParent(self)
        self.reporter: Reporter = Reporter(self)
        self.current_path: str | None = None
        self.last_status = ""
        self.persist_settings = True  # headless runs (screenshots) leave QSettings alone
        self._image_pool = QThreadPool(self)
        self._image_pool.setMaxThreadCount(1)
        self._image_jobs: set[_ImageJob] = set()
        self.setObjectName("CNNExplorerMain")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self._build_panels()
        self._build_actions()
        self._build_status()
        self.doc.undo_stack.cleanChanged.connect(self._update_title)
        self.doc.busy_changed.connect(self._set_busy)
        self.doc.compute_failed.connect(lambda msg: self.show_status(msg, error=True))
        self.doc.changed.connect(self._on_changed)
        self._update_title()
        self.resize(1440, 900)
        if restore_state:
            self._restore_state()

    # ------------------------------------------------------------------ layout
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        return dock

    def _build_panels(self) -> None:
        self.maps = FeatureMapView(self.doc)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.maps, "Feature maps")
        self.training: QWidget | None = None
        self._training_placeholder = QLabel("Loading the training tab…")
        self.tabs.addTab(self._training_placeholder, "Training")
        self.tabs.currentChanged.connect(self._tab_changed)
        self._hidden_docks: list[QDockWidget] = []
        self.setCentralWidget(self.tabs)
        self.grid = GridEditor(self.doc)
        self.kernel = KernelEditor(self.doc)
        self.layers = LayerStack(self.doc)
        self.explanation = ExplanationPanel(self.doc)
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.grid_dock = self._dock("Input", self.grid, left, "inputDock")
        self.kernel_dock = self._dock("Kernel", self.kernel, left, "kernelDock")
        self.layers_dock = self._dock("Layers", self.layers, right, "layersDock")
        self.explain_dock = self._dock("Explanation", self.explanation, right, "explainDock")
        self.splitDockWidget(self.grid_dock, self.kernel_dock, Qt.Orientation.Vertical)
        self.splitDockWidget(self.layers_dock, self.explain_dock, Qt.Orientation.Vertical)
        self.resizeDocks([self.grid_dock, self.layers_dock], [350, 370], Qt.Orientation.Horizontal)
        self.resizeDocks([self.grid_dock, self.kernel_dock], [430, 420], Qt.Orientation.Vertical)
        self.resizeDocks([self.layers_dock, self.explain_dock], [520, 330], Qt.Orientation.Vertical)
        for combo in self.findChildren(QComboBox):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(5)
        for w in (self.grid, self.kernel, self.layers):
            w.message.connect(self.show_status)
        self.maps.hover_text.connect(lambda t: self.statusBar().showMessage(t, 4000))
        self.grid.image_requested.connect(self.open_image_dialog)

    def _act(
        self, menu: QMenu, text: str, slot: object, shortcut: object = None, tip: str = ""
    ) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            a.setShortcut(shortcut)  # type: ignore[arg-type]
        if tip:
            a.setStatusTip(tip)
        a.triggered.connect(slot)  # type: ignore[arg-type]
        menu.addAction(a)
        return a

    def _build_actions(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._act(f, "&New (worked example)", self.new_worked_example, QKeySequence.StandardKey.New)
        self._act(
            f,
            "&Open…",
            self.open_dialog,
            QKeySequence.StandardKey.Open,
            "Open a project or an image",
        )
        self._act(f, "Open &image…", self.open_image_dialog, "Ctrl+I")
        self.recent_menu = f.addMenu("Open &recent")
        f.addSeparator()
        self._act(f, "&Save", self.save, QKeySequence.StandardKey.Save)
        self._act(f, "Save &as…", self.save_as, QKeySequence.StandardKey.SaveAs)
        f.addSeparator()
        exp = f.addMenu("&Export selected map")
        for fmt in ("PNG", "CSV", "NPY"):
            self._act(
                exp, f"As {fmt}…", lambda _c=False, x=fmt: self.export_selected_dialog(x.lower())
            )
        self._act(f, "Export &all maps…", self.export_all_dialog)
        f.addSeparator()
        self._act(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        e = mb.addMenu("&Edit")
        undo = self.doc.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.doc.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        e.addAction(undo)
        e.addAction(redo)
        self.undo_action, self.redo_action = undo, redo

        v = mb.addMenu("&View")
        scale = v.addMenu("Colour &scale")
        for mode in SCALE_MODES:
            self._act(scale, mode, lambda _c=False, m=mode: self.maps.set_scale_mode(m))
        num = self._act(v, "&Numbers in cells", self.maps.numbers_check.setChecked)
        num.setCheckable(True)
        num.setChecked(True)
        v.addSeparator()
        for dock in (self.grid_dock, self.kernel_dock, self.layers_dock, self.explain_dock):
            v.addAction(dock.toggleViewAction())
        h = mb.addMenu("&Help")
        self._act(
            h,
            "&About",
            lambda: self.reporter.info(
                "About CNN Explorer",
                "CNN Explorer: edit an input and kernels, stack layers, and watch every feature "
                "map update. Click a cell to see its arithmetic and receptive field.",
            ),
        )
        self._rebuild_recent()

    def _build_status(self) -> None:
        self.busy_bar = QProgressBar()
        self.busy_bar.setRange(0, 0)
        self.busy_bar.setMaximumWidth(140)
        self.busy_bar.setVisible(False)
        self.busy_label = QLabel("Computing…")
        self.busy_label.setVisible(False)
        self.statusBar().addPermanentWidget(self.busy_label)
        self.statusBar().addPermanentWidget(self.busy_bar)
        self.statusBar().showMessage("Ready — click a feature-map cell to see its arithmetic.")

    # ------------------------------------------------------------------ training tab
    def show_training(self) -> QWidget:
        """Switch to the Training tab (created on first use: keeps start-up fast)."""
        self.tabs.setCurrentIndex(1)
        assert self.training is not None
        return self.training

    def _tab_changed(self, index: int) -> None:
        explorer_docks = [self.grid_dock, self.kernel_dock, self.layers_dock, self.explain_dock]
        if index == 1:
            self._ensure_training()
            self._hidden_docks = [d for d in explorer_docks if d.isVisible()]
            for d in self._hidden_docks:
                d.hide()
        else:
            for d in self._hidden_docks:
                d.show()
            self._hidden_docks = []

    def _ensure_training(self) -> None:
        if self.training is not None:
            return
        from cnn_explorer.ui.training.tab import TrainingTab

        tab = TrainingTab(explorer_layers=self._engine_layers())
        tab.open_in_explorer.connect(self.open_trained)
        tab.status_changed.connect(self.show_status)
        self.training = tab
        current = self.tabs.currentIndex()  # created from a project open: stay on the maps
        blocker = QSignalBlocker(self.tabs)
        self.tabs.removeTab(1)
        self.tabs.insertTab(1, tab, "Training")
        self.tabs.setCurrentIndex(current)
        del blocker
        self._training_placeholder.deleteLater()

    def _engine_layers(self) -> list[object] | None:
        """Engine copies of the explorer's valid layers (for "train the explorer's stack")."""
        from cnn_explorer.explorer.specs import build_layer

        out = []
        for spec, st in zip(self.doc.layers, self.doc.statuses, strict=False):
            if st.error:
                break
            out.append(build_layer(spec))
        return out or None

    def open_trained(self, layers: list[object], image: object) -> None:
        """Show a trained network's conv part on an image in the explorer (undoable)."""
        from cnn_explorer.explorer.specs import specs_from_engine

        specs, note = specs_from_engine(list(layers))
        try:
            self.doc.new_document(np.asarray(image, np.float32), specs, "Open trained network")
        except ValueError as exc:
            self.reporter.error("Cannot open in the explorer", str(exc))
            return
        self.tabs.setCurrentIndex(0)
        self.show_status("Opened the trained network" + (f" ({note})" if note else ""))

    # ------------------------------------------------------------------ status
    def show_status(self, text: str, error: bool = False) -> None:
        self.last_status = text
        self._status_style("color: #b00;" if error else "")
        self.statusBar().showMessage(text, 10000)

    def _status_style(self, sheet: str) -> None:
        """Set the status bar's style sheet only when it differs: even an unchanged
        ``setStyleSheet`` re-polishes the bar and its widgets (a relayout and repaint on
        every edit)."""
        bar = self.statusBar()
        if bar.styleSheet() != sheet:
            bar.setStyleSheet(sheet)

    def _set_busy(self, busy: bool) -> None:
        self.busy_bar.setVisible(busy)
        self.busy_label.setVisible(busy)

    def _on_changed(self, change: Change) -> None:
        if change.kind in ("input", "layer", "layers"):
            self._status_style("")
        structural = ("layer", "layers", "document", "input_shape")
        if self.training is not None and change.kind in structural:
            self.training.set_explorer_layers(self._engine_layers())  # type: ignore[attr-defined]

    def _update_title(self) -> None:
        name = os.path.basename(self.current_path) if self.current_path else "Worked example"
        self.setWindowTitle(f"{name}[*] — CNN Explorer")
        self.setWindowModified(not self.doc.undo_stack.isClean())

    # ------------------------------------------------------------------ files
    def open_dialog(self) -> None:
        path = self.reporter.open_path("Open", f"{PROJECT_FILTER};;{IMAGE_FILTER};;All files (*)")
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Open a project or an image, chosen by suffix (projects first for unknown)."""
        if path.lower().endswith(imageio.SUPPORTED_SUFFIXES):
            return self.load_image(path)
        return self.open_project(path)

    def open_project(self, path: str) -> bool:
        try:
            project = read_project(path)
        except (ProjectError, OSError) as exc:
            self.reporter.error("Cannot open project", str(exc))
            self.show_status(str(exc), error=True)
            return False
        self.doc.apply_document(project.input, project.layers)
        self.doc.undo_stack.clear()
        self.current_path = path
        self._add_recent(path)
        self._update_title()
        self.show_status(f"Opened {os.path.basename(path)}")
        if project.trained is not None:  # a project without one leaves the tab as it is
            self._ensure_training()
            self.training.restore_trained_state(  # type: ignore[attr-defined]
                project.trained, os.path.basename(path)
            )
        return True

    def save(self) -> bool:
        if not self.current_path:
            return self.save_as()
        return self.save_to(self.current_path)

    def save_as(self) -> bool:
        path = self.reporter.save_path(
            "Save project", PROJECT_FILTER, self.current_path or f"untitled{SUFFIX}"
        )
        if not path:
            return False
        if not path.lower().endswith(SUFFIX):
            path += SUFFIX
        return self.save_to(path)

    def save_to(self, path: str) -> bool:
        try:
            trained = None if self.training is None else self.training.trained_state()  # type: ignore[attr-defined]
            save_project(path, self.doc.input, self.doc.layers, trained)
        except (OSError, ValueError) as exc:  # ValueError: data that cannot be stored
            self.reporter.error("Cannot save", f"Could not write {path}: {exc}")
            return False
        self.current_path = path
        self.doc.undo_stack.setClean()
        self._add_recent(path)
        self._update_title()
        self.show_status(f"Saved {os.path.basename(path)}")
        return True

    def new_worked_example(self) -> None:
        self.doc.new_document(
            presets.WORKED_EXAMPLE[None], worked_example_layers(), "New worked example"
        )

    # ------------------------------------------------------------------ images
    def open_image_dialog(self) -> None:
        path = self.reporter.open_path("Open image", f"{IMAGE_FILTER};;All files (*)")
        if path:
            self.load_image(path)

    def load_image(self, path: str, options: ImageOptions | None = None) -> bool:
        """Load an image as the input. Returns False on an immediate error (reported).

        Big sources decode on a worker thread; :attr:`image_loaded` fires when done.
        """
        try:
            w, h = imageio.image_size(path)
        except imageio.ImageLoadError as exc:
            return self._image_failed(str(exc))
        if options is None:
            scale = min(1.0, 64 / max(w, h))
            default = ImageOptions(
                max(1, round(h * scale)), max(1, round(w * scale)), self.doc.input.shape[0]
            )
            options = self.reporter.image_options(w, h, default)
            if options is None:
                return False
        if w * h > imageio.MAX_SOURCE_PIXELS:
            return self._image_failed(
                f"{os.path.basename(path)} is {w}×{h} pixels — too large to open "
                f"(limit {imageio.MAX_SOURCE_PIXELS // 1_000_000} megapixels)."
            )
        if w * h <= ASYNC_IMAGE_PIXELS:
            try:
                arr = imageio.load_image(path, (options.rows, options.cols), options.channels)
            except imageio.ImageLoadError as exc:
                return self._image_failed(str(exc))
            self._image_ready(path, arr)
            return True
        job = _ImageJob(path, options)
        job.signals.done.connect(lambda p, r, j=job: self._image_job_done(j, p, r))
        self._image_jobs.add(job)
        self._set_busy(True)
        self.show_status(f"Decoding {os.path.basename(path)} ({w}×{h})…")
        self._image_pool.start(job)
        return True

    def _image_job_done(self, job: _ImageJob, path: str, result: object) -> None:
        self._image_jobs.discard(job)
        self._set_busy(self.doc.busy)
        if isinstance(result, Exception):
            self._image_failed(str(result))
        else:
            self._image_ready(path, result)  # type: ignore[arg-type]

    def _image_ready(self, path: str, arr: np.ndarray) -> None:
        self.doc.set_input(arr, f"Load image {os.path.basename(path)}")
        self._add_recent(path)
        self.show_status(
            f"Loaded {os.path.basename(path)} as {arr.shape[1]}×{arr.shape[2]}×{arr.shape[0]}"
        )
        self.image_loaded.emit(path)

    def _image_failed(self, text: str) -> bool:
        self.reporter.error("Cannot load image", text + "\nThe current input is unchanged.")
        self.show_status(text, error=True)
        self.image_loaded.emit("")
        return False

    # ------------------------------------------------------------------ export
    def _selected_map(self) -> tuple[int, int]:
        sel = self.doc.selection
        if sel is None:
            return len(self.doc.results.maps) - 1, 0
        return sel.map_index, sel.channel

    def export_selected_dialog(self, fmt: str) -> None:
        m, c = self._selected_map()
        path = self.reporter.save_path(
            f"Export map {m} channel {c}", f"{fmt.upper()} (*.{fmt})", f"map{m}_ch{c}.{fmt}"
        )
        if path:
            self.export_map(path, m, c)

    def export_map(self, path: str, map_index: int, channel: int) -> bool:
        """Write one map as PNG (colour-mapped, upscaled), CSV or .npy (by suffix)."""
        a = self.doc.results.maps[map_index][channel]
        try:
            ext = os.path.splitext(path)[1].lower()
            if ext == ".csv":
                np.savetxt(path, a, delimiter=",", fmt="%.9g")
            elif ext == ".npy":
                np.save(path, a, allow_pickle=False)
            else:
                rgb = self.maps.export_image(map_index, channel)
                k = max(1, 256 // max(rgb.shape[:2]))
                imageio.save_png(np.kron(rgb, np.ones((k, k, 1), np.uint8)), path)
        except (OSError, IndexError, ValueError) as exc:
            self.reporter.error("Export failed", str(exc))
            return False
        self.show_status(f"Exported {os.path.basename(path)}")
        return True

    def export_all_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export all maps to folder")
        if folder:
            self.export_all(folder)

    def export_all(self, folder: str) -> int:
        """PNG + CSV per channel and one ``maps.npz``; returns the number of maps written."""
        n = 0
        arrays = {}
        for m, x in enumerate(self.doc.results.maps):
            for c in range(x.shape[0]):
                base = os.path.join(folder, f"map{m}_ch{c}")
                if not (
                    self.export_map(base + ".png", m, c) and self.export_map(base + ".csv", m, c)
                ):
                    return n
                n += 1
            arrays[f"map{m}"] = x
        np.savez(os.path.join(folder, "maps.npz"), allow_pickle=False, **arrays)
        self.show_status(f"Exported {n} maps to {folder}")
        return n

    # ------------------------------------------------------------------ recent / settings
    def _recent(self) -> list[str]:
        v = QSettings().value("recentFiles", [])
        if isinstance(v, str):
            v = [v]
        return [str(p) for p in (v or [])]

    def _add_recent(self, path: str) -> None:
        if not self.persist_settings:
            return
        path = os.path.abspath(path)
        items = [p for p in self._recent() if p != path]
        QSettings().setValue("recentFiles", [path, *items][:MAX_RECENT])
        self._rebuild_recent()

    def _rebuild_recent(self) -> None:
        self.recent_menu.clear()
        items = self._recent()
        for p in items:
            self.recent_menu.addAction(
                os.path.basename(p), lambda path=p: self.open_path(path)
            ).setToolTip(p)
        self.recent_menu.setEnabled(bool(items))

    def _restore_state(self) -> None:
        s = QSettings()
        geo = s.value("window/geometry")
        state = s.value("window/state")
        if geo is not None:
            self.restoreGeometry(geo)  # type: ignore[arg-type]
        if state is not None:
            self.restoreState(state)  # type: ignore[arg-type]
        mode = s.value("view/scale")
        if isinstance(mode, str):
            self.maps.set_scale_mode(mode)

    def save_window_state(self) -> None:
        if not self.persist_settings:
            return
        s = QSettings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        s.setValue("view/scale", self.maps.scale_mode)

    # ------------------------------------------------------------------ events
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                event.acceptProposedAction()
                return

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.doc.undo_stack.isClean():
            answer = self.reporter.ask_save_changes()
            if answer == "cancel" or (answer == "save" and not self.save()):
                event.ignore()
                return
        self.tabs.setCurrentIndex(0)  # docks back before their state is saved
        self.save_window_state()
        if self.training is not None:
            self.training.shutdown()  # type: ignore[attr-defined]
        self.doc.shutdown()
        self._image_pool.clear()
        self._image_pool.waitForDone(10_000)
        event.accept()
