"""One request from the Insight panel → one generator the worker thread pumps → one
:class:`InsightResult` the panel draws and exports.

Why here and not in the widget: which method needs which target, what each result shows
(a heatmap over the input, a synthesised image, a gallery of patches, a bar per channel)
and what its ``.npy`` export holds are decisions tested without Qt. The panel only turns
its controls into a :class:`Request` and draws the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cnn_explorer.engine.graph import Graph
from cnn_explorer.insight.gradcam import grad_cam
from cnn_explorer.insight.maximize import MaximizeSettings, maximize
from cnn_explorer.insight.patches import TopPatch, top_patches
from cnn_explorer.insight.saliency import input_gradient, smooth_grad
from cnn_explorer.insight.stats import dead_unit_rates
from cnn_explorer.insight.targets import (
    Cancel,
    InsightError,
    Model,
    Progress,
    ProgressGen,
    Target,
    index_of,
    layer_name,
    tensor_shape,
)

SALIENCY, SMOOTHGRAD, GRADCAM, GRADCAM_PP = "saliency", "smoothgrad", "gradcam", "gradcam++"
MAXIMIZE, PATCHES, DEAD = "maximize", "patches", "dead"
METHODS = {
    SALIENCY: "Saliency (gradient)",
    SMOOTHGRAD: "SmoothGrad",
    GRADCAM: "Grad-CAM",
    GRADCAM_PP: "Grad-CAM++",
    MAXIMIZE: "Activation maximisation",
    PATCHES: "Top patches per filter",
    DEAD: "Dead units over the images",
}
"""Method key → the name the panel shows, in menu order."""

NEEDS_IMAGE = (SALIENCY, SMOOTHGRAD, GRADCAM, GRADCAM_PP)
NEEDS_DATASET = (PATCHES, DEAD)
FILTER_ONLY = (PATCHES, DEAD)
"""Methods about a filter of the chosen layer (never a class)."""
CLASS_ONLY = (GRADCAM, GRADCAM_PP)
"""Methods about a class (Grad-CAM needs its target after the chosen layer)."""


@dataclass(frozen=True)
class Request:
    """What to compute: ``method`` (a :data:`METHODS` key), ``layer`` (the chosen layer
    with ``(C, H, W)`` output: an index of a Network, a node name of a Graph), and either a
    class (``klass``) or a filter of ``layer`` (``filter``, optionally one ``cell`` of its
    map; used when ``klass`` is None). The rest are the methods' options."""

    method: str
    layer: int | str
    klass: int | None = 0
    filter: int = 0
    mode: str = "abs"
    samples: int = 25
    sigma: float = 0.15
    seed: int = 0
    k: int = 9
    maximize: MaximizeSettings = field(default_factory=MaximizeSettings)
    cell: tuple[int, int] | None = None

    def target(self, network: Model) -> Target:
        """The class score, or the mean of the chosen filter's map (or its one ``cell``
        ``(row, col)``, for the methods that take a unit rather than a whole filter)."""
        if self.method in FILTER_ONLY:
            return Target(self.layer, self.filter, reduce="mean")
        if self.klass is None and self.method not in CLASS_ONLY:
            return Target(self.layer, self.filter, cell=self.cell, reduce="mean")
        return Target.class_score(network, self.klass or 0)


@dataclass(frozen=True)
class InsightResult:
    """What the panel shows. ``kind`` is ``"heatmap"`` (``heatmap (H, W)`` over ``image``,
    ``signed`` picks a diverging colour map), ``"image"`` (a synthesised ``image``),
    ``"patches"`` (``patches``, best first) or ``"bars"`` (``values`` per channel).
    ``data`` is what the ``.npy`` export writes; ``title`` says what it is."""

    kind: str
    title: str
    data: np.ndarray
    image: np.ndarray | None = None
    heatmap: np.ndarray | None = None
    signed: bool = False
    patches: list[TopPatch] = field(default_factory=list)
    values: np.ndarray | None = None


def _done(result: InsightResult) -> Progress:
    return Progress(1, 1, result.title, result=result)


def job(
    request: Request,
    network: Model,
    image: np.ndarray | None,
    images: np.ndarray | None,
    cancel: Cancel = None,
    class_names: Sequence[str] = (),
) -> ProgressGen:
    """The generator for ``request`` on ``network`` (which it uses and changes: give it a
    copy), with the current ``image (C, H, W)`` and the dataset ``images (N, C, H, W)``;
    ``class_names`` name the classes in the titles.
    Progress records as the method yields them; the last one carries an
    :class:`InsightResult`. Checks the request *now* (InsightError or ShapeError, a
    sentence), so a bad one is refused before a thread starts."""
    m = request.method
    if m not in METHODS:
        raise InsightError(f"unknown method {m!r}")
    if isinstance(network, Graph) and m not in NEEDS_IMAGE:
        raise InsightError(f"{METHODS[m]} works on networks trained in the app only")
    if m in NEEDS_IMAGE and image is None:
        raise InsightError("choose an image first")
    if m in NEEDS_DATASET and (images is None or not len(images)):
        raise InsightError("load a dataset first: this method scans its images")
    if image is None and images is not None and len(images):
        shape = tuple(int(v) for v in images.shape[1:])
    elif image is not None:
        shape = tuple(int(v) for v in np.shape(image))
    else:
        raise InsightError("choose an image or load a dataset first: it sets the input size")
    target = request.target(network)
    target.check(network, shape)
    needs_maps = m not in (SALIENCY, SMOOTHGRAD, MAXIMIZE)
    if needs_maps and len(tensor_shape(network, shape, request.layer)) != 3:
        raise InsightError(
            f"{layer_name(network, request.layer)} does not output (channels, height, width) maps"
        )
    what = target.describe(network)
    if target.is_output(network) and target.cell is None and target.unit < len(class_names):
        what = f"class “{class_names[target.unit]}”"
    return _run(request, network, image, images, target, what, shape, cancel)


# Long because it is one dispatch over the seven methods, each a few lines; a table of
# small functions would only spread the same code over more names.
def _run(
    request: Request,
    network: Model,
    image: np.ndarray | None,
    images: np.ndarray | None,
    target: Target,
    what: str,
    shape: tuple[int, ...],
    cancel: Cancel,
) -> ProgressGen:
    m = request.method
    if m == SALIENCY:
        assert image is not None
        sal = input_gradient(network, image, target)
        yield _done(
            InsightResult(
                "heatmap",
                f"Saliency ({request.mode}) of {what}",
                sal.heatmap(request.mode),
                sal.image,
                sal.heatmap(request.mode),
                signed=request.mode != "abs",
            )
        )
    elif m == SMOOTHGRAD:
        assert image is not None
        gen = smooth_grad(
            network, image, target, request.samples, request.sigma, request.seed, cancel=cancel
        )
        for rec in gen:
            if rec.result is None:
                yield rec
                continue
            heat = rec.result.heatmap(request.mode)
            title = f"SmoothGrad ({request.mode}, {request.samples} samples) of {what}"
            yield _done(
                InsightResult("heatmap", title, heat, rec.result.image, heat, request.mode != "abs")
            )
    elif m in (GRADCAM, GRADCAM_PP):
        assert image is not None
        res = grad_cam(network, image, request.layer, target, plus=m == GRADCAM_PP)
        title = f"{METHODS[m]} of {what} at {layer_name(network, request.layer)}"
        yield _done(InsightResult("heatmap", title, res.heatmap, np.asarray(image), res.heatmap))
    elif isinstance(network, Graph):  # job() refused the other methods for a graph
        raise InsightError(f"{METHODS[m]} works on networks trained in the app only")
    elif m == MAXIMIZE:
        c, h, w = (int(v) for v in shape)
        for rec in maximize(network, (c, h, w), target, request.maximize, cancel):
            if rec.result is None:
                yield rec
                continue
            r = rec.result
            title = f"Input maximising {what}: {r.start_value:.3g} → {r.value:.3g}"
            yield Progress(
                rec.done,
                rec.total,
                title,
                result=InsightResult("image", title, r.image, r.image),
            )
    elif m == PATCHES:
        assert images is not None
        layer = index_of(request.layer)
        gen = top_patches(network, images, layer, request.filter, request.k, cancel)
        for rec in gen:
            if rec.result is None:
                yield rec
                continue
            patches: list[TopPatch] = rec.result
            tops = np.stack([images[p.index] for p in patches]).astype(np.float32)
            title = f"Top {len(patches)} of {len(images)} images for {what.replace(' mean', '')}"
            yield _done(InsightResult("patches", title, tops, patches=patches))
    else:
        assert images is not None
        layer = index_of(request.layer)
        for rec in dead_unit_rates(network, images, layer, cancel):
            if rec.result is None:
                yield rec
                continue
            d = rec.result
            title = f"Layer {layer + 1}: {d.text()}"
            yield _done(InsightResult("bars", title, d.rates, values=d.rates))


__all__ = [
    "CLASS_ONLY",
    "DEAD",
    "FILTER_ONLY",
    "GRADCAM",
    "GRADCAM_PP",
    "MAXIMIZE",
    "METHODS",
    "NEEDS_DATASET",
    "NEEDS_IMAGE",
    "PATCHES",
    "SALIENCY",
    "SMOOTHGRAD",
    "InsightResult",
    "Request",
    "job",
]
