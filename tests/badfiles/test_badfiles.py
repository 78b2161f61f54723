"""The bad-file corpus through the public loaders, the main window and the command line.

Every case of :mod:`make_corpus` must give the user one clear sentence naming the file and
the problem (or open, when the damage is in a part nobody reads), must stay within a small
memory budget however much the file claims, must raise only the documented error types,
and must leave the current document exactly as it was.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from make_corpus import CASES, X, good_layers, make, project_parts, trained_state, write_project
from rawbytes import image_bytes

from cnn_explorer import imageio
from cnn_explorer.engine.archive import FileFormatError
from cnn_explorer.engine.serialize import load_network, load_npz_safe
from cnn_explorer.explorer.project import ProjectError, read_project, save_project

ROOT = Path(__file__).resolve().parents[2]
PEAK_LIMIT = 48 * 2**20
"""Most memory any corpus file may cost to read (the bombs claim 1 to 4.4 GB)."""


def _cases(loader: str) -> list[pytest.param]:
    return [pytest.param(c, id=c.name) for c, _ in CASES if c.loader == loader]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, qapp: object) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    make(out)
    return out


def _outcome(load: object, path: Path, errors: tuple[type[Exception], ...]) -> tuple[str, int]:
    """``("", peak)`` when ``load(path)`` succeeds, else ``(message, peak)``; any error
    type outside ``errors`` fails the test."""
    tracemalloc.start()
    try:
        load(str(path))  # type: ignore[operator]
        message = ""
    except errors as exc:
        message = str(exc)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return message, peak


def _check(case: object, message: str, peak: int) -> None:
    expect = case.expect  # type: ignore[attr-defined]
    name = case.name  # type: ignore[attr-defined]
    if expect:
        assert expect in message, message
        assert message.startswith(name) and "\n" not in message, message
    else:
        assert message == "", f"{name} should open: {message}"
    assert peak < PEAK_LIMIT, f"{name} cost {peak / 2**20:.0f} MB to read"


@pytest.mark.parametrize("case", _cases("project"))
def test_bad_projects_give_one_clear_sentence(corpus: Path, case: object) -> None:
    message, peak = _outcome(read_project, corpus / case.name, (ProjectError,))  # type: ignore[attr-defined]
    _check(case, message, peak)


@pytest.mark.parametrize("case", _cases("network"))
def test_bad_weight_files_give_one_clear_sentence(corpus: Path, case: object) -> None:
    message, peak = _outcome(load_network, corpus / case.name, (FileFormatError,))  # type: ignore[attr-defined]
    _check(case, message, peak)


@pytest.mark.parametrize("case", _cases("image"))
def test_bad_images_give_one_clear_sentence(corpus: Path, case: object) -> None:
    load = lambda p: imageio.load_image(p, (16, 16))  # noqa: E731
    message, peak = _outcome(load, corpus / case.name, (imageio.ImageLoadError,))  # type: ignore[attr-defined]
    _check(case, message, peak)


def test_bombs_in_any_npz_stay_small(corpus: Path) -> None:
    """The generic reader has the same guards: declared sizes, streaming, headers."""
    message, peak = _outcome(load_npz_safe, corpus / "weights_header_bomb.npz", (FileFormatError,))
    assert "has shape (1100000000,)" in message and peak < PEAK_LIMIT
    message, peak = _outcome(
        load_npz_safe, corpus / "weights_bomb_unreferenced.npz", (FileFormatError,)
    )
    assert "would unpack to 1,024.0 MB" in message and peak < PEAK_LIMIT


def test_a_good_project_and_the_bombs_it_ignores(corpus: Path) -> None:
    good = read_project(str(corpus / "bomb_unreferenced.cnnx"))
    assert np.array_equal(good.input, X)
    assert [s.kind for s in good.layers] == ["conv", "act", "maxpool"]
    assert good.layers[1].config == {"fn": "leaky_relu", "slope": 0.1}


def test_every_damage_to_a_good_file_is_a_documented_error(tmp_path: Path) -> None:
    """Random bytes flipped and truncations anywhere: always ProjectError, never a crash."""
    meta, arrays = project_parts(trained_state())
    good = tmp_path / "good.cnnx"
    write_project(good, meta, arrays)
    data = good.read_bytes()
    rng = random.Random(7)
    bad = tmp_path / "bad.cnnx"
    for i in range(400):
        damaged = bytearray(data)
        if i % 4 == 0:
            damaged = damaged[: rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 8)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        bad.write_bytes(bytes(damaged))
        try:
            read_project(str(bad))
        except ProjectError as exc:
            assert str(exc).startswith("bad.cnnx") and "\n" not in str(exc), str(exc)


def test_whole_images_of_every_format_still_load(tmp_path: Path, qapp: object) -> None:
    for ext, fmt in (("jpg", "JPEG"), ("png", "PNG"), ("bmp", "BMP"), ("gif", "GIF")):
        path = tmp_path / f"whole.{ext}"
        path.write_bytes(image_bytes(fmt))
        x = imageio.load_image(str(path), (16, 20), 3)
        assert x.shape == (3, 16, 20) and 0.3 < float(x.mean()) < 0.7, ext
        trailing = tmp_path / f"trailing.{ext}"  # junk after the end is not truncation
        trailing.write_bytes(path.read_bytes() + b"\x00" * 64)
        assert imageio.load_image(str(trailing), (16, 20), 3).shape == (3, 16, 20)


def test_every_damage_to_an_image_is_an_image_load_error(tmp_path: Path, qapp: object) -> None:
    """Cut anywhere or with bytes flipped: a picture or an ImageLoadError, nothing else."""
    rng = random.Random(3)
    for ext, fmt in (("jpg", "JPEG"), ("png", "PNG"), ("bmp", "BMP"), ("gif", "GIF")):
        data = image_bytes(fmt)
        path = tmp_path / f"damaged.{ext}"
        for i in range(40):
            damaged = bytearray(data[: rng.randrange(1, len(data))] if i % 2 else data)
            for _ in range(rng.randint(0, 6)):
                damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            path.write_bytes(bytes(damaged))
            try:
                imageio.load_image(str(path), (8, 8))
            except imageio.ImageLoadError as exc:
                assert str(exc).startswith(f"damaged.{ext}") and exc.reason, str(exc)


def test_a_jpeg_thumbnail_does_not_hide_truncation(tmp_path: Path, qapp: object) -> None:
    """An EXIF thumbnail is a whole JPEG (with its own end marker) inside the header."""
    main = image_bytes("JPEG")
    app1 = b"Exif\x00\x00" + main
    exif = main[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + main[2:]
    whole = tmp_path / "exif.jpg"
    whole.write_bytes(exif)
    assert imageio.load_image(str(whole), (8, 8)).shape == (1, 8, 8)
    cut = tmp_path / "exif_cut.jpg"
    cut.write_bytes(exif[: len(exif) - len(main) // 3])
    with pytest.raises(imageio.ImageLoadError, match=r"exif_cut\.jpg is truncated") as info:
        imageio.load_image(str(cut), (8, 8))
    assert info.value.reason == "corrupt image: truncated file"


def test_a_truncated_image_is_skipped_in_a_dataset(corpus: Path, tmp_path: Path) -> None:
    from cnn_explorer.training.image_folder import load_image_folder

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for k in range(2):
            (tmp_path / label / f"{k}.png").write_bytes(image_bytes("PNG"))
    (tmp_path / "a" / "cut.jpg").write_bytes((corpus / "truncated.jpg").read_bytes())
    data, summary = load_image_folder(tmp_path, image_size=8)
    assert len(data.labels) == 4
    assert dict(summary.skipped) == {str(Path("a/cut.jpg")): "corrupt image: truncated file"}


def test_the_file_readers_load_no_qt() -> None:
    """Projects and network files are read (and validated) without Qt: the train command
    and scripts use them headless."""
    modules = ["cnn_explorer.explorer.project", "cnn_explorer.engine.serialize"]
    script = (
        f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6')))"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stdout + res.stderr


# --------------------------------------------------------------------------- saves
def test_a_save_removes_the_temp_files_of_killed_saves(tmp_path: Path) -> None:
    old = 1_000_000_000  # 2001: long stale
    stale = [tmp_path / ".work.cnnx.k3j_9x0a.tmp", tmp_path / ".net.npz.abcdefgh.tmp"]
    kept = [
        tmp_path / ".work.cnnx.fresh123.tmp",  # a save in progress (recent)
        tmp_path / ".notes.txt.abcdefgh.tmp",  # not a file this app saves
        tmp_path / ".work.cnnx.tmp",  # not our pattern
        tmp_path / "work.cnnx.abcdefgh.tmp",  # not hidden: not ours
    ]
    for path in stale + kept:
        path.write_bytes(b"x" * 100)
        if path.name != ".work.cnnx.fresh123.tmp":
            os.utime(path, (old, old))
    folder = tmp_path / ".work.cnnx.folder12.tmp"
    folder.mkdir()
    os.utime(folder, (old, old))
    save_project(str(tmp_path / "other.cnnx"), X, good_layers())
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"other.cnnx", folder.name} | {p.name for p in kept}


# --------------------------------------------------------------------------- the window
@pytest.fixture
def window(qtbot: object, tmp_path: Path) -> object:
    from PySide6.QtCore import QCoreApplication, QSettings

    from cnn_explorer.ui.common.messages import RecordingReporter
    from cnn_explorer.ui.main_window import MainWindow

    QCoreApplication.setOrganizationName("CNN Explorer Tests")
    QCoreApplication.setApplicationName("cnn-explorer-badfiles")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path))
    win = MainWindow(restore_state=False)
    win.reporter = RecordingReporter(win)
    qtbot.addWidget(win)  # type: ignore[attr-defined]
    yield win
    win.doc.undo_stack.setClean()
    win.doc.shutdown()


def test_no_bad_project_changes_the_open_document(window: object, corpus: Path) -> None:
    doc = window.doc  # type: ignore[attr-defined]
    doc.set_cell(0, 0, 0, 7.0)  # unsaved work
    before_x, before = doc.input.copy(), [s.copy() for s in doc.layers]
    for case, _ in CASES:
        if case.loader != "project" or not case.expect:
            continue
        assert not window.open_project(str(corpus / case.name)), case.name  # type: ignore[attr-defined]
        _title, text = window.reporter.errors[-1]  # type: ignore[attr-defined]
        assert case.expect in text, text
        assert np.array_equal(doc.input, before_x)
        assert all(a.same_values(b) for a, b in zip(doc.layers, before, strict=True))
    assert not doc.undo_stack.isClean()  # the user's edit is still there to save


# --------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize(
    ("name", "expect"),
    [
        ("slope_text.cnnx", "slope must be a number from 0 to 1, not 'abc'"),
        ("bomb_input.cnnx", "the input would unpack to 1,024.0 MB"),
        ("trained_names.cnnx", "outputs (3,) values but the file names 2 classes"),
        # a .npz is a network file: it opens as a model, and says why it cannot
        ("weights_text.npz", "weights_text.npz is a text file, not a NumPy archive (.npz)"),
        ("truncated.jpg", "truncated.jpg is truncated"),
    ],
)
def test_cli_screenshot_of_a_bad_file_fails_with_one_message(
    corpus: Path, tmp_path: Path, name: str, expect: str, run_app: Any
) -> None:
    out = tmp_path / "shot.png"
    res = run_app(str(corpus / name), "--screenshot", str(out))
    assert res.returncode == 2, res.stderr
    ours = [line for line in res.stderr.splitlines() if line.startswith("cnn-explorer:")]
    assert len(ours) == 1 and expect in ours[0], res.stderr
    assert "Traceback" not in res.stderr and "Internal error" not in res.stderr
    assert out.exists()  # the worked example is still rendered: nothing else happened
