"""BatchNorm, LayerNorm, Dropout2D and ZeroPad2D: against PyTorch, their state, and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nnframe import backend, layer
from nnframe.errors import ShapeError
from nnframe.layer.base import layer_from_config, layer_to_config
from nnframe.net import Net


def test_dropout2d_drops_whole_channels_and_scales_the_rest():
    drop = layer.Dropout2D(0.5, rng=0)
    x = np.ones((8, 3, 3, 16), dtype=np.float32)
    y = drop.forward(x)
    per_channel = y.reshape(8, 9, 16)
    assert (per_channel == per_channel[:, :1, :]).all()  # one draw per (sample, channel)
    assert set(np.unique(y)) == {0.0, 2.0} and y.dtype == np.float32
    np.testing.assert_array_equal(drop.backward(np.ones_like(y)), y)
    drop.is_training = False
    assert drop.forward(x) is x
    with pytest.raises(ShapeError, match=r"expects NHWC input \(N, H, W, C\), got shape \(8, 16\)"):
        layer.Dropout2D(0.5).forward(np.ones((8, 16), dtype=np.float32))


def test_batchnorm_running_stats_are_state_in_the_net():
    net = Net([layer.Conv2D(3, 3), layer.BatchNorm()])
    net.forward(np.random.default_rng(0).normal(size=(2, 5, 5, 1)).astype(np.float32))
    state = net.state_dict()
    assert {"1.running_mean", "1.running_var", "1.gamma", "1.beta"} <= set(state)
    assert state["1.running_mean"].dtype == np.float32 and state["1.running_var"].shape == (3,)


def test_batchnorm_and_layernorm_errors():
    with pytest.raises(ValueError, match=r"momentum must be in \[0.0, 1.0\), got 1.5"):
        layer.BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match="eps must be > 0, got 0.0"):
        layer.LayerNorm(eps=0.0)
    with pytest.raises(ShapeError, match=r"more than one value per feature, got input of shape \(1, 4\)"):
        layer.BatchNorm().forward(np.ones((1, 4), dtype=np.float32))
    norm = layer.BatchNorm()
    norm.forward(np.ones((2, 4), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"built for 4 features \(last axis\), got input of shape \(2, 5\)"):
        norm.forward(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"at least 2-D"):
        layer.BatchNorm().forward(np.ones(4, dtype=np.float32))


def test_batchnorm_eval_on_a_single_sample_is_allowed():
    norm = layer.BatchNorm()
    norm.forward(np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32))
    norm.is_training = False
    assert norm.forward(np.ones((1, 3), dtype=np.float32)).shape == (1, 3)


@pytest.mark.parametrize("make", [
    lambda: layer.BatchNorm(momentum=0.2, eps=1e-3, name="bn"),
    lambda: layer.LayerNorm(eps=1e-6),
    lambda: layer.Dropout2D(0.25),
    lambda: layer.ZeroPad2D((1, 2, 3, 4)),
])
def test_get_config_round_trips(make):
    config = json.loads(json.dumps(layer_to_config(make())))
    assert layer_to_config(layer_from_config(config)) == config


def test_zeropad2d_rejects_bad_padding():
    with pytest.raises(ValueError, match=r"padding must be an int >= 0 or \(left, right, top, bottom\), got \(1, 2\)"):
        layer.ZeroPad2D((1, 2))


torch = pytest.importorskip("torch")


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 6)])
def test_batchnorm_matches_torch_in_train_and_eval_including_running_stats(shape):
    rng = np.random.default_rng(2)
    with backend.default_dtype("float64"):
        norm = layer.BatchNorm(momentum=0.2, eps=1e-4)
        ref = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(
            shape[-1], momentum=0.2, eps=1e-4).double()
        perm, inv = ((0, 1), (0, 1)) if len(shape) == 2 else ((0, 3, 1, 2), (0, 2, 3, 1))
        for step in range(3):
            x = rng.normal(1.0 + step, 2.0, size=shape)
            g = rng.normal(size=shape)
            y = norm.forward(x)
            if step == 0:  # non-trivial affine parameters, shared with torch
                norm.params["gamma"][...] = rng.uniform(0.5, 1.5, size=shape[-1])
                norm.params["beta"][...] = rng.normal(size=shape[-1])
                ref.weight.data = torch.tensor(norm.params["gamma"].copy())
                ref.bias.data = torch.tensor(norm.params["beta"].copy())
                norm.nt_params["running_mean"][...] = 0.0
                norm.nt_params["running_var"][...] = 1.0
                y = norm.forward(x)
            dx = norm.backward(g)
            xt = torch.tensor(x.transpose(perm).copy(), requires_grad=True)
            ref.zero_grad()
            yt = ref(xt)
            yt.backward(torch.tensor(g.transpose(perm).copy()))
            np.testing.assert_allclose(y, yt.detach().numpy().transpose(inv), rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(dx, xt.grad.numpy().transpose(inv), rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(norm.grads["gamma"], ref.weight.grad.numpy(), rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(norm.grads["beta"], ref.bias.grad.numpy(), rtol=1e-9, atol=1e-10)
            np.testing.assert_allclose(norm.nt_params["running_mean"], ref.running_mean.numpy(), rtol=1e-12)
            np.testing.assert_allclose(norm.nt_params["running_var"], ref.running_var.numpy(), rtol=1e-12)
        norm.is_training = False
        ref.eval()
        x = rng.normal(size=shape)
        g = rng.normal(size=shape)
        y = norm.forward(x)
        dx = norm.backward(g)
    xt = torch.tensor(x.transpose(perm).copy(), requires_grad=True)
    ref.zero_grad()
    yt = ref(xt)
    yt.backward(torch.tensor(g.transpose(perm).copy()))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(inv), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(inv), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(norm.grads["gamma"], ref.weight.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_batchnorm_float32_keeps_dtype_and_matches_torch():
    x = np.random.default_rng(3).normal(3.0, 2.0, size=(16, 6, 6, 4)).astype(np.float32)
    norm = layer.BatchNorm()
    y = norm.forward(x)
    dx = norm.backward(np.ones_like(y) * 0.5)
    assert y.dtype == dx.dtype == norm.nt_params["running_var"].dtype == np.float32
    ref = torch.nn.BatchNorm2d(4)
    yt = ref(torch.tensor(x.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(norm.nt_params["running_var"], ref.running_var.numpy(), rtol=1e-5)


@pytest.mark.parametrize("shape", [(4, 7), (2, 3, 4, 5)])
def test_layernorm_matches_torch(shape):
    rng = np.random.default_rng(4)
    with backend.default_dtype("float64"):
        norm = layer.LayerNorm(eps=1e-4)
        x = rng.normal(2.0, 3.0, size=shape)
        norm.forward(x)
        norm.params["gamma"][...] = rng.uniform(0.5, 1.5, size=shape[-1])
        norm.params["beta"][...] = rng.normal(size=shape[-1])
        y = norm.forward(x)
        g = rng.normal(size=shape)
        dx = norm.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    w = torch.tensor(norm.params["gamma"].copy(), requires_grad=True)
    b = torch.tensor(norm.params["beta"].copy(), requires_grad=True)
    yt = torch.nn.functional.layer_norm(xt, (shape[-1],), w, b, eps=1e-4)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(norm.grads["gamma"], w.grad.numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(norm.grads["beta"], b.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_zeropad2d_matches_torch():
    x = np.random.default_rng(5).normal(size=(2, 3, 4, 2)).astype(np.float32)
    pad = layer.ZeroPad2D((1, 2, 0, 3))  # (left, right, top, bottom), as torch
    y = pad.forward(x)
    yt = torch.nn.ZeroPad2d((1, 2, 0, 3))(torch.tensor(x.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_array_equal(y, yt.numpy().transpose(0, 2, 3, 1))
    g = np.random.default_rng(6).normal(size=y.shape).astype(np.float32)
    np.testing.assert_array_equal(pad.backward(g), g[:, 0:3, 1:5, :])


def test_layernorm_eval_matches_train_and_backward_after_it_gives_the_same_gradients():
    rng = np.random.default_rng(5)
    x = rng.normal(1.0, 2.0, size=(3, 4, 6))
    g = rng.normal(size=x.shape)
    with backend.default_dtype("float64"):
        norm = layer.LayerNorm()
        norm.forward(x)
        norm.params["gamma"][...] = rng.uniform(0.5, 1.5, size=6)
        norm.params["beta"][...] = rng.normal(size=6)
        x_before = x.copy()
        results = []
        for training in (True, False):
            norm.is_training = training
            y = norm.forward(x)
            np.testing.assert_array_equal(x, x_before)  # the input is never written
            assert ("xhat" in norm.ctx) == training  # evaluation keeps only the input
            results.append((y, norm.backward(g), {k: v.copy() for k, v in norm.grads.items()}))
    (y_t, dx_t, grads_t), (y_e, dx_e, grads_e) = results
    np.testing.assert_allclose(y_e, y_t, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(dx_e, dx_t, rtol=1e-14, atol=1e-14)
    for name in grads_t:
        np.testing.assert_allclose(grads_e[name], grads_t[name], rtol=1e-14, atol=1e-14)
