"""TrainingWorker / DatasetLoader threading behaviour with a fake training generator
(no engine needed): signals, pause/step/resume, lr changes, refusal, failure, shutdown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtGui import QImage

from cnn_explorer.training.worker import DatasetLoader, TrainingWorker


class FakeOpt:
    lr = 0.1


def fake_training(
    n: int = 10**9, per_epoch: int = 3, opt: FakeOpt | None = None, fail_at: int | None = None
) -> Callable[[Callable[[], bool]], Iterator[Any]]:
    def factory(stop: Callable[[], bool]) -> Iterator[Any]:
        for i in range(n):
            if stop():
                yield {"kind": "stopped", "stop_reason": "stopped"}
                return
            if i == fail_at:
                raise FloatingPointError("loss exploded\nsecond line")
            yield {"kind": "batch", "i": i, "lr": opt.lr if opt else None}
            if (i + 1) % per_epoch == 0:
                yield {"kind": "epoch", "epoch": (i + 1) // per_epoch}

    return factory


@pytest.fixture
def worker(qtbot):  # type: ignore[no-untyped-def]
    w = TrainingWorker()
    yield w
    assert w.shutdown(10_000)


def test_runs_to_completion_with_epoch_signals(qtbot, worker) -> None:  # type: ignore[no-untyped-def]
    epochs: list[Any] = []
    worker.epoch_finished.connect(epochs.append)
    with qtbot.waitSignal(worker.finished, timeout=10_000) as blocker:
        assert worker.start(fake_training(6))
    assert blocker.args == ["completed"]
    assert [e["epoch"] for e in epochs] == [1, 2] and worker.records == 8
    assert worker.state == "idle" and not worker.is_running()


def test_stop_and_start_twice_refused(qtbot, worker) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(worker.progress, timeout=10_000):
        worker.start(fake_training())
    with qtbot.waitSignal(worker.refused, timeout=1000) as refused:
        assert not worker.start(fake_training())
    assert "already running" in refused.args[0]
    with qtbot.waitSignal(worker.finished, timeout=10_000) as done:
        worker.stop()
    assert done.args == ["stopped"]
    with qtbot.waitSignal(worker.finished, timeout=10_000):  # can start again afterwards
        assert worker.start(fake_training(2))


def test_pause_step_resume_and_lr_change(qtbot, worker) -> None:  # type: ignore[no-untyped-def]
    opt = FakeOpt()
    seen: list[dict[str, Any]] = []
    worker.progress.connect(seen.append)
    worker.start(fake_training(5, per_epoch=100, opt=opt), optimizer=opt, paused=True)
    assert worker.state == "paused"
    for k in range(2):
        with qtbot.waitSignal(worker.progress, timeout=10_000):
            worker.step()
        assert [r["i"] for r in seen] == list(range(k + 1))
    worker.set_lr(0.5)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.resume()
    assert [r["i"] for r in seen] == [0, 1, 2, 3, 4]
    assert [r["lr"] for r in seen] == [0.1, 0.1, 0.5, 0.5, 0.5] and opt.lr == 0.5


def test_stop_while_paused_and_shutdown(qtbot, worker) -> None:  # type: ignore[no-untyped-def]
    worker.start(fake_training(), paused=True)
    with qtbot.waitSignal(worker.finished, timeout=10_000) as done:
        assert worker.shutdown(10_000)
    assert done.args == ["stopped"] and not worker.is_running()


def test_stop_right_after_an_epochs_last_batch_still_reports_stopped(qtbot, worker) -> None:  # type: ignore[no-untyped-def]
    """The engine checks the stop flag before each batch, not before an epoch summary. A
    stop that lands between an epoch's last batch and its summary must still end with the
    generator's "stopped" record (the Training tab reads the run's last record): the worker
    used to cut the generator off right after the summary (the flaky tab test)."""
    seen: list[dict[str, Any]] = []
    worker.progress.connect(seen.append)
    worker.start(fake_training(per_epoch=3), paused=True)
    for _ in range(3):  # the epoch's three batches; its summary is not pulled yet
        with qtbot.waitSignal(worker.progress, timeout=10_000):
            worker.step()
    assert [r["kind"] for r in seen] == ["batch"] * 3
    with qtbot.waitSignal(worker.finished, timeout=10_000) as done:
        worker.stop()
    assert done.args == ["stopped"]
    assert [r["kind"] for r in seen[3:]] == ["epoch", "stopped"]


def test_a_generator_ignoring_stop_is_cut_off(qtbot, worker) -> None:  # type: ignore[no-untyped-def]
    def deaf(stop: Callable[[], bool]) -> Iterator[Any]:
        while True:
            yield {"kind": "batch"}

    with qtbot.waitSignal(worker.progress, timeout=10_000):
        worker.start(deaf)
    with qtbot.waitSignal(worker.finished, timeout=10_000) as done:
        worker.stop()
    assert done.args == ["stopped"] and not worker.is_running()


def test_generator_error_is_reported(qtbot, worker, capsys) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(worker.failed, timeout=10_000) as failed:
        worker.start(fake_training(10, fail_at=2))
    assert failed.args == ["FloatingPointError: loss exploded"]
    assert "Traceback" in capsys.readouterr().err


def test_dataset_loader_builtin_folder_bad_and_cancel(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    loader = DatasetLoader()
    with qtbot.waitSignal(loader.loaded, timeout=20_000) as got:
        loader.load("builtin:shapes", image_size=14)
    assert got.args[0].images.shape[1:] == (1, 14, 14)
    assert got.args[1].startswith("2400 images in 6 classes, 14×14 grayscale")
    with qtbot.waitSignal(loader.failed, timeout=10_000) as bad:
        loader.load(str(tmp_path / "missing"))
    assert "does not exist" in bad.args[0]
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for k in range(3):
            img = QImage(4, 4, QImage.Format.Format_RGB32)
            img.fill(0)
            img.save(str(tmp_path / cls / f"{k}.png"))
    loader.cancel()
    with qtbot.waitSignal(loader.loaded, timeout=10_000) as got:
        loader.load(str(tmp_path))  # load() clears an earlier cancel
    assert "a: 3, b: 3" in got.args[1]
    assert loader.shutdown()


def test_dataset_loader_cancel_mid_load(qtbot, monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A load that only ends when cancelled: cancel() after its first progress report."""
    import threading

    from cnn_explorer.training import image_folder

    def slow_load(root, size, channels, limit, progress, cancel):  # type: ignore[no-untyped-def]
        progress(1, 100)
        idle = threading.Event()
        while not cancel():
            idle.wait(0.001)
        raise image_folder.LoadCancelled()

    monkeypatch.setattr(image_folder, "load_image_folder", slow_load)
    loader = DatasetLoader()
    loader.progress.connect(lambda done, total: loader.cancel())
    with qtbot.waitSignal(loader.cancelled, timeout=10_000):
        assert loader.load(str(tmp_path))
        assert not loader.load(str(tmp_path))  # busy: refused
    assert not loader.is_running() and loader.shutdown()
