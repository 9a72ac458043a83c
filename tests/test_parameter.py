"""nnframe.parameter: layouts, flat buffers of named views, and the seed's list-of-dicts form."""

import numpy as np
import pytest

from nnframe import backend
from nnframe.parameter import ParamBuffer, ParamLayout, as_buffer


def seed_params(dtype=np.float32):
    """A seed-style list of per-layer dicts: a dense layer, a layer without parameters,
    an unbuilt slot (None), a scalar and a 3-D kernel."""
    rng = np.random.default_rng(0)
    return [
        {"w": rng.normal(size=(3, 4)).astype(dtype), "b": rng.normal(size=(4,)).astype(dtype)},
        {},
        {"gamma": None, "scale": np.array(2.5, dtype=dtype)},
        {"k": rng.normal(size=(2, 2, 3)).astype(dtype)},
    ]


def test_layout_from_layers_names_shapes_dtype_and_layer_count():
    layout = ParamLayout.from_layers(seed_params())
    assert layout.names == ("0.w", "0.b", "2.scale", "3.k")  # None entries are skipped
    assert layout.shapes == ((3, 4), (4,), (), (2, 2, 3))
    assert layout.dtype == np.float32
    assert layout.num_layers == 4  # the layer without parameters still counts
    assert layout.sizes == (12, 4, 1, 12)
    assert layout.size == 29


def test_layout_offsets_are_the_running_sum_of_sizes():
    layout = ParamLayout.from_layers(seed_params())
    assert layout.offsets == (0, 12, 16, 17)
    sizes = [int(np.prod(s)) for s in layout.shapes]
    assert list(layout.offsets) == list(np.cumsum([0, *sizes])[:-1])
    assert ParamLayout((), (), np.dtype(np.float32), 0).offsets == ()


def test_layout_from_layers_refuses_mixed_dtypes_listing_them():
    params = [{"w": np.zeros(2, np.float32)}, {"w": np.zeros(2, np.float64)}]
    with pytest.raises(ValueError, match="all parameters must share one dtype, found float32, float64"):
        ParamLayout.from_layers(params)


def test_layout_of_no_parameters_uses_the_default_dtype():
    assert ParamLayout.from_layers([{}, {"w": None}]).dtype == np.float32
    with backend.default_dtype("float64"):
        layout = ParamLayout.from_layers([{}])
    assert layout.dtype == np.float64 and layout.num_layers == 1 and layout.size == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_buffer_from_layers_copies_values_into_contiguous_views(dtype):
    params = seed_params(dtype)
    buffer = ParamBuffer.from_layers(params)
    assert buffer.flat.dtype == dtype and buffer.flat.shape == (29,)
    expected_flat = np.concatenate([v.ravel() for p in params for v in p.values() if v is not None])
    np.testing.assert_array_equal(buffer.flat, expected_flat)
    assert list(buffer) == list(buffer.layout.names) and len(buffer) == 4
    for name, start, size in zip(buffer.layout.names, buffer.layout.offsets, buffer.layout.sizes, strict=True):
        index, key = name.split(".")
        np.testing.assert_array_equal(buffer[name], params[int(index)][key])
        assert buffer[name].shape == params[int(index)][key].shape
        assert np.shares_memory(buffer[name], buffer.flat[start : start + size])
    # a copy: the originals and the buffer no longer share memory
    params[0]["w"][...] = 0
    assert not np.any(buffer["0.w"] == 0)


def test_buffer_views_write_through_to_the_flat_array_and_back():
    buffer = ParamBuffer.from_layers(seed_params())
    buffer["0.b"][...] = 7.0
    np.testing.assert_array_equal(buffer.flat[12:16], 7.0)
    buffer.flat[16] = -1.0
    assert buffer["2.scale"] == -1.0


def test_buffer_per_layer_round_trips_the_seed_form():
    params = seed_params()
    groups = ParamBuffer.from_layers(params).per_layer()
    assert [sorted(g) for g in groups] == [["b", "w"], [], ["scale"], ["k"]]
    for group, original in zip(groups, params, strict=True):
        for key, view in group.items():
            np.testing.assert_array_equal(view, original[key])


def test_as_buffer_returns_a_buffer_itself():
    buffer = ParamBuffer.from_layers(seed_params())
    assert as_buffer(buffer) is buffer


@pytest.mark.parametrize("container", [list, tuple])
def test_as_buffer_copies_the_seed_list_of_dicts(container):
    params = seed_params()
    buffer = as_buffer(container(params))
    assert isinstance(buffer, ParamBuffer)
    reference = ParamBuffer.from_layers(params)
    assert buffer.layout == reference.layout
    np.testing.assert_array_equal(buffer.flat, reference.flat)
    assert not np.shares_memory(buffer["0.w"], params[0]["w"])


def test_as_buffer_of_an_empty_list_is_an_empty_buffer():
    buffer = as_buffer([])
    assert len(buffer) == 0 and buffer.flat.shape == (0,) and buffer.layout.num_layers == 0


@pytest.mark.parametrize("bad, type_name", [
    ({"0.w": np.zeros(2)}, "dict"), (np.zeros(3), "ndarray"), ([np.zeros(2)], "list"),
    ([{"w": np.zeros(2)}, None], "list"), (None, "NoneType"),
])
def test_as_buffer_refuses_anything_else_naming_its_type(bad, type_name):
    with pytest.raises(TypeError, match=f"expected a ParamBuffer or a list of per-layer dicts, got {type_name}$"):
        as_buffer(bad)


def test_buffer_refuses_a_flat_array_of_the_wrong_shape_or_dtype():
    layout = ParamLayout.from_layers(seed_params())
    with pytest.raises(ValueError, match=r"flat buffer must have shape \(29,\) and dtype float32, got \(28,\) float32"):
        ParamBuffer(layout, np.zeros(28, np.float32))
    with pytest.raises(ValueError, match=r"got \(29,\) float64"):
        ParamBuffer(layout, np.zeros(29, np.float64))
    flat = np.arange(29, dtype=np.float32)
    buffer = ParamBuffer(layout, flat)
    assert buffer.flat is flat
    np.testing.assert_array_equal(buffer["3.k"].ravel(), np.arange(17, 29))


def test_integer_parameters_are_refused_naming_the_dtype():
    with pytest.raises(ValueError, match="parameters must be floating point .* got dtype int64"):
        ParamLayout.from_layers([{"w": np.zeros((2, 2), dtype=np.int64)}])
