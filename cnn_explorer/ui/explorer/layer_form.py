"""The parameter form of the selected layer: one page per kind (conv, activation, pool).

Every range comes from :mod:`cnn_explorer.limits`, so the form offers exactly what a
project file may hold. The form only shows a spec and tells what the user changed
(:attr:`LayerForm.config_edited`, :attr:`LayerForm.kind_edited`); the layer stack turns
that into document intents.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from cnn_explorer.explorer.specs import ACTIVATIONS, LayerSpec
from cnn_explorer.limits import (
    MAX_DILATION,
    MAX_FILTERS,
    MAX_KERNEL,
    MAX_PADDING,
    MAX_POOL_PADDING,
    MAX_SLOPE,
    MAX_STRIDE,
    MIN_SLOPE,
    PADDING_MODES,
)
from cnn_explorer.ui.common import quiet


def _spin(lo: int, hi: int, tip: str) -> QSpinBox:
    sp = QSpinBox()
    sp.setRange(lo, hi)
    sp.setKeyboardTracking(False)
    sp.setToolTip(tip)
    return sp


def _pair(a: QWidget, b: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(a)
    row.addWidget(QLabel("×"))
    row.addWidget(b)
    return row


def _form(page: QWidget) -> QFormLayout:
    form = QFormLayout(page)
    form.setContentsMargins(0, 0, 0, 0)
    return form


class LayerForm(QGroupBox):
    """ "Parameters — layer N: …" with the fields of the shown layer's kind."""

    config_edited = Signal(dict)  # config fields the user changed, e.g. {"stride": [2, 2]}
    kind_edited = Signal(str)  # "maxpool" / "avgpool" chosen for a pool layer

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Parameters", parent)
        self._kind: str | None = None
        self.pages = QStackedWidget()
        self.empty_page = QLabel("Add a layer to start.")
        self.conv_page = self._build_conv()
        self.act_page = self._build_act()
        self.pool_page = self._build_pool()
        self.note_page = QLabel()
        """Batch norm and dropout (from a trained network): what they compute, read-only."""
        self.note_page.setWordWrap(True)
        self.note_page.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        pages = (self.empty_page, self.conv_page, self.act_page, self.pool_page, self.note_page)
        for page in pages:
            self.pages.addWidget(page)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.pages)

    def _edit(self, **changes: Any) -> None:
        self.config_edited.emit(changes)

    # ------------------------------------------------------------------ pages
    def _build_conv(self) -> QWidget:
        w = QWidget()
        form = _form(w)
        self.c_filters = _spin(1, MAX_FILTERS, "Number of filters (output channels)")
        self.c_kh = _spin(1, MAX_KERNEL, "Kernel height")
        self.c_kw = _spin(1, MAX_KERNEL, "Kernel width")
        self.c_sh = _spin(1, MAX_STRIDE, "Stride (rows)")
        self.c_sw = _spin(1, MAX_STRIDE, "Stride (columns)")
        self.c_dh = _spin(1, MAX_DILATION, "Dilation (rows)")
        self.c_dw = _spin(1, MAX_DILATION, "Dilation (columns)")
        self.c_pad_kind = QComboBox()
        self.c_pad_kind.addItems(["explicit", "valid", "same"])
        self.c_pad_kind.setToolTip("same: output size = input size (stride 1)")
        self.c_pad = _spin(0, MAX_PADDING, "Zero/reflect/... padding on every side")
        self.c_pad_mode = QComboBox()
        self.c_pad_mode.addItems(list(PADDING_MODES))
        self.c_pad_mode.setToolTip("What the padding holds: zeros, or copies of the edge cells")
        self.c_bias = QCheckBox("bias")
        self.c_bias.setToolTip("Add one learned number per filter to its output")
        self.c_flip = QCheckBox("true convolution (flip kernel)")
        self.c_flip.setToolTip("Off: cross-correlation like PyTorch. On: kernel rotated 180°.")
        form.addRow("Filters", self.c_filters)
        form.addRow("Kernel", _pair(self.c_kh, self.c_kw))
        form.addRow("Stride", _pair(self.c_sh, self.c_sw))
        pad_row = QHBoxLayout()
        for wdg in (self.c_pad_kind, self.c_pad, self.c_pad_mode):
            pad_row.addWidget(wdg)
        form.addRow("Padding", pad_row)
        form.addRow("Dilation", _pair(self.c_dh, self.c_dw))
        checks = QHBoxLayout()
        checks.addWidget(self.c_bias)
        checks.addWidget(self.c_flip)
        form.addRow(checks)
        self.c_filters.valueChanged.connect(lambda v: self._edit(filters=v))
        for key, a, b in (
            ("kernel", self.c_kh, self.c_kw),
            ("stride", self.c_sh, self.c_sw),
            ("dilation", self.c_dh, self.c_dw),
        ):
            for sp in (a, b):
                sp.valueChanged.connect(
                    lambda _v, k=key, a=a, b=b: self._edit(**{k: [a.value(), b.value()]})
                )
        self.c_pad_kind.currentTextChanged.connect(lambda _t: self._pad_changed())
        self.c_pad.valueChanged.connect(lambda _v: self._pad_changed())
        self.c_pad_mode.currentTextChanged.connect(lambda t: self._edit(padding_mode=t))
        self.c_bias.toggled.connect(lambda on: self._edit(bias=on))
        self.c_flip.toggled.connect(lambda on: self._edit(flip=on))
        return w

    def _build_act(self) -> QWidget:
        w = QWidget()
        form = _form(w)
        self.a_fn = QComboBox()
        for fn, label in ACTIVATIONS.items():
            self.a_fn.addItem(label, fn)
        self.a_fn.setToolTip("The function applied to every cell")
        self.a_slope = QDoubleSpinBox()
        self.a_slope.setRange(MIN_SLOPE, MAX_SLOPE)
        self.a_slope.setDecimals(3)
        self.a_slope.setSingleStep(0.01)
        self.a_slope.setKeyboardTracking(False)
        self.a_slope.setToolTip("Leaky ReLU slope for negative inputs")
        form.addRow("Function", self.a_fn)
        form.addRow("Negative slope", self.a_slope)
        self.a_fn.currentIndexChanged.connect(lambda _i: self._edit(fn=self.a_fn.currentData()))
        self.a_slope.valueChanged.connect(lambda v: self._edit(slope=round(float(v), 6)))
        return w

    def _build_pool(self) -> QWidget:
        w = QWidget()
        form = _form(w)
        self.p_kind = QComboBox()
        self.p_kind.addItem("Max", "maxpool")
        self.p_kind.addItem("Average", "avgpool")
        self.p_kind.setToolTip("Max keeps the largest value of each window, average their mean")
        self.p_kh = _spin(1, MAX_KERNEL, "Window height")
        self.p_kw = _spin(1, MAX_KERNEL, "Window width")
        self.p_sh = _spin(1, MAX_STRIDE, "Stride (rows)")
        self.p_sw = _spin(1, MAX_STRIDE, "Stride (columns)")
        self.p_pad = _spin(0, MAX_POOL_PADDING, "Padding (at most half the window)")
        form.addRow("Kind", self.p_kind)
        form.addRow("Pool size", _pair(self.p_kh, self.p_kw))
        form.addRow("Stride", _pair(self.p_sh, self.p_sw))
        form.addRow("Padding", self.p_pad)
        self.p_kind.currentIndexChanged.connect(lambda _i: self._pool_kind())
        for key, a, b in (("size", self.p_kh, self.p_kw), ("stride", self.p_sh, self.p_sw)):
            for sp in (a, b):
                sp.valueChanged.connect(
                    lambda _v, k=key, a=a, b=b: self._edit(**{k: [a.value(), b.value()]})
                )
        self.p_pad.valueChanged.connect(lambda v: self._edit(padding=v))
        return w

    def _pad_changed(self) -> None:
        kind = self.c_pad_kind.currentText()
        self.c_pad.setEnabled(kind == "explicit")
        self._edit(padding=self.c_pad.value() if kind == "explicit" else kind)

    def _pool_kind(self) -> None:
        kind = self.p_kind.currentData()
        if kind != self._kind:
            self.kind_edited.emit(kind)

    # ------------------------------------------------------------------ model → view
    def show_layer(self, index: int, spec: LayerSpec | None) -> None:
        """Show layer ``index`` (0-based) of kind ``spec.kind``; None: no layers."""
        if spec is None:
            self._kind = None
            self.pages.setCurrentWidget(self.empty_page)
            self.setTitle("Parameters")
            return
        self._kind = spec.kind
        self.setTitle(f"Parameters — layer {index + 1}: {spec.title}")
        widgets = [w for p in (self.conv_page, self.act_page, self.pool_page) for w in _kids(p)]
        blockers = [QSignalBlocker(w) for w in widgets]
        if spec.kind == "conv":
            self._show_conv(spec.config)
        elif spec.kind in ("batchnorm", "dropout"):
            self.note_page.setText(inference_note(spec))
            self.pages.setCurrentWidget(self.note_page)
        elif spec.kind == "act":
            c = spec.config
            self.pages.setCurrentWidget(self.act_page)
            self.a_fn.setCurrentIndex(max(0, self.a_fn.findData(c["fn"])))
            quiet.set_value(self.a_slope, float(c.get("slope", 0.01)))
            self.a_slope.setEnabled(c["fn"] == "leaky_relu")
        else:
            c = spec.config
            self.pages.setCurrentWidget(self.pool_page)
            self.p_kind.setCurrentIndex(0 if spec.kind == "maxpool" else 1)
            for sp, v in zip(
                (self.p_kh, self.p_kw, self.p_sh, self.p_sw),
                (*c["size"], *c["stride"]),
                strict=True,
            ):
                quiet.set_value(sp, v)
            quiet.set_value(self.p_pad, int(c["padding"]))
        del blockers

    def _show_conv(self, c: dict[str, Any]) -> None:
        self.pages.setCurrentWidget(self.conv_page)
        quiet.set_value(self.c_filters, c["filters"])
        spins = (self.c_kh, self.c_kw, self.c_sh, self.c_sw, self.c_dh, self.c_dw)
        for sp, v in zip(spins, (*c["kernel"], *c["stride"], *c["dilation"]), strict=True):
            quiet.set_value(sp, v)
        pad = c["padding"]
        self.c_pad_kind.setCurrentText(pad if isinstance(pad, str) else "explicit")
        self.c_pad.setEnabled(not isinstance(pad, str))
        quiet.set_value(self.c_pad, 0 if isinstance(pad, str) else int(pad))
        self.c_pad_mode.setCurrentText(c.get("padding_mode", "zeros"))
        self.c_bias.setChecked(bool(c.get("bias", True)))
        self.c_flip.setChecked(bool(c.get("flip", False)))


def inference_note(spec: LayerSpec) -> str:
    """What a batch norm or dropout layer computes in the explorer (inference), with its
    values: these layers come from a trained network and are shown, not edited."""
    c = spec.config
    if spec.kind == "dropout":
        return (
            f"Dropout (p = {c['p']:g}) is the identity here: every map passes through "
            "unchanged, as when a trained network is used. Only during training does it zero "
            f"each value with probability {c['p']:g} and scale the rest by 1/(1 − p)."
        )
    rows = "".join(
        f"<tr><td>{k}</td><td>{g:.4g}</td><td>{b:.4g}</td><td>{m:.4g}</td><td>{v:.4g}</td></tr>"
        for k, (g, b, m, v) in enumerate(
            zip(c["gamma"], c["beta"], c["mean"], c["var"], strict=True)
        )
        if k < 16
    )
    more = len(c["gamma"]) - 16
    return (
        "Batch normalisation in inference mode: each channel's cells become "
        f"(x − mean) / √(var + ε) · γ + β with the running statistics learned in training "
        f"(ε = {c['eps']:g}); a cell's explanation shows its numbers."
        "<table><tr><th>channel</th><th>γ</th><th>β</th><th>mean</th><th>var</th></tr>"
        f"{rows}</table>" + (f"… and {more} more channels" if more > 0 else "")
    )


def _kids(page: QWidget) -> list[QWidget]:
    return page.findChildren(QWidget)
