"""nnframe.layer.base helpers: the layer-class registry and rate validation."""

import math

import numpy as np
import pytest

from nnframe import layer
from nnframe.layer import base


@pytest.mark.parametrize("cls", [layer.Dense, layer.ReLU, layer.Conv2D, layer.MaxPool2D, layer.BatchNorm,
                                 layer.Dropout, layer.Flatten, layer.Softmax, layer.Activation])
def test_get_layer_class_finds_every_exported_layer_by_its_class_name(cls):
    assert base.get_layer_class(cls.__name__) is cls


def test_get_layer_class_knows_every_layer_exported_from_the_package():
    exported = [getattr(layer, n) for n in layer.__all__]
    for cls in exported:
        if isinstance(cls, type) and issubclass(cls, base.Layer) and cls is not base.Layer:
            assert base.get_layer_class(cls.__name__) is cls


@pytest.mark.parametrize("name", ["Dens", "dense", "Layer", ""])
def test_get_layer_class_unknown_name_lists_the_known_ones(name):
    with pytest.raises(ValueError) as info:
        base.get_layer_class(name)
    message = str(info.value)
    assert message.startswith(f"unknown layer class {name!r}; known: [")
    assert "'Dense'" in message and "'Conv2D'" in message
    known = message.split("known: ", 1)[1]
    assert known == str(sorted(base._REGISTRY))  # the whole list, sorted


def test_a_new_subclass_registers_itself(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))  # keep the real registry clean
    with pytest.raises(ValueError):
        base.get_layer_class("Scale2")

    class Scale2(base.Layer):
        def forward(self, inputs):
            return 2 * inputs

    assert base.get_layer_class("Scale2") is Scale2
    rebuilt = base.layer_from_config(base.layer_to_config(Scale2(name="s")))
    assert type(rebuilt) is Scale2 and rebuilt.name == "s"


@pytest.mark.parametrize("value, low, high", [
    (0.0, 0.0, 1.0), (0.5, 0.0, 1.0), (0.999, 0.0, 1.0), (np.float32(0.25), 0.0, 1.0), (1, 0.0, 2.0),
    (-0.5, -1.0, 0.0), (np.int64(3), 3.0, 4.0),
])
def test_check_rate_returns_a_python_float_in_range(value, low, high):
    out = base.check_rate("Dropout", "rate", value, low, high)
    assert type(out) is float and out == float(value)


@pytest.mark.parametrize("value, low, high, shown", [
    (1.0, 0.0, 1.0, "1.0"), (-0.1, 0.0, 1.0, "-0.1"), (2, 0.0, 1.0, "2.0"), (math.nan, 0.0, 1.0, "nan"),
    (math.inf, 0.0, 1.0, "inf"), (0.5, 0.6, 0.9, "0.5"),
])
def test_check_rate_out_of_range_names_owner_argument_bounds_and_value(value, low, high, shown):
    with pytest.raises(ValueError) as info:
        base.check_rate("BatchNorm", "momentum", value, low, high)
    assert str(info.value) == f"BatchNorm: momentum must be in [{low}, {high}), got {shown}"


@pytest.mark.parametrize("value", ["0.5", "abc", None, True, False, [0.5], b"0.5", object()])
def test_check_rate_non_numbers_name_owner_and_argument(value):
    # before the fix, "abc" gave float()'s "could not convert string to float" and None a
    # TypeError, neither saying which layer or argument; "0.5" and True were accepted
    with pytest.raises(ValueError) as info:
        base.check_rate("Dropout", "rate", value)
    assert str(info.value) == f"Dropout: rate must be a number in [0.0, 1.0), got {value!r}"


def test_layers_validate_their_rates_with_check_rate():
    with pytest.raises(ValueError, match=r"Dropout: rate must be in \[0.0, 1.0\), got 1.0"):
        layer.Dropout(1.0)
    with pytest.raises(ValueError, match=r"Dropout: rate must be a number in \[0.0, 1.0\), got 'x'"):
        layer.Dropout("x")
    assert type(layer.Dropout(np.float32(0.5)).rate) is float


def test_a_user_class_named_like_a_builtin_does_not_shadow_it(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))

    class Dense(base.Layer):  # the user's own, in this test module
        def forward(self, inputs):
            return inputs

    assert base.get_layer_class("Dense") is layer.Dense  # checkpoints of nnframe's Dense still load as such
    assert Dense.registry_name == f"{__name__}.{Dense.__qualname__}"
    assert base.get_layer_class(Dense.registry_name) is Dense
    config = base.layer_to_config(Dense())
    assert config["class"] == Dense.registry_name and type(base.layer_from_config(config)) is Dense
    assert base.layer_to_config(layer.Dense(3))["class"] == "Dense"


def test_redefining_a_class_in_the_same_module_replaces_it(monkeypatch):
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))

    def define():
        class Twice(base.Layer):
            def forward(self, inputs):
                return inputs

        return Twice

    first, second = define(), define()  # like a notebook cell run twice
    assert first.registry_name == second.registry_name == "Twice"
    assert base.get_layer_class("Twice") is second


class _SeedStyleScale(base.Layer):
    """y = x * a, written the seed's way: backward writes ``self.grads["a"][...]``."""

    @property
    def param_names(self):
        return ("a",)

    def __init__(self):
        super().__init__()
        from nnframe import initializer

        self.initializers = {"a": initializer.Normal(1.0, 0.5, rng=0)}
        self.shapes = {"a": [None]}

    def forward(self, inputs):
        if not self.is_init:
            self.shapes["a"][0] = inputs.shape[1]
            self._init_params(inputs.dtype)
        self.ctx = {"X": inputs}
        return inputs * self.params["a"]

    def backward(self, grad):
        self.grads["a"][...] = (grad * self.ctx["X"]).sum(axis=0)
        return grad * self.params["a"]


def test_a_standalone_layer_can_write_its_grads_in_place_under_gradcheck():
    # before the fix, grads was empty outside a Net: a bare KeyError: 'a'
    import nnframe
    from nnframe.gradcheck import smooth_input

    with nnframe.backend.default_dtype("float64"):
        report = nnframe.gradcheck(_SeedStyleScale(), smooth_input((4, 6)))
    assert set(report) == {"input", "0.a"} and max(report.values()) < 1e-6


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_building_a_layer_creates_zero_grads_of_the_parameters_shape_and_dtype(dtype):
    import nnframe

    with nnframe.backend.default_dtype(dtype):
        dense = layer.Dense(3)
        dense.forward(np.ones((2, 5), dtype=dtype))
    for name in ("w", "b"):
        grad = dense.grads[name]
        assert grad.shape == dense.params[name].shape and grad.dtype == dtype
        assert not grad.any()
        assert dense.grad_buffer(name) is grad


def test_grad_buffer_is_the_array_a_net_backward_fills():
    from nnframe import net

    scale = _SeedStyleScale()
    stack = net.Net([scale])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    stack.forward(x)
    buffer = scale.grad_buffer("a")
    stack.backward(np.ones((2, 3), dtype=np.float32))
    assert buffer is scale.grads["a"]
    np.testing.assert_array_equal(stack.grads["0.a"], x.sum(axis=0))
    np.testing.assert_array_equal(buffer, x.sum(axis=0))


def test_grad_buffer_names_the_layer_and_what_is_wrong():
    dense = layer.Dense(2, name="head")
    with pytest.raises(RuntimeError, match=r"head: parameter 'w' is not created yet \(run forward first\)"):
        dense.grad_buffer("w")
    dense.forward(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(KeyError, match=r"head: no parameter 'a'; parameters: \['w', 'b'\]"):
        dense.grad_buffer("a")
