"""Pooling layers: against PyTorch (incl. tie routing), their gradients' bookkeeping, and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnframe import backend, layer
from nnframe.errors import ShapeError
from nnframe.layer.base import layer_from_config, layer_to_config


def test_max_pool_ties_route_each_window_gradient_to_its_first_maximum():
    x = np.zeros((1, 2, 4, 1), dtype=np.float32)  # every window is a 4-way tie
    pool = layer.MaxPool2D(2)
    y = pool.forward(x)
    dx = pool.backward(np.array([[[[1.0], [2.0]]]], dtype=np.float32))
    expected = np.zeros_like(x)
    expected[0, 0, 0, 0], expected[0, 0, 2, 0] = 1.0, 2.0  # top-left of each window
    np.testing.assert_array_equal(y, np.zeros((1, 1, 2, 1)))
    np.testing.assert_array_equal(dx, expected)


def test_max_pool_overlapping_windows_add_up_and_every_window_has_one_winner():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(2, 7, 7, 3)).astype(np.float64)  # many ties
    pool = layer.MaxPool2D(3, stride=2, padding=1)
    y = pool.forward(x)
    g = rng.normal(size=y.shape)
    dx = pool.backward(g)
    np.testing.assert_allclose(dx.sum(), g.sum())  # nothing lost, nothing counted twice
    ones = pool.backward(np.ones_like(y))
    assert ones.sum() == y.size and set(np.unique(ones)) <= {0.0, 1.0, 2.0, 3.0, 4.0}


TILINGS = [  # input shape, pool_size: windows that tile the input (the gather fast path)
    ((4, 8, 6, 3), 2),
    ((3, 6, 9, 2), (2, 3)),
    ((2, 3, 3, 4), 3),
    ((2, 4, 6, 1), (1, 2)),
    ((2, 4, 4, 3), 1),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape, pool_size", TILINGS)
def test_max_pool_tiling_path_equals_the_general_path_on_ties(monkeypatch, shape, pool_size, dtype):
    rng = np.random.default_rng(3)
    x = rng.integers(-1, 2, size=shape).astype(dtype)  # three values: ties in most windows
    x[0, :, :, 0] = 0.0  # and windows that are all ties
    tiled = layer.MaxPool2D(pool_size)
    y = tiled.forward(x)
    g = rng.normal(size=y.shape).astype(dtype)
    dx = tiled.backward(g)
    assert "slices" in tiled.ctx  # the fast path ran
    assert y.dtype == dx.dtype == np.dtype(dtype) and dx.flags.c_contiguous
    general = layer.MaxPool2D(pool_size)
    monkeypatch.setattr(general, "_tiles", lambda inputs: False)
    np.testing.assert_array_equal(y, general.forward(x))
    np.testing.assert_array_equal(dx, general.backward(g))
    ones = tiled.backward(np.ones_like(y))
    assert ones.sum() == y.size and set(np.unique(ones)) <= {0.0, 1.0}  # one winner per window


def test_max_pool_tiling_path_split_between_threads_equals_one_thread(monkeypatch):
    import nnframe

    rng = np.random.default_rng(5)
    x = rng.integers(-1, 2, size=(8, 32, 32, 64)).astype(np.float32)  # ties; 4 slices' worth of work
    pools, outputs = [], []
    for count in (2, 1):
        monkeypatch.setattr(nnframe.threads, "_num_threads", count)
        pool = layer.MaxPool2D(2)
        y = pool.forward(x)
        outputs.append((y, pool.backward(np.arange(y.size, dtype=np.float32).reshape(y.shape))))
        pools.append(pool)
    assert len(pools[0].ctx["slices"]) == 2 and len(pools[1].ctx["slices"]) == 1
    np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
    np.testing.assert_array_equal(outputs[0][1], outputs[1][1])


def test_max_pool_tiling_path_takes_non_contiguous_input():
    rng = np.random.default_rng(6)
    base = rng.integers(-1, 2, size=(3, 4, 8, 6)).astype(np.float64)  # (C, N, H, W): ties too
    x = base.transpose(1, 2, 3, 0)  # (N, H, W, C), not C-contiguous
    assert not x.flags.c_contiguous
    with backend.default_dtype("float64"):
        tiled, reference = layer.MaxPool2D(2), layer.MaxPool2D(2)
        y = tiled.forward(x)
        g = rng.normal(size=y.shape)
        dx = tiled.backward(g)
        np.testing.assert_array_equal(y, reference.forward(np.ascontiguousarray(x)))
        np.testing.assert_array_equal(dx, reference.backward(g))
    assert "slices" in tiled.ctx


@pytest.mark.parametrize("pool, height", [
    (layer.MaxPool2D(2), 5),  # 5 rows: the last is in no window
    (layer.MaxPool2D(2, stride=1), 4),
    (layer.MaxPool2D(2, padding=1), 4),
])
def test_max_pool_takes_the_general_path_unless_the_windows_tile_the_input(pool, height):
    pool.forward(np.zeros((1, height, 4, 2), dtype=np.float32))
    assert "padded" in pool.ctx and "slices" not in pool.ctx


torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _nchw(x):
    return torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), requires_grad=True)


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


POOL_CONFIGS = [
    dict(pool_size=2),
    dict(pool_size=3, stride=2, padding=1),
    dict(pool_size=(2, 3), stride=(1, 2)),
    dict(pool_size=(3, 2), stride=(3, 1), padding=(1, 0)),
    dict(pool_size=2, stride=3),  # stride > pool: some pixels in no window
]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("config", POOL_CONFIGS, ids=[str(c) for c in POOL_CONFIGS])
def test_max_pool_matches_torch(config, ties):
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 2, size=(2, 7, 8, 3)).astype(np.float64) if ties else rng.normal(size=(2, 7, 8, 3))
    with backend.default_dtype("float64"):
        pool = layer.MaxPool2D(**config)
        y = pool.forward(x)
        g = rng.normal(size=y.shape)
        dx = pool.backward(g)
    xt = _nchw(x)
    yt = TF.max_pool2d(xt, pool.pool_size, pool.stride, pool.padding)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(y, _nhwc(yt))
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-12, atol=1e-12)  # same winner as torch on ties


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("shape, pool_size", TILINGS)
def test_max_pool_tiling_path_matches_torch(shape, pool_size, ties):
    rng = np.random.default_rng(4)
    x = rng.integers(-2, 2, size=shape).astype(np.float64) if ties else rng.normal(size=shape)
    with backend.default_dtype("float64"):
        pool = layer.MaxPool2D(pool_size)
        y = pool.forward(x)
        g = rng.normal(size=y.shape)
        dx = pool.backward(g)
    assert "slices" in pool.ctx
    xt = _nchw(x)
    yt = TF.max_pool2d(xt, pool.pool_size)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(y, _nhwc(yt))
    np.testing.assert_array_equal(dx, _nhwc(xt.grad))  # same winner as torch on ties


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("config", POOL_CONFIGS, ids=[str(c) for c in POOL_CONFIGS])
def test_avg_pool_matches_torch(config, count_include_pad):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 7, 8, 3))
    with backend.default_dtype("float64"):
        pool = layer.AvgPool2D(**config, count_include_pad=count_include_pad)
        y = pool.forward(x)
        g = rng.normal(size=y.shape)
        dx = pool.backward(g)
    xt = _nchw(x)
    yt = TF.avg_pool2d(xt, pool.pool_size, pool.stride, pool.padding, count_include_pad=count_include_pad)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, _nhwc(yt), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-12, atol=1e-12)


def test_global_avg_pool_matches_torch_adaptive_avg_pool():
    x = np.random.default_rng(3).normal(size=(3, 5, 4, 6)).astype(np.float32)
    pool = layer.GlobalAvgPool2D()
    y = pool.forward(x)
    dx = pool.backward(np.ones_like(y))
    xt = _nchw(x)
    yt = TF.adaptive_avg_pool2d(xt, 1).flatten(1)
    yt.sum().backward()
    assert y.dtype == dx.dtype == np.float32 and y.shape == (3, 6)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: layer.MaxPool2D((2, 3), stride=1, padding=(1, 0), name="p"),
    lambda: layer.AvgPool2D(3, padding=1, count_include_pad=False),
    lambda: layer.GlobalAvgPool2D(),
])
def test_pool_get_config_round_trips(make):
    config = json.loads(json.dumps(layer_to_config(make())))
    assert layer_to_config(layer_from_config(config)) == config


def test_pool_errors_say_what_was_expected():
    with pytest.raises(ValueError, match=r"padding must be at most half of pool_size \(2, 2\), got \(2, 2\)"):
        layer.MaxPool2D(2, padding=2)
    with pytest.raises(ValueError, match=r"pool_size must be an int >= 1 or a pair of them, got 0"):
        layer.AvgPool2D(0)
    with pytest.raises(ShapeError, match=r"expects NHWC input \(N, H, W, C\), got shape \(2, 8\)"):
        layer.MaxPool2D(2).forward(np.zeros((2, 8), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"pool_size \(3, 3\).*does not fit input of shape \(1, 2, 2, 1\)"):
        layer.AvgPool2D(3).forward(np.zeros((1, 2, 2, 1), dtype=np.float32))
    with pytest.raises(ShapeError, match="expects NHWC input"):
        layer.GlobalAvgPool2D().forward(np.zeros((2, 3, 4), dtype=np.float32))
