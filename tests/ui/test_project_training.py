"""Projects carry the Training tab's trained network: file round trip (predictions bit for
bit, class names), old files without the section, malformed sections refused with a
sentence, and save → open through the main window after a short real training run."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.engine.network import default_classifier
from cnn_explorer.explorer import presets
from cnn_explorer.explorer.project import (
    ProjectError,
    TrainedState,
    load_project,
    read_project,
    save_project,
)
from cnn_explorer.explorer.specs import conv_spec
from cnn_explorer.ui.common.messages import RecordingReporter
from cnn_explorer.ui.main_window import MainWindow

TIMEOUT = 60_000
X = presets.WORKED_EXAMPLE[None]


def _state(seed: int = 1) -> TrainedState:
    net = default_classifier((1, 8, 8), 3, seed=seed)
    return TrainedState(net, ["a", "b", "c"], (1, 8, 8), {"source": "bars"})


def _images(n: int = 5) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, 8, 8), dtype=np.float32)


def _rewrite(path: Path, edit: Callable[[dict, dict], None]) -> None:
    """Rewrite a saved project after ``edit(meta, arrays)`` changed its JSON / arrays."""
    import io

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


def test_trained_network_round_trips_exactly(tmp_path: Path) -> None:
    path = tmp_path / "p.cnnx"
    state = _state()
    save_project(str(path), X, [conv_spec(1, 2, (2, 2), seed=3)], state)
    project = read_project(str(path))
    assert project.trained is not None
    got = project.trained
    assert got.class_names == ["a", "b", "c"] and got.input_shape == (1, 8, 8)
    assert got.extra == {"source": "bars"}
    assert [layer.kind for layer in got.network.layers] == [
        layer.kind for layer in state.network.layers
    ]
    assert got.network.layers[-1].kind == "dense"
    x = _images()
    assert np.array_equal(got.network.predict_logits(x), state.network.predict_logits(x))
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("project.json"))
    assert meta["version"] == 1 and meta["trained"]["network"]["layers"]
    x0, layers = load_project(str(path))  # the old API still gives (input, layers)
    assert np.array_equal(x0, X) and len(layers) == 1


def test_project_without_trained_section_loads_as_before(tmp_path: Path) -> None:
    path = tmp_path / "old.cnnx"
    save_project(str(path), X, [conv_spec(1, 2, (2, 2), seed=3)])
    with zipfile.ZipFile(path) as zf:
        assert "trained" not in json.loads(zf.read("project.json"))
    project = read_project(str(path))
    assert project.trained is None and len(project.layers) == 1


def _drop_weight(meta: dict, arrays: dict) -> None:
    del arrays["trained/0.weight"]


def _bad_names(meta: dict, arrays: dict) -> None:
    meta["trained"]["class_names"] = ["only one"]


def _bad_shape(meta: dict, arrays: dict) -> None:
    meta["trained"]["input_shape"] = [1, 9]


def _wrong_size(meta: dict, arrays: dict) -> None:
    meta["trained"]["input_shape"] = [1, 16, 16]


def _bad_layer(meta: dict, arrays: dict) -> None:
    meta["trained"]["network"]["layers"][0]["kind"] = "teleport"


def _bad_weights(meta: dict, arrays: dict) -> None:
    arrays["trained/0.weight"] = np.full(arrays["trained/0.weight"].shape, "x")


def _not_dict(meta: dict, arrays: dict) -> None:
    meta["trained"] = [1, 2]


def _future(meta: dict, arrays: dict) -> None:
    meta["trained"]["network"]["version"] = 99


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (_drop_weight, "lacks arrays"),
        (_bad_names, "outputs (3,) values but the file names 1 classes"),
        (_bad_shape, "invalid input shape"),
        (_wrong_size, "does not fit its input shape"),
        (_bad_layer, "cannot be rebuilt"),
        (_bad_weights, "non-numeric weights"),
        (_not_dict, "section is damaged"),
        (_future, "newer than this CNN Explorer"),
    ],
)
def test_malformed_trained_section_is_a_clear_error(
    tmp_path: Path, edit: Callable[[dict, dict], None], words: str
) -> None:
    path = tmp_path / "bad.cnnx"
    save_project(str(path), X, [], _state())
    _rewrite(path, edit)
    with pytest.raises(ProjectError, match=r"bad\.cnnx: the trained network") as info:
        read_project(str(path))
    assert words in str(info.value)


# --------------------------------------------------------------------------------------
# through the main window
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bars(make_bars: Callable[[int, int], Path]) -> Path:
    return make_bars(6, 5)


def _window(qtbot) -> MainWindow:  # type: ignore[no-untyped-def]
    win = MainWindow(restore_state=False)
    win.persist_settings = False
    win.reporter = RecordingReporter(win)
    qtbot.addWidget(win)
    return win


def _train(qtbot, win: MainWindow, bars: Path):  # type: ignore[no-untyped-def]
    tab = win.show_training()
    tab.set_folder(str(bars))
    tab.controls.epochs.setValue(2)
    tab.controls.batch_size.setValue(4)
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT) as done:
        assert tab.start()
    assert done.args == ["completed"]
    return tab


def test_save_and_open_carry_the_trained_network(qtbot, tmp_path: Path, bars: Path) -> None:  # type: ignore[no-untyped-def]
    win = _window(qtbot)
    tab = _train(qtbot, win, bars)
    images = tab.split.x_val
    logits = tab.trained.predict_logits(images)
    curves = {k: getattr(tab.curves, k) for k in ("batch_x", "batch_loss", "epochs", "val_acc")}
    snapshots = [tab.filters.snapshot(i) for i in range(tab.filters.snapshot_count)]
    matrix, trained_line = tab.confusion.matrix.copy(), tab.results.progress_label.text()
    path = str(tmp_path / "trained.cnnx")
    assert win.save_to(path)
    assert tab.shutdown(TIMEOUT)

    fresh = _window(qtbot)
    assert fresh.training is None
    assert fresh.open_project(path)
    assert fresh.tabs.currentIndex() == 0, "opening a project stays on the feature maps"
    assert fresh.grid_dock.isVisibleTo(fresh) == win.grid_dock.isVisibleTo(win)
    other = fresh.training
    assert other is not None and other.trained is not None
    assert other.class_names == ["horizontal", "vertical"]
    assert other.session.trained.input_shape == (1, 8, 8)
    assert np.array_equal(other.trained.predict_logits(images), logits)
    assert other.prediction.network is other.trained
    other.prediction.show_image(images[0])
    assert other.prediction.probabilities.size == 2
    assert other.controls.arch.currentData() == "loaded" and other.controls.save_button.isEnabled()
    # how it was trained comes back too: curves, every epoch's filters, confusion matrix
    assert curves["epochs"] == [1.0, 2.0] and len(curves["batch_x"]) == 2 * 3
    for key, values in curves.items():
        assert getattr(other.curves, key) == values, key
    assert other.curves.val_acc_curve.getData()[1].tolist() == curves["val_acc"]
    assert other.filters.snapshot_count == 3 and other.filters.slider.isEnabled()
    for i, (caption, layers) in enumerate(snapshots):
        got_caption, got_layers = other.filters.snapshot(i)
        assert got_caption == caption and [t for t, _ in got_layers] == [t for t, _ in layers]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got_layers, layers, strict=True))
    other.filters.slider.setValue(0)
    assert "before training" in other.filters.caption.text()
    assert np.array_equal(other.confusion.matrix, matrix) and other.confusion.table.rowCount() == 2
    assert other.progress.value() == other.progress.maximum()
    assert "Not trained yet" not in other.results.progress_label.text()
    assert other.results.progress_label.text().startswith("Trained 2 epochs"), trained_line
    # saved again from the fresh window, it still carries the same network
    again = str(tmp_path / "again.cnnx")
    assert fresh.save_to(again)
    state = read_project(again).trained
    assert state is not None and state.class_names == ["horizontal", "vertical"]
    assert np.array_equal(state.network.predict_logits(images), logits)
    assert state.history is not None and len(state.history.snapshots) == 3
    assert np.array_equal(state.history.confusion, matrix)
    assert other.shutdown(TIMEOUT)


def test_malformed_project_leaves_the_window_untouched(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    win = _window(qtbot)
    good = tmp_path / "good.cnnx"
    save_project(str(good), X, [conv_spec(1, 2, (2, 2), seed=3)], _state())
    assert win.open_project(str(good))
    tab = win.training
    assert tab is not None and tab.class_names == ["a", "b", "c"]
    trained, x0, n = tab.trained, win.doc.input.copy(), len(win.doc.layers)
    bad = tmp_path / "bad.cnnx"
    save_project(str(bad), np.zeros((1, 3, 3), np.float32), [], _state(2))
    _rewrite(bad, _bad_names)
    assert not win.open_project(str(bad))
    assert "the trained network" in win.reporter.errors[-1][1]
    assert tab.trained is trained and tab.class_names == ["a", "b", "c"]
    assert np.array_equal(win.doc.input, x0) and len(win.doc.layers) == n
    plain = tmp_path / "plain.cnnx"
    save_project(str(plain), X, [])
    assert win.open_project(str(plain))
    assert tab.trained is trained, "a project without a trained network leaves the tab alone"
    assert tab.shutdown(TIMEOUT)


def test_an_opened_project_offers_its_dataset_for_try_an_image(  # type: ignore[no-untyped-def]
    qtbot, tmp_path: Path, bars: Path
) -> None:
    """After opening a project, one click on Load brings back the validation images the
    network was checked on: same folder, size, colour and split (same seed)."""
    win = _window(qtbot)
    tab = _train(qtbot, win, bars)
    images, labels = tab.split.x_val, tab.split.y_val
    path = str(tmp_path / "trained.cnnx")
    assert win.save_to(path)
    assert tab.shutdown(TIMEOUT)

    fresh = _window(qtbot)
    assert fresh.open_project(path)
    other = fresh.training
    assert other is not None
    assert other.controls.source.currentData() == "folder" and other.controls.folder == str(bars)
    assert other.controls.image_size.value() == 8 and other.controls.color.currentData() == 1
    assert "Load it to try its validation images" in other.status.text()
    assert len(other.prediction.images) == 0
    with qtbot.waitSignal(other.loader.loaded, timeout=TIMEOUT):
        assert other.load_dataset()
    assert np.array_equal(other.prediction.images, images)
    assert np.array_equal(other.prediction.labels, labels)
    assert other.class_names == ["horizontal", "vertical"]
    assert "validation images of this dataset are ready" in other.status.text()
    assert other.shutdown(TIMEOUT)


def test_a_dataset_that_does_not_fit_the_opened_network_is_not_offered(  # type: ignore[no-untyped-def]
    qtbot, tmp_path: Path, bars: Path
) -> None:
    win = _window(qtbot)
    path = tmp_path / "abc.cnnx"
    save_project(str(path), X, [], _state())  # 3 classes; its source "bars" is no folder
    assert win.open_project(str(path))
    tab = win.training
    assert tab is not None and tab.controls.source.currentData() != "folder"
    tab.set_folder(str(bars))  # 2 classes
    tab.controls.image_size.setValue(8)
    with qtbot.waitSignal(tab.loader.loaded, timeout=TIMEOUT):
        assert tab.load_dataset()
    assert len(tab.prediction.images) == 0
    assert tab.class_names == ["a", "b", "c"], "the opened network keeps its class names"
    assert "does not fit the loaded network" in tab.status.text()
    assert tab.shutdown(TIMEOUT)


def _use_shapes(tab) -> None:  # type: ignore[no-untyped-def]
    """Select the built-in shapes (6 classes) at the bars' 8×8, gray."""
    c = tab.controls
    c.source.setCurrentIndex(c.source.findData("builtin:shapes"))
    c.image_size.setValue(8)
    c.color.setCurrentIndex(c.color.findData(1))


def _reopen(qtbot, win: MainWindow, path: str) -> MainWindow:  # type: ignore[no-untyped-def]
    assert win.save_to(path)
    fresh = _window(qtbot)
    assert fresh.open_project(path), fresh.reporter.errors
    return fresh


def test_loading_another_dataset_after_training_still_saves_an_openable_project(  # type: ignore[no-untyped-def]
    qtbot, tmp_path: Path, bars: Path
) -> None:
    """Train on the bars (2 classes), load the shapes (6 classes), Save, Open: the file
    used to name 6 classes for the 2-output network and was refused as a whole."""
    win = _window(qtbot)
    tab = _train(qtbot, win, bars)
    logits = tab.trained.predict_logits(tab.split.x_val)
    _use_shapes(tab)
    with qtbot.waitSignal(tab.loader.loaded, timeout=TIMEOUT):
        assert tab.load_dataset()
    assert tab.data.num_classes == 6
    assert tab.class_names == ["horizontal", "vertical"]
    assert "does not fit the trained network" in tab.status.text()
    state = tab.trained_state()
    assert state.extra == {"source": str(bars)}, "the network's own dataset, not the new one"
    fresh = _reopen(qtbot, win, str(tmp_path / "p.cnnx"))
    other = fresh.training
    assert other.class_names == ["horizontal", "vertical"]
    assert np.array_equal(other.trained.predict_logits(tab.split.x_val), logits)
    assert tab.shutdown(TIMEOUT) and other.shutdown(TIMEOUT)


def test_saving_while_a_new_dataset_trains_keeps_names_and_network_together(  # type: ignore[no-untyped-def]
    qtbot, tmp_path: Path, bars: Path
) -> None:
    """Start a run on the shapes after training on the bars and save before its first
    epoch ends: the project holds the bars network with the bars' class names."""
    win = _window(qtbot)
    tab = _train(qtbot, win, bars)
    _use_shapes(tab)
    with qtbot.waitSignal(tab.worker.progress, timeout=TIMEOUT):
        tab.step()  # loads the shapes, starts a paused run, trains one batch
    assert tab.worker.state == "paused" and tab.data.num_classes == 6
    fresh = _reopen(qtbot, win, str(tmp_path / "mid.cnnx"))
    assert fresh.training.class_names == ["horizontal", "vertical"]
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT):
        tab.stop()
    assert tab.class_names == list(tab.data.class_names)  # the stopped run's copy: 6 outputs
    assert tab.trained.output_shape((1, 8, 8)) == (6,)
    fresh = _reopen(qtbot, win, str(tmp_path / "after.cnnx"))
    assert len(fresh.training.class_names) == 6
    for t in (tab, fresh.training):
        assert t.shutdown(TIMEOUT)


def test_a_damaged_history_is_refused_and_nothing_is_lost(  # type: ignore[no-untyped-def]
    qtbot, tmp_path: Path, bars: Path
) -> None:
    """A project whose training history is damaged is refused with a sentence naming it;
    the window keeps its document, its trained network and everything the tab shows."""
    win = _window(qtbot)
    tab = _train(qtbot, win, bars)
    bad = tmp_path / "bad.cnnx"
    assert win.save_to(str(bad))

    def wrong_accuracy(meta: dict, arrays: dict) -> None:
        arrays["trained/history/epochs"][2, 0] = 1.5

    _rewrite(bad, wrong_accuracy)
    trained, epochs, batches = tab.trained, tab.curves.epochs, tab.curves.batch_loss
    matrix, count, x0 = tab.confusion.matrix.copy(), tab.filters.snapshot_count, win.doc.input
    assert not win.open_project(str(bad))
    title, text = win.reporter.errors[-1]
    assert text == "bad.cnnx: the training history has accuracies outside 0 to 1.", title
    assert tab.trained is trained and tab.curves.epochs == epochs
    assert tab.curves.batch_loss == batches and tab.filters.snapshot_count == count
    assert np.array_equal(tab.confusion.matrix, matrix) and win.doc.input is x0
    assert tab.shutdown(TIMEOUT)


def test_a_history_without_filter_snapshots_still_shows_its_curves(  # type: ignore[no-untyped-def]
    qtbot, tmp_path: Path
) -> None:
    """A history too long to keep its filter snapshots (thinned away when saved) opens
    with its curves and matrix, and the network's own filters."""
    from cnn_explorer.engine.history import TrainingHistory

    state = _state()
    state.history = TrainingHistory(
        [0.5, 1.0], [1.2, 0.9], [(1, 0.9, 0.5, 1.0, 0.4)], [], np.eye(3, dtype=np.int64)
    )
    path = tmp_path / "thin.cnnx"
    save_project(str(path), X, [], state)
    win = _window(qtbot)
    assert win.open_project(str(path)), win.reporter.errors
    tab = win.training
    assert tab.curves.epochs == [1.0] and tab.curves.batch_loss == [1.2, 0.9]
    assert tab.filters.snapshot_count == 1 and "loaded from" in tab.filters.caption.text()
    assert tab.confusion.matrix.trace() == 3
    assert tab.results.progress_label.text().startswith("Trained 1 epoch · loss 0.9000")
    assert tab.shutdown(TIMEOUT)
