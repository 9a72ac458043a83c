"""nnframe.interop.builder's layout states: merges of values, branches resumed from a value, prebuilt layers."""

from __future__ import annotations

import numpy as np
import pytest

from nnframe import layer
from nnframe.interop.builder import ConversionError, NetBuilder, merge_layer
from nnframe.net import Net


def test_a_channels_first_concatenation_joins_nnframe_channels_and_sums_the_source_axis():
    states = [((3, 4, 5), "cf", None), ((2, 4, 5), "cf", None)]  # PyTorch (C, H, W) over nnframe (H, W, C)
    merge, (shape, kind, index) = merge_layer("test", "cat", states, axis=1)
    assert isinstance(merge, layer.Concatenate) and merge.axis == 3  # the channel axis is nnframe's last
    assert (shape, kind, index) == ((5, 4, 5), "cf", None)
    merge, (shape, _, _) = merge_layer("test", "cat", states[:1] * 2, axis=-1)  # the width: nnframe's axis 2
    assert merge.axis == 2 and shape == (3, 4, 10)
    merge, (shape, kind, _) = merge_layer("test", "cat", [((3,), "same", None), ((4,), "same", None)], axis=1)
    assert merge.axis == 1 and (shape, kind) == ((7,), "same")


def test_sums_and_products_keep_the_state_and_refusals_name_the_operation():
    merge, state = merge_layer("test", "add", [((2, 3), "same", None)] * 3)
    assert isinstance(merge, layer.Add) and state == ((2, 3), "same", None)
    assert isinstance(merge_layer("test", "mul", [((2, 3), "cf", None)] * 2)[0], layer.Multiply)
    with pytest.raises(ConversionError, match=r"^Add 'z' joins values of shapes \[\(None, 4\), \(None, 4\)\] held in "
                                              "different layouts"):
        merge_layer("Add 'z'", "add", [((4,), "same", None), ((4,), "flat", np.arange(4))])
    with pytest.raises(ConversionError, match=r"broadcasts values of shapes \[\(None, 2, 3\), \(None, 1, 3\)\]"):
        merge_layer("Mul 'm'", "mul", [((2, 3), "same", None), ((1, 3), "same", None)])
    with pytest.raises(ConversionError, match="joins along the batch axis"):
        merge_layer("Concat 'c'", "cat", [((2,), "same", None)] * 2, axis=0)


def test_a_resumed_builder_goes_on_in_the_layout_it_was_given():
    start = NetBuilder((3, 4, 4), channels_first=True)
    assert start.state() == ((3, 4, 4), "cf", None) and start.nnframe_shape() == (4, 4, 3)
    branch = NetBuilder.resume(*start.state())
    assert branch.input_shape == (4, 4, 3)
    branch.flatten()
    assert branch.state()[1] == "flat"  # a channels-first flattening: the next dense layer permutes its rows
    with pytest.raises(ConversionError, match="channels-first flatten"):
        branch.finish()
    flat = branch.finish_branch()  # inside a graph the next node undoes the order
    assert isinstance(flat, layer.Flatten)
    dense = NetBuilder.resume(*branch.state())
    weight = np.arange(2 * 48, dtype=np.float32).reshape(2, 48)  # PyTorch's (D_out, D_in)
    dense.dense(weight, None)
    x = np.random.default_rng(0).normal(size=(1, 3, 4, 4)).astype(np.float32)  # NCHW
    out = dense.finish().forward(flat.forward(x.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(out, x.reshape(1, -1) @ weight.T, rtol=1e-5)


def test_a_residual_of_two_branches_and_a_prebuilt_layer():
    start = NetBuilder((4,), channels_first=False)
    body, shortcut = NetBuilder.resume(*start.state()), NetBuilder.resume(*start.state())
    w = np.eye(4, dtype=np.float32) * 2
    body.dense(w, np.ones(4, dtype=np.float32))
    start.residual(body, shortcut)  # an empty shortcut: the identity
    dense = layer.Dense(3)
    head = Net([dense])
    head.build((1, 4))
    start.prebuilt(head, ((3,), "same", None))
    net = start.finish()  # the prebuilt net's weights are kept
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    np.testing.assert_allclose(net.forward(x), (x @ w.T + 1 + x) @ dense.params["w"] + dense.params["b"], rtol=1e-6)
    wide = NetBuilder.resume(*start.state())
    wide.dense(np.ones((5, 3), dtype=np.float32), None)
    with pytest.raises(ConversionError, match=r"the body gives shape \(N, 5\) and the shortcut \(N, 3\)"):
        start.residual(wide, NetBuilder.resume(*start.state()))
