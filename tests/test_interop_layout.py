"""The weight-layout table (nnframe.interop.layout): every mapping inverts its pair and matches the op."""

from __future__ import annotations

import numpy as np
import pytest

from nnframe.interop import layout

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("to, back, shape", [
    (layout.to_linear, layout.from_linear, (5, 3)),
    (layout.to_oihw, layout.from_oihw, (3, 2, 4, 6)),  # Conv2D (KH, KW, Cin/g, Cout)
    (layout.to_oihw, layout.from_oihw, (3, 4, 6)),  # Conv1D (K, Cin/g, Cout)
    (layout.to_iohw, layout.from_iohw, (3, 2, 4, 6)),  # Conv2DTranspose (KH, KW, Cout, Cin)
    (layout.to_channels_first, layout.to_channels_last, (2, 3, 4, 5)),
])
def test_each_mapping_and_its_inverse_round_trip(to, back, shape):
    x = RNG.normal(size=shape)
    np.testing.assert_array_equal(back(to(x)), x)
    np.testing.assert_array_equal(to(back(to(x))), to(x))


def test_shapes_follow_the_table():
    assert layout.to_linear(np.zeros((5, 3))).shape == (3, 5)
    assert layout.to_oihw(np.zeros((3, 2, 4, 6))).shape == (6, 4, 3, 2)
    assert layout.to_oihw(np.zeros((3, 4, 6))).shape == (6, 4, 3)
    assert layout.to_iohw(np.zeros((3, 2, 4, 6))).shape == (6, 4, 3, 2)
    assert layout.to_channels_first(np.zeros((2, 3, 4, 5))).shape == (2, 5, 3, 4)


def test_the_conv_kernel_mapping_computes_the_same_convolution():
    x = RNG.normal(size=(1, 4, 5, 2))  # NHWC
    w = RNG.normal(size=(3, 2, 2, 3))  # HWIO
    out = np.einsum("nhwc,hwco->no", x[:, :3, :2], w)  # nnframe's first output pixel
    w_oihw = layout.to_oihw(w)
    x_nchw = layout.to_channels_first(x)
    out_cf = np.einsum("nchw,ochw->no", x_nchw[:, :, :3, :2], w_oihw)
    np.testing.assert_allclose(out, out_cf)


def test_flatten_order_maps_nchw_flattening_onto_nhwc_flattening():
    x = RNG.normal(size=(2, 3, 4, 5))  # NHWC
    index = layout.flatten_order((3, 4, 5))
    np.testing.assert_array_equal(layout.to_channels_first(x).reshape(2, -1), x.reshape(2, -1)[:, index])


@pytest.mark.parametrize("kind, torch_order, onnx_order", [
    ("lstm", "ifgo", "iofg"),  # ONNX names the cell gate c: i, o, f, c
    ("gru", "rzn", "zrn"),  # ONNX names the new gate h: z, r, h
])
def test_gate_orders_both_ways(kind, torch_order, onnx_order):
    hidden = 2
    blocks = {g: np.full((hidden, 3), float(k)) for k, g in enumerate(torch_order)}
    torch_weight = np.concatenate([blocks[g] for g in torch_order])
    onnx_weight = layout.torch_to_onnx_gates(torch_weight, kind)
    np.testing.assert_array_equal(onnx_weight, np.concatenate([blocks[g] for g in onnx_order]))
    np.testing.assert_array_equal(layout.onnx_to_torch_gates(onnx_weight, kind), torch_weight)
    with pytest.raises(ValueError, match="kind must be 'lstm' or 'gru', got 'rnn'"):
        layout.torch_to_onnx_gates(torch_weight, "rnn")
