"""The Training tab end to end on a tiny image folder (8×8 bars, 2 classes): start,
progress, curves, confusion matrix, filters, open-in-explorer, refusal, stop, NaN, close."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.imageio import save_png
from cnn_explorer.ui.training.tab import TrainingTab

TIMEOUT = 60_000


@pytest.fixture(scope="module")
def bars(make_bars: Callable[[int, int], Path]) -> Path:
    """8×8 PNGs: a vertical bar vs a horizontal bar at random places, 10 per class."""
    return make_bars(10, 1)


@pytest.fixture
def tab(qtbot, bars: Path):  # type: ignore[no-untyped-def]
    t = TrainingTab()
    qtbot.addWidget(t)
    t.set_folder(str(bars))
    t.controls.epochs.setValue(3)
    t.controls.batch_size.setValue(4)
    t.controls.val_split.setValue(0.3)
    yield t
    assert t.shutdown(TIMEOUT)


def long_run(tab: TrainingTab) -> None:
    tab.controls.epochs.setValue(1000)
    tab.controls.batch_size.setValue(1)


def test_trains_and_updates_every_view(qtbot, tab: TrainingTab) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT) as done:
        assert tab.start()  # loads the folder first, then trains
    assert done.args == ["completed"]
    assert tab.data.images.shape == (20, 1, 8, 8)
    assert tab.curves.epochs == [1.0, 2.0, 3.0] and len(tab.curves.train_acc) == 3
    assert len(tab.curves.batch_loss) == 3 * 4  # 14 training images / batch 4
    assert tab.curves.val_loss_curve.getData()[0] is not None
    assert tab.confusion.matrix.shape == (2, 2) and tab.confusion.matrix.sum() == 6
    assert tab.confusion.table.rowCount() == 2
    assert tab.filters.snapshot_count == 4  # before training + 3 epochs
    first = tab.filters.snapshot(0)[1][0][1]
    assert not np.array_equal(first, tab.filters.snapshot(3)[1][0][1]), "filters learned"
    tab.filters.slider.setValue(0)
    assert "before training" in tab.filters.caption.text()
    assert tab.progress.value() == 1000 and "Finished 3 epochs" in tab.status.text()
    assert tab.prediction.network is tab.trained and tab.prediction.probabilities.size == 2
    assert "true class" in tab.prediction.result.text()


def test_open_in_explorer_carries_the_trained_weights(qtbot, tab: TrainingTab) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT):
        tab.start()
    with qtbot.waitSignal(tab.open_in_explorer, timeout=TIMEOUT) as opened:
        tab.prediction.to_explorer.click()
    layers, image = opened.args
    assert image.shape == (1, 8, 8)
    assert np.array_equal(image, tab.split.x_val[0])
    trained = [layer.params.get("weight") for layer in tab.trained.layers]
    sent = [layer.params.get("weight") for layer in layers]
    assert len(sent) == len(trained)
    for a, b in zip(sent, trained, strict=True):
        assert (a is None and b is None) or (np.array_equal(a, b) and a is not b)


def test_starting_twice_is_refused_and_stop_mid_epoch(qtbot, tab: TrainingTab) -> None:  # type: ignore[no-untyped-def]
    long_run(tab)
    with qtbot.waitSignal(tab.worker.progress, timeout=TIMEOUT):
        tab.start()
    assert not tab.start()
    assert "already running" in tab.status.text()
    assert not tab.controls.start_button.isEnabled() and tab.controls.stop_button.isEnabled()
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT) as done:
        tab.controls.stop_button.click()
    assert done.args == ["stopped"]
    rec = tab.session.run.last
    assert rec.stopped and rec.epoch < 1000
    assert "Stopped at epoch" in tab.status.text() and tab.controls.start_button.isEnabled()
    assert tab.trained is not None  # the stop record carries a copy of the weights


def test_pause_step_and_lr_change_mid_run(qtbot, tab: TrainingTab) -> None:  # type: ignore[no-untyped-def]
    long_run(tab)
    with qtbot.waitSignal(tab.worker.progress, timeout=TIMEOUT):
        tab.step()  # idle: starts a paused run and trains one batch
    assert tab.worker.state == "paused" and tab.controls.pause_button.text() == "Resume"
    n = tab.worker.records
    tab.controls.lr.setValue(0.002)
    with qtbot.waitSignal(tab.worker.progress, timeout=TIMEOUT):
        tab.controls.step_button.click()
    assert tab.worker.records == n + 1
    assert tab.session.run.optimizer.lr == pytest.approx(
        0.002
    ) and tab.session.run.last.lr == pytest.approx(0.002)
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT):
        tab.resume()
        tab.stop()


def test_nan_loss_stops_with_an_explanation(qtbot, tab: TrainingTab) -> None:  # type: ignore[no-untyped-def]
    tab.controls.opt_kind.setCurrentIndex(tab.controls.opt_kind.findData("sgd"))
    tab.controls.lr.setValue(1e30)
    assert tab.controls.lr.text() == "1e+30"
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT) as done:
        tab.start()
    assert done.args == ["nonfinite"]
    assert "lower the learning rate" in tab.status.text()
    assert all(np.isfinite(v).all() for _, v in tab.trained.parameters()), "last good weights"
    assert all(np.isfinite(v).all() for _, v in tab.session.run.network.parameters())


def test_close_mid_training_stops_cleanly(qtbot, bars: Path) -> None:  # type: ignore[no-untyped-def]
    t = TrainingTab()
    qtbot.addWidget(t)
    t.set_folder(str(bars))
    long_run(t)
    t.show()
    with qtbot.waitSignal(t.worker.progress, timeout=TIMEOUT):
        t.start()
    with qtbot.waitSignal(t.worker.finished, timeout=TIMEOUT):
        t.close()
    assert not t.worker.is_running() and not t.worker._thread.is_alive()


def test_save_and_load_weights(qtbot, tab: TrainingTab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT):
        tab.start()
    path = tmp_path / "w.npz"
    tab.save_weights(str(path))
    image = tab.split.x_val[1]
    tab.prediction.show_image(image)
    before = tab.prediction.probabilities.copy()
    other = TrainingTab()
    qtbot.addWidget(other)
    other.load_weights(str(path))
    assert other.class_names == ["horizontal", "vertical"]
    assert other.controls.arch.currentData() == "loaded" and other.filters.snapshot_count == 1
    other.prediction.show_image(image)
    assert np.allclose(other.prediction.probabilities, before)


def test_explorer_stack_with_classifier_head_and_freeze(qtbot, tab: TrainingTab) -> None:  # type: ignore[no-untyped-def]
    from cnn_explorer.engine.layers import Activation, Conv2D

    conv = Conv2D(3, 4, 3, padding=1, rng=0)
    original = conv.params["weight"].copy()
    tab.set_explorer_layers([conv, Activation("relu")])
    tab.controls.arch.setCurrentIndex(tab.controls.arch.findData("explorer"))
    tab.controls.freeze.item(0).setCheckState(tab.controls.freeze.item(0).checkState().Checked)
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT):
        tab.start()
    first = tab.trained.layers[0]
    assert first.kind == "conv" and first.params["weight"].shape == (4, 3, 3, 3)
    assert np.array_equal(first.params["weight"], original), "frozen layer unchanged"
    assert np.array_equal(conv.params["weight"], original), "explorer's layer never modified"
    assert tab.split.x_train.shape[1] == 3  # gray images repeated to match the stack
    assert tab.trained.layers[-1].kind == "dense"


def test_bad_folder_is_reported(qtbot, tab: TrainingTab, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "only").mkdir()
    save_png(np.zeros((4, 4), np.uint8), str(tmp_path / "only" / "a.png"))
    tab.set_folder(str(tmp_path))
    with qtbot.waitSignal(tab.loader.failed, timeout=TIMEOUT):
        tab.start()
    assert "one class" in tab.status.text() and not tab.worker.is_running()


def test_a_failed_load_keeps_showing_the_dataset_in_use(
    qtbot, tab: TrainingTab, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """It used to say "No dataset loaded." while the previous dataset was still in use."""
    with qtbot.waitSignal(tab.loader.loaded, timeout=TIMEOUT):
        assert tab.load_dataset()
    in_use = tab.data
    (tmp_path / "only").mkdir()
    save_png(np.zeros((4, 4), np.uint8), str(tmp_path / "only" / "a.png"))
    tab.set_folder(str(tmp_path))
    with qtbot.waitSignal(tab.loader.failed, timeout=TIMEOUT):
        assert tab.load_dataset()
    text = tab.controls.data_label.text()
    assert "Could not load that dataset" in text and "one class" in text
    assert "Still in use" in text and "horizontal: 10, vertical: 10" in text
    assert "one class" in tab.status.text() and tab.data is in_use


def test_a_failed_first_load_says_nothing_is_loaded(
    qtbot, tab: TrainingTab, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    tab.set_folder(str(tmp_path / "missing"))
    with qtbot.waitSignal(tab.loader.failed, timeout=TIMEOUT):
        assert tab.load_dataset()
    assert tab.controls.data_label.text().endswith("No dataset loaded.")


def test_try_an_image_names_a_tied_winner_once(qtbot) -> None:  # type: ignore[no-untyped-def]
    from cnn_explorer.engine.layers import Dense, Flatten
    from cnn_explorer.engine.network import Network
    from cnn_explorer.ui.training.prediction_panel import PredictionPanel

    dense = Dense(4, 2, rng=0)
    dense.params["weight"][...] = 0
    panel = PredictionPanel()
    qtbot.addWidget(panel)
    panel.set_network(Network([Flatten(), dense]), ["cat", "dog"])
    panel.show_image(np.ones((1, 2, 2), np.float32))
    text = panel.result.text()
    assert text == "predicted <b>cat</b> (50.0%); then dog 50.0%"


def test_weight_edits_do_not_rebuild_the_architecture_preview(qtbot, window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every explorer weight edit used to rebuild the preview (1–3 ms per edit); only a
    change of the stack's structure does now, and a hidden tab waits until it is shown."""
    tab = window.show_training()
    tab.controls.arch.setCurrentIndex(tab.controls.arch.findData("explorer"))
    assert "2×2" in tab.controls.freeze.item(0).text()  # the worked example's conv
    previews: list[int] = []
    real = tab.session.preview
    monkeypatch.setattr(tab.session, "preview", lambda s: (previews.append(1), real(s))[1])
    doc = window.doc
    for v in (0.5, -2.0):
        doc.set_weight(0, 0, 0, 0, 0, v)
    doc.set_bias(0, 0, 1.5)
    window.undo_action.trigger()
    doc.set_cell(0, 1, 1, 3.0)
    assert previews == [], "values only: no rebuild"
    doc.update_config(0, kernel=[3, 3])
    assert previews == [1] and "3×3" in tab.controls.freeze.item(0).text()
    window.tabs.setCurrentIndex(0)  # hidden: structural changes wait
    doc.remove_layer(len(doc.layers) - 1)
    assert previews == [1]
    window.tabs.setCurrentIndex(1)
    assert previews == [1, 1]
