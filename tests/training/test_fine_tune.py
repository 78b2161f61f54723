"""Fine-tuning an imported graph network on the user's image folder: the model's own
preprocessing, the chosen layers frozen (bit for bit, BatchNorm statistics included), a new
classifier layer when the folder has another class count, and saving it (weights file and
project) as a graph. Plain pytest through the Qt-free session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.engine.graph import Graph
from cnn_explorer.explorer.project import TrainedState, read_project, save_project
from cnn_explorer.explorer.specs import worked_example_layers
from cnn_explorer.interchange.model import Preprocessing
from cnn_explorer.training.data import load_dataset
from cnn_explorer.training.events import conv_filters
from cnn_explorer.training.networks import ARCH_LOADED, classifier_index, replace_classifier
from cnn_explorer.training.prediction import predict
from cnn_explorer.training.session import TrainingSession
from cnn_explorer.training.settings import DatasetChoice, RunSettings

PREP = {
    "input_shape": [3, 8, 8],
    "colour": "rgb",
    "scale": 1 / 255,
    "mean": [0.5],
    "std": [0.25],
    "class_names": ["horizontal", "vertical"],
}
"""The ``tiny_residual`` fixture's preprocessing (as the ``tiny_preprocessing`` fixture)."""


@pytest.fixture
def residual(tiny_residual: Callable[..., Graph]) -> Callable[..., Graph]:
    return tiny_residual


def session_for(folder: Path, graph: Graph, prep: dict | None = None) -> TrainingSession:
    """A session that adopted ``graph`` as an imported model and loaded ``folder`` in RGB
    at the model's size, as "Open in training" then "Load" do."""
    session = TrainingSession(lambda record: Preprocessing.from_dict(record).apply_batch)
    session.adopt_imported(graph, prep or PREP, "tiny.onnx")
    data, summary = load_dataset(str(folder), 8, 3)
    session.use_dataset(data, DatasetChoice(str(folder), 8, 3), summary)
    return session


def train(session: TrainingSession, settings: RunSettings) -> None:
    run = session.start_run(settings)
    for event in run.events():
        session.observe(event)


@pytest.fixture(scope="module")
def folder(make_bars: Callable[[int, int], Path]) -> Path:
    return make_bars(6, 11)


def test_fine_tuning_trains_only_the_unfrozen_layers_bit_for_bit(
    residual: Callable[..., Graph], folder: Path
) -> None:
    graph = residual()
    session = session_for(folder, graph)
    base = RunSettings(arch=ARCH_LOADED, epochs=2, batch_size=4, lr=0.05, val_split=0.25)
    preview = session.preview(base)
    names = [text for _, text in preview.trainable]
    assert names == [
        "1. stem: " + graph.node("stem").layer.describe(),
        "2. bn: " + graph.node("bn").layer.describe(),
        "4. conv: " + graph.node("conv").layer.describe(),
        "9. fc: " + graph.node("fc").layer.describe(),
    ]
    assert preview.default_frozen == {0, 1, 3}  # everything but the last layer
    before = {k: v.copy() for k, v in graph.state_arrays().items()}
    train(session, RunSettings(**{**base.__dict__, "frozen": preview.default_frozen}))
    model = session.trained
    assert model is not None and isinstance(model.network, Graph)
    after = model.network.state_arrays()
    for key, value in before.items():
        if key.startswith("fc."):
            assert not np.array_equal(after[key], value), key
        else:  # frozen: conv weights and BN's gamma, beta and running statistics alike
            assert np.array_equal(after[key], value), key
            assert after[key].dtype == value.dtype
    assert model.class_names == ["horizontal", "vertical"]
    assert model.preprocessing is not None
    assert model.preprocessing["class_names"] == ["horizontal", "vertical"]
    run = session.run
    assert run is not None and run.split.x_train.min() < 0  # (x·1/255 − 0.5) / 0.25


def test_unfrozen_layers_all_change(residual: Callable[..., Graph], folder: Path) -> None:
    graph = residual()
    session = session_for(folder, graph)
    before = {k: v.copy() for k, v in graph.state_arrays().items()}
    train(session, RunSettings(arch=ARCH_LOADED, epochs=1, batch_size=4, lr=0.05))
    assert session.trained is not None
    after = session.trained.network.state_arrays()
    changed = {k.split(".")[0] for k in before if not np.array_equal(before[k], after[k])}
    assert changed == {"stem", "bn", "conv", "fc"}


def test_the_run_reads_the_folder_through_the_model_preprocessing(
    residual: Callable[..., Graph], folder: Path
) -> None:
    session = session_for(folder, residual())
    data = session.data
    assert data is not None
    run = session.start_run(RunSettings(arch=ARCH_LOADED, epochs=1, val_split=0.25))
    expected = Preprocessing.from_dict(PREP).apply_batch(data.images)
    everything = np.concatenate([run.split.x_train, run.split.x_val])
    assert sorted(map(bytes, everything)) == sorted(map(bytes, expected))


def test_another_class_count_offers_a_new_classifier_layer(
    residual: Callable[..., Graph], folder: Path
) -> None:
    graph = residual(classes=5)
    prep = {**PREP, "class_names": []}
    session = session_for(folder, graph, prep)
    settings = RunSettings(arch=ARCH_LOADED, epochs=1, batch_size=4, lr=0.05)
    question = session.head_mismatch(settings)
    assert question is not None and "fc (Dense 4→5)" in question and "2" in question
    with pytest.raises(ValueError, match="classifier layer fc"):
        session.start_run(settings)
    yes = RunSettings(**{**settings.__dict__, "new_head": True, "frozen": frozenset({0, 1, 3})})
    assert session.head_mismatch(yes) is None
    assert session.preview(yes).shapes[-1] == (2,)
    train(session, yes)
    model = session.trained
    assert model is not None and model.network.output_shape((3, 8, 8)) == (2,)
    assert model.class_names == ["horizontal", "vertical"]
    for key, value in graph.state_arrays().items():
        if not key.startswith("fc."):
            assert np.array_equal(model.network.state_arrays()[key], value), key


def test_replace_classifier_keeps_the_graph_and_refuses_a_model_without_one(
    residual: Callable[..., Graph],
) -> None:
    graph = residual(classes=5, softmax=True)
    assert classifier_index(graph) == 8  # through the final Softmax
    new = replace_classifier(graph, 3, seed=1)
    assert isinstance(new, Graph) and [n.name for n in new] == [n.name for n in graph]
    assert new.output_shape((3, 8, 8)) == (3,)
    assert graph.output_shape((3, 8, 8)) == (5,)  # the original is untouched
    no_head = Graph(list(graph.nodes)[:5])
    with pytest.raises(ValueError, match="no classifier layer"):
        replace_classifier(no_head, 3, seed=1)


def test_an_imported_softmax_is_left_out_and_predictions_are_the_same(
    residual: Callable[..., Graph], folder: Path
) -> None:
    graph = residual(softmax=True)
    session = session_for(folder, graph)
    model = session.trained
    assert model is not None and isinstance(model.network, Graph)
    assert model.network.output == "fc"
    image = Preprocessing.from_dict(PREP).apply_batch(np.full((1, 3, 8, 8), 0.3, np.float32))[0]
    result = predict(model.network, image)
    np.testing.assert_allclose(result.probabilities, graph(image[None])[0], rtol=1e-5)
    assert result.maps[0].shape == (1, 3, 8, 8) and len(result.maps) == 10


def test_a_graph_model_saves_and_loads_as_weights_and_in_a_project(
    residual: Callable[..., Graph], folder: Path, tmp_path: Path
) -> None:
    session = session_for(folder, residual())
    train(session, RunSettings(arch=ARCH_LOADED, epochs=1, batch_size=4))
    model = session.trained
    assert model is not None
    session.save_weights(tmp_path / "tuned.npz")
    again = TrainingSession()
    again.load_weights(tmp_path / "tuned.npz")
    assert again.trained is not None and isinstance(again.trained.network, Graph)
    assert again.trained.preprocessing == model.preprocessing
    for key, value in model.network.state_arrays().items():
        assert np.array_equal(again.trained.network.state_arrays()[key], value)

    state = TrainedState(
        model.network.copy(), model.class_names, model.input_shape, model.extra, model.history
    )
    path = str(tmp_path / "p.cnnx")
    save_project(path, np.zeros((1, 6, 6), np.float32), worked_example_layers(), state)
    project = read_project(path)
    restored = project.trained
    assert restored is not None and isinstance(restored.network, Graph)
    assert [n.name for n in restored.network] == [n.name for n in model.network]
    assert restored.extra["preprocessing"] == model.preprocessing
    assert restored.history is not None and restored.history.snapshots
    titles = [title for title, _ in conv_filters(restored.network)]
    assert titles == ["layer 1 conv (stem)", "layer 4 conv (conv)"]
    x = np.random.default_rng(2).random((2, 3, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(restored.network(x), model.network(x))
