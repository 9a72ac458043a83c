"""Containers are layers: nested nets and residual blocks share the root's flat buffers,
carry dotted names through state_dict, checkpoints and optimizer state, and propagate modes."""

from __future__ import annotations

import numpy as np
import pytest
from training_cases import blobs

import nnframe
from nnframe import io, layer, loss, optimizer
from nnframe.errors import ShapeError
from nnframe.model import Model
from nnframe.net import Net


def nested_net() -> Net:
    """Dense - Residual(Net(Dense, Tanh, Dense(BN))) - Net(Dropout, Net(Dense)): three levels."""
    block = layer.Residual(Net([layer.Dense(6), layer.Tanh(), layer.Dense(6), layer.BatchNorm()]))
    head = Net([layer.Dropout(0.2, rng=0), Net([layer.Dense(4)])])
    return Net([layer.Dense(6), layer.ReLU(), block, head])


def test_one_walk_names_every_parameter_by_its_dotted_path():
    n = nested_net()
    assert n.param_names == ("0.w", "0.b", "2.body.0.w", "2.body.0.b", "2.body.2.w", "2.body.2.b",
                             "2.body.3.gamma", "2.body.3.beta", "3.1.0.w", "3.1.0.b")
    paths = [path for path, _ in n.named_layers()]
    assert paths == ["0", "1", "2", "2.body", "2.body.0", "2.body.1", "2.body.2", "2.body.3",
                     "3", "3.0", "3.1", "3.1.0"]
    n.forward(np.ones((5, 3), np.float32))
    assert list(n.params) == list(n.param_names)
    assert set(n.state_dict()) == set(n.param_names) | {"2.body.3.running_mean", "2.body.3.running_var"}


def test_every_nested_parameter_and_gradient_is_a_view_of_the_roots_two_buffers():
    n = nested_net()
    y = n.forward(np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32))
    n.backward(np.ones_like(y))
    for _, leaf in n.named_leaves():
        for key in leaf.param_names:
            assert np.shares_memory(leaf.params[key], n.params.flat)
            assert np.shares_memory(leaf.grads[key], n.grads.flat)
    assert n.params.flat.size == n.num_params == sum(v.size for v in n.params.values())
    inner = n.layers[2]
    assert set(inner.params) == {"body.0.w", "body.0.b", "body.2.w", "body.2.b", "body.3.gamma", "body.3.beta"}
    assert np.shares_memory(inner.params["body.0.w"], n.params.flat)
    assert np.any(n.grads["2.body.0.w"] != 0)


def test_optimizer_step_is_one_update_over_the_whole_buffer():
    x, y = blobs(n=40, features=3, classes=4)
    model = Model(nested_net(), loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-2))
    pred = model.forward(x)
    before = model.net.params.flat.copy()
    value, step = model.backward(pred, y)
    assert step.layout == model.net.params.layout  # one layout: optimizer state keyed by dotted names
    model.apply_grad(step)
    np.testing.assert_array_equal(model.net.params.flat, before + step.flat)
    assert {f"m.{name}" for name in model.net.param_names} <= set(model.optimizer.state_dict()["arrays"])
    losses = [model.train_step(x, y)["loss"] for _ in range(40)]
    assert losses[-1] < 0.5 * value


def test_nested_checkpoint_round_trip_keeps_names_values_and_optimizer_state(tmp_path):
    x, y = blobs(n=40, features=3, classes=4)
    model = Model(nested_net(), loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-2))
    model.fit(x, y, epochs=2, batch_size=10, verbose=0, rng=0)
    path = tmp_path / "nested.safetensors"
    model.save(path)
    ckpt = io.read_checkpoint(path)
    assert "2.body.3.running_mean" in ckpt.net_arrays and "m.2.body.0.w" in ckpt.optimizer_arrays
    loaded = nnframe.load(path)
    assert isinstance(loaded.net.layers[2], layer.Residual)
    assert loaded.net.state_dict().keys() == model.net.state_dict().keys()
    for key, value in model.net.state_dict().items():
        np.testing.assert_array_equal(loaded.net.state_dict()[key], value)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    model.fit(x, y, epochs=3, batch_size=10, verbose=0, initial_epoch=2)
    resumed = Model(nested_net(), loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-2))
    resumed.fit(x, y, epochs=3, batch_size=10, verbose=0, resume_from=path)
    np.testing.assert_array_equal(resumed.net.params.flat, model.net.params.flat)


def test_flat_net_configs_without_a_class_still_rebuild_as_nets():
    config = {"dtype": "float32", "layers": [{"class": "Dense", "config": {"num_out": 3}}]}
    rebuilt = io.container_from_config(config)
    assert isinstance(rebuilt, Net) and isinstance(rebuilt.layers[0], layer.Dense)
    with pytest.raises(ValueError, match="container"):
        io.container_from_config({"class": "Dense", "num_out": 3})


def test_summary_shows_the_nesting():
    model = Model(nested_net(), loss.SoftmaxCrossEntropy(), optimizer.SGD(0.1))
    text = model.summary_text(input_shape=(3,))
    lines = text.splitlines()
    row = next(line for line in lines if line.split()[0] == "2.body.2")
    assert row.split()[1] == "Dense" and "(None, 6)" in row and row.endswith("42")
    assert any(line.split()[:2] == ["2", "Residual"] and line.endswith(f"{42 + 42 + 12:,}") for line in lines)
    assert any(line.split()[:2] == ["3.1.0", "Dense"] and "(None, 4)" in line for line in lines)
    body_row = next(line for line in lines if line.split()[0] == "2.body")
    assert body_row.index("Net") > next(line for line in lines if line.split()[0] == "2").index("Residual")
    assert f"Total params: {model.net.num_params:,}" in text


def test_is_training_propagates_to_every_level():
    n = nested_net()
    n.eval()
    assert all(not leaf.is_training for _, leaf in n.named_leaves())
    assert not n.layers[3].is_training
    n.layers[3].is_training = True
    assert n.layers[3].layers[1].layers[0].is_training and not n.layers[2].body.layers[0].is_training
    n.train()
    assert n.is_training and all(leaf.is_training for _, leaf in n.named_leaves())


def test_model_mode_restores_each_leaf():
    model = Model(nested_net(), loss.SoftmaxCrossEntropy(), optimizer.SGD(0.1))
    dropout = model.net.layers[3].layers[0]
    dropout.is_training = False
    with model.mode(training=True):
        assert dropout.is_training
    assert not dropout.is_training and model.net.layers[0].is_training


def test_a_built_net_placed_inside_another_keeps_its_weights():
    inner = Net([layer.Dense(4), layer.Tanh()])
    x = np.random.default_rng(1).normal(size=(3, 2)).astype(np.float32)
    y_alone = inner.forward(x)
    w = inner.params["0.w"].copy()
    outer = Net([inner, layer.Dense(2)])
    y = outer.forward(x)
    np.testing.assert_array_equal(outer.params["0.0.w"], w)
    np.testing.assert_array_equal(outer.layers[0].forward(x), y_alone)
    assert y.shape == (3, 2)
    assert np.shares_memory(inner.layers[0].params["w"], outer.params.flat)
    with pytest.raises(ValueError, match="outermost"):
        Model(inner, loss.MSE(), optimizer.SGD(0.1))


def test_a_layer_in_two_containers_of_one_tree_is_refused_by_name():
    shared = layer.Dense(3, name="shared_dense")
    n = Net([Net([shared]), Net([layer.Tanh(), shared])])
    with pytest.raises(ValueError, match=r"shared_dense.*'0\.0'.*'1\.1'"):
        n.forward(np.ones((2, 3), np.float32))


def test_repeated_layer_in_a_net_shares_parameters_and_sums_gradients():
    with nnframe.backend.default_dtype("float64"):
        shared = layer.Dense(3)
        n = Net([shared, layer.Tanh(), shared])
        x = np.random.default_rng(2).normal(size=(4, 3))
        y = n.forward(x)
        n.backward(np.ones_like(y))
        assert list(n.params) == ["0.w", "0.b"]
        w, b = shared.params["w"], shared.params["b"]
        h = np.tanh(x @ w + b)
        # d/dw sum(h @ w + b) = h^T 1 + x^T ((1 w^T) * (1 - h^2))
        g_h = np.ones_like(y) @ w.T * (1 - h ** 2)
        np.testing.assert_allclose(n.grads["0.w"], h.T @ np.ones_like(y) + x.T @ g_h, rtol=1e-12)
        np.testing.assert_allclose(n.grads["0.b"], np.ones_like(y).sum(0) + g_h.sum(0), rtol=1e-12)


def test_residual_shape_mismatch_names_both_branches():
    block = layer.Residual(Net([layer.Dense(5)], name="body_net"))
    with pytest.raises(ShapeError, match=r"body output \(body_net\) has shape \(2, 5\).*input \(2, 3\).*shortcut"):
        Net([block]).forward(np.ones((2, 3), np.float32))
    projected = layer.Residual(layer.Dense(5), shortcut=layer.Dense(4, name="proj"))
    with pytest.raises(ShapeError, match=r"shortcut output \(proj\) \(2, 4\)"):
        projected.forward(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="body must be a nnframe Layer"):
        layer.Residual(None)
    with pytest.raises(ValueError, match="different layers"):
        d = layer.Dense(2)
        layer.Residual(d, shortcut=d)


@pytest.mark.parametrize("merge", [layer.Add(), layer.Multiply()])
def test_merge_broadcasting_errors_list_every_shape_and_the_axis(merge):
    a, b = np.ones((2, 4, 4, 8), np.float32), np.ones((2, 4, 4, 16), np.float32)
    name = type(merge).__name__
    with pytest.raises(ShapeError, match=rf"{name}: input shapes \(2, 4, 4, 8\), \(2, 4, 4, 16\) do not "
                                         r"broadcast: axis -1 has sizes \[8, 16\]"):
        merge.forward([a, b])
    with pytest.raises(ShapeError, match=rf"{name} expects a list of at least 2 arrays, got ndarray"):
        merge.forward(a)
    with pytest.raises(ShapeError, match="one dtype"):
        merge.forward([a, a.astype(np.float64)])


def test_concatenate_errors_name_the_axis_and_shapes():
    cat = layer.Concatenate(axis=-1)
    with pytest.raises(ShapeError, match=r"differ on axis 1 \(3 vs 2\)"):
        cat.forward([np.ones((2, 3, 4)), np.ones((2, 2, 5))])
    with pytest.raises(ShapeError, match="equal rank"):
        cat.forward([np.ones((2, 3, 4)), np.ones((2, 3))])
    with pytest.raises(ValueError, match="axis 0 is the batch"):
        layer.Concatenate(axis=0)
    out = cat.forward([np.ones((2, 3), np.float32), np.zeros((2, 2), np.float32)])
    assert out.dtype == np.float32 and out.shape == (2, 5)
    assert layer.layer_from_config(layer.layer_to_config(layer.Concatenate(axis=2))).axis == 2


def test_add_gradient_of_a_broadcast_input_sums_over_the_broadcast_axes():
    add = layer.Add()
    add.forward([np.zeros((2, 3, 4)), np.zeros((1, 4))])
    g = np.arange(24.0).reshape(2, 3, 4)
    dx = add.backward(g)
    np.testing.assert_array_equal(dx[0], g)
    np.testing.assert_array_equal(dx[1], g.sum(axis=(0, 1)).reshape(1, 4))


def test_first_layers_of_a_nested_net_skip_the_input_gradient():
    n = Net([Net([layer.Dense(3)]), layer.Dense(2)])
    y = n.forward(np.ones((4, 5), np.float32))
    assert n.backward(np.ones_like(y), input_grad=False) is None
    assert not n.layers[0].layers[0].requires_input_grad
    assert n.backward(np.ones_like(y)).shape == (4, 5)


def test_the_mask_route_runs_through_a_nested_net():
    ids = np.array([[3, 1, 0, 0], [2, 0, 0, 0]])
    inner = Net([layer.Dense(3), layer.ReLU()])
    outer = Net([layer.Embedding(4, 2, padding_idx=0, mask_padding=True), inner])
    outer.forward(ids)
    np.testing.assert_array_equal(inner.compute_mask(None, None), ids != 0)
    with pytest.raises(ShapeError, match=r"layer 1 \(Net\): layer 1 \(Flatten\): Flatten cannot take the mask"):
        Net([layer.Embedding(4, 2, padding_idx=0, mask_padding=True),
             Net([layer.Dense(3), layer.Flatten()])]).forward(ids)


def test_nested_shape_inference_names_every_state_and_allocates_nothing():
    n = nested_net()
    outputs, states = n.infer_shapes((2, 3))
    assert outputs == [(2, 6), (2, 6), (2, 6), (2, 4)]
    assert states["2.body.2.w"] == (6, 6) and states["2.body.3.running_var"] == (6,)
    assert states["3.1.0.w"] == (6, 4) and set(states) == set(n.param_names) | set(n.nt_param_names)
    assert not n.is_init and all(p is None for _, leaf in n.named_leaves() for p in leaf.params.values())
    n.build((1, 3))
    assert {k: v.shape for k, v in n.state_dict().items()} == states
    bad = Net([layer.Dense(4), layer.Residual(Net([layer.Dense(5)], name="grow"))])
    with pytest.raises(ShapeError, match=r"layer 1 \(Residual\): Residual: the body output \(grow\) has shape "
                                         r"\(2, 5\), the input \(2, 4\)"):
        bad.infer_shapes((2, 3))


@pytest.mark.parametrize("first", ["embedding", "dense"])
def test_a_net_built_by_its_first_forward_takes_its_own_dtype(first):
    """Net(dtype=float64) under the float32 default: lazily built leaves follow the net, not the default."""
    import numpy as np

    from nnframe import backend, layer
    from nnframe.net import Net

    assert backend.get_default_dtype() == np.float32
    head = layer.Embedding(5, 3) if first == "embedding" else layer.Dense(3)
    net = Net([head, layer.TransformerEncoderBlock(3, 1, ff_dim=4), layer.Dense(2)], dtype="float64")
    x = np.zeros((2, 4), np.int64) if first == "embedding" else np.zeros((2, 4, 6), np.float32)
    out = net.forward(x)
    assert out.dtype == np.float64
    assert all(v.dtype == np.float64 for v in net.state_dict().values())
    assert backend.get_default_dtype() == np.float32  # restored
