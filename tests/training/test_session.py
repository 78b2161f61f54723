"""The Qt-free training session shared by the Training tab and the ``train`` command:
settings checks, splits, networks, runs, the trained model and its class names, saving,
and "Try an image" ranking. Plain pytest: no Qt event loop, only public names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.engine.layers import Activation, Conv2D, Dense, Flatten
from cnn_explorer.engine.network import Network, default_classifier
from cnn_explorer.training.data import (
    DataError,
    LabeledImages,
    load_dataset,
    split_dataset,
)
from cnn_explorer.training.model import TrainedModel, save_path_problem
from cnn_explorer.training.networks import ARCH_EXPLORER, ARCH_LOADED, build_network
from cnn_explorer.training.prediction import predict, rank
from cnn_explorer.training.session import TrainingSession
from cnn_explorer.training.settings import DatasetChoice, RunSettings

ROOT = Path(__file__).resolve().parents[2]
FAST = RunSettings(epochs=1, batch_size=8)


def images(names: list[str], per_class: int, side: int = 8, seed: int = 0) -> LabeledImages:
    """``per_class`` random gray ``side``×``side`` images per name (a bright row per class)."""
    rng = np.random.default_rng(seed)
    n = len(names) * per_class
    x = rng.random((n, 1, side, side), dtype=np.float32) * 0.2
    y = np.repeat(np.arange(len(names)), per_class).astype(np.int64)
    x[np.arange(n), 0, y % side, :] = 1.0
    return LabeledImages(x, y, list(names), f"memory:{'-'.join(names)}")


def train(session: TrainingSession, settings: RunSettings = FAST) -> None:
    """A whole run the way the tab sees it: every event back through ``observe``."""
    run = session.start_run(settings)
    for event in run.events():
        session.observe(event)


# -- Qt-free ----------------------------------------------------------------------------


def test_the_session_and_the_command_load_no_qt() -> None:
    code = (
        "import json, sys\n"
        "import cnn_explorer.training.session, cnn_explorer.training.cli\n"
        "from cnn_explorer.training.data import load_dataset\n"
        "load_dataset('builtin:shapes', 8)\n"
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# -- settings and data ------------------------------------------------------------------


def test_settings_name_every_bad_value() -> None:
    bad = RunSettings(seed=-1, weight_decay=-0.1, lr=float("nan"), epochs=0, val_split=1.0)
    assert [name for name, _ in bad.problems()] == [
        "lr",
        "epochs",
        "weight_decay",
        "seed",
        "val_split",
    ]
    assert RunSettings().problems() == []
    assert DatasetChoice("builtin:shapes", image_size=300).problems()[0][0] == "image_size"
    session = TrainingSession()
    session.use_dataset(images(["a", "b"], 4), DatasetChoice("x"))
    with pytest.raises(ValueError, match="seed must be between 0"):
        session.start_run(RunSettings(seed=-1))


def test_one_loader_for_builtin_and_folders(make_bars, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data, text = load_dataset("builtin:shapes", 8, 3)
    assert data.input_shape == (3, 8, 8) and data.num_classes == 6
    assert text.startswith("2400 images in 6 classes, 8×8 RGB")
    data, text = load_dataset(str(make_bars(3, 0)))
    assert data.class_names == ["horizontal", "vertical"] and "horizontal: 3" in text
    for source, words in (
        (str(tmp_path / "missing"), "does not exist"),
        ("builtin:nope", "known: builtin:shapes"),
    ):
        with pytest.raises(DataError, match=words):
            load_dataset(source)


def test_split_keeps_single_image_classes_in_training_and_says_so() -> None:
    tiny = images(["a", "b"], 1)
    for fraction in (0.2, 0.6):  # the engine's split alone put both images in validation
        parts = split_dataset(tiny, fraction, 0)
        assert len(parts.y_train) == 2 and len(parts.y_val) == 0
        assert "no validation images" in (parts.note(fraction) or "")
    small = split_dataset(images(["a", "b"], 3), 0.05, 0)
    assert len(small.y_val) == 2 and "not the 5% asked" in (small.note(0.05) or "")
    usual = split_dataset(images(["a", "b"], 10), 0.2, 0)
    assert len(usual.y_val) == 4 and usual.note(0.2) is None


# -- networks ---------------------------------------------------------------------------


def test_explorer_stack_gets_a_head_and_the_explorer_layers_stay_untouched() -> None:
    conv = Conv2D(3, 4, 3, padding=1, rng=0)
    before = conv.params["weight"].copy()
    session = TrainingSession()
    session.set_explorer_layers([conv, Activation("relu")])
    session.use_dataset(images(["a", "b"], 6), DatasetChoice("x"))
    settings = RunSettings(arch=ARCH_EXPLORER, epochs=1, batch_size=4, frozen=frozenset({0}))
    preview = session.preview(settings)
    assert preview.shapes[0] == (3, 8, 8) and preview.shapes[-1] == (2,)
    assert [i for i, _ in preview.trainable] == [0, 3]
    train(session, settings)
    net = session.trained.network
    assert np.array_equal(net.layers[0].params["weight"], before), "frozen"
    assert np.array_equal(conv.params["weight"], before), "never modified"
    assert session.run.split.x_train.shape[1] == 3, "gray images repeated for the stack"
    assert session.trained.input_shape == (3, 8, 8)


def test_a_loaded_network_must_output_one_value_per_class() -> None:
    loaded = default_classifier((1, 8, 8), 3, seed=0)
    with pytest.raises(ValueError, match=r"outputs \(3,\) values but the dataset has 2"):
        build_network(ARCH_LOADED, (1, 8, 8), 2, 0, loaded=loaded)
    copy = build_network(ARCH_LOADED, (1, 8, 8), 3, 0, loaded=loaded)
    assert copy is not loaded and copy.output_shape((1, 8, 8)) == (3,)


# -- the trained model keeps its own class names -----------------------------------------


def test_a_model_refuses_class_names_that_do_not_match_its_outputs() -> None:
    net = default_classifier((1, 8, 8), 2, seed=0)
    with pytest.raises(ValueError, match="outputs 2 classes but 6 class names"):
        TrainedModel(net, list("abcdef"), (1, 8, 8))
    named = TrainedModel.from_file(net, {"class_names": ["x"], "input_shape": [1, 8, 8]}, "f")
    assert named.class_names == ["class 0", "class 1"] and named.input_shape == (1, 8, 8)


def test_loading_another_dataset_keeps_the_trained_class_names() -> None:
    """The saved-project bug: after training, loading a dataset with other classes replaced
    the class names while the trained network stayed, so the project file named 6 classes
    for a 2-output network and could not be opened again."""
    session = TrainingSession()
    session.use_dataset(images(["h", "v"], 6), DatasetChoice("bars"))
    train(session)
    six = images(list("abcdef"), 3)
    session.use_dataset(six, DatasetChoice("six"))
    model = session.trained
    assert model.class_names == ["h", "v"] and model.source == "memory:h-v"
    assert "does not fit the trained network" in (session.fit_problem() or "")
    with pytest.raises(ValueError, match="does not fit"):
        session.validation_images(0.2, 0)
    # a run on the new dataset replaces the model only with its first epoch-end copy
    run = session.start_run(FAST)
    assert session.trained is model
    events = run.events()
    while session.trained is model:
        session.observe(next(events))
    assert session.trained.class_names == list("abcdef")
    assert session.trained.network.output_shape((1, 8, 8)) == (6,)
    events.close()


def test_validation_images_of_a_fitting_dataset_match_the_run(tmp_path: Path) -> None:
    data = images(["h", "v"], 6)
    session = TrainingSession()
    session.use_dataset(data, DatasetChoice("bars"))
    train(session)
    expected = session.run.split
    path = tmp_path / "w.npz"
    session.save_weights(path)
    other = TrainingSession()
    assert other.load_weights(path) == "Loaded w.npz: 8 layers, 2 classes."
    other.use_dataset(data, DatasetChoice("bars"))
    got = other.validation_images(0.2, 0)
    assert np.array_equal(got.x_val, expected.x_val)
    x = expected.x_val
    logits = other.trained.network.predict_logits(x)
    assert np.array_equal(logits, session.trained.network.predict_logits(x))
    assert other.loaded is not other.trained and other.trained.origin == "w.npz"


def test_save_path_problems_are_found_before_training(tmp_path: Path) -> None:
    assert save_path_problem(tmp_path / "w.npz") is None
    assert "does not exist" in (save_path_problem(tmp_path / "nope" / "w.npz") or "")
    assert "is a folder" in (save_path_problem(tmp_path) or "")
    (tmp_path / "file").write_text("x")
    assert "is not a folder" in (save_path_problem(tmp_path / "file" / "w.npz") or "")


def test_runs_are_reproducible_and_report_how_they_ended() -> None:
    losses = []
    for _ in range(2):
        session = TrainingSession()
        session.use_dataset(images(["h", "v"], 6), DatasetChoice("bars"))
        train(session, RunSettings(epochs=2, batch_size=4, seed=3))
        losses.append([session.run.last.train_loss])
        text, error = session.run.finish_message("completed")
        assert text.startswith("Finished 2 epochs: validation accuracy") and not error
    assert losses[0] == losses[1]


# -- "Try an image" -----------------------------------------------------------------------


def test_a_tie_names_the_winner_once() -> None:
    """Equal probabilities: the winner is the first class, and the runners-up are the
    others (the ranking used to list the winner again)."""
    dense = Dense(4, 3, rng=0)
    dense.params["weight"][...] = 0
    dense.params["bias"][...] = 0
    result = predict(Network([Flatten(), dense]), np.ones((1, 2, 2), np.float32))
    assert np.allclose(result.probabilities, 1 / 3)
    assert result.ranking.tolist() == [0, 1, 2] and result.best == 0
    text = result.text(["cat", "dog", "emu"])
    assert text == "predicted <b>cat</b> (33.3%); then dog 33.3%, emu 33.3%"
    assert rank(np.array([0.2, 0.4, 0.4])).tolist() == [1, 2, 0]
    assert rank(np.array([np.nan, 0.5])).tolist() == [1, 0]
