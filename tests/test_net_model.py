"""Net and Model: the seed's API, flat buffers, dtype handling, errors, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import nnframe
from nnframe import initializer, layer, loss, model, net, optimizer
from nnframe.errors import ShapeError
from nnframe.layer import Activation, Layer


def seed_mlp(sizes=(200, 100, 70, 30, 10)):
    layers = []
    for size in sizes[:-1]:
        layers += [layer.Dense(size), layer.ReLU()]
    return net.Net([*layers, layer.Dense(sizes[-1])])


def blobs(n=256, d=20, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * 3
    y = rng.integers(0, k, size=n)
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def train(m, x, y, steps=60, batch=32):
    losses = []
    for i in range(steps):
        j = (i * batch) % len(x)
        pred = m.forward(x[j : j + batch])
        value, step = m.backward(pred, y[j : j + batch])
        m.apply_grad(step)
        losses.append(value)
    return losses


def test_the_seed_script_api_trains():
    x, y = blobs()
    onehot = np.eye(4)[y]  # the seed's float64 one-hot labels
    m = model.Model(net=seed_mlp((32, 16, 4)), loss=loss.SoftmaxCrossEntropy(), optimizer=optimizer.Adam(lr=1e-2))
    losses = train(m, x, onehot)
    assert round(losses[-1], 2) < 0.5 * losses[0]
    acc = (np.argmax(m.forward(x), axis=1) == y).mean()
    assert acc > 0.9


def test_params_and_grads_are_views_of_one_buffer_and_apply_grad_is_one_add():
    x, y = blobs(64)
    m = model.Model(seed_mlp((8, 4)), loss.SoftmaxCrossEntropy(), optimizer.SGD(lr=0.1))
    pred = m.forward(x)
    before = m.net.params.flat.copy()
    _, step = m.backward(pred, y)
    for i, lyr in enumerate(m.net.layers):
        for k in lyr.params:
            assert np.shares_memory(lyr.params[k], m.net.params.flat)
            np.testing.assert_array_equal(step[f"{i}.{k}"], -0.1 * lyr.grads[k])
    m.apply_grad(step)
    np.testing.assert_allclose(m.net.params.flat, before + step.flat)
    assert m.net.params.layout.names == ("0.w", "0.b", "2.w", "2.b")


def test_seed_list_of_dicts_step_is_accepted_by_apply_grad():
    x, y = blobs(16)
    m = model.Model(seed_mlp((3,)), loss.MSE(), optimizer.SGD(lr=0.1))
    m.forward(x)
    w0 = m.net.layers[0].params["w"].copy()
    m.apply_grad([{"w": np.ones_like(w0), "b": np.zeros(3)}])
    np.testing.assert_allclose(m.net.layers[0].params["w"], w0 + 1)
    with pytest.raises(TypeError, match="list of 1 per-layer dicts"):
        m.apply_grad("nope")


def test_net_forward_returns_output_and_backward_returns_input_gradient():
    with nnframe.backend.default_dtype("float64"):
        n = seed_mlp((5, 3))
        x = np.random.default_rng(0).normal(size=(4, 6))
        out = n.forward(x)
        assert out.shape == (4, 3)
        dx = n.backward(np.ones_like(out))
        assert dx.shape == x.shape
        nnframe.gradcheck(n, x)


class SeedDense(Layer):
    """A layer written exactly the seed's way: rebinding grads with fresh arrays."""

    def __init__(self, num_out):
        super().__init__()
        self.initializers = {"w": initializer.XavierUniform(rng=3), "b": initializer.Zeros()}
        self.shapes = {"w": [None, num_out], "b": [num_out]}

    def forward(self, inputs):
        if not self.is_init:
            self.shapes["w"][0] = inputs.shape[1]
            self._init_params()
        self.ctx = {"X": inputs}
        return inputs @ self.params["w"] + self.params["b"]

    def backward(self, grad):
        self.grads["w"] = self.ctx["X"].T @ grad
        self.grads["b"] = np.sum(grad, axis=0)
        return grad @ self.params["w"].T

    @property
    def param_names(self):
        return "w", "b"


class Relu(Activation):
    def __init__(self):
        super().__init__("ReLU")

    def forward_func(self, x):
        return np.maximum(x, 0.0)

    def backward_func(self, x):
        return x > 0.0


def test_a_layer_written_the_seed_way_trains_like_the_builtin():
    x, y = blobs()
    seed_net = net.Net([SeedDense(16), Relu(), SeedDense(4)])
    ours = model.Model(seed_net, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-2))
    builtin = model.Model(
        net.Net([layer.Dense(16, w_init=initializer.XavierUniform(rng=3)), layer.ReLU(),
                 layer.Dense(4, w_init=initializer.XavierUniform(rng=3))]),
        loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-2),
    )
    a, b = train(ours, x, y, steps=30), train(builtin, x, y, steps=30)
    assert a[-1] < 0.5 * a[0]
    np.testing.assert_allclose(a, b, rtol=1e-5)
    assert ours.net.layers[1].name == "ReLU"


def test_float64_batch_is_cast_and_parameters_stay_float32():
    x, y = blobs(32)
    m = model.Model(seed_mlp((8, 4)), loss.SoftmaxCrossEntropy(), optimizer.Adam())
    pred = m.forward(x.astype(np.float64))
    assert pred.dtype == np.float32
    _, step = m.backward(pred, np.eye(4)[y])
    m.apply_grad(step)
    assert m.net.params.flat.dtype == np.float32
    assert all(buf.flat.dtype == np.float32 for buf in m.optimizer.state.values())


def test_uint8_images_are_cast_to_the_net_dtype():
    n = net.Net([layer.Flatten(), layer.Dense(3)])
    out = n.forward(np.zeros((2, 4, 4, 1), dtype=np.uint8))
    assert out.dtype == np.float32


def test_float64_default_dtype_builds_float64():
    nnframe.set_default_dtype("float64")
    n = seed_mlp((4, 2))
    assert n.forward(np.zeros((1, 3), dtype=np.float32)).dtype == np.float64
    with pytest.raises(ValueError, match="float32 or float64"):
        nnframe.set_default_dtype("int32")


def test_dense_fed_a_different_width_names_layer_and_shapes():
    n = seed_mlp((5, 2))
    n.forward(np.zeros((3, 7), dtype=np.float32))
    expected = r"layer 0 \(Dense\): Dense was built for 7 input features, got input of shape \(3, 8\)"
    with pytest.raises(ShapeError, match=expected):
        n.forward(np.zeros((3, 8), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"layer 0 \(Dense\).*built for 7 .*\(3, 2, 4\) \(4 features"):
        n.forward(np.zeros((3, 2, 4), dtype=np.float32))  # leading axes are fine, the last one must match
    with pytest.raises(ShapeError, match=r"layer 0 \(Dense\).*\(N, \.\.\., D_in\).*\(3,\)"):
        n.forward(np.zeros((3,), dtype=np.float32))


def test_nan_loss_raises_in_backward_unless_disabled():
    x, y = blobs(8)
    m = model.Model(seed_mlp((4,)), loss.SoftmaxCrossEntropy(), optimizer.SGD(lr=0.1))
    x[0, 0] = np.nan
    pred = m.forward(x)
    with pytest.raises(ValueError, match="not finite"):
        m.backward(pred, y)
    m.check_finite = False
    value, _ = m.backward(pred, y)
    assert np.isnan(value)


def test_model_rejects_wrong_components():
    with pytest.raises(TypeError, match="loss must be a BaseLoss, got Adam"):
        model.Model(seed_mlp((2,)), optimizer.Adam(), optimizer.Adam())
    with pytest.raises(TypeError, match="layer 1 must be a nnframe Layer, got int"):
        net.Net([layer.ReLU(), 3])


def test_same_seed_gives_bit_identical_runs_and_other_seed_differs():
    x, y = blobs()

    def run(seed):
        nnframe.set_seed(seed)
        n = net.Net([layer.Dense(16), layer.ReLU(), layer.Dropout(0.3), layer.Dense(4)])
        m = model.Model(n, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-2))
        train(m, x, y, steps=10)
        return m.net.params.flat.copy()

    a, b, c = run(7), run(7), run(8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_train_eval_switches_every_layer():
    n = net.Net([layer.Dense(4), layer.Dropout(0.5), layer.Dense(2)])
    assert n.eval() is n and not any(lyr.is_training for lyr in n.layers)
    x = np.ones((3, 5), dtype=np.float32)
    np.testing.assert_array_equal(n.forward(x), n.forward(x))
    n.train()
    assert all(lyr.is_training for lyr in n.layers)


def test_get_and_set_parameters_and_state_dict():
    x, _ = blobs(8)
    a, b = seed_mlp((4, 2)), seed_mlp((4, 2))
    a.forward(x)
    b.forward(x)
    b.set_parameters([{k: v.copy() for k, v in p.items()} for p in a.get_parameters()])
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert [len(p) for p, _ in a.get_params_and_grads()] == [2, 0, 2]
    state = a.state_dict()
    state["0.w"] = np.zeros((3, 3), np.float32)
    state["9.q"] = np.zeros(1)
    del state["2.b"]
    expected = r"unknown names: \['9.q'\].*missing names: \['2.b'\].*0.w: expected shape \(20, 4\), got \(3, 3\)"
    with pytest.raises(ValueError, match=expected):
        b.load_state_dict(state)


def test_rebinding_params_copies_into_the_buffer():
    x, _ = blobs(8)
    n = seed_mlp((3,))
    n.forward(x)
    n.layers[0].params["b"] = np.full(3, 2.0, dtype=np.float32)
    n.forward(x)
    np.testing.assert_array_equal(n.params["0.b"], 2.0)
    assert np.shares_memory(n.layers[0].params["b"], n.params.flat)


def test_config_round_trip_rebuilds_the_architecture():
    n = net.Net([layer.Dense(5, bias=False), layer.GELU("tanh"), layer.Dropout(0.2), layer.Dense(2)])
    clone = net.Net.from_config(n.get_config())
    assert [type(lyr) for lyr in clone.layers] == [type(lyr) for lyr in n.layers]
    assert clone.layers[0].bias is False and clone.layers[1].approximate == "tanh"
    assert clone.layers[2].rate == 0.2


def test_the_first_layer_skips_its_input_gradient_in_model_backward():
    x, y = blobs(8)
    m = model.Model(seed_mlp((4,)), loss.SoftmaxCrossEntropy(), optimizer.SGD(lr=0.1))
    m.backward(m.forward(x), y)
    assert m.net.layers[0].requires_input_grad is False
    assert m.net.backward(np.ones((8, 4), np.float32)).shape == x.shape


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: layer.Dropout(1.0), r"rate must be in \[0.0, 1.0\), got 1.0"),
        (lambda: layer.Dropout(-0.1), "rate must be in"),
        (lambda: layer.Dense(0), "num_out must be a positive integer, got 0"),
        (lambda: layer.ELU(alpha=0), "alpha must be > 0"),
        (lambda: layer.GELU("fast"), "approximate must be 'none' or 'tanh'"),
        (lambda: layer.Reshape((2, -1, -1)), "at most one -1"),
    ],
)
def test_layers_reject_nonsensical_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_reshape_error_names_the_shapes():
    with pytest.raises(ShapeError, match=r"layer 0 \(Reshape\).*\(4, 2\) to \(3, 3\)"):
        net.Net([layer.Reshape((3, 3))]).forward(np.zeros((2, 4, 2), np.float32))
