"""Loading a picture keeps its aspect ratio: the size offered, the dialog's lock, its
preview."""

from __future__ import annotations

import numpy as np
import pytest

from cnn_explorer import imageio
from cnn_explorer.imageio import save_png
from cnn_explorer.limits import MAX_INPUT_SIDE
from cnn_explorer.ui.common.image_size_dialog import ImageSizeDialog, resample
from cnn_explorer.ui.common.messages import ImageOptions


@pytest.mark.parametrize(
    ("h", "w", "want"),
    [(427, 640, (43, 64)), (640, 427, (64, 43)), (30, 20, (30, 20)), (1, 5000, (1, 64))],
)
def test_aspect_size(h, w, want):
    assert imageio.aspect_size(h, w) == want
    rows, cols = imageio.aspect_size(h, w, 600)
    assert max(rows, cols) <= MAX_INPUT_SIDE


def test_follow_aspect_stays_within_the_limits():
    assert imageio.follow_aspect(427, 640, cols=128) == (85, 128)
    assert imageio.follow_aspect(427, 640, rows=85) == (85, 127)  # 85·640/427 = 127.4
    assert imageio.follow_aspect(427, 640, cols=600) == (342, 512)  # rows≤512 → cols=512
    assert imageio.follow_aspect(10, 10_000, rows=64) == (1, MAX_INPUT_SIDE)
    with pytest.raises(ValueError):
        imageio.follow_aspect(4, 4)


def test_dialog_keeps_the_aspect_until_unlocked(qtbot):
    picture = np.random.default_rng(0).random((3, 128, 192), dtype=np.float32)
    dlg = ImageSizeDialog(640, 427, ImageOptions(43, 64, 3), picture)
    qtbot.addWidget(dlg)
    assert dlg.lock.isChecked()
    dlg.cols.setValue(128)
    assert dlg.options() == ImageOptions(85, 128, 3)
    dlg.rows.setValue(20)
    assert dlg.options() == ImageOptions(20, 30, 3)
    pix = dlg.preview.pixmap()
    assert not pix.isNull() and abs(pix.width() / pix.height() - 30 / 20) < 0.05
    assert "20×30 cells" in dlg.summary.text()
    dlg.lock.setChecked(False)
    dlg.rows.setValue(40)
    assert dlg.options() == ImageOptions(40, 30, 3)  # unlocked: the other side stays
    dlg.lock.setChecked(True)  # locking again follows the columns
    assert dlg.options() == ImageOptions(20, 30, 3)
    dlg.channels.setCurrentIndex(0)
    assert dlg.options().channels == 1 and "1 channel" in dlg.summary.text()


def test_dialog_without_a_preview_says_so(qtbot):
    dlg = ImageSizeDialog(20_000, 10_000, ImageOptions(32, 64, 1), None)
    qtbot.addWidget(dlg)
    assert "no preview" in dlg.preview.text()


def test_resample_picks_the_nearest_source_cell():
    pic = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    assert np.array_equal(resample(pic, 2, 2)[0], [[5, 7], [13, 15]])
    assert resample(pic, 8, 3).shape == (1, 8, 3)


def test_a_colour_photo_is_offered_in_colour_at_its_aspect(qtbot, window, tmp_path):
    path = str(tmp_path / "photo.png")
    save_png(np.full((427, 640, 3), (200, 30, 30), np.uint8), path)
    assert window.load_image(path)
    assert window.reporter.image_defaults[-1] == ImageOptions(43, 64, 3)
    assert window.doc.input.shape == (3, 43, 64)
    grey = str(tmp_path / "grey.png")
    save_png(np.full((20, 40), 90, np.uint8), grey)
    assert window.load_image(grey)
    assert window.reporter.image_defaults[-1] == ImageOptions(20, 40, 1)
