"""One conformance test over every layer: shapes, dtypes, gradients, train/eval."""

from __future__ import annotations

import numpy as np
import pytest
from layer_cases import ALL_CASES, Case

from nnframe import backend, initializer
from nnframe import layer as layer_mod
from nnframe import random as nnframe_random
from nnframe.errors import ShapeError
from nnframe.gradcheck import gradcheck, smooth_input
from nnframe.layer import Container
from nnframe.layer.base import implements_shape_inference, infer_output_shape
from nnframe.net import Net

IDS = [c.id for c in ALL_CASES]


def _input(case: Case, dtype, seed: int = 0):
    """The case's input batch; a list of batches when its input_shape is a list (merges)."""
    if case.ids is not None:  # integer ids (Embedding): no input gradient
        return np.random.default_rng(seed).integers(0, case.ids, size=case.input_shape)
    if isinstance(case.input_shape, list):
        return [smooth_input(s, seed=seed + i, kinks=case.kinks).astype(dtype)
                for i, s in enumerate(case.input_shape)]
    return smooth_input(case.input_shape, seed=seed, kinks=case.kinks).astype(dtype)


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _ones_like(y):
    """The output gradient of ones (a list of them for a layer with several outputs)."""
    return [np.ones_like(a) for a in y] if isinstance(y, list) else np.ones_like(y)


def _shape_of(y):
    return [a.shape for a in y] if isinstance(y, list) else y.shape


def _expected_param_names(layer) -> set[str]:
    """gradcheck's names: a container's dotted names, a leaf's "0.<key>"."""
    if isinstance(layer, Container):
        return set(layer.param_names)
    return {f"0.{k}" for k in layer.param_names}


@pytest.mark.parametrize("case", ALL_CASES, ids=IDS)
def test_gradients_match_finite_differences_float64(case: Case):
    with backend.default_dtype("float64"):
        layer = case.make()
        x = _input(case, np.float64)
        report = gradcheck(layer, x, **case.gradcheck)
    inputs = {"input"} if not isinstance(x, list) else {f"input.{i}" for i in range(len(x))}
    if case.ids is not None:
        assert "input" not in report
        inputs = set()
    assert inputs <= set(report)
    assert set(report) - inputs == _expected_param_names(layer)


@pytest.mark.parametrize("case", ALL_CASES, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_and_gradient_keep_dtype_and_shape(case: Case, dtype):
    with backend.default_dtype(dtype):
        layer = case.make()
        x = _input(case, dtype)
        y = layer.forward(x)
        if case.output_shape is not None:
            assert _shape_of(y) == case.output_shape
        assert all(yi.dtype == dtype for yi in _as_list(y))
        dx = layer.backward(_ones_like(y))
    if case.ids is not None:
        assert dx is None  # integer ids have no gradient
    else:
        for dxi, xi in zip(_as_list(dx), _as_list(x), strict=True):
            assert dxi.shape == xi.shape and dxi.dtype == dtype
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
    for a, b in zip(_as_list(y_eval), _as_list(y_eval_again), strict=True):
        np.testing.assert_array_equal(a, b)  # eval is deterministic
    differs = any(not np.allclose(a, b) for a, b in zip(_as_list(y_train), _as_list(y_eval), strict=True))
    assert differs == case.train_differs


@pytest.mark.parametrize("case", ALL_CASES, ids=IDS)
def test_layer_inside_a_net_keeps_flat_views(case: Case):
    net = Net([case.make()])
    x = _input(case, np.float32)
    y = net.forward(x)
    net.backward(_ones_like(y))
    layer = net.layers[0]
    for name in layer.param_names:
        assert np.shares_memory(layer.params[name], net.params.flat)
        assert np.shares_memory(layer.grads[name], net.grads.flat)


def test_every_public_layer_has_a_conformance_case():
    from nnframe import layer as layer_mod

    public = {name for name, obj in vars(layer_mod).items()
              if isinstance(obj, type) and issubclass(obj, layer_mod.Layer) and not name.startswith("_")}
    public -= {"Layer", "Activation", "Container"}  # the bases: every concrete subclass is checked instead
    assert {"Dense", "ReLU", "Conv2D", "BatchNorm"} <= public  # the scan sees the layers
    covered = {type(case.make()).__name__ for case in ALL_CASES}
    assert public - covered == set(), "layers without a conformance case"


# ------------------------------------------------------------------ shape inference
@pytest.mark.parametrize("case", ALL_CASES, ids=IDS)
def test_shape_inference_agrees_with_forward_and_allocates_nothing(case: Case):
    layer = case.make()
    assert implements_shape_inference(layer), f"{type(layer).__name__} has no compute_output_shape"
    was_built = layer.is_init  # warmed-up cases are built already
    if isinstance(layer, Container):  # build allocates for the outermost container: infer_shapes does not
        out_shape = layer.infer_shapes(case.input_shape)[0][-1]
        assert not layer.is_init or was_built
    else:
        out_shape = infer_output_shape(layer, case.input_shape)
        if not was_built:
            assert all(v is None for v in [*layer.params.values(), *layer.nt_params.values()])
    shapes = layer.state_shapes()
    assert set(shapes) == {*layer.param_names, *layer.nt_param_names}
    y = layer.forward(_input(case, np.float32))
    assert _shape_of(y) == out_shape
    allocated = {k: v.shape for k, v in [*layer.params.items(), *layer.nt_params.items()]}
    assert allocated == shapes
    if isinstance(case.input_shape, list):
        out = layer.compute_output_shape([(7, *s[1:]) for s in case.input_shape])
    else:
        out = layer.compute_output_shape((7, *case.input_shape[1:]))
    assert all(s[0] == 7 for s in (out if isinstance(out, list) else [out]))  # any batch size


BAD_SHAPES = [
    (lambda: layer_mod.Dense(3), (6,)),
    (lambda: layer_mod.Conv2D(2, 5), (1, 3, 3, 1)),
    (lambda: layer_mod.Conv2D(2, 3), (1, 5, 5)),
    (lambda: layer_mod.Conv2D(4, 3, groups=2), (1, 5, 5, 3)),
    (lambda: layer_mod.Conv1D(2, 5), (1, 3, 1)),
    (lambda: layer_mod.Conv2DTranspose(2, 3, padding=4), (1, 1, 1, 1)),
    (lambda: layer_mod.MaxPool2D(4), (1, 3, 3, 1)),
    (lambda: layer_mod.AvgPool2D(2), (4, 6)),
    (lambda: layer_mod.GlobalAvgPool2D(), (4, 6)),
    (lambda: layer_mod.Reshape((5, -1)), (2, 6)),
    (lambda: layer_mod.Reshape((4,)), (2, 6)),
    (lambda: layer_mod.ZeroPad2D(1), (2, 6)),
    (lambda: layer_mod.BatchNorm(), (6,)),
    (lambda: layer_mod.Dropout2D(0.5), (2, 6)),
]


@pytest.mark.parametrize("make, shape", BAD_SHAPES, ids=[f"{m().name}-{s}" for m, s in BAD_SHAPES])
def test_shape_inference_refuses_what_forward_refuses(make, shape):
    with pytest.raises(ShapeError):
        make().forward(np.zeros(shape, np.float32))
    with pytest.raises(ShapeError):
        make().compute_output_shape(shape)
    with pytest.raises(ShapeError):
        infer_output_shape(make(), shape)


def test_compute_output_shape_checks_a_built_layer_against_its_parameters():
    dense = layer_mod.Dense(3)
    dense.forward(np.zeros((2, 4), np.float32))
    assert dense.compute_output_shape((5, 4)) == (5, 3)
    with pytest.raises(ShapeError, match="built for 4 input features"):
        dense.compute_output_shape((5, 6))


class _SeedStyle(layer_mod.Layer):
    """A custom layer written the seed's way: shapes known only inside forward."""

    @property
    def param_names(self):
        return ("w",)

    def forward(self, inputs):
        if not self.is_init:
            self.initializers = {"w": initializer.Ones()}
            self.shapes = {"w": [inputs.shape[1], 2]}
            self._init_params()
        return inputs @ self.params["w"]


def test_a_layer_without_shape_inference_is_traced_not_guessed():
    seed = _SeedStyle()
    assert not implements_shape_inference(seed)
    with pytest.raises(NotImplementedError, match="_SeedStyle does not implement compute_output_shape"):
        seed.compute_output_shape((1, 3))
    with pytest.raises(ShapeError, match="not known yet"):
        seed.state_shapes()
    assert infer_output_shape(seed, (1, 3)) == (1, 2)  # the fallback: forward on zeros
    assert seed.is_init and seed.state_shapes() == {"w": (3, 2)}


def test_net_infer_shapes_walks_the_layers_without_allocating():
    net = Net([layer_mod.Conv2D(4, 3), layer_mod.BatchNorm(), layer_mod.MaxPool2D(2), layer_mod.Flatten(),
               layer_mod.Dense(10)])
    outputs, states = net.infer_shapes((1, 8, 8, 1))
    assert outputs == [(1, 6, 6, 4), (1, 6, 6, 4), (1, 3, 3, 4), (1, 36), (1, 10)]
    assert states == {"0.w": (3, 3, 1, 4), "0.b": (4,), "1.gamma": (4,), "1.beta": (4,),
                      "1.running_mean": (4,), "1.running_var": (4,), "4.w": (36, 10), "4.b": (10,)}
    assert not net.is_built and all(p is None for lay in net.layers for p in lay.params.values())
    net.build((1, 8, 8, 1))
    assert {k: v.shape for k, v in net.state_dict().items()} == states
    with pytest.raises(ShapeError, match=r"layer 3 \(Reshape\): Reshape cannot reshape samples of shape \(3,\)"):
        Net([layer_mod.Flatten(), layer_mod.Dense(2), layer_mod.Dense(3), layer_mod.Reshape((2, 2)),
             layer_mod.Dense(1)]).infer_shapes((1, 4))


@pytest.mark.parametrize("case", ALL_CASES, ids=IDS)
def test_net_build_without_a_forward_pass_gives_the_same_net(case: Case):
    x = _input(case, np.float32)
    nnframe_random.set_seed(5)
    by_forward = Net([case.make()])
    y_forward = by_forward.eval().forward(x)
    nnframe_random.set_seed(5)
    by_build = Net([case.make()]).build(case.input_shape)
    for name, value in by_forward.state_dict().items():
        np.testing.assert_array_equal(by_build.state_dict()[name], value)
    for a, b in zip(_as_list(by_build.eval().forward(x)), _as_list(y_forward), strict=True):
        np.testing.assert_array_equal(a, b)
