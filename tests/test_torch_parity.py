"""Forward and backward of the core layers against PyTorch's (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from nnframe import backend, layer
from nnframe.gradcheck import smooth_input

torch = pytest.importorskip("torch")
F = torch.nn.functional

CASES = [
    ("ReLU", layer.ReLU, F.relu),
    ("LeakyReLU", lambda: layer.LeakyReLU(0.2), lambda x: F.leaky_relu(x, 0.2)),
    ("ELU", lambda: layer.ELU(0.7), lambda x: F.elu(x, 0.7)),
    ("SELU", layer.SELU, F.selu),
    ("GELU", layer.GELU, F.gelu),
    ("GELU-tanh", lambda: layer.GELU("tanh"), lambda x: F.gelu(x, approximate="tanh")),
    ("SiLU", layer.SiLU, F.silu),
    ("Sigmoid", layer.Sigmoid, torch.sigmoid),
    ("Tanh", layer.Tanh, torch.tanh),
    ("Softplus", lambda: layer.Softplus(2.0), lambda x: F.softplus(x, beta=2.0, threshold=1e9)),
    ("Softmax", layer.Softmax, lambda x: F.softmax(x, dim=-1)),
    ("Identity", layer.Identity, lambda x: x),
    ("Flatten", layer.Flatten, lambda x: x.reshape(x.shape[0], -1)),
]


@pytest.mark.parametrize("name,make,reference", CASES, ids=[c[0] for c in CASES])
def test_activation_matches_pytorch(name, make, reference):
    x = smooth_input((4, 3, 5), seed=2, kinks=(0.0,), scale=3.0)
    g = np.random.default_rng(3).normal(size=(4, 15) if name == "Flatten" else x.shape)
    with backend.default_dtype("float64"):
        lyr = make()
        y = lyr.forward(x)
        dx = lyr.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    ty = reference(tx)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias,lead", [(True, (6,)), (False, (6,)), (True, (2, 4)), (False, (2, 3, 2))])
def test_dense_matches_pytorch_linear(bias, lead):
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=(*lead, 5)), rng.normal(size=(*lead, 3))  # any leading axes, as nn.Linear
    with backend.default_dtype("float64"):
        dense = layer.Dense(3, bias=bias)
        y = dense.forward(x)
        dx = dense.backward(g)
    linear = torch.nn.Linear(5, 3, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(dense.params["w"].T))
        if bias:
            linear.bias.copy_(torch.tensor(dense.params["b"]))
    tx = torch.tensor(x, requires_grad=True)
    ty = linear(tx)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(dense.grads["w"], linear.weight.grad.numpy().T, rtol=1e-12)
    if bias:
        np.testing.assert_allclose(dense.grads["b"], linear.bias.grad.numpy(), rtol=1e-12)


def test_dropout_statistics_match_inverted_dropout():
    x = np.ones((200, 200), dtype=np.float32)
    y = layer.Dropout(0.3, rng=0).forward(x)
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    assert (y == 0).mean() == pytest.approx(0.3, abs=0.01)
    assert y.mean() == pytest.approx(1.0, abs=0.02)
