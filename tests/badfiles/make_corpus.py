"""Generate the bad-file corpus: every malformed file from the catalogue, built from scratch.

No hand-edited binaries are committed: each case is written by a function here from a
good file the app saved itself (or from raw zip / DEFLATE / image bytes built below), so
the corpus documents *how* each file is bad. ``python tests/badfiles/make_corpus.py OUT``
writes it to a folder and lists the cases; the tests call :func:`make` into a temp folder.

Each :class:`Case` says which public loader must read the file and what the user must see:
``expect`` is a piece of the one-line error message, or ``""`` when the file must open
(an archive bomb hidden in a member nobody refers to is simply ignored).
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
for _path in (ROOT, HERE):  # run as a script from anywhere
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from rawbytes import (  # noqa: E402
    BOMB_BYTES,
    Member,
    deflate_member,
    image_bytes,
    npy,
    npy_header,
    stored,
    zip_bytes,
)

from cnn_explorer.engine.network import default_classifier  # noqa: E402
from cnn_explorer.engine.serialize import encode_json, network_to_state  # noqa: E402
from cnn_explorer.explorer.project import TrainedState, save_project  # noqa: E402
from cnn_explorer.explorer.specs import act_spec, conv_spec, pool_spec  # noqa: E402

HEADER_BOMB_SHAPE = (1_100_000_000,)
"""A ``.npy`` header claiming 4.4 GB of float32 over a few bytes of data."""


@dataclass(frozen=True)
class Case:
    """One bad file: ``loader`` is "project", "network" or "image"; ``expect`` a piece of
    the error message ("" = must open); ``note`` what is wrong with it."""

    name: str
    loader: str
    expect: str
    note: str


CASES: list[tuple[Case, Callable[[Path], None]]] = []


def case(name: str, loader: str, expect: str, note: str) -> Callable[..., Any]:
    """Register a generator writing ``name`` into a folder."""

    def register(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        CASES.append((Case(name, loader, expect, note), fn))
        return fn

    return register


def make(out: Path, loader: str | None = None) -> list[Case]:
    """Write every case (or those of one loader) into ``out``; returns the cases."""
    out.mkdir(parents=True, exist_ok=True)
    made = []
    for c, fn in CASES:
        if loader is None or c.loader == loader:
            fn(out / c.name)
            made.append(c)
    return made


# --------------------------------------------------------------------------- projects
X = np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8)


def good_layers() -> list[Any]:
    """conv 1→2 3×3 (arrays layer0.weight / layer0.bias), leaky ReLU, 2×2 max pool."""
    return [conv_spec(1, 2, (3, 3), seed=1), act_spec("leaky_relu", 0.1), pool_spec()]


def trained_state(classes: int = 3) -> TrainedState:
    names = [f"c{i}" for i in range(classes)]
    return TrainedState(default_classifier((1, 8, 8), classes, seed=2), names, (1, 8, 8))


def project_parts(trained: TrainedState | None = None) -> tuple[dict[str, Any], dict]:
    """``(meta, arrays)`` of a good project saved by the app itself."""
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base.cnnx"
        save_project(str(base), X, good_layers(), trained)
        buf = io.BytesIO(base.read_bytes())
    with zipfile.ZipFile(buf) as zf:
        meta = json.loads(zf.read("project.json"))
        with np.load(io.BytesIO(zf.read("arrays.npz")), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


def write_project(
    path: Path,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    inner_extra: tuple[Member, ...] = (),
    replace: dict[str, Member] | None = None,
    outer: Member | None = None,
) -> None:
    """A project zip from parts; members may be replaced by raw (bad) ones."""
    replace = replace or {}
    inner = [replace.get(k, stored(f"{k}.npy", npy(v))) for k, v in arrays.items()]
    inner_bytes = zip_bytes([*inner, *inner_extra])
    meta_bytes = json.dumps(meta).encode()
    path.write_bytes(
        zip_bytes([stored("project.json", meta_bytes), outer or stored("arrays.npz", inner_bytes)])
    )


def edited(edit: Callable[[dict[str, Any], dict], None]) -> Callable[[Path], None]:
    """A generator writing the good project after ``edit(meta, arrays)``."""

    def write(path: Path) -> None:
        meta, arrays = project_parts()
        edit(meta, arrays)
        write_project(path, meta, arrays)

    return write


def _conv(meta: dict[str, Any]) -> dict[str, Any]:
    return meta["layers"][0]["config"]


def _set(layer: int, key: str, value: object) -> Callable[[dict[str, Any], dict], None]:
    def edit(meta: dict[str, Any], arrays: dict) -> None:
        meta["layers"][layer]["config"][key] = value

    return edit


HONEST_GB = npy_header((BOMB_BYTES // 4,))


@case("bomb_unreferenced.cnnx", "project", "", "inner member nobody refers to unpacks to 1 GiB")
def _bomb_unreferenced(path: Path) -> None:
    meta, arrays = project_parts()
    write_project(path, meta, arrays, (deflate_member("junk.npy", HONEST_GB),))


@case("bomb_header_unreferenced.cnnx", "project", "", "unreferenced .npy header claims 4.4 GB")
def _bomb_header_unreferenced(path: Path) -> None:
    meta, arrays = project_parts()
    junk = stored("junk.npy", npy_header(HEADER_BOMB_SHAPE) + bytes(16))
    write_project(path, meta, arrays, (junk,))


@case("bomb_input.cnnx", "project", "the input would unpack to", "input member unpacks to 1 GiB")
def _bomb_input(path: Path) -> None:
    meta, arrays = project_parts()
    bomb = deflate_member("input.npy", npy_header((1, 8, 8)))
    write_project(path, meta, arrays, replace={"input": bomb})


@case("bomb_input_header.cnnx", "project", "the input has shape (3, 40000, 40000)", "header lie")
def _bomb_input_header(path: Path) -> None:
    meta, arrays = project_parts()
    bomb = stored("input.npy", npy_header((3, 40000, 40000)) + bytes(64))
    write_project(path, meta, arrays, replace={"input": bomb})


@case("bomb_input_lying.cnnx", "project", "the input is damaged", "declares 320 B, unpacks 1 GiB")
def _bomb_input_lying(path: Path) -> None:
    meta, arrays = project_parts()
    prefix = npy(arrays["input"])
    bomb = deflate_member("input.npy", prefix, declared=len(prefix))
    write_project(path, meta, arrays, replace={"input": bomb})


@case("bomb_outer.cnnx", "project", "arrays.npz would unpack to", "arrays.npz unpacks to 1 GiB")
def _bomb_outer(path: Path) -> None:
    meta, arrays = project_parts()
    inner = zip_bytes([stored(f"{k}.npy", npy(v)) for k, v in arrays.items()])
    write_project(path, meta, arrays, outer=deflate_member("arrays.npz", inner))


@case("bomb_outer_lying.cnnx", "project", "arrays.npz is damaged", "arrays.npz size is a lie")
def _bomb_outer_lying(path: Path) -> None:
    meta, arrays = project_parts()
    inner = zip_bytes([stored(f"{k}.npy", npy(v)) for k, v in arrays.items()])
    outer = deflate_member("arrays.npz", inner, declared=len(inner) + 100)
    write_project(path, meta, arrays, outer=outer)


for _name, _layer, _key, _value, _expect in [
    (
        "slope_text",
        1,
        "slope",
        "abc",
        "layer 2 (act): slope must be a number from 0 to 1, not 'abc'",
    ),
    ("slope_nan", 1, "slope", float("nan"), "slope must be a number from 0 to 1, not nan"),
    ("slope_big", 1, "slope", 5, "slope must be a number from 0 to 1, not 5"),
    ("padding_list", 0, "padding", [1, 1], "padding must be a whole number from 0 to 16"),
    ("padding_fraction", 0, "padding", 1.7, 'or "valid", not 1.7'),
    ("padding_mode", 0, "padding_mode", "mirror", 'padding_mode must be "zeros"'),
    (
        "pool_padding_same",
        2,
        "padding",
        "same",
        "padding must be a whole number from 0 to 7, not 'same'",
    ),
    ("stride_50", 0, "stride", [50, 50], "stride must be two whole numbers from 1 to 15"),
    ("dilation_10", 0, "dilation", [10, 1], "dilation must be two whole numbers from 1 to 8"),
    ("bias_flag_text", 0, "bias", "yes", "bias must be true or false, not 'yes'"),
    ("filters_bool", 0, "filters", True, "filters must be a whole number from 1 to 64, not True"),
]:
    case(f"{_name}.cnnx", "project", _expect, f"{_key} = {_value!r}")(
        edited(_set(_layer, _key, _value))
    )


def _enabled_text(meta: dict[str, Any], arrays: dict) -> None:
    meta["layers"][0]["enabled"] = "no"


def _bias_shape(meta: dict[str, Any], arrays: dict) -> None:
    arrays["layer0.bias"] = np.zeros(3, np.float32)


def _kernel_20(meta: dict[str, Any], arrays: dict) -> None:
    _conv(meta)["kernel"] = [20, 20]
    arrays["layer0.weight"] = np.zeros((2, 1, 20, 20), np.float32)


def _filters_2000(meta: dict[str, Any], arrays: dict) -> None:
    _conv(meta)["filters"] = 2000
    arrays["layer0.weight"] = np.zeros((2000, 1, 3, 3), np.float32)
    arrays["layer0.bias"] = np.zeros(2000, np.float32)


def _layers_3000(meta: dict[str, Any], arrays: dict) -> None:
    meta["layers"] = [meta["layers"][1]] * 3000


def _unknown_kind(meta: dict[str, Any], arrays: dict) -> None:
    meta["layers"][2]["kind"] = "dense"


def _pickled_input(meta: dict[str, Any], arrays: dict) -> None:
    arrays["input"] = np.array([{"run": "code"}], dtype=object)


for _name, _edit, _expect in [
    ("enabled_text", _enabled_text, "layer 1 (conv): enabled must be true or false, not 'no'"),
    ("bias_shape", _bias_shape, "layer 1 bias has shape (3,), expected (2,)"),
    ("kernel_20", _kernel_20, "kernel must be two whole numbers from 1 to 15"),
    ("filters_2000", _filters_2000, "filters must be a whole number from 1 to 64, not 2000"),
    ("layers_3000", _layers_3000, "has 3000 layers; the explorer holds at most 32"),
    ("unknown_kind", _unknown_kind, "layer 3 has an unknown kind 'dense'"),
]:
    case(f"{_name}.cnnx", "project", _expect, _name.replace("_", " "))(edited(_edit))


@case("pickled_input.cnnx", "project", "the input holds Python objects", "object array")
def _pickled(path: Path) -> None:
    meta, arrays = project_parts()
    buf = io.BytesIO()
    np.save(buf, np.array([{"run": "code"}], dtype=object), allow_pickle=True)
    write_project(path, meta, arrays, replace={"input": stored("input.npy", buf.getvalue())})


@case("json_deep.cnnx", "project", "project.json is damaged", "JSON nested 100,000 deep")
def _json_deep(path: Path) -> None:
    path.write_bytes(
        zip_bytes([stored("project.json", b"[" * 100_000), stored("arrays.npz", zip_bytes([]))])
    )


@case("maps_too_big.cnnx", "project", "MB for its feature maps", "padding grows every map")
def _maps_too_big(path: Path) -> None:
    x = np.zeros((3, 512, 512), np.float32)
    layers = [conv_spec(3 if i == 0 else 64, 64, (1, 1), padding=16) for i in range(32)]
    save_project(str(path), x, layers)


def _trained_edit(edit: Callable[[dict[str, Any], dict], None]) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        meta, arrays = project_parts(trained_state())
        edit(meta, arrays)
        write_project(path, meta, arrays)

    return write


def _trained_nan(meta: dict[str, Any], arrays: dict) -> None:
    for k in arrays:
        if k.startswith("trained/"):
            arrays[k] = np.full(arrays[k].shape, np.nan, np.float32)


def _trained_names(meta: dict[str, Any], arrays: dict) -> None:
    meta["trained"]["class_names"] = ["cat", "dog"]
    meta["trained"]["input_shape"] = None


def _trained_huge(meta: dict[str, Any], arrays: dict) -> None:
    meta["trained"]["network"]["layers"][-1].update(in_features=100_000, out_features=100_000)


for _name, _edit, _expect in [
    ("trained_nan", _trained_nan, "the trained network has weights that are not finite"),
    ("trained_names", _trained_names, "outputs (3,) values but the file names 2 classes"),
    ("trained_huge", _trained_huge, "parameters, more than"),
]:
    case(f"{_name}.cnnx", "project", _expect, _name.replace("_", " "))(_trained_edit(_edit))


# --------------------------------------------------------------------------- networks
def network_parts(extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict]:
    """``(config, arrays)`` of a good 3-class network file (arrays keyed "param/…")."""
    config, arrays = network_to_state(default_classifier((1, 8, 8), 3, seed=2))
    config["extra"] = extra if extra is not None else {"class_names": ["a", "b", "c"]}
    return config, {f"param/{k}": v for k, v in arrays.items()}


def write_network(
    path: Path,
    config: dict[str, Any],
    arrays: dict,
    extra: tuple[Member, ...] = (),
    raw: dict[str, Member] | None = None,
) -> None:
    """A network file from parts; ``raw`` replaces the member of an entry ("param/0.weight",
    "__config__") by a raw (bad) one, ``extra`` adds members."""
    raw = raw or {}
    entries = {"__config__": encode_json(config), **arrays}
    members = [raw.get(k, stored(f"{k}.npy", npy(v))) for k, v in entries.items()]
    path.write_bytes(zip_bytes([*members, *extra]))


@case("weights_nan.npz", "network", "weights that are not finite", "all weights NaN")
def _weights_nan(path: Path) -> None:
    config, arrays = network_parts()
    arrays = {k: np.full(v.shape, np.nan, np.float32) for k, v in arrays.items()}
    write_network(path, config, arrays)


@case("weights_names.npz", "network", "outputs (3,) values but the file names 2 classes", "")
def _weights_names(path: Path) -> None:
    config, arrays = network_parts({"class_names": ["cat", "dog"]})
    write_network(path, config, arrays)


@case("weights_text.npz", "network", "is a text file, not a NumPy archive (.npz)", "text")
def _weights_text(path: Path) -> None:
    path.write_text("these are my weights, honest\n")


@case("weights_npy.npz", "network", "holds a single array (.npy), not an .npz archive", "")
def _weights_npy(path: Path) -> None:
    path.write_bytes(npy(np.arange(3)))


@case("weights_bomb_unreferenced.npz", "network", "", "unreferenced member unpacks to 1 GiB")
def _weights_bomb_unreferenced(path: Path) -> None:
    config, arrays = network_parts()
    write_network(path, config, arrays, (deflate_member("param/junk.npy", HONEST_GB),))


@case("weights_bomb_param.npz", "network", "array 0.weight would unpack to", "1 GiB weight")
def _weights_bomb_param(path: Path) -> None:
    config, arrays = network_parts()
    bomb = deflate_member("param/0.weight.npy", npy_header((8, 1, 3, 3)))
    write_network(path, config, arrays, raw={"param/0.weight": bomb})


@case("weights_header_bomb.npz", "network", "has shape (1100000000,)", "weight header lie")
def _weights_header_bomb(path: Path) -> None:
    config, arrays = network_parts()
    bomb = stored("param/0.weight.npy", npy_header(HEADER_BOMB_SHAPE) + bytes(16))
    write_network(path, config, arrays, raw={"param/0.weight": bomb})


@case("weights_config_bomb.npz", "network", "its description would unpack to", "1 GiB JSON")
def _weights_config_bomb(path: Path) -> None:
    config, arrays = network_parts()
    bomb = deflate_member("__config__.npy", npy_header((BOMB_BYTES,), "|u1"))
    write_network(path, config, arrays, raw={"__config__": bomb})


@case("weights_huge_dense.npz", "network", "parameters, more than", "Dense 100000×100000")
def _weights_huge_dense(path: Path) -> None:
    config, arrays = network_parts()
    config["layers"][-1].update(in_features=100_000, out_features=100_000)
    write_network(path, config, arrays)


@case("weights_pickle.npz", "network", "holds Python objects (pickled data)", "object array")
def _weights_pickle(path: Path) -> None:
    config, arrays = network_parts()
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    pickled = stored("param/0.weight.npy", buf.getvalue())
    write_network(path, config, arrays, raw={"param/0.weight": pickled})


# --------------------------------------------------------------------------- images
for _fmt in ("JPEG", "PNG", "BMP", "GIF"):

    def _truncated(path: Path, fmt: str = _fmt) -> None:
        data = image_bytes(fmt)
        path.write_bytes(data[: len(data) // 2])

    _ext = "jpg" if _fmt == "JPEG" else _fmt.lower()
    case(f"truncated.{_ext}", "image", "is truncated", f"{_fmt} cut in half")(_truncated)


@case("folder.png", "image", "folder.png is a folder", "a directory named like an image")
def _folder(path: Path) -> None:
    path.mkdir(exist_ok=True)


def main(argv: list[str] | None = None) -> int:
    """``python tests/badfiles/make_corpus.py OUT``: write the corpus and list it."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(__doc__)
        return 2
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication.instance() or QGuiApplication(["make_corpus"])
    for c in make(Path(args[0])):
        print(f"{c.name:32} {c.loader:8} {c.note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
