"""Optimizers against torch.optim, the training generator (reproducibility, learning, NaN
handling, stop flag) and the NumPy data helpers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from cnn_explorer.engine.layers import Conv2D, Dense
from cnn_explorer.engine.network import Network, default_classifier
from cnn_explorer.engine.optim import SGD, Adam, optimizer_from_config
from cnn_explorer.engine.training import (
    Progress,
    ShiftAugment,
    accuracy,
    batch_indices,
    confusion_matrix,
    evaluate,
    per_class_accuracy,
    random_shift,
    stratified_split,
    train,
)


# ---------------------------------------------------------------------------- optimizers
def _torch_parity(make_ours, make_torch, steps: int = 6) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(steps)]
    ours = p0.copy()
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt, topt = make_ours(), make_torch([tp])
    for i, g in enumerate(grads):
        if i == 3:  # lr changed mid-run
            opt.lr *= 0.5
            for group in topt.param_groups:
                group["lr"] *= 0.5
        opt.update("w", ours, g)
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
        np.testing.assert_allclose(ours, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "kw",
    [
        {"lr": 0.1},
        {"lr": 0.1, "momentum": 0.9},
        {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.01},
        {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1},
        {"lr": 0.05, "momentum": 0.5, "dampening": 0.3},
    ],
)
def test_sgd_matches_torch(kw: dict) -> None:
    torch = pytest.importorskip("torch")
    _torch_parity(lambda: SGD(**kw), lambda p: torch.optim.SGD(p, **kw))


@pytest.mark.parametrize(
    "kw",
    [
        {"lr": 0.01},
        {"lr": 0.1, "betas": (0.8, 0.99), "eps": 1e-6},
        {"lr": 0.01, "weight_decay": 0.05},
    ],
)
def test_adam_matches_torch(kw: dict) -> None:
    torch = pytest.importorskip("torch")
    _torch_parity(lambda: Adam(**kw), lambda p: torch.optim.Adam(p, **kw))


def test_optimizer_updates_in_place_and_skips_frozen() -> None:
    net = Network([Conv2D(1, 1, 2, rng=0), Dense(4, 2, rng=1)])
    for _, g in net.gradients():
        g[...] = 1
    before = {k: v.copy() for k, v in net.parameters()}
    ids = {k: id(v) for k, v in net.parameters()}
    net.layers[1].frozen = True
    SGD(0.5).step(net)
    after = dict(net.parameters())
    assert ids == {k: id(v) for k, v in after.items()}
    np.testing.assert_allclose(after["0.weight"], before["0.weight"] - 0.5)
    np.testing.assert_array_equal(after["1.weight"], before["1.weight"])


def test_optimizer_config_round_trip_and_checks() -> None:
    for opt in (SGD(0.1, 0.9, 1e-4, True), Adam(0.002, (0.8, 0.9), 1e-7, 0.01)):
        clone = optimizer_from_config(opt.config())
        assert clone.config() == opt.config()
    with pytest.raises(ValueError):
        SGD(-1.0)
    with pytest.raises(ValueError):
        SGD(0.1, nesterov=True)
    with pytest.raises(ValueError):
        optimizer_from_config({"kind": "lbfgs"})


# ---------------------------------------------------------------------------- training
def bars_dataset(n: int = 48, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 0: a vertical bar, class 1: a horizontal bar, at random positions, + noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.1, (n, 1, size, size)).astype(np.float32)
    y = np.arange(n) % 2
    for i in range(n):
        k = rng.integers(1, size - 1)
        if y[i] == 0:
            x[i, 0, :, k] += 1
        else:
            x[i, 0, k, :] += 1
    return x, y


def run(seed: int = 0, **kw) -> tuple[list[Progress], Network]:  # type: ignore[no-untyped-def]
    x, y = bars_dataset()
    net = default_classifier((1, 8, 8), 2, seed=seed)
    kw.setdefault("optimizer", SGD(0.05, momentum=0.9))
    records = list(
        train(
            net,
            x[:40],
            y[:40],
            x_val=x[40:],
            y_val=y[40:],
            epochs=kw.pop("epochs", 3),
            batch_size=8,
            seed=seed,
            **kw,
        )
    )
    return records, net


def test_records_structure() -> None:
    records, _ = run()
    batches = [r for r in records if r.kind == "batch"]
    epochs = [r for r in records if r.kind == "epoch"]
    assert len(batches) == 15 and len(epochs) == 3
    assert records[5].kind == "epoch" and records[5].epoch_end
    assert [(r.epoch, r.batch) for r in batches[:6]] == [
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 4),
        (1, 5),
        (2, 1),
    ]
    assert all(r.batches_per_epoch == 5 and r.epochs == 3 for r in records)
    assert records[-1].done and not any(r.done for r in records[:-1])
    e = epochs[-1]
    assert e.val_loss is not None and 0 <= e.val_accuracy <= 1 and 0 <= e.train_accuracy <= 1
    assert records[-1].fraction == 1.0 and records[-1].stop_reason == ""
    assert all(b.elapsed <= a.elapsed for a, b in zip(records[1:], records, strict=False))


def test_same_seed_same_curve_bit_for_bit() -> None:
    a, net_a = run(seed=3, augment=ShiftAugment(1, hflip=True))
    b, net_b = run(seed=3, augment=ShiftAugment(1, hflip=True))
    assert len(a) == len(b)
    assert all(ra.same_as(rb) for ra, rb in zip(a, b, strict=True))
    for (_, pa), (_, pb) in zip(net_a.parameters(), net_b.parameters(), strict=True):
        np.testing.assert_array_equal(pa, pb)
    c, _ = run(seed=4)
    assert [r.loss for r in c] != [r.loss for r in a]


def test_loss_decreases_and_learns() -> None:
    records, net = run(epochs=8)
    epochs = [r for r in records if r.kind == "epoch"]
    assert epochs[-1].train_loss < 0.5 * epochs[0].train_loss
    x, y = bars_dataset(n=40, seed=9)
    loss, acc = evaluate(net, x, y)
    assert acc >= 0.9 and loss < 0.5


def test_adam_also_learns() -> None:
    records, _ = run(epochs=6, optimizer=Adam(0.01))
    epochs = [r for r in records if r.kind == "epoch"]
    assert epochs[-1].train_loss < epochs[0].train_loss


def test_nan_loss_stops_with_reason_and_restores_last_good_weights() -> None:
    x, y = bars_dataset()
    net = default_classifier((1, 8, 8), 2, seed=0)
    records = list(train(net, x, y, epochs=5, batch_size=8, optimizer=SGD(1e6), seed=0))
    last = records[-1]
    assert last.kind == "nonfinite" and last.done and last.stop_reason == "nonfinite"
    assert last.error == (
        f"loss became {'NaN' if np.isnan(last.loss) else 'infinite'} at epoch {last.epoch} "
        f"batch {last.batch}: lower the learning rate (now 1e+06); the last good weights "
        "were restored"
    )
    assert all(np.isfinite(p).all() for _, p in net.parameters())
    assert np.isfinite(evaluate(net, x[:8], y[:8])[0])


def test_nan_in_data_stops_immediately() -> None:
    x, y = bars_dataset(n=8)
    x[:] = np.nan
    net = default_classifier((1, 8, 8), 2, seed=0)
    before = {k: v.copy() for k, v in net.parameters()}
    records = list(train(net, x, y, epochs=1, batch_size=8, seed=0))
    assert [r.kind for r in records] == ["nonfinite"]
    assert "epoch 1 batch 1" in records[0].error
    for k, v in net.parameters():
        np.testing.assert_array_equal(v, before[k])


def test_stop_flag_callable_and_event() -> None:
    x, y = bars_dataset()
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    net = default_classifier((1, 8, 8), 2)
    records = list(train(net, x, y, epochs=10, batch_size=8, stop=stop))
    assert [r.kind for r in records] == ["batch"] * 3 + ["stopped"]
    assert records[-1].stopped and records[-1].done and records[-1].stop_reason == "stopped"
    assert (records[-1].epoch, records[-1].batch) == (1, 3)

    event = threading.Event()
    gen = train(net, x, y, epochs=10, batch_size=8, stop=event)
    assert next(gen).kind == "batch"
    event.set()
    assert next(gen).kind == "stopped"
    with pytest.raises(StopIteration):
        next(gen)


def test_lr_change_between_batches_is_used() -> None:
    x, y = bars_dataset()
    opt = SGD(0.1)
    gen = train(default_classifier((1, 8, 8), 2), x, y, epochs=1, batch_size=8, optimizer=opt)
    assert next(gen).lr == 0.1
    opt.lr = 0.01
    assert next(gen).lr == 0.01


def test_empty_training_set_is_refused() -> None:
    with pytest.raises(ValueError, match="no training samples"):
        next(train(default_classifier((1, 8, 8), 2), np.zeros((0, 1, 8, 8)), np.zeros(0)))


# ---------------------------------------------------------------------------- data helpers
def test_stratified_split_is_seeded_and_proportional() -> None:
    y = np.array([0] * 50 + [1] * 30 + [2] * 2 + [3])
    tr, va = stratified_split(y, 0.2, seed=1)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(y)
    counts = np.bincount(y[va], minlength=4)
    assert list(counts) == [10, 6, 1, 0]
    _, va2 = stratified_split(y, 0.2, seed=1)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(y, 0.2, seed=2)[1])
    with pytest.raises(ValueError):
        stratified_split(y, 1.0)


def test_batch_indices() -> None:
    batches = batch_indices(10, 4)
    assert [list(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    shuffled = batch_indices(10, 4, np.random.default_rng(0))
    assert sorted(np.concatenate(shuffled)) == list(range(10))
    with pytest.raises(ValueError):
        batch_indices(10, 0)


def test_random_shift_moves_content_and_fills_zeros() -> None:
    x = np.zeros((50, 1, 5, 5), np.float32)
    x[:, 0, 2, 2] = 1
    out = random_shift(x, 1, np.random.default_rng(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert (out.sum(axis=(1, 2, 3)) == 1).all()
    positions = {tuple(np.argwhere(o[0])[0]) for o in out}
    assert positions <= {(r, c) for r in (1, 2, 3) for c in (1, 2, 3)} and len(positions) > 4
    flipped = random_shift(
        np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4).repeat(40, 0),
        0,
        np.random.default_rng(1),
        hflip=True,
    )
    rows = {tuple(f[0, 0]) for f in flipped}
    assert rows == {(0, 1, 2, 3), (3, 2, 1, 0)}


def test_confusion_matrix_and_accuracies() -> None:
    cm = confusion_matrix([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 4)
    assert cm.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    acc = per_class_accuracy(cm)
    assert acc[:3].tolist() == [0.5, 1.0, 0.0] and np.isnan(acc[3])
    assert accuracy([0, 1, 1], [0, 1, 0]) == pytest.approx(2 / 3)
    assert accuracy([], []) == 0.0


def test_adam_fused_step_matches_per_parameter_updates_bit_for_bit() -> None:
    """Adam.step updates all parameters through flat buffers; the numbers must be those
    of one update() per parameter, also across freezing a layer and reset()."""
    from cnn_explorer.engine.network import default_classifier

    rng = np.random.default_rng(7)
    fused_net = default_classifier((1, 12, 12), 3, seed=1)
    plain_net = default_classifier((1, 12, 12), 3, seed=1)
    fused, plain = Adam(0.01), Adam(0.01)
    for i in range(6):
        if i == 3:
            fused_net.layers[0].frozen = plain_net.layers[0].frozen = True
        if i == 5:
            fused.reset()
            plain.reset()
        x = rng.standard_normal((4, 1, 12, 12)).astype(np.float32)
        y = rng.integers(0, 3, 4)
        fused_net.loss_and_grads(x, y)
        plain_net.loss_and_grads(x, y)
        fused.step(fused_net)
        for key, p, g in plain_net.trainable_parameters():
            plain.update(key, p, g)
        for (_, a), (_, b) in zip(fused_net.parameters(), plain_net.parameters(), strict=True):
            np.testing.assert_array_equal(a, b)
        for key, st in plain.state.items():
            np.testing.assert_array_equal(fused.state[key]["exp_avg"], st["exp_avg"])
            assert fused.state[key]["step"] == st["step"]
