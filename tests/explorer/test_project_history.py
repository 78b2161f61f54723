"""A project keeps how its network was trained: the history round trips exactly, files
without it still open, a long one is thinned to the file's limits, and every malformed
field is refused with a sentence naming the file and the field (plain pytest, Qt-free)."""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.engine.history import INITIAL_CAPTION, TrainingHistory
from cnn_explorer.engine.network import default_classifier
from cnn_explorer.engine.training import Progress
from cnn_explorer.explorer import presets
from cnn_explorer.explorer.project import ProjectError, TrainedState, read_project, save_project
from cnn_explorer.limits import MAX_EPOCHS

X = presets.WORKED_EXAMPLE[None]
NAMES = ["a", "b", "c"]


def _filters(net, scale: float = 1.0) -> list[tuple[str, np.ndarray]]:  # type: ignore[no-untyped-def]
    return [
        (f"layer {i + 1} conv", np.array(layer.params["weight"] * scale, np.float32))
        for i, layer in enumerate(net.layers)
        if layer.kind == "conv"
    ]


def _record(kind: str, epoch: int, batch: int, **kw: object) -> Progress:
    return Progress(kind, epoch, 2, batch, 3, 0.5 / epoch + 0.01 * batch, 0.01, 0.0, **kw)  # type: ignore[arg-type]


def _history(net, val: bool = True) -> TrainingHistory:  # type: ignore[no-untyped-def]
    """Two epochs of three batches, as the session records them."""
    h = TrainingHistory()
    h.add_snapshot(INITIAL_CAPTION, _filters(net, 0.5))
    for epoch in (1, 2):
        for batch in (1, 2, 3):
            h.add(_record("batch", epoch, batch))
        summary = {"train_loss": 0.4 / epoch, "train_accuracy": 0.5 + 0.2 * epoch}
        if val:
            summary |= {"val_loss": 0.6 / epoch, "val_accuracy": 0.25 * epoch}
        matrix = np.array([[2, 1, 0], [0, 3, 0], [1, 0, epoch]])
        h.add(_record("epoch", epoch, 3, **summary), _filters(net, epoch), matrix)
    return h


def _state(val: bool = True) -> TrainedState:
    net = default_classifier((1, 8, 8), 3, seed=1)
    return TrainedState(net, list(NAMES), (1, 8, 8), {"source": "bars"}, _history(net, val))


def _save(path: Path, state: TrainedState) -> None:
    save_project(str(path), X, [], state)


def _rewrite(path: Path, edit: Callable[[dict, dict], None]) -> None:
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("project.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
            arrays = {k: np.array(npz[k]) for k in npz.files}
    edit(meta, arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("project.json", json.dumps(meta))
        zf.writestr("arrays.npz", buf.getvalue())


def _same(a: TrainingHistory, b: TrainingHistory) -> None:
    assert a.batch_x == b.batch_x and a.batch_loss == b.batch_loss
    np.testing.assert_array_equal(a.epoch_columns(), b.epoch_columns())
    assert [c for c, _ in a.snapshots] == [c for c, _ in b.snapshots]
    for (_, la), (_, lb) in zip(a.snapshots, b.snapshots, strict=True):
        assert [t for t, _ in la] == [t for t, _ in lb]
        assert all(np.array_equal(wa, wb) for (_, wa), (_, wb) in zip(la, lb, strict=True))
    assert (a.confusion is None) == (b.confusion is None)
    if a.confusion is not None:
        assert np.array_equal(a.confusion, b.confusion)


@pytest.mark.parametrize("val", [True, False], ids=["validated", "no validation images"])
def test_history_round_trips_exactly(tmp_path: Path, val: bool) -> None:
    path = tmp_path / "p.cnnx"
    state = _state(val)
    _save(path, state)
    got = read_project(str(path)).trained
    assert got is not None and got.history is not None and state.history is not None
    _same(got.history, state.history)
    assert got.history.batch_x[:3] == [1 / 3, 2 / 3, 1.0]
    assert got.history.snapshots[0][0] == INITIAL_CAPTION
    assert [c for c, _ in got.history.snapshots[1:]] == ["after epoch 1", "after epoch 2"]
    assert math.isnan(got.history.epochs[0][3]) != val, "no validation: NaN, kept as NaN"
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("project.json"))
    assert meta["version"] == 1, "an optional section: the format version is unchanged"


def test_a_trained_network_without_history_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.cnnx"
    state = _state()
    state.history = None
    _save(path, state)
    got = read_project(str(path)).trained
    assert got is not None and got.history is None and got.class_names == NAMES


def test_a_long_history_is_thinned_to_the_file_limits(tmp_path: Path) -> None:
    state = _state()
    h = state.history
    assert h is not None
    per = sum(w.size for _, w in h.snapshots[0][1])
    many = TrainingHistory(
        [i / 10 for i in range(25)], [1.0] * 25, list(h.epochs), h.snapshots * 4, h.confusion
    )
    thin = many.thinned(max_batches=10, max_epochs=5, max_snapshot_values=5 * per)
    assert len(thin.batch_x) == 10 and thin.batch_x[0] == 0 and thin.batch_x[-1] == 2.4
    assert len(thin.snapshots) == 5
    assert thin.snapshots[0] is many.snapshots[0] and thin.snapshots[-1] is many.snapshots[-1]
    bad = (INITIAL_CAPTION, [(t, np.full_like(w, np.inf)) for t, w in h.snapshots[0][1]])
    assert len(TrainingHistory(snapshots=[bad, *h.snapshots]).thinned(9, 9, 10**9).snapshots) == 3


# --------------------------------------------------------------------------------------
# malformed histories: one sentence naming the file, the history and the field
# --------------------------------------------------------------------------------------


def _entry(meta: dict) -> dict:
    return meta["trained"]["history"]


def _set(key: str, value: object) -> Callable[[dict, dict], None]:
    def edit(meta: dict, arrays: dict) -> None:
        _entry(meta)[key] = value

    return edit


def _array(key: str, change: Callable[[np.ndarray], np.ndarray]) -> Callable[[dict, dict], None]:
    def edit(meta: dict, arrays: dict) -> None:
        full = "trained/history/" + key
        arrays[full] = change(arrays[full])

    return edit


def _drop(key: str) -> Callable[[dict, dict], None]:
    def edit(meta: dict, arrays: dict) -> None:
        del arrays["trained/history/" + key]

    return edit


def _cell(i: int, j: int, v: float) -> Callable[[np.ndarray], np.ndarray]:
    def change(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[i, j] = v
        return a

    return change


def _not_dict(meta: dict, arrays: dict) -> None:
    meta["trained"]["history"] = "yes"


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_not_dict, "is damaged"),
        (_set("batches", -1), "batches must be a whole number from 0 to 100000"),
        (_set("batches", 2.5), "batches must be a whole number"),
        (_set("epochs", MAX_EPOCHS + 1), f"epochs must be a whole number from 0 to {MAX_EPOCHS}"),
        (_set("batches", 7), "loss curve has shape (2, 6), expected (2, 7)"),
        (_set("confusion", "yes"), "confusion must be true or false"),
        (_set("filter_layers", ["only one"]), "filter_layers must be a list of 2 texts"),
        (_set("snapshots", ["x" * 500, "b", "c"]), "snapshots must be a list of 0 to"),
        (_set("snapshots", ["a", "b", "c", "d"]), "snapshot 4 of layer 1 conv is missing"),
        (_drop("epochs"), "epoch table is missing"),
        (_array("batches", lambda a: a.astype(np.int64)), "unsupported data type int64"),
        (_array("batches", _cell(1, 2, np.nan)), "batch losses that are not numbers ≥ 0"),
        (_array("batches", _cell(1, 2, -1.0)), "batch losses that are not numbers ≥ 0"),
        (_array("batches", _cell(0, 2, 0.1)), "batch positions out of order"),
        (_array("batches", _cell(0, 5, 9.0)), "past its epochs"),
        (_array("epochs", _cell(0, 1, 1.5)), "epoch numbers must be whole numbers"),
        (_array("epochs", _cell(0, 1, 1.0)), "increasing"),
        (_array("epochs", _cell(1, 0, np.inf)), "epoch losses that are not numbers ≥ 0"),
        (_array("epochs", _cell(4, 1, 1.5)), "accuracies outside 0 to 1"),
        (_array("confusion", lambda a: a[:2, :2]), "confusion matrix has shape (2, 2)"),
        (_array("confusion", lambda a: -a), "is not 3×3 counts ≥ 0"),
        (_array("confusion", lambda a: a.astype(np.float64)), "unsupported data type float64"),
        (_array("snapshot1.0", lambda a: a[:, :, :2]), "snapshot 2 of layer 1 conv has shape"),
        (_array("snapshot0.1", lambda a: a * np.inf), "snapshot 1 of layer 4 conv is not finite"),
    ],
)
def test_malformed_history_is_a_clear_error(
    tmp_path: Path, edit: Callable[[dict, dict], None], words: str
) -> None:
    path = tmp_path / "bad.cnnx"
    _save(path, _state())
    _rewrite(path, edit)
    with pytest.raises(ProjectError, match=r"^bad\.cnnx: the training history") as info:
        read_project(str(path))
    assert words in str(info.value)
