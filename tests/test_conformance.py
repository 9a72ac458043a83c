"""One conformance test over every layer: shapes, dtypes, gradients, train/eval."""

from __future__ import annotations

import numpy as np
import pytest
from layer_cases import ALL_CASES, Case

from nnframe import backend
from nnframe.gradcheck import gradcheck, smooth_input
from nnframe.net import Net

IDS = [c.id for c in ALL_CASES]


def _input(case: Case, dtype, seed: int = 0) -> np.ndarray:
    if case.ids is not None:  # integer ids (Embedding): no input gradient
        return np.random.default_rng(seed).integers(0, case.ids, size=case.input_shape)
    return smooth_input(case.input_shape, seed=seed, kinks=case.kinks).astype(dtype)


@pytest.mark.parametrize("case", ALL_CASES, ids=IDS)
def test_gradients_match_finite_differences_float64(case: Case):
    with backend.default_dtype("float64"):
        layer = case.make()
        x = _input(case, np.float64)
        report = gradcheck(layer, x, **case.gradcheck)
    assert ("input" in report) == (case.ids is None)
    assert set(report) - {"input"} == {f"0.{k}" for k in layer.param_names}


@pytest.mark.parametrize("case", ALL_CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_and_gradient_keep_dtype_and_shape(case: Case, dtype):
    with backend.default_dtype(dtype):
        layer = case.make()
        x = _input(case, dtype)
        y = layer.forward(x)
        if case.output_shape is not None:
            assert y.shape == case.output_shape
        assert y.dtype == dtype
        dx = layer.backward(np.ones_like(y))
    if case.ids is not None:
        assert dx is None  # integer ids have no gradient
    else:
        assert dx.shape == x.shape and dx.dtype == dtype
    for name in layer.param_names:
        assert layer.params[name].dtype == dtype
        assert layer.grads[name].shape == layer.params[name].shape
        assert layer.grads[name].dtype == dtype


@pytest.mark.parametrize("case", ALL_CASES, ids=IDS)
def test_train_and_eval_modes(case: Case):
    layer = case.make()
    x = _input(case, np.float32)
    layer.is_training = True
    y_train = layer.forward(x)
    layer.is_training = False
    y_eval = layer.forward(x)
    y_eval_again = layer.forward(x)
    np.testing.assert_array_equal(y_eval, y_eval_again)  # eval is deterministic
    assert (not np.allclose(y_train, y_eval)) == case.train_differs


@pytest.mark.parametrize("case", ALL_CASES, ids=IDS)
def test_layer_inside_a_net_keeps_flat_views(case: Case):
    net = Net([case.make()])
    x = _input(case, np.float32)
    y = net.forward(x)
    net.backward(np.ones_like(y))
    layer = net.layers[0]
    for name in layer.param_names:
        assert np.shares_memory(layer.params[name], net.params.flat)
        assert np.shares_memory(layer.grads[name], net.grads.flat)


def test_every_public_layer_has_a_conformance_case():
    from nnframe import layer as layer_mod

    public = {name for name, obj in vars(layer_mod).items()
              if isinstance(obj, type) and issubclass(obj, layer_mod.Layer) and not name.startswith("_")}
    public -= {"Layer", "Activation"}  # the bases: every concrete subclass is checked instead
    assert {"Dense", "ReLU", "Conv2D", "BatchNorm"} <= public  # the scan sees the layers
    covered = {type(case.make()).__name__ for case in ALL_CASES}
    assert public - covered == set(), "layers without a conformance case"
