"""The main window: composes the panels, menus, docks and status bar.

No computing and no file logic here: panels talk to the document; projects and recent
files live in :mod:`cnn_explorer.ui.files`, image loading in :mod:`cnn_explorer.ui.images`
and map export in :mod:`cnn_explorer.ui.export`. This file wires them to menus, the busy
indicator, the training tab and window-state persistence.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pyqtgraph.util.garbage_collector import GarbageCollector
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMenu,
    QProgressBar,
    QTabWidget,
    QWidget,
)

from cnn_explorer.explorer import presets
from cnn_explorer.explorer.document import Document
from cnn_explorer.explorer.model import Change
from cnn_explorer.explorer.specs import worked_example_layers
from cnn_explorer.limits import IMAGE_SUFFIXES
from cnn_explorer.ui import window_settings
from cnn_explorer.ui.common.messages import IMAGE_FILTER, ImageOptions, Reporter
from cnn_explorer.ui.explorer.compare_mode import CompareMode, undo_group
from cnn_explorer.ui.explorer.explanation_panel import ExplanationPanel
from cnn_explorer.ui.explorer.feature_map_view import SCALE_MODES, FeatureMapView
from cnn_explorer.ui.explorer.grid_editor import GridEditor
from cnn_explorer.ui.explorer.kernel_editor import KernelEditor
from cnn_explorer.ui.explorer.layer_stack import LayerStack
from cnn_explorer.ui.explorer.sliding_window_view import SlidingWindowView, with_animate_button
from cnn_explorer.ui.export import MapExporter
from cnn_explorer.ui.files import PROJECT_FILTER, ProjectFiles
from cnn_explorer.ui.images import ImageLoader
from cnn_explorer.ui.model.loader import MODEL_FILTER, is_model_file
from cnn_explorer.ui.model.tab import ModelTab
from cnn_explorer.ui.network_actions import NetworkActions
from cnn_explorer.ui.teaching import Teaching

KEEPS_HISTORY = "You can still go back to it afterwards with Edit ▸ Undo."


class MainWindow(QMainWindow):
    """CNN Explorer's window."""

    image_loaded = Signal(str)  # emitted after an image became the input (or failed: "")

    def __init__(self, doc: Document | None = None, *, restore_state: bool = True) -> None:
        super().__init__()
        # Python's cyclic garbage collector runs in whichever thread allocates; when a
        # worker (training, the recompute pool) collects a cycle holding Qt objects made
        # here, their destructors deadlock against the GUI thread. pyqtgraph's collector
        # turns automatic collection off and collects on a GUI-thread timer instead.
        self._collector = GarbageCollector(interval=1.0)
        self.doc = doc or Document(self)
        if self.doc.parent() is None:
            self.doc.setParent(self)
        self._reporter: Reporter = Reporter(self)
        self.last_status = ""
        self.setObjectName("CNNExplorerMain")
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self._build_panels()
        self.recent_menu = QMenu("Open &recent", self)
        self.files = ProjectFiles(self.doc, self._reporter, self.recent_menu, self)
        self.images = ImageLoader(self.doc, self._reporter, self)
        self.exporter = MapExporter(self.doc, self._reporter, self.maps.export_image, self)
        self.networks = NetworkActions(
            self._reporter,
            self.show_training,
            lambda: self.training,
            self.model_tab.imported_model,
            self,
        )
        self._build_actions()
        self._build_status()
        self._connect()
        self._update_title()
        self.resize(1440, 900)
        if restore_state:
            self._restore_state()
            self.teaching.restore()

    # ------------------------------------------------------------------ parts
    @property
    def reporter(self) -> Reporter:
        """How the window talks to the user; tests swap in a RecordingReporter."""
        return self._reporter

    @reporter.setter
    def reporter(self, reporter: Reporter) -> None:
        self._reporter = reporter
        parts = (self.files, self.images, self.exporter, self.model_tab.loader)
        for part in (*parts, self.networks):
            part.reporter = reporter

    @property
    def persist_settings(self) -> bool:
        """False for headless runs (screenshots): QSettings are left alone."""
        return self.files.persist_settings

    @persist_settings.setter
    def persist_settings(self, on: bool) -> None:
        self.files.persist_settings = on
        self.teaching.set_persist(on)

    @property
    def current_path(self) -> str | None:
        return self.files.current_path

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
        self.model_tab = ModelTab(self._reporter)
        self.tabs.addTab(self.model_tab, "Model")
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
        explained, self.animate_button = with_animate_button(self.explanation)
        self.explain_dock = self._dock("Explanation", explained, right, "explainDock")
        self.splitDockWidget(self.grid_dock, self.kernel_dock, Qt.Orientation.Vertical)
        self.splitDockWidget(self.layers_dock, self.explain_dock, Qt.Orientation.Vertical)
        self.resizeDocks([self.grid_dock, self.layers_dock], [350, 370], Qt.Orientation.Horizontal)
        self.resizeDocks([self.grid_dock, self.kernel_dock], [430, 420], Qt.Orientation.Vertical)
        self.resizeDocks([self.layers_dock, self.explain_dock], [520, 330], Qt.Orientation.Vertical)
        self.sliding = SlidingWindowView(self.doc)
        bottom = Qt.DockWidgetArea.BottomDockWidgetArea
        self.sliding_dock = self._dock("Sliding window", self.sliding, bottom, "slidingDock")
        self.sliding_dock.hide()
        self.animate_button.clicked.connect(self.show_sliding_window)
        for combo in self.findChildren(QComboBox):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(5)

    def _act(
        self, menu: QMenu, text: str, slot: Any, shortcut: Any = None, tip: str = ""
    ) -> QAction:
        a = QAction(text, self)
        if isinstance(shortcut, QKeySequence.StandardKey):
            a.setShortcuts(shortcut)  # every platform binding (Redo: Ctrl+Y and Ctrl+Shift+Z)
        elif shortcut is not None:
            a.setShortcut(shortcut)
        if tip:
            a.setStatusTip(tip)
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    # Long because it lists every menu entry in menu order, so the menus read top to bottom
    # as the user sees them (the parts that own a whole submenu add it themselves).
    def _build_actions(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._act(f, "&New (worked example)", self.new_worked_example, QKeySequence.StandardKey.New)
        self._act(
            f,
            "&Open…",
            self.open_dialog,
            QKeySequence.StandardKey.Open,
            "Open a project, an image or a model file",
        )
        self._act(f, "Open &image…", self.images.open_dialog, "Ctrl+I")
        self._act(
            f,
            "Open &model…",
            self.model_tab.loader.open_dialog,
            "Ctrl+M",
            "Import a trained model (ONNX, Keras, safetensors, .pt) to explore in the Model tab",
        )
        f.addMenu(self.recent_menu)
        f.addSeparator()
        self.networks.add_to(f)  # fine-tune the Model tab's model; export it or the trained one
        f.addSeparator()
        self._act(f, "&Save", self.files.save, QKeySequence.StandardKey.Save)
        self._act(f, "Save &as…", self.files.save_as, QKeySequence.StandardKey.SaveAs)
        f.addSeparator()
        exp = f.addMenu("&Export selected map")
        for fmt in ("png", "csv", "npy"):
            export = self.exporter.export_selected_dialog
            self._act(exp, f"As {fmt.upper()}…", lambda _c=False, x=fmt, e=export: e(x))
        self._act(f, "Export &all maps…", self.exporter.export_all_dialog)
        f.addSeparator()
        quit_action = self._act(f, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        if not quit_action.shortcuts():  # Linux desktops have no standard Quit key
            quit_action.setShortcut(QKeySequence("Ctrl+Q"))

        e = mb.addMenu("&Edit")
        self.undo_action = undo_group(self).createUndoAction(self, "&Undo")  # B's in compare
        self.undo_action.setShortcuts(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_group.createRedoAction(self, "&Redo")
        self.redo_action.setShortcuts(QKeySequence.StandardKey.Redo)
        e.addAction(self.undo_action)
        e.addAction(self.redo_action)

        v = mb.addMenu("&View")
        scale = v.addMenu("Colour &scale")
        for mode in SCALE_MODES:
            self._act(scale, mode, lambda _c=False, m=mode: self.maps.set_scale_mode(m))
        # The menu item and the view's check box mirror each other (toggling either one
        # moves the other; re-setting an unchanged check state emits nothing).
        self.numbers_action = self._act(v, "&Numbers in cells", self.maps.set_show_numbers)
        self.numbers_action.setCheckable(True)
        self.numbers_action.setChecked(self.maps.show_numbers)
        self.maps.numbers_changed.connect(self.numbers_action.setChecked)
        v.addSeparator()
        for dock in (self.grid_dock, self.kernel_dock, self.layers_dock, self.explain_dock):
            v.addAction(dock.toggleViewAction())
        sliding = self.sliding_dock.toggleViewAction()
        sliding.setShortcut(QKeySequence("Ctrl+Shift+A"))
        sliding.setStatusTip("Animate the selected conv or pool layer's sliding window")
        v.addAction(sliding)
        h = mb.addMenu("&Help")
        self._act(h, "&About", self._about)
        # The lesson dock, View ▸ Zoom, Help ▸ Lesson / Keyboard shortcuts / What is this?
        self.teaching = Teaching(self, v, h, KEEPS_HISTORY)
        self.compare = CompareMode.for_window(self, v)  # View ▸ Compare A | B; B − A

    def _about(self) -> None:
        self.reporter.info(
            "About CNN Explorer",
            "CNN Explorer: edit an input and kernels, stack layers, and watch every feature "
            "map update. Click a cell to see its arithmetic and receptive field.",
        )

    def show_sliding_window(self) -> None:
        """Open the sliding-window animation under the maps, tall enough to read."""
        self.tabs.setCurrentIndex(0)
        if not self.tabifiedDockWidgets(self.grid_dock):
            # the Input and Kernel docks stacked leave the animation too little height
            self.tabifyDockWidget(self.grid_dock, self.kernel_dock)
        self.sliding_dock.show()
        self.sliding_dock.raise_()
        tall = max(300, self.height() // 2)
        self.resizeDocks([self.sliding_dock], [tall], Qt.Orientation.Vertical)
        QTimer.singleShot(
            0, lambda: self.resizeDocks([self.sliding_dock], [tall], Qt.Orientation.Vertical)
        )
        self.sliding.canvas.setFocus()

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

    def _connect(self) -> None:
        for w in (self.grid, self.kernel, self.layers):
            w.message.connect(self.show_status)
        self.maps.hover_text.connect(lambda t: self.statusBar().showMessage(t, 4000))
        self.grid.image_requested.connect(self.images.open_dialog)
        self.grid.display_changed.connect(self.maps.set_image_display)  # one "Show" setting
        self.maps.set_image_display(self.grid.display)
        self.files.status.connect(self.show_status)
        self.files.name_changed.connect(self._update_title)
        self.files.open_requested.connect(self.open_path)
        self.files.trained_loaded.connect(self._restore_trained)
        self.files.trained_state = self._trained_state
        self.files.follow_model(self.model_tab)
        self.model_tab.edits_changed.connect(self._update_title)
        self.images.status.connect(self.show_status)
        self.exporter.status.connect(self.show_status)
        self.networks.status.connect(self.show_status)
        self.images.busy_changed.connect(self._update_busy)
        self.images.loaded.connect(self._image_loaded)
        self.model_tab.status_changed.connect(self.show_status)
        self.model_tab.busy_changed.connect(self._update_busy)
        self.model_tab.loader.opened.connect(self._model_opened)
        self.doc.undo_stack.cleanChanged.connect(self._update_title)
        self.doc.busy_changed.connect(self._update_busy)
        self.doc.compute_failed.connect(lambda msg: self.show_status(msg, error=True))
        self.doc.refused.connect(lambda msg: self.show_status(msg, error=True))
        self.doc.changed.connect(self._on_changed)

    # ------------------------------------------------------------------ training tab
    def show_training(self) -> QWidget:
        """Switch to the Training tab (created on first use: keeps start-up fast)."""
        self.tabs.setCurrentIndex(1)
        assert self.training is not None
        return self.training

    def _tab_changed(self, index: int) -> None:
        explorer_docks = [self.grid_dock, self.kernel_dock, self.layers_dock, self.explain_dock]
        explorer_docks += [self.teaching.dock, self.sliding_dock]
        if index == 1:
            self._ensure_training()
        if index != 0 and self.tabs.widget(index) is not self.compare.view:  # maps' docks
            self._hidden_docks = self._hidden_docks or [d for d in explorer_docks if d.isVisible()]
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

        tab = TrainingTab()
        tab.follow_explorer(self.doc, self._engine_layers)
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

    def open_in_training(self, imported: Any) -> bool:
        """Fine-tune an ImportedModel in the Training tab (see NetworkActions)."""
        return self.networks.open_in_training(imported)

    def _trained_state(self) -> Any:
        return None if self.training is None else self.training.trained_state()  # type: ignore[attr-defined]

    def _restore_trained(self, state: Any, name: str) -> None:
        self._ensure_training()
        self.training.restore_trained_state(state, name)  # type: ignore[union-attr]

    def open_trained(self, layers: list[object], image: object) -> None:
        """Show a trained network's conv part on an image in the explorer (undoable),
        after asking about unsaved work; the result is untitled."""
        from cnn_explorer.explorer.specs import specs_from_engine

        if not self.files.confirm("showing the trained network in the explorer", KEEPS_HISTORY):
            return
        specs, note = specs_from_engine(list(layers))
        try:
            self.doc.new_document(np.asarray(image, np.float32), specs, "Open trained network")
        except ValueError as exc:
            self.reporter.error("Cannot open in the explorer", str(exc))
            return
        self.files.forget_path("Trained network")
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

    def _update_busy(self) -> None:
        busy = self.doc.busy or self.images.busy or self.model_tab.is_busy
        self.busy_bar.setVisible(busy)
        self.busy_label.setVisible(busy)

    def _on_changed(self, change: Change) -> None:
        if change.kind in ("input", "layer", "layers"):
            self._status_style("")

    def _update_title(self) -> None:
        self.setWindowTitle(f"{self.files.name}[*] — CNN Explorer")
        self.setWindowModified(self.files.is_modified())

    # ------------------------------------------------------------------ files
    def open_dialog(self) -> None:
        filters = f"{PROJECT_FILTER};;{IMAGE_FILTER};;{MODEL_FILTER};;All files (*)"
        path = self.reporter.open_path("Open", filters)
        if path:
            self.open_path(path)

    def open_path(self, path: str) -> bool:
        """Open a project, an image or a model file, chosen by suffix (projects first for
        unknown). An image goes to the Model tab's model while that tab is shown."""
        if is_model_file(path):
            return self.model_tab.open_model(path)
        if path.lower().endswith(IMAGE_SUFFIXES):
            if self.tabs.currentWidget() is self.model_tab and self.model_tab.load_image(path):
                return True
            return self.images.load(path)
        return self.files.open_project(path)

    def show_model(self) -> ModelTab:
        """Switch to the Model tab."""
        self.tabs.setCurrentWidget(self.model_tab)
        return self.model_tab

    def _model_opened(self, _model: object) -> None:
        self.show_model()

    def open_project(self, path: str) -> bool:
        return self.files.open_project(path)

    def save_to(self, path: str) -> bool:
        return self.files.save_to(path)

    def new_worked_example(self) -> bool:
        return self.files.start_new(
            presets.WORKED_EXAMPLE[None], worked_example_layers(), "Worked example"
        )

    def load_image(self, path: str, options: ImageOptions | None = None) -> bool:
        """Load an image as the input (see :meth:`ImageLoader.load`)."""
        return self.images.load(path, options)

    def _image_loaded(self, path: str) -> None:
        if path:
            self.files.add_recent(path)
        self.image_loaded.emit(path)

    # ------------------------------------------------------------------ settings
    def _restore_state(self) -> None:
        window_settings.restore(self)

    def save_window_state(self) -> None:
        if self.persist_settings:
            window_settings.save(self)

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
        if not self.files.confirm("closing"):
            event.ignore()
            return
        self.tabs.setCurrentIndex(0)  # docks back before their state is saved
        self.save_window_state()
        if self.training is not None:
            self.training.shutdown()  # type: ignore[attr-defined]
        self.doc.shutdown()
        self.compare.shutdown()
        self.images.shutdown()
        self.model_tab.shutdown()
        self.networks.shutdown()
        event.accept()
