"""The Model tab: an imported model explored on the user's picture.

Left, the layer navigator; in the middle, the selected node's maps (or bars); right, the
input picture with the selected cell's receptive field, the cell's arithmetic, and the
top-k classes. Everything reads the :class:`GraphDocument`; gestures go back to it as
intents (select a node, select a cell, a new picture) and its signals repaint the views.
"""

from __future__ import annotations

import html
from dataclasses import replace
from typing import Any

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer.graph_document import GraphDocument
from cnn_explorer.explorer.graph_view_model import (
    INPUT,
    GraphCell,
    display_maps,
    tensor_index,
)
from cnn_explorer.interchange.model import ImportedModel
from cnn_explorer.ui.common import colors
from cnn_explorer.ui.common.messages import Reporter
from cnn_explorer.ui.model.filters_view import FiltersView
from cnn_explorer.ui.model.input_view import InputPicture
from cnn_explorer.ui.model.insight_panel import ModelInsightPanel
from cnn_explorer.ui.model.loader import MODEL_FILTER, ModelLoader
from cnn_explorer.ui.model.map_grid import MapGrid
from cnn_explorer.ui.model.navigator import NodeNavigator, shape_text

TOP_K = 5
EMPTY = (
    "<h2>Explore your own model</h2><p>Open a model file — {kinds} — with "
    "<b>File ▸ Open model…</b>, the button above, or drop it on the window.</p>"
    "<p>You will see what the import did, choose how pictures are fed to it, and then every "
    "layer's maps, the arithmetic and receptive field of any cell, and the top classes.</p>"
)


class ModelTab(QWidget):
    """The whole Model tab."""

    status_changed = Signal(str, bool)
    busy_changed = Signal(bool)
    edits_changed = Signal()  # has_unsaved_edits changed (the window's title follows)

    def __init__(self, reporter: Reporter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = GraphDocument(self)
        self.loader = ModelLoader(reporter, self)
        self._unsaved = False
        self.explanation_text = ""
        self._user_sized = False
        self._build()
        self._connect()

    # ------------------------------------------------------------------ building
    def _build(self) -> None:
        self.open_button = QPushButton("Open model…")
        self.image_button = QPushButton("Load image…")
        self.report_button = QPushButton("Import report…")
        self.title = QLabel("No model")
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setVisible(False)
        bar = QHBoxLayout()
        for w in (self.open_button, self.image_button, self.report_button):
            bar.addWidget(w)
        bar.addWidget(self.title, 1)
        bar.addWidget(self.busy)

        self.navigator = NodeNavigator()
        self.header = QLabel("")
        self.header.setWordWrap(True)
        self.grid = MapGrid()
        centre = QWidget()
        cl = QVBoxLayout(centre)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.addWidget(self.header)
        cl.addWidget(self.grid, 1)
        self.filters = FiltersView()
        cl.addWidget(self.filters)

        self.picture = InputPicture()
        self.explanation = QTextBrowser()
        self.explanation.setObjectName("modelExplanation")
        self.top = QTableWidget(0, 2)
        self.top.setHorizontalHeaderLabels(["Class", "Probability"])
        self.top.verticalHeader().setVisible(False)
        self.top.horizontalHeader().setStretchLastSection(True)
        self.top.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.top_title = QLabel("<b>Top classes</b>")
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.picture)
        right.addWidget(self.explanation)
        topbox = QWidget()
        tl = QVBoxLayout(topbox)
        tl.setContentsMargins(0, 0, 0, 0)
        tl.addWidget(self.top_title)
        tl.addWidget(self.top)
        right.addWidget(topbox)
        rows = self.top.verticalHeader().defaultSectionSize()
        self.top.setMinimumHeight(
            self.top.horizontalHeader().sizeHint().height() + TOP_K * rows + 6
        )
        right.setStretchFactor(1, 1)
        right.setSizes([320, 200, 230])

        self.split = QSplitter()
        self.split.addWidget(self.navigator)
        self.insight = ModelInsightPanel(self.doc)
        self.centre_tabs = QTabWidget()
        self.centre_tabs.addTab(centre, "Maps")
        self.centre_tabs.addTab(self.insight, "Insight")
        self.centre_tabs.setTabToolTip(1, "Grad-CAM and saliency of any class on your picture")
        self.split.addWidget(self.centre_tabs)
        self.split.addWidget(right)
        self.split.setStretchFactor(1, 1)
        self.split.splitterMoved.connect(lambda *_: setattr(self, "_user_sized", True))

        kinds = MODEL_FILTER[MODEL_FILTER.find("(") + 1 : -1].replace("*", "")
        self.empty = QLabel(EMPTY.format(kinds=html.escape(kinds)))
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.pages = QStackedWidget()
        self.pages.addWidget(self.empty)
        self.pages.addWidget(self.split)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(bar)
        lay.addWidget(self.pages, 1)
        self._enable()

    def _connect(self) -> None:
        self.open_button.clicked.connect(self.loader.open_dialog)
        self.image_button.clicked.connect(self._image_dialog)
        self.report_button.clicked.connect(self.show_report)
        self.loader.opened.connect(self.set_model)
        self.loader.image_ready.connect(self.doc.set_image)
        self.loader.status.connect(self.status_changed)
        self.loader.busy_changed.connect(self._busy)
        self.doc.busy_changed.connect(self._busy)
        self.doc.failed.connect(lambda text: self.status_changed.emit(text, True))
        self.doc.model_changed.connect(self._model_changed)
        self.doc.input_changed.connect(self._input_changed)
        self.doc.tensors_ready.connect(self._tensors_ready)
        self.doc.node_selected.connect(self._show_node)
        self.doc.cell_selected.connect(self._show_cell)
        self.navigator.node_clicked.connect(self.doc.select_node)
        self.grid.cell_clicked.connect(self._grid_clicked)
        self.grid.hovered.connect(self._hovered)
        self.filters.filter_clicked.connect(self._filter_clicked)

    def resizeEvent(self, event: Any) -> None:
        """Keep the three columns in proportion to the window until the user drags a
        splitter handle (the splitter alone would give all new width to the maps)."""
        super().resizeEvent(event)
        if not self._user_sized:
            w = self.width() - 12
            side = max(280, int(0.23 * w))
            right = max(320, int(0.25 * w))
            self.split.setSizes([side, max(200, w - side - right), right])

    # ------------------------------------------------------------------ public
    def open_model(self, path: str) -> bool:
        """Import a model file (in the background); False when refused at once."""
        return self.loader.load(path)

    def set_model(self, model: ImportedModel) -> None:
        """Show ``model`` (imported, or from a project): nothing of it is unsaved yet."""
        self.doc.set_model(model)
        self._set_unsaved(False)

    @property
    def has_unsaved_edits(self) -> bool:
        """True after the preprocessing was changed in "Import report…" and the project
        was not saved since (the project file holds the model with its preprocessing)."""
        return self._unsaved

    def mark_saved(self) -> None:
        """The project (with this model) was just saved."""
        self._set_unsaved(False)

    def _set_unsaved(self, unsaved: bool) -> None:
        if unsaved != self._unsaved:
            self._unsaved = unsaved
            self.edits_changed.emit()

    def load_image(self, path: str) -> bool:
        """Decode a picture for the open model (False: no model is open)."""
        if self.doc.view is None:
            return False
        return self.loader.load_image(path, self.doc.view.preprocessing)

    def imported_model(self) -> ImportedModel | None:
        """The open model with the preprocessing in use (None: no model)."""
        vm = self.doc.view
        if vm is None or not isinstance(vm.model, ImportedModel):
            return None
        return replace(vm.model, preprocessing=vm.preprocessing)

    def wait(self, msecs: int = 60_000) -> None:
        """Finish the running import, decode and forward pass (screenshots, tests)."""
        self.loader.wait(msecs)
        self.doc.wait(msecs)

    def shutdown(self) -> None:
        self.insight.shutdown()
        self.loader.shutdown()
        self.doc.shutdown()

    def show_report(self) -> None:
        """Show the import report again; a changed preprocessing applies at once."""
        model = self.imported_model()
        if model is None:
            return
        pre = self.loader.reporter.import_report(model)
        if pre is not None and pre != model.preprocessing:
            try:
                self.doc.set_preprocessing(pre)
            except ValueError as exc:
                self.loader.reporter.error("Cannot use this preprocessing", str(exc))
                return
            self._set_unsaved(True)

    # ------------------------------------------------------------------ reactions
    def _image_dialog(self) -> None:
        if self.doc.view is not None:
            self.loader.image_dialog(self.doc.view.preprocessing)

    @property
    def is_busy(self) -> bool:
        """True while a model imports, a picture decodes or the maps are computed."""
        return self.loader.busy or self.doc.busy

    def _busy(self, _b: bool = False) -> None:
        self.busy.setVisible(self.is_busy)
        self.busy_changed.emit(self.is_busy)

    def _enable(self) -> None:
        has = self.doc.view is not None
        self.image_button.setEnabled(has)
        self.report_button.setEnabled(has)
        self.pages.setCurrentWidget(self.split if has else self.empty)

    def _model_changed(self) -> None:
        vm = self.doc.view
        assert vm is not None
        self._enable()
        g = vm.graph
        self.title.setText(
            f"<b>{html.escape(vm.model.source.name)}</b> — {len(g.nodes)} layers, "
            f"{g.param_count():,} parameters, input {shape_text(vm.input_shape)}"
        )
        self.navigator.set_rows(vm.nodes())
        self.navigator.select(vm.selected_node)
        self.explanation.setHtml("")
        self.top.setRowCount(0)

    def _input_changed(self) -> None:
        vm = self.doc.view
        assert vm is not None
        self.picture.show_picture(vm.pixels, vm.input_name)
        self.header.setText(f"<i>Computing the maps for {html.escape(vm.input_name)}…</i>")

    def _tensors_ready(self) -> None:
        vm = self.doc.view
        assert vm is not None
        self._show_node(vm.selected_node)
        self._show_cell(vm.selection)
        self._show_top()

    def _show_node(self, name: str) -> None:
        vm = self.doc.view
        if vm is None:
            return
        self.navigator.select(name)
        if vm.tensors is None:
            return
        a = vm.tensor(name)
        st = vm.stats(name)
        lo, hi = st.range()
        op = (
            "Input (after preprocessing)" if name == INPUT else vm.graph.node(name).layer.describe()
        )
        zeros = float(st.zeros.sum()) / max(1, a.size)
        self.header.setText(
            f"<b>{html.escape(name)}</b> — {html.escape(op)} — output {shape_text(a.shape)}"
            f"<br><span style='color:#444'>min {colors.fmt(lo)} · max {colors.fmt(hi)} · "
            f"mean {colors.fmt(float(st.sums.sum()) / max(1, a.size))} · zeros {zeros:.0%}"
            + (
                f" · <b style='color:#b00'>{int(st.nonfinite.sum())} NaN/inf</b>"
                if st.nonfinite.any()
                else ""
            )
            + "</span>"
        )
        maps = display_maps(a)
        if maps is not None:
            self.grid.show_maps(maps, name)
        else:
            self.grid.show_vector(a.reshape(-1), name)
        self.filters.show_node(vm.graph, name)

    def _filter_clicked(self, channel: int) -> None:
        """A filter of the selected conv: select its output channel's strongest cell (its
        arithmetic and receptive field) and zoom the maps onto that channel."""
        vm = self.doc.view
        if vm is None or vm.tensors is None or vm.tensor(vm.selected_node).ndim != 3:
            return
        a = np.nan_to_num(vm.tensor(vm.selected_node)[channel], nan=-np.inf)
        r, c = (int(v) for v in np.unravel_index(int(np.argmax(a)), a.shape))
        self.doc.select_cell(GraphCell(vm.selected_node, (channel, r, c)))
        if not self.grid.showing_bars:
            y, x = self.grid.tile_origin(channel)
            self.grid.vb.setRange(QRectF(x, y, a.shape[1], a.shape[0]), padding=0.05)

    def _hovered(self, where: tuple[int, ...]) -> None:
        """The value under the mouse and its channel's statistics, in the status bar."""
        vm = self.doc.view
        if vm is None or vm.tensors is None:
            return
        name = vm.selected_node
        a = vm.tensor(name)
        index = tensor_index(a.shape, not self.grid.showing_bars, where)
        text = f"{name}[{', '.join(map(str, index))}] = {colors.fmt(float(a[index]), 5)}"
        if len(index) == 3 and not self.grid.showing_bars:
            st, c = vm.stats(name), index[0]
            text += (
                f"   channel {c}: min {colors.fmt(float(st.mins[c]))}, max "
                f"{colors.fmt(float(st.maxs[c]))}, mean {colors.fmt(float(st.means[c]))}, "
                f"zeros {st.zeros[c] / max(1, st.n):.0%}"
            )
        self.status_changed.emit(text, False)

    def _grid_clicked(self, where: tuple[int, ...]) -> None:
        vm = self.doc.view
        if vm is None or vm.tensors is None:
            return
        shape = vm.shapes[vm.selected_node]
        index = tensor_index(shape, not self.grid.showing_bars, where)
        self.doc.select_cell(GraphCell(vm.selected_node, index))

    def _show_cell(self, cell: GraphCell | None) -> None:
        vm = self.doc.view
        if vm is None or vm.tensors is None:
            return
        if cell is None:
            self.grid.mark(None)
            self.picture.show_field(None)
            self.explanation_text = ""
            self.explanation.setHtml(
                "<p style='color:#666'>Click a cell of a map (or a bar) to see how it was "
                "computed and which part of the picture it sees.</p>"
            )
            return
        shape = vm.shapes[cell.tensor]
        maps = display_maps(vm.tensor(cell.tensor))
        self.grid.mark(
            (cell.index if len(shape) == 3 else (0, *cell.index))
            if maps is not None
            else (int(np.ravel_multi_index(cell.index, shape)),)
        )
        try:
            e = vm.explain(cell)
            text, value = e.text, e.result
        except Exception as exc:  # an explanation must never take the window down
            text, value = f"(no explanation: {exc})", float(vm.tensor(cell.tensor)[cell.index])
        self.explanation_text = text
        field = vm.receptive_field(cell)
        where = ", ".join(map(str, cell.index))
        parts = [
            f"<h3 style='margin:2px 0'>{html.escape(cell.tensor)}[{where}] = "
            f"{html.escape(colors.fmt(value, 6))}</h3>",
            "<p style='font-family: DejaVu Sans Mono, monospace; white-space: pre-wrap; "
            "background:#f4f4f8'>" + html.escape(text) + "</p>",
        ]
        caption = ""
        if field is not None:
            rows, cols = field.bounds(1), field.bounds(2)
            if field.is_everything():
                caption = "Receptive field: the whole picture."
            elif rows and cols:
                caption = (
                    f"Receptive field: rows {rows[0]}–{rows[1]}, columns {cols[0]}–{cols[1]} "
                    f"({rows[1] - rows[0] + 1}×{cols[1] - cols[0] + 1} pixels"
                    f", {field.index[0].size} of {field.shape[0]} channels)."
                )
        self.explanation.setHtml("".join(parts))
        self.picture.show_field(field, caption)

    def _show_top(self) -> None:
        vm = self.doc.view
        assert vm is not None
        top = vm.top_k(TOP_K)
        self.top_title.setVisible(top is not None)
        self.top.setVisible(top is not None)
        if top is None:
            return
        self.top.setRowCount(len(top))
        for r, t in enumerate(top):
            item = QTableWidgetItem(t.name)
            item.setData(Qt.ItemDataRole.UserRole, t.probability)
            self.top.setItem(r, 0, item)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setValue(round(t.probability * 1000))
            bar.setFormat(f"{t.probability:.1%}")
            bar.setToolTip(f"score {t.score:.4g}")
            self.top.setCellWidget(r, 1, bar)
        self.top.resizeColumnToContents(0)

    def top_rows(self) -> list[tuple[str, float]]:
        """The top-k list as shown: ``(class name, probability)`` per row."""
        items = [self.top.item(r, 0) for r in range(self.top.rowCount())]
        return [(i.text(), float(i.data(Qt.ItemDataRole.UserRole))) for i in items if i]
