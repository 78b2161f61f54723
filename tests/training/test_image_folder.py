"""The image-folder loader: every bad input is skipped with a reason or refused with one
clear sentence; mixed formats and sizes load to one array. Test images are written with
``QImage.save`` into ``tmp_path`` (no QApplication needed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from cnn_explorer.training.image_folder import (
    DEFAULT_SIZE,
    ImageFolderError,
    LoadCancelled,
    estimate_bytes,
    load_image_folder,
)

# A 1×1 GIF89a (Qt reads GIF but cannot write it).
TINY_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00"
    b"\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def save(
    path: Path,
    w: int = 6,
    h: int = 5,
    fmt: QImage.Format = QImage.Format.Format_RGB32,
    color: QColor | int = 0xFFFFFF,
) -> Path:
    """Write a solid ``w``×``h`` image in pixel format ``fmt``; the suffix picks the codec."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = QImage(w, h, fmt)
    if fmt == QImage.Format.Format_Indexed8:
        img.setColorTable([0xFF000000, 0xFFFFFFFF])
        img.fill(1)
    else:
        img.fill(QColor(color) if isinstance(color, int) else color)
    assert img.save(str(path)), path
    return path


def two_class_folder(root: Path, n: int = 2, size: tuple[int, int] = (6, 5)) -> Path:
    for k in range(n):
        save(root / "a" / f"{k}.png", *size)
        save(root / "b" / f"{k}.png", *size, color=0x000000)
    return root


def test_loads_two_classes_at_native_size(tmp_path: Path) -> None:
    data, summary = load_image_folder(two_class_folder(tmp_path, 3))
    assert data.images.shape == (6, 1, 5, 6) and data.images.dtype == np.float32
    assert data.class_names == ["a", "b"] and summary.per_class == {"a": 3, "b": 3}
    assert np.allclose(data.images[data.labels == 0], 1.0)
    assert np.allclose(data.images[data.labels == 1], 0.0)
    assert summary.skipped == [] and "6 images in 2 classes" in summary.text()


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageFolderError, match="does not exist"):
        load_image_folder(tmp_path / "nope")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageFolderError, match="is a file"):
        load_image_folder(save(tmp_path / "x.png"))


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageFolderError, match="is empty"):
        load_image_folder(tmp_path)


def test_images_without_class_subfolders(tmp_path: Path) -> None:
    save(tmp_path / "x.png")
    with pytest.raises(ImageFolderError, match="no subfolders"):
        load_image_folder(tmp_path)


def test_one_class(tmp_path: Path) -> None:
    save(tmp_path / "cats" / "1.png")
    save(tmp_path / "cats" / "2.png")
    with pytest.raises(ImageFolderError, match=r"one class only \(cats\)"):
        load_image_folder(tmp_path)


def test_no_images(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "notes.txt").write_text("hello")
    with pytest.raises(ImageFolderError, match="has no images"):
        load_image_folder(tmp_path)


def test_second_class_only_corrupt_is_refused(tmp_path: Path) -> None:
    save(tmp_path / "a" / "1.png")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(ImageFolderError, match="1 class"):
        load_image_folder(tmp_path)


def test_mixed_sizes_are_resized(tmp_path: Path) -> None:
    save(tmp_path / "a" / "big.png", 40, 30)
    save(tmp_path / "a" / "small.jpg", 7, 9)
    save(tmp_path / "b" / "wide.bmp", 50, 3)
    data, summary = load_image_folder(tmp_path)
    assert data.images.shape == (3, 1, DEFAULT_SIZE, DEFAULT_SIZE)
    assert len(summary.source_sizes) == 3
    assert "3 different source sizes" in summary.text()
    data, _ = load_image_folder(tmp_path, image_size=(4, 10), channels=3)
    assert data.images.shape == (3, 3, 4, 10)


def test_mixed_pixel_formats(tmp_path: Path) -> None:
    """Grayscale, RGB, RGBA, palette and 16-bit files, in both output modes."""
    f = QImage.Format
    save(tmp_path / "a" / "gray8.png", fmt=f.Format_Grayscale8, color=0xFFFFFF)
    save(tmp_path / "a" / "gray16.png", fmt=f.Format_Grayscale16, color=0xFFFFFF)
    save(tmp_path / "a" / "palette.png", fmt=f.Format_Indexed8)
    save(tmp_path / "b" / "red.png", fmt=f.Format_RGB32, color=0xFF0000)
    save(tmp_path / "b" / "rgba.png", fmt=f.Format_ARGB32, color=QColor(0, 0, 255, 255))
    save(tmp_path / "b" / "clear.png", fmt=f.Format_ARGB32, color=QColor(255, 255, 255, 0))
    (tmp_path / "b" / "tiny.gif").write_bytes(TINY_GIF)
    rgb, summary = load_image_folder(tmp_path, image_size=4, channels=3)
    assert summary.per_class == {"a": 3, "b": 4} and not summary.skipped
    px = {
        name: rgb.images[i, :, 0, 0]
        for i, name in enumerate(["gray16", "gray8", "palette", "clear", "red", "rgba", "tiny"])
    }
    assert np.allclose(px["gray8"], 1) and np.allclose(px["gray16"], 1)
    assert np.allclose(px["palette"], 1)
    assert np.allclose(px["red"], [1, 0, 0]) and np.allclose(px["rgba"], [0, 0, 1])
    assert np.allclose(px["clear"], 0), "transparent is composited over black"
    gray, _ = load_image_folder(tmp_path, image_size=4, channels=1)
    assert gray.images.shape == (7, 1, 4, 4)
    assert 0.2 < gray.images[4, 0, 0, 0] < 0.6  # red: luminance, not an average


def test_corrupt_zero_byte_and_non_images_are_skipped_with_reasons(tmp_path: Path) -> None:
    save(tmp_path / "a" / "1.png")
    (tmp_path / "a" / "2_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    save(tmp_path / "a" / "3.png")
    (tmp_path / "a" / "empty.jpg").write_bytes(b"")
    (tmp_path / "b" / "readme.txt").parent.mkdir()
    (tmp_path / "b" / "readme.txt").write_text("not a picture")
    (tmp_path / "b" / "fake.jpg").write_text("not a jpeg either")
    save(tmp_path / "b" / "4.png", color=0)
    data, summary = load_image_folder(tmp_path)
    assert summary.per_class == {"a": 2, "b": 1}
    assert list(data.labels) == [0, 0, 1]
    reasons = dict(summary.skipped)
    assert set(reasons) == {
        str(Path("a/2_corrupt.png")),
        str(Path("a/empty.jpg")),
        str(Path("b/readme.txt")),
        str(Path("b/fake.jpg")),
    }
    assert reasons[str(Path("a/empty.jpg"))].startswith("empty file")
    assert reasons[str(Path("b/readme.txt"))].startswith("not an image file")
    counts = summary.skipped_by_reason()
    assert sum(counts.values()) == 4 and counts["empty file"] == 1
    assert "skipped 4 files" in summary.text()


def test_class_folder_without_images_is_left_out(tmp_path: Path) -> None:
    two_class_folder(tmp_path)
    (tmp_path / "c").mkdir()
    data, summary = load_image_folder(tmp_path)
    assert data.class_names == ["a", "b"] and summary.empty_classes == ["c"]


def test_too_large_for_memory_states_the_estimate(tmp_path: Path) -> None:
    two_class_folder(tmp_path)
    need = estimate_bytes(4, 3, (100, 100))
    assert need == 4 * 3 * 100 * 100 * 4
    with pytest.raises(ImageFolderError, match=r"need about 0 MB.*more than the 0 MB"):
        load_image_folder(tmp_path, image_size=100, channels=3, memory_limit=need - 1)
    data, _ = load_image_folder(tmp_path, image_size=100, channels=3, memory_limit=need)
    assert data.images.nbytes == need


def test_bad_size_and_channels(tmp_path: Path) -> None:
    two_class_folder(tmp_path)
    with pytest.raises(ImageFolderError, match="outside"):
        load_image_folder(tmp_path, image_size=0)
    with pytest.raises(ImageFolderError, match="channels"):
        load_image_folder(tmp_path, channels=2)


def test_progress_and_cancel(tmp_path: Path) -> None:
    two_class_folder(tmp_path, 3)
    seen: list[tuple[int, int]] = []
    load_image_folder(tmp_path, image_size=4, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (6, 6) and len(seen) == 6
    calls = iter(range(100))
    with pytest.raises(LoadCancelled):
        load_image_folder(tmp_path, image_size=4, cancel=lambda: next(calls) >= 3)


def test_large_jpeg_is_decoded_scaled(tmp_path: Path) -> None:
    save(tmp_path / "a" / "big.jpg", 3000, 2000)
    save(tmp_path / "b" / "small.png", 4, 4, color=0)
    data, summary = load_image_folder(tmp_path, image_size=8)
    assert data.images.shape == (2, 1, 8, 8) and summary.source_sizes[(2000, 3000)] == 1


def test_works_without_qapplication(tmp_path: Path) -> None:
    two_class_folder(tmp_path)
    code = (
        "import sys\n"
        "from PySide6.QtCore import QCoreApplication\n"
        "from cnn_explorer.training.image_folder import load_image_folder\n"
        "data, s = load_image_folder(sys.argv[1])\n"
        "assert QCoreApplication.instance() is None\n"
        "print(data.images.shape)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert out.stdout.strip() == "(4, 1, 5, 6)"


def test_auto_channels(tmp_path: Path) -> None:
    f = QImage.Format
    save(tmp_path / "a" / "g.bmp", fmt=f.Format_Grayscale8, color=0x808080)
    save(tmp_path / "b" / "p.png", fmt=f.Format_Indexed8)
    gray, _ = load_image_folder(tmp_path, channels=None)
    assert gray.images.shape[1] == 1
    save(tmp_path / "b" / "red.png", color=0xFF0000)
    rgb, summary = load_image_folder(tmp_path, channels=None)
    assert rgb.images.shape[1] == 3 and summary.channels == 3
