"""Top patches and dead-unit rates can scan every loaded image, not only the validation
images: the Insight tab's "Scan" choice, through the panel and through a training run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from cnn_explorer.engine.network import default_classifier
from cnn_explorer.insight.patches import top_patches
from cnn_explorer.insight.stats import dead_unit_rates
from cnn_explorer.ui.training.insight_controls import ALL_IMAGES, VALIDATION
from cnn_explorer.ui.training.insight_panel import InsightPanel
from cnn_explorer.ui.training.tab import TrainingTab

TIMEOUT = 60_000


def choose(combo, data) -> None:  # type: ignore[no-untyped-def]
    at = combo.findData(data)
    assert at >= 0, data
    combo.setCurrentIndex(at)


def run(qtbot, panel: InsightPanel) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(panel.finished, timeout=TIMEOUT) as done:
        assert panel.run_button.isEnabled()
        panel.run_button.click()
    assert done.args == ["completed"], panel.status.text()


def last_result(rec_gen):  # type: ignore[no-untyped-def]
    return [r for r in rec_gen if r.result is not None][-1].result


def test_scan_the_validation_or_all_loaded_images(qtbot) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    val = rng.random((4, 1, 10, 7)).astype(np.float32)
    train = (2 * rng.random((9, 1, 10, 7))).astype(np.float32)
    everything = np.concatenate([val, train])
    net = default_classifier((1, 10, 7), 3, seed=1)
    panel = InsightPanel()
    qtbot.addWidget(panel)
    panel.set_images(val, np.zeros(4, np.int64), train)
    panel.set_network(net, ["a", "b", "c"])
    panel.show()
    c = panel.controls
    choose(c.method, "patches")
    assert not c.scan.isHidden() and "(13)" in c.scan.itemText(c.scan.findData(ALL_IMAGES))
    layer, filt = c.layer.currentData(), 1
    c.filter.setValue(filt)
    c.k.setValue(5)
    choose(c.scan, VALIDATION)
    run(qtbot, panel)
    assert "of 4 images" in panel.result.title
    assert all(p.index < 4 for p in panel.result.patches)
    choose(c.scan, ALL_IMAGES)
    run(qtbot, panel)
    assert "of 13 images" in panel.result.title
    expected = last_result(top_patches(net.copy(), everything, layer, filt, 5))
    assert [p.index for p in panel.result.patches] == [p.index for p in expected]
    np.testing.assert_array_equal(panel.result.data, everything[[p.index for p in expected]])
    choose(c.method, "dead")
    assert c.scan.currentData() == ALL_IMAGES and not c.scan.isHidden()
    run(qtbot, panel)
    rates = last_result(dead_unit_rates(net.copy(), everything, layer)).rates
    np.testing.assert_array_equal(panel.result.values, rates)
    choose(c.method, "saliency")
    assert c.scan.isHidden(), "only the dataset scans offer the choice"
    assert panel.shutdown(TIMEOUT)


def test_a_trained_network_scans_the_whole_loaded_dataset(
    qtbot, make_bars: Callable[[int, int], Path]
) -> None:  # type: ignore[no-untyped-def]
    tab = TrainingTab()
    qtbot.addWidget(tab)
    tab.set_folder(str(make_bars(6, 2)))
    tab.controls.epochs.setValue(1)
    tab.controls.batch_size.setValue(4)
    with qtbot.waitSignal(tab.worker.finished, timeout=TIMEOUT):
        assert tab.start()
    panel = tab.insight
    c = panel.controls
    choose(c.method, "dead")
    choose(c.scan, ALL_IMAGES)
    assert "(12)" in c.scan.currentText()
    run(qtbot, panel)
    assert panel.result is not None and panel.result.kind == "bars"
    choose(c.method, "patches")
    c.k.setValue(12)
    run(qtbot, panel)
    assert "of 12 images" in panel.result.title and len(panel.result.patches) == 12
    assert tab.shutdown(TIMEOUT)
