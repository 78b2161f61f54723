"""Network files: round trips, atomic writes, no pickle, clear errors for bad files."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnn_explorer.engine.archive import MAX_MEMBERS, ArraySpec
from cnn_explorer.engine.layers import Activation, BatchNorm2D, Conv2D, Dropout, MaxPool2D
from cnn_explorer.engine.network import Network, default_classifier, with_classifier_head
from cnn_explorer.engine.serialize import (
    FORMAT_VERSION,
    FileFormatError,
    decode_json,
    encode_json,
    load_network,
    load_npz_safe,
    network_from_config,
    network_from_state,
    network_to_state,
    output_count,
    remove_stale_temps,
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
    with pytest.raises(FileFormatError, match=r"holds Python objects \(pickled data\)"):
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
    with pytest.raises(FileFormatError, match=r"0.weight has shape \(1, 1, 1, 1\), expected \(8,"):
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


# --------------------------------------------------------------------------------------
# bounded reading (engine.archive) and what a network file must hold
# --------------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> None:
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def test_fortran_order_and_big_endian_arrays_read_exactly(tmp_path: Path) -> None:
    a = np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4))
    b = np.arange(5, dtype=">f4")
    path = tmp_path / "mixed.npz"
    _zip(path, {"a.npy": _npy(a), "b.npy": _npy(b), "notes.txt": b"ignored"}, zipfile.ZIP_DEFLATED)
    data = load_npz_safe(path)
    assert sorted(data) == ["a", "b"]
    np.testing.assert_array_equal(data["a"], a)
    np.testing.assert_array_equal(data["b"], b)


def test_load_npz_safe_caps_the_total_bytes(tmp_path: Path) -> None:
    path = tmp_path / "big.npz"
    save_npz_atomic(path, {"a": np.zeros(1000, np.float32)})
    with pytest.raises(FileFormatError, match=r"would unpack to|has shape"):
        load_npz_safe(path, max_bytes=1000)
    assert load_npz_safe(path, max_bytes=4000)["a"].shape == (1000,)


def test_archive_structure_is_refused_before_zipfile_parses_it(tmp_path: Path) -> None:
    many = tmp_path / "many.npz"
    _zip(many, {f"{i}.npy": b"" for i in range(MAX_MEMBERS + 1)})
    with pytest.raises(FileFormatError, match="too many entries"):
        load_npz_safe(many)
    odd = tmp_path / "bz2.npz"
    _zip(odd, {"a.npy": _npy(np.ones(3))}, zipfile.ZIP_BZIP2)
    with pytest.raises(FileFormatError, match="unsupported compression"):
        load_npz_safe(odd)
    text = tmp_path / "weights.npz"
    text.write_text("layer 1: 0.5 0.25\n")
    with pytest.raises(FileFormatError, match=r"weights\.npz is a text file, not a NumPy archive"):
        load_network(text)
    folder = tmp_path / "dir.npz"
    folder.mkdir()
    with pytest.raises(FileFormatError, match=r"dir\.npz is a folder"):
        load_network(folder)


def test_npy_headers_are_length_capped_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "h.npz"
    huge_len = b"\x93NUMPY\x02\x00" + (10**9).to_bytes(4, "little") + b"{"
    _zip(path, {"a.npy": huge_len})
    with pytest.raises(FileFormatError, match="oversized header"):
        load_npz_safe(path)
    bad = b"\x93NUMPY\x01\x00" + (16).to_bytes(2, "little") + b"__import__('os') "
    _zip(path, {"a.npy": bad})
    with pytest.raises(FileFormatError, match="damaged header"):
        load_npz_safe(path)
    spec = ArraySpec((2, (1, 4)), "f", 8, "the grid")
    assert spec.admits((2, 3)) and not spec.admits((2, 5)) and not spec.admits((2,))
    assert spec.describe() == "(2, 1..4)"


def test_non_finite_weights_are_refused(tmp_path: Path) -> None:
    net = default_classifier((1, 8, 8), 3)
    net.layers[0].params["weight"][0, 0, 0, 0] = np.inf
    path = tmp_path / "inf.npz"
    save_network(path, net)
    with pytest.raises(FileFormatError, match=r"inf\.npz has weights that are not finite"):
        load_network(path)


def test_class_names_must_match_the_outputs(tmp_path: Path) -> None:
    net = default_classifier((1, 8, 8), 3)
    path = tmp_path / "n.npz"
    save_network(path, net, {"class_names": ["a", "b"]})
    with pytest.raises(FileFormatError, match=r"outputs \(3,\) values but the file names 2"):
        load_network(path)
    save_network(path, net, {"class_names": ["a", "b", "c"], "input_shape": [2, 8, 8]})
    with pytest.raises(FileFormatError, match="invalid input shape"):
        load_network(path)
    save_network(path, net, {"class_names": ["a", "b", "c"], "input_shape": [1, 8, 8]})
    assert load_network(path)[1]["class_names"] == ["a", "b", "c"]
    assert output_count(net) == 3 and output_count(net, (1, 8, 8)) == 3


def test_a_huge_description_is_refused_before_anything_is_allocated() -> None:
    config, _ = network_to_state(default_classifier((1, 8, 8), 3))
    config["layers"][-1].update(in_features=200_000, out_features=200_000)
    tracemalloc.start()
    try:
        with pytest.raises(
            FileFormatError, match="has 40,000,201,248 parameters, more than the 67,108,864"
        ):
            network_from_config(config)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20
    config["layers"][-1].update(in_features="many")
    with pytest.raises(FileFormatError, match="invalid in_features 'many'"):
        network_from_config(config)
    config["layers"] = [{"kind": "activation", "activation": "relu"}] * 300
    with pytest.raises(FileFormatError, match="300 layers"):
        network_from_config(config)


def test_stale_temp_files_of_killed_saves_are_removed(tmp_path: Path) -> None:
    old = 1_000_000_000
    names = {
        ".net.npz.a1b2c3d4.tmp": True,  # ours, stale
        ".p.cnnx.zz__zz99.tmp": True,  # ours, stale
        ".net.npz.fresh000.tmp": False,  # ours, but a save may be writing it
        ".a.png.a1b2c3d4.tmp": False,  # not a file we save
        ".net.npz.short.tmp": False,  # not mkstemp's pattern
    }
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
        if name != ".net.npz.fresh000.tmp":
            os.utime(tmp_path / name, (old, old))
    save_npz_atomic(tmp_path / "data.npz", {"a": np.arange(2)})
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"data.npz"} | {n for n, stale in names.items() if not stale}
    assert remove_stale_temps(tmp_path, age=-1) == 1  # only the fresh one was left of ours
