"""Network files: round trips, atomic writes, no pickle, clear errors for bad files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.engine.layers import Activation, BatchNorm2D, Conv2D, Dropout, MaxPool2D
from cnn_explorer.engine.network import Network, default_classifier, with_classifier_head
from cnn_explorer.engine.serialize import (
    FORMAT_VERSION,
    FileFormatError,
    decode_json,
    encode_json,
    load_network,
    load_npz_safe,
    network_from_state,
    network_to_state,
    save_network,
    save_npz_atomic,
)


def sample_network() -> Network:
    convs = [
        Conv2D(1, 3, 3, padding="same", padding_mode="replicate", rng=0),
        BatchNorm2D(3),
        Activation("leaky_relu", negative_slope=0.2),
        Dropout(0.1),
        MaxPool2D(2),
    ]
    net = with_classifier_head(convs, (1, 6, 6), 4, seed=1)
    net.layers[1].buffers["running_var"][...] = [1.5, 2.0, 0.5]
    net.layers[0].frozen = True
    net.layers[3].enabled = False
    return net


def test_state_round_trip_is_json_safe() -> None:
    net = sample_network()
    config, arrays = network_to_state(net)
    assert config["version"] == FORMAT_VERSION
    config = json.loads(json.dumps(config))
    clone = network_from_state(config, arrays)
    assert clone.to_dict() == net.to_dict()
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 6)).astype(np.float32)
    np.testing.assert_array_equal(clone(x), net(x))
    arrays["0.weight"][...] = 0  # copies, not the live arrays
    assert net.layers[0].weight.any()


def test_file_round_trip(tmp_path: Path) -> None:
    net = sample_network()
    path = tmp_path / "net.npz"
    save_network(path, net, extra={"classes": ["a", "b", "c", "d"], "input_shape": [1, 6, 6]})
    clone, extra = load_network(path)
    assert extra == {"classes": ["a", "b", "c", "d"], "input_shape": [1, 6, 6]}
    assert clone.to_dict() == net.to_dict()
    for (ka, a), (kb, b) in zip(
        clone.state_arrays().items(), net.state_arrays().items(), strict=True
    ):
        assert ka == kb and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]


def test_save_npz_atomic_replaces_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    save_npz_atomic(path, {"a": np.arange(3)})
    save_npz_atomic(path, {"b": np.ones((2, 2), np.float32)})
    data = load_npz_safe(path)
    assert list(data) == ["b"] and data["b"].dtype == np.float32
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz"]
    assert (path.stat().st_mode & 0o777) == 0o644


def test_array_names_cannot_collide_with_savez_keywords(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    save_npz_atomic(path, {"allow_pickle": np.arange(2), "file": np.ones(1)})
    assert sorted(load_npz_safe(path)) == ["allow_pickle", "file"]


def test_failed_save_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "data.npz"
    save_npz_atomic(path, {"a": np.arange(3)})
    with pytest.raises(ValueError, match="Python objects"):
        save_npz_atomic(path, {"bad": np.array([{"x": 1}], dtype=object)})

    class Boom:
        def __array__(self, dtype=None, copy=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        save_npz_atomic(path, {"a": np.arange(2), "b": Boom()})  # type: ignore[dict-item]
    np.testing.assert_array_equal(load_npz_safe(path)["a"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.npz"]


def test_load_rejects_pickles(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(FileFormatError, match="not a readable array file"):
        load_npz_safe(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"not a zip at all", b"PK\x03\x04" + b"\x00" * 40],
    ids=["empty", "text", "broken zip"],
)
def test_load_rejects_malformed_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(FileFormatError):
        load_npz_safe(path)
    with pytest.raises(FileFormatError):
        load_network(path)


def test_load_rejects_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "net.npz"
    save_network(path, default_classifier((1, 8, 8), 3))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError):
        load_network(path)


def test_load_rejects_plain_npy(tmp_path: Path) -> None:
    path = tmp_path / "one.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.arange(3))
    with pytest.raises(FileFormatError, match=r"not an \.npz archive"):
        load_npz_safe(path)


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_npz_safe(tmp_path / "nope.npz")


def _write_config(path: Path, config: object, arrays: dict | None = None) -> None:
    save_npz_atomic(path, {"__config__": encode_json(config), **(arrays or {})})


def test_future_and_missing_versions_get_clear_messages(tmp_path: Path) -> None:
    path = tmp_path / "net.npz"
    config, _ = network_to_state(default_classifier((1, 8, 8), 3))
    _write_config(path, {**config, "version": FORMAT_VERSION + 1})
    with pytest.raises(FileFormatError, match=r"format version 2, newer .* update CNN Explorer"):
        load_network(path)
    _write_config(path, {k: v for k, v in config.items() if k != "version"})
    with pytest.raises(FileFormatError, match="no valid format version"):
        load_network(path)
    _write_config(path, [1, 2, 3])
    with pytest.raises(FileFormatError, match="not a dictionary"):
        load_network(path)


def test_bad_content_gets_file_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "net.npz"
    save_npz_atomic(path, {"weights": np.zeros(3)})
    with pytest.raises(FileFormatError, match="no description inside"):
        load_network(path)
    config, arrays = network_to_state(default_classifier((1, 8, 8), 3))
    prefixed = {f"param/{k}": v for k, v in arrays.items()}
    del prefixed["param/0.weight"]
    _write_config(path, config, prefixed)
    with pytest.raises(FileFormatError, match=r"lacks arrays \['0.weight'\]"):
        load_network(path)
    prefixed["param/0.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    _write_config(path, config, prefixed)
    with pytest.raises(FileFormatError, match="invalid layer"):
        load_network(path)
    _write_config(path, {**config, "layers": [{"kind": "bogus"}]})
    with pytest.raises(FileFormatError, match="unknown layer kind"):
        load_network(path)
    _write_config(path, {**config, "format": "something-else"})
    with pytest.raises(FileFormatError, match="not a network file"):
        load_network(path)
    save_npz_atomic(path, {"__config__": np.frombuffer(b"\xff\xfe{", np.uint8)})
    with pytest.raises(FileFormatError, match="damaged"):
        load_network(path)


def test_json_helpers_refuse_nan() -> None:
    assert decode_json(encode_json({"a": [1, 2.5, "x"]})) == {"a": [1, 2.5, "x"]}
    with pytest.raises(ValueError):
        encode_json({"a": float("nan")})


def test_file_format_error_is_a_value_error() -> None:
    assert issubclass(FileFormatError, ValueError)
    assert os.path.basename(__file__) == "test_serialize.py"
