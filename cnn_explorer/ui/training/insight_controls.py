"""The Insight panel's settings column: which method, which image, which layer, which
class or filter, and each method's options (only the rows the chosen method uses are
shown). :meth:`InsightControls.request` turns them into a plain
:class:`~cnn_explorer.insight.jobs.Request`.

Widgets only; the layers offered are the conv outputs the "Try an image" panel shows
(each conv after its activation, :func:`~.prediction_panel.feature_layers`).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QSpinBox,
    QWidget,
)

from cnn_explorer.insight.jobs import (
    CLASS_ONLY,
    FILTER_ONLY,
    MAXIMIZE,
    METHODS,
    NEEDS_IMAGE,
    SMOOTHGRAD,
    Request,
)
from cnn_explorer.insight.maximize import MAX_STEPS, MaximizeSettings
from cnn_explorer.insight.patches import MAX_TOP
from cnn_explorer.insight.saliency import MAX_SAMPLES
from cnn_explorer.training.settings import MAX_SEED
from cnn_explorer.ui.training.controls import set_item_enabled
from cnn_explorer.ui.training.prediction_panel import feature_layers

PREDICTED = -1
"""Target combo data: the class the network predicts for the image."""
FILTER = -2
"""Target combo data: a filter of the chosen layer."""
MODES = (("abs", "|gradient| (max over channels)"), ("signed", "signed gradient"))
MODES_X = (("grad_x_input", "gradient × input"),)
VALIDATION, ALL_IMAGES = "validation", "all"
"""Scan combo data: which images top patches and dead units scan."""


def _double(lo: float, hi: float, value: float, step: float, decimals: int = 3) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setValue(value)
    return box


def _int(lo: int, hi: int, value: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(lo, hi)
    box.setValue(value)
    return box


class InsightControls(QWidget):
    """Method, image, layer, target and options. ``changed`` fires on any edit."""

    changed = Signal()
    image_changed = Signal(int)

    # Long because it declares each of the seventeen settings with its range and tooltip, in
    # the order the form shows them; helpers would only move the list elsewhere.
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.method = QComboBox()
        for key, name in METHODS.items():
            self.method.addItem(name, key)
        self.method.setToolTip("What to compute about the trained network")
        self.image = _int(0, 0, 0)
        self.image.setPrefix("validation image #")
        self.image.setToolTip("The image to explain (the validation images of the dataset)")
        self.layer = QComboBox()
        self.layer.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.layer.setMinimumContentsLength(16)
        self.layer.setToolTip(
            "A conv layer (after its activation): Grad-CAM's layer, or the filter's"
        )
        self.target = QComboBox()
        self.target.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.target.setMinimumContentsLength(16)
        self.target.setToolTip(
            "A class score, or a filter of the chosen layer (its mean activation)"
        )
        self.filter = _int(0, 0, 0)
        self.filter.setToolTip("Which filter (channel) of the chosen layer")
        self.mode = QComboBox()
        for key, text in (*MODES, *MODES_X):
            self.mode.addItem(text, key)
        self.mode.setToolTip("How the input gradient becomes one heatmap")
        self.samples = _int(1, MAX_SAMPLES, 25)
        self.samples.setToolTip("Noisy copies SmoothGrad averages")
        self.sigma = _double(0.0, 1.0, 0.15, 0.05)
        self.sigma.setToolTip("Noise level as a fraction of the image's value range")
        self.steps = _int(1, MAX_STEPS, 200)
        self.steps.setToolTip("Gradient-ascent steps")
        self.jitter = _int(0, 8, 1)
        self.jitter.setToolTip("Random shift (pixels) before each step: avoids pixel tricks")
        self.blur = _double(0.0, 3.0, 0.5, 0.1, 2)
        self.blur.setToolTip("Gaussian blur (pixels) every 4 steps: avoids speckle")
        self.l2 = _double(0.0, 1.0, 0.01, 0.01)
        self.l2.setToolTip("Pull towards mid-grey (L2)")
        self.tv = _double(0.0, 1.0, 0.05, 0.01)
        self.tv.setToolTip("Total-variation penalty: smoother images")
        self.seed = _int(0, MAX_SEED, 0)
        self.seed.setToolTip("Same seed, same settings: the same result")
        self.one_cell = QCheckBox("one cell:")
        self.one_cell.setToolTip("Explain one cell of the filter's map instead of its mean")
        self.row, self.col = _int(0, 0, 0), _int(0, 0, 0)
        self.row.setPrefix("row ")
        self.col.setPrefix("col ")
        self.row.setToolTip("Row of the cell in the layer's map")
        self.col.setToolTip("Column of the cell in the layer's map")
        self.cell = QWidget()
        cell_row = QHBoxLayout(self.cell)
        cell_row.setContentsMargins(0, 0, 0, 0)
        for w in (self.one_cell, self.row, self.col):
            cell_row.addWidget(w)
        self.scan = QComboBox()
        self.scan.addItem("validation images", VALIDATION)
        self.scan.addItem("all loaded images", ALL_IMAGES)
        self.scan.setToolTip(
            "The images top patches and dead units scan: the validation part of the "
            "dataset, or every loaded image (training and validation)"
        )
        self.k = _int(1, MAX_TOP, 9)
        self.k.setToolTip("How many of the most exciting images to show")
        self.form = QFormLayout(self)
        rows = (
            ("Method", self.method),
            ("Image", self.image),
            ("Layer", self.layer),
            ("Explain", self.target),
            ("Filter", self.filter),
            ("Cell", self.cell),
            ("Heatmap", self.mode),
            ("Samples", self.samples),
            ("Noise", self.sigma),
            ("Steps", self.steps),
            ("Jitter", self.jitter),
            ("Blur σ", self.blur),
            ("L2", self.l2),
            ("TV", self.tv),
            ("Scan", self.scan),
            ("Top k", self.k),
            ("Seed", self.seed),
        )
        for label, widget in rows:
            self.form.addRow(label, widget)
        for combo in (self.method, self.layer, self.target, self.mode):
            combo.currentIndexChanged.connect(lambda _: self._update())
        self.one_cell.toggled.connect(lambda _: self._update())
        self.image.valueChanged.connect(self.image_changed)
        self._class_names: list[str] = []
        self._shapes: dict[int, tuple[int, ...]] = {}
        self._update()

    # -- what the network offers ----------------------------------------------------------
    def set_network(
        self, layers: list[Any], shapes: list[tuple[int, ...]], classes: list[str]
    ) -> None:
        """Offer the conv outputs of ``layers`` (``shapes`` every map's per-image shape,
        input first) and the classes; keep the current choices where they still exist."""
        old_layer, old_target = self.layer.currentData(), self.target.currentData()
        self.layer.blockSignals(True)
        self.target.blockSignals(True)
        self.layer.clear()
        self._shapes = {}
        for i in feature_layers(layers):
            shape = shapes[i + 1]
            self._shapes[i] = tuple(int(v) for v in shape)
            act = layers[i].kind == "activation"
            what = f"{layers[i - 1].label()} + {layers[i].describe()}" if act else layers[i].label()
            self.layer.addItem(f"{i + 1}: {what} → {'×'.join(map(str, shape))}", i)
        self._class_names = list(classes)
        self.target.clear()
        self.target.addItem("the predicted class", PREDICTED)
        for k, name in enumerate(classes):
            self.target.addItem(f"class “{name}”", k)
        self.target.addItem("a filter of the layer", FILTER)
        for combo, old in ((self.layer, old_layer), (self.target, old_target)):
            at = combo.findData(old)
            combo.setCurrentIndex(
                at if at >= 0 else (combo.count() - 1 if combo is self.layer else 0)
            )
        self.layer.blockSignals(False)
        self.target.blockSignals(False)
        self._update()

    def set_image_count(self, n: int, loaded: int | None = None) -> None:
        """``n`` validation images; ``loaded`` images in the whole dataset (the scan
        choices say both counts)."""
        self.image.setRange(0, max(0, n - 1))
        self.scan.setItemText(0, f"validation images ({n})")
        self.scan.setItemText(1, f"all loaded images ({n if loaded is None else loaded})")

    def scan_key(self) -> str:
        """:data:`VALIDATION` or :data:`ALL_IMAGES`."""
        return str(self.scan.currentData())

    # -- reading ----------------------------------------------------------------------------
    def method_key(self) -> str:
        return str(self.method.currentData())

    def request(self, predicted: int, value_range: tuple[float, float] = (0.0, 1.0)) -> Request:
        """The settings as a :class:`Request`; ``predicted`` is the network's class for the
        current image (used for "the predicted class"), ``value_range`` the range
        activation maximisation synthesises in (the dataset's)."""
        target = self.target.currentData()
        klass = predicted if target == PREDICTED else (None if target == FILTER else int(target))
        layer = self.layer.currentData()
        settings = MaximizeSettings(
            steps=self.steps.value(),
            jitter=self.jitter.value(),
            blur_sigma=self.blur.value(),
            blur_every=4 if self.blur.value() > 0 else 0,
            l2=self.l2.value(),
            tv=self.tv.value(),
            seed=self.seed.value(),
            preview_every=max(1, min(10, self.steps.value() // 10 or 1)),
            value_range=value_range,
        )
        cell = (self.row.value(), self.col.value()) if self.one_cell.isChecked() else None
        return Request(
            self.method_key(),
            -1 if layer is None else int(layer),
            klass,
            self.filter.value(),
            str(self.mode.currentData()),
            self.samples.value(),
            self.sigma.value(),
            self.seed.value(),
            self.k.value(),
            settings,
            cell,
        )

    def choose_cell_at(self, row: float, col: float) -> tuple[int, int] | None:
        """A click on the image at fractions ``(row, col)`` of its height and width picks
        the cell of the chosen layer's map under it (the map covers the image evenly: same
        padding, 2×2 pools) as the target: a filter of the layer, one cell. None (nothing
        changed) when the method takes no cell or no layer is chosen."""
        m = self.method_key()
        shape = self._shapes.get(self.layer.currentData())
        if m in CLASS_ONLY or m in FILTER_ONLY or shape is None or len(shape) != 3:
            return None
        cell = (min(shape[1] - 1, int(row * shape[1])), min(shape[2] - 1, int(col * shape[2])))
        self.target.setCurrentIndex(self.target.findData(FILTER))
        self.one_cell.setChecked(True)
        self._update()
        self.row.setValue(cell[0])
        self.col.setValue(cell[1])
        return cell

    # -- showing only what the method uses ----------------------------------------------------
    def _update(self) -> None:
        m = self.method_key()
        on_filter = m in FILTER_ONLY or (
            m not in CLASS_ONLY and self.target.currentData() == FILTER
        )
        self._set_target_choices(m)
        shape = self._shapes.get(self.layer.currentData(), (1, 1, 1))
        self.filter.setRange(0, max(0, shape[0] - 1))
        self.row.setRange(0, max(0, shape[1] - 1))
        self.col.setRange(0, max(0, shape[2] - 1))
        self.row.setEnabled(self.one_cell.isChecked())
        self.col.setEnabled(self.one_cell.isChecked())
        saliency = m in ("saliency", SMOOTHGRAD)
        visible = {
            self.image: m in NEEDS_IMAGE,
            self.layer: m in (*CLASS_ONLY, *FILTER_ONLY) or on_filter,
            self.target: m not in FILTER_ONLY,
            self.filter: on_filter,
            self.cell: on_filter and m not in FILTER_ONLY,
            self.mode: saliency,
            self.samples: m == SMOOTHGRAD,
            self.sigma: m == SMOOTHGRAD,
            self.steps: m == MAXIMIZE,
            self.jitter: m == MAXIMIZE,
            self.blur: m == MAXIMIZE,
            self.l2: m == MAXIMIZE,
            self.tv: m == MAXIMIZE,
            self.scan: m in FILTER_ONLY,
            self.k: m == "patches",
            self.seed: m in (SMOOTHGRAD, MAXIMIZE),
        }
        for widget, on in visible.items():
            self.form.setRowVisible(widget, on)
        self.changed.emit()

    def _set_target_choices(self, method: str) -> None:
        """Grad-CAM explains a class only: the filter entry is greyed out there."""
        set_item_enabled(self.target, FILTER, method not in CLASS_ONLY)  # type: ignore[arg-type]


__all__ = ["ALL_IMAGES", "FILTER", "PREDICTED", "VALIDATION", "InsightControls"]
