"""The words of the sliding-window animation: the blocks' titles and the running sum of
the current output cell, with the explanation's number format (true minus)."""

from __future__ import annotations

import html

from cnn_explorer.explorer.sliding import CellAnimation, SlidingWindow
from cnn_explorer.ui.explorer.sliding_items import num

LEGEND = (
    "<span style='color:#666; font-size:small'>Dark orange: the tap being added; light: "
    "the rest of the window (its dashed outline is the span, dilation leaves gaps); hatched: "
    "padding; the output fills in cell by cell (click one, or use the arrow keys).</span>"
)
MAX_SUM_TERMS = 9
"""Products written out per channel line of the running sum (the latest ones)."""


def titles(sw: SlidingWindow, layer_index: int, in_channel: int) -> tuple[str, str, str]:
    """The three blocks' two-line titles: input (padding, dilation, stride), kernel, output."""
    win, layer = sw.window, sw.layer
    h, w = sw.x.shape[1:]
    notes = [f"hatched: padding ({sw.frame.mode})"] if any(win.padding) else []
    if win.dilation != (1, 1):
        notes.append(f"dilation {win.dilation[0]}×{win.dilation[1]}: taps skip cells")
    if win.stride != (1, 1):
        notes.append(f"stride {win.stride[0]}×{win.stride[1]}")
    first = f"Input of layer {layer_index + 1}, channel {in_channel} ({h}×{w})"
    kernel = ""
    if sw.kind == "conv":
        kh, kw = win.kernel
        flip = bool(getattr(layer, "flip_kernel", False))
        how = "flipped (true convolution)" if flip else "as applied"
        kernel = f"Kernel {kh}×{kw}, filter {sw.channel},\nchannel {in_channel}, {how}"
    oh, ow = sw.shape
    what = {"conv": "Output", "max_pool": "Max pool output", "avg_pool": "Avg pool output"}
    out = f"{what[sw.kind]} channel {sw.channel} ({oh}×{ow})\ncell ({sw.cell[0]}, {sw.cell[1]})"
    return f"{first}\n{', '.join(notes) or 'no padding'}", kernel, out


def sum_html(sw: SlidingWindow, step: int) -> str:
    """The running sum of the current cell as rich text (what the scene cannot say)."""
    anim = sw.animation()
    ch, r, c = anim.index
    phase = anim.phase(step)
    reached = len(anim.taps) if phase != "tap" else step + 1
    name = f"out[{ch},{r},{c}]"
    lines: list[str] = []
    if anim.kind == "conv":
        lines.append(_conv_lines(anim, reached, name))
        if anim.bias is not None:
            b = num(anim.bias)
            mark = " ✓" if phase != "tap" else ""
            lines.append(f"bias: {'− ' + b[1:] if b.startswith('−') else '+ ' + b}{mark}")
    elif anim.kind == "max_pool":
        t = anim.taps[reached - 1]
        best = "—" if t.leader is None else num(anim.taps[t.leader].running)
        lines.append(
            f"{name} = max of the window (padding is −∞: it never wins); "
            f"largest so far: <b>{best}</b>"
        )
    else:
        total = anim.taps[reached - 1].running
        vals = " + ".join(num(t.value) for t in anim.taps[:reached][-MAX_SUM_TERMS:])
        more = "… + " if reached > MAX_SUM_TERMS else ""
        lines.append(
            f"{name} = (sum of the window) / {anim.divisor}: "
            f"sum so far {more}{html.escape(vals)} = <b>{num(total)}</b>"
        )
    if phase == "result":
        lines.append(
            f"<b>{name} = {num(anim.result)}</b> — the layer's output "
            f"(cell {sw.index + 1} of {sw.cells})"
        )
    else:
        lines.append(f"running value: <b>{num(anim.running(step))}</b>")
    lines.append(LEGEND)
    return "<br>".join(lines)


def _conv_lines(anim: CellAnimation, reached: int, name: str) -> str:
    """One line per input channel (up to 4 around the current one) with its products."""
    channels = [c for c, _ in anim.subtotals]
    current = anim.taps[reached - 1].channel
    k = channels.index(current)
    shown = channels[max(0, k - 2) : max(0, k - 2) + 4]
    head = f"{name} = Σ x·w over {len(channels)} input channel{'s' * (len(channels) > 1)}"
    parts = [head + (" + bias" if anim.bias is not None else "")]
    for c in shown:
        idx = [i for i, t in enumerate(anim.taps) if t.channel == c]
        done = [i for i in idx if i < reached]
        if not done:
            parts.append(f"&nbsp;&nbsp;ch {c}: —")
            continue
        terms = [
            f"{_factor(anim.taps[i].value)}·{_factor(anim.taps[i].weight)}"
            for i in done[-MAX_SUM_TERMS:]
        ]
        more = "… + " if len(done) > MAX_SUM_TERMS else ""
        sub = anim.taps[done[-1]].channel_running
        mark = " ✓" if len(done) == len(idx) else " …"
        sums = html.escape(" + ".join(terms))
        parts.append(f"&nbsp;&nbsp;ch {c}: {more}{sums} = <b>{num(sub)}</b>{mark}")
    if len(shown) < len(channels):
        parts.append(f"&nbsp;&nbsp;(+ {len(channels) - len(shown)} more channels)")
    return "<br>".join(parts)


def _factor(v: float) -> str:
    s = num(v)
    return f"({s})" if s.startswith("−") else s
