"""Convolution layers and im2col/col2im: against PyTorch, a naive loop, and their error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from example_loader import load_example

from nnframe import backend, layer
from nnframe import functional as F
from nnframe.errors import ShapeError
from nnframe.layer import conv_ops as conv_module
from nnframe.layer.base import layer_from_config, layer_to_config
from nnframe.net import Net

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------- im2col / col2im
def _naive_im2col(x, kernel, stride, dilation, padding):
    padded = np.pad(x, ((0, 0), padding[0], padding[1], (0, 0)))
    n, h, w, c = padded.shape
    oh = (h - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (w - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    out = np.zeros((n, oh, ow, kernel[0], kernel[1], c))
    for a in range(oh):
        for b in range(ow):
            for i in range(kernel[0]):
                for j in range(kernel[1]):
                    out[:, a, b, i, j, :] = padded[:, a * stride[0] + i * dilation[0],
                                                   b * stride[1] + j * dilation[1], :]
    return out.reshape(n * oh * ow, -1)


GEOMETRIES = [
    ((3, 2), (2, 1), (1, 2), ((1, 0), (2, 1))),
    ((5, 5), (1, 1), (1, 1), ((0, 0), (0, 0))),
    ((2, 3), (3, 3), (1, 1), ((1, 1), (0, 2))),
    ((1, 1), (2, 2), (1, 1), ((0, 0), (0, 0))),
]


@pytest.mark.parametrize("channels", [1, 2, 8])  # 8 with KW >= 2 takes the NHWC copy path
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_im2col_matches_naive_loop_and_col2im_is_its_adjoint(channels, geometry):
    kernel, stride, dilation, padding = geometry
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 7, 8, channels))
    cols = F.im2col(x, kernel, stride, dilation, padding)
    np.testing.assert_array_equal(cols, _naive_im2col(x, kernel, stride, dilation, padding))
    g = rng.normal(size=cols.shape)
    dx = F.col2im(g, x.shape, kernel, stride, dilation, padding)
    assert dx.shape == x.shape and dx.flags.c_contiguous
    np.testing.assert_allclose((cols * g).sum(), (x * dx).sum(), rtol=1e-12)  # <im2col x, g> = <x, col2im g>
    np.testing.assert_allclose(F.col2im(np.asfortranarray(g), x.shape, kernel, stride, dilation, padding), dx)


@pytest.mark.parametrize("geometry", [
    ((3, 2), (1, 1), (1, 2), ((1, 0), (2, 1))),
    ((5, 5), (1, 1), (1, 1), ((0, 0), (0, 0))),
    ((2, 3), (1, 1), (2, 1), ((2, 2), (1, 1))),
])
def test_wide_col2im_equals_col2im_on_zero_padded_rows(geometry):
    kernel, stride, dilation, padding = geometry
    rng = np.random.default_rng(1)
    shape = (2, 7, 8, 3)
    cols = rng.normal(size=F.im2col(np.zeros(shape), kernel, stride, dilation, padding).shape)
    oh = F.conv_output_size(7, kernel[0], 1, dilation[0], sum(padding[0]))
    ow = F.conv_output_size(8, kernel[1], 1, dilation[1], sum(padding[1]))
    wp = 8 + sum(padding[1])
    wide = np.zeros((2, oh, wp, cols.shape[1]))
    wide[:, :, :ow] = cols.reshape(2, oh, ow, -1)  # the extra rows are zero
    np.testing.assert_allclose(
        F.col2im(np.asfortranarray(wide.reshape(-1, cols.shape[1])), shape, kernel, stride, dilation, padding,
                 wide=True),
        F.col2im(cols, shape, kernel, stride, dilation, padding), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"wide=True needs stride \(1, 1\), got \(2, 1\)"):
        F.col2im(cols, shape, kernel, (2, 1), dilation, padding, wide=True)


# ------------------------------------------------------------ banded convolution
BANDS = [  # kernel, block, padding; the input is sized so that block divides OW = 2 * block
    ((3, 3), 3, ((0, 0), (0, 0))),
    ((5, 5), 7, ((2, 2), (2, 2))),  # LeNet's first layer (block 7 of 28 columns)
    ((2, 4), 2, ((1, 0), (0, 1))),
    ((1, 3), 4, ((0, 0), (1, 1))),  # a Conv1D
]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("band", BANDS)
def test_banded_product_is_the_im2col_convolution_and_fold_rows_is_the_adjoint(band, channels):
    kernel, block, padding = band
    rng = np.random.default_rng(5)
    width = 2 * block + kernel[1] - 1 - sum(padding[1])
    x = rng.normal(size=(2, 6, width, channels))
    w = rng.normal(size=(*kernel, channels, 2))
    padded = F.pad2d(x, padding)
    rows = F.unfold_rows(padded, kernel, block)
    cols = F.im2col(x, kernel, padding=padding)
    np.testing.assert_allclose((rows @ F.banded_kernel(w, block)).ravel(), (cols @ w.reshape(-1, 2)).ravel(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(F.unfold_rows(padded, kernel, 1), cols)  # block 1 is im2col
    g = rng.normal(size=rows.shape)
    folded = F.fold_rows(g, padded.shape, kernel, block)
    assert folded.shape == padded.shape and folded.flags.c_contiguous
    np.testing.assert_allclose((rows * g).sum(), (padded * folded).sum(), rtol=1e-12)  # <unfold x, g> = <x, fold g>
    band_grad = rng.normal(size=F.banded_kernel(w, block).shape)
    w_grad = F.banded_kernel_grad(band_grad, kernel, block, out=np.empty_like(w))
    np.testing.assert_allclose((F.banded_kernel(w, block) * band_grad).sum(), (w * w_grad).sum(), rtol=1e-12)
    # with a bias: a ones column times a bias row
    b = rng.normal(size=2)
    rows_1 = F.unfold_rows(padded, kernel, block, ones_column=True)
    np.testing.assert_array_equal(rows_1, np.hstack([rows, np.ones((rows.shape[0], 1))]))
    np.testing.assert_allclose(rows_1 @ F.banded_kernel(w, block, b),
                               rows @ F.banded_kernel(w, block) + np.tile(b, block), rtol=1e-12, atol=1e-12)
    band_grad = rng.normal(size=F.banded_kernel(w, block, b).shape)
    b_grad = np.empty_like(b)
    w_grad = F.banded_kernel_grad(band_grad, kernel, block, out=np.empty_like(w), out_bias=b_grad)
    np.testing.assert_allclose((F.banded_kernel(w, block, b) * band_grad).sum(),
                               (w * w_grad).sum() + (b * b_grad).sum(), rtol=1e-12)
    with pytest.raises(ValueError, match=f"block {block + 1} does not divide the output width {2 * block}"):
        F.unfold_rows(padded, kernel, block + 1)


def test_band_block_takes_only_narrow_stride_one_convolutions():
    one, lenet1, lenet2 = (1, 1), (5, 5, 1, 6), (5, 5, 6, 16)
    assert conv_module.band_block(lenet1, 28, one, one, 1) == 7  # the smallest divisor in [KW, 2 KW]
    assert conv_module.band_block(lenet2, 10, one, one, 1) == 5
    assert conv_module.band_block(lenet2, 13, one, one, 1) == 0  # no divisor of 13 in [5, 10]
    assert conv_module.band_block(lenet2, 10, (2, 2), one, 1) == 0
    assert conv_module.band_block(lenet2, 10, one, (1, 2), 1) == 0
    assert conv_module.band_block((5, 5, 3, 16), 10, one, one, 2) == 0
    assert conv_module.band_block((5, 5, 6, 32), 10, one, one, 1) == 0  # wide layers keep im2col
    assert conv_module.band_block((3, 1, 6, 16), 10, one, one, 1) == 0  # KW = 1: im2col already


BANDED_LAYERS = [
    (lambda: layer.Conv2D(6, 5, padding=2), (3, 28, 28, 1)),  # LeNet
    (lambda: layer.Conv2D(16, 5), (3, 14, 14, 6)),
    (lambda: layer.Conv2D(3, (2, 3), padding=(1, 2), bias=False), (2, 5, 7, 2)),
    (lambda: layer.Conv1D(4, 3, padding="same"), (2, 9, 3)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("make, in_shape", BANDED_LAYERS)
def test_banded_path_equals_the_im2col_path(monkeypatch, make, in_shape, dtype):
    rng = np.random.default_rng(6)
    x = rng.normal(size=in_shape).astype(dtype)
    g = None
    results = []
    for max_channels in (conv_module._BAND_MAX_CHANNELS, 0):  # banded, then im2col
        monkeypatch.setattr(conv_module, "_BAND_MAX_CHANNELS", max_channels)
        with backend.default_dtype(dtype):
            conv = make()
            conv.forward(x)  # builds the parameters; then the same values for both paths
            weights = np.random.default_rng(7)
            for name in conv.params:
                conv.params[name][...] = weights.normal(size=conv.params[name].shape)
            y = conv.forward(x)
            g = rng.normal(size=y.shape).astype(dtype) if g is None else g
            dx = conv.backward(g)
        kernel = conv.params["w"].reshape(-1, *conv.params["w"].shape[-3:])  # Conv1D's as (1, K, C, C_out)
        block = conv_module.band_block(kernel.shape, y.shape[-2], conv.stride, conv.dilation, conv.groups)
        assert bool(block) == bool(max_channels)
        assert y.dtype == dx.dtype == conv.grads["w"].dtype == np.dtype(dtype)
        results.append((y, dx, *(conv.grads[name].copy() for name in conv.param_names)))
    tol = 1e-5 if dtype == "float32" else 1e-12  # sums in another order
    for banded, im2col in zip(*results, strict=True):
        np.testing.assert_allclose(banded, im2col, rtol=tol, atol=tol * np.abs(im2col).max())


def test_transposed_as_conv_rule():
    one, pad1 = (1, 1), ((1, 1), (1, 1))
    assert conv_module.transposed_as_conv((3, 3, 32, 32), one, one, pad1)
    assert not conv_module.transposed_as_conv((3, 3, 32, 64), one, one, pad1)  # wider gradient columns
    assert not conv_module.transposed_as_conv((3, 3, 32, 32), (2, 2), one, pad1)
    assert not conv_module.transposed_as_conv((3, 3, 32, 32), one, one, ((3, 3), (0, 0)))  # pad > reach


@pytest.mark.parametrize("make, in_shape", [
    (lambda: layer.Conv2D(3, 3, padding=1), (2, 5, 6, 4)),
    (lambda: layer.Conv2D(4, (2, 3), padding="same", dilation=(2, 1)), (2, 6, 5, 4)),
    (lambda: layer.Conv2D(2, 3, padding=(2, 0), dilation=2), (1, 7, 8, 5)),
])
def test_input_gradient_as_conv_equals_the_col2im_path(monkeypatch, make, in_shape):
    with backend.default_dtype("float64"):
        conv = make()
        x = np.random.default_rng(8).normal(size=in_shape)
        g = np.random.default_rng(9).normal(size=conv.forward(x).shape)
        assert conv_module.transposed_as_conv(conv.params["w"].shape, conv.stride, conv.dilation, conv.ctx["padding"])
        dx = conv.backward(g)
        monkeypatch.setattr(conv_module, "transposed_as_conv", lambda *a: False)
        np.testing.assert_allclose(dx, conv.backward(g), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_col2im_keep_dtype(dtype):
    x = np.ones((1, 4, 4, 3), dtype=dtype)
    cols = F.im2col(x, (2, 2))
    assert cols.dtype == dtype
    assert F.col2im(cols, x.shape, (2, 2)).dtype == dtype


def test_col2im_rejects_wrong_column_shape():
    with pytest.raises(ShapeError, match=r"expected columns of shape \(18, 12\).*got \(18, 11\)"):
        F.col2im(np.zeros((18, 11)), (2, 4, 4, 3), (2, 2))


def test_kernel_larger_than_input_is_a_clear_error():
    with pytest.raises(ShapeError, match=r"kernel \(5, 5\).*does not fit input of spatial size \(3, 3\)"):
        layer.Conv2D(2, 5).forward(np.zeros((1, 3, 3, 1), dtype=np.float32))


@pytest.mark.parametrize("size,kernel,stride,dilation", [(5, 3, 2, 1), (4, 2, 2, 1), (7, 3, 3, 2), (6, 1, 1, 1)])
def test_same_padding_gives_ceil_size(size, kernel, stride, dilation):
    before, after = F.same_padding(size, kernel, stride, dilation)
    assert 0 <= after - before <= 1
    assert F.conv_output_size(size, kernel, stride, dilation, before + after) == -(-size // stride)


# ------------------------------------------------------------------------ PyTorch
torch = pytest.importorskip("torch")
TF = torch.nn.functional


def _nchw(x):
    return torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), requires_grad=True)


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


CONV2D_CONFIGS = [
    dict(out_channels=4, kernel_size=3),
    dict(out_channels=3, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
    dict(out_channels=2, kernel_size=3, stride=2, padding=1),  # padding does not divide evenly
    dict(out_channels=2, kernel_size=2, stride=3),  # stride > kernel
    dict(out_channels=4, kernel_size=3, padding="same", dilation=2),
    dict(out_channels=2, kernel_size=(2, 4), padding="same"),  # even kernel: the odd unit goes after
    dict(out_channels=3, kernel_size=(2, 3), padding="valid", dilation=(2, 1), bias=False),
    dict(out_channels=6, kernel_size=3, groups=2, padding=1),
    dict(out_channels=8, kernel_size=3, groups=4, stride=2),  # depthwise, multiplier 2
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # torch's own speed note
@pytest.mark.parametrize("in_shape", [(2, 7, 6, 4), (1, 5, 5, 4)])
@pytest.mark.parametrize("config", CONV2D_CONFIGS, ids=[str(c) for c in CONV2D_CONFIGS])
def test_conv2d_matches_torch(config, in_shape):
    with backend.default_dtype("float64"):
        conv = layer.Conv2D(**config)
        rng = np.random.default_rng(1)
        x = rng.normal(size=in_shape)
        y = conv.forward(x)
        g = rng.normal(size=y.shape)
        dx = conv.backward(g)
    w = torch.tensor(conv.params["w"].transpose(3, 2, 0, 1), requires_grad=True)  # (C_out, Cg, KH, KW)
    b = torch.tensor(conv.params["b"], requires_grad=True) if conv.bias else None
    xt = _nchw(x)
    yt = TF.conv2d(xt, w, b, stride=conv.stride, padding=config.get("padding", 0),
                   dilation=conv.dilation, groups=conv.groups)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, _nhwc(yt), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.grads["w"], w.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-10, atol=1e-12)
    if conv.bias:
        np.testing.assert_allclose(conv.grads["b"], b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv2d_same_padding_with_stride_matches_torch_on_explicitly_padded_input():
    conv = layer.Conv2D(3, (3, 4), stride=2, padding="same")  # asymmetric: extra unit after
    x = np.random.default_rng(2).normal(size=(2, 6, 7, 2)).astype(np.float32)
    y = conv.forward(x)
    (top, bottom), (left, right) = F.same_padding(6, 3, 2), F.same_padding(7, 4, 2)
    assert y.shape == (2, 3, 4, 3) and (top, bottom, left, right) == (0, 1, 1, 2)
    xt = TF.pad(torch.tensor(x.transpose(0, 3, 1, 2)), (left, right, top, bottom))
    yt = TF.conv2d(xt, torch.tensor(conv.params["w"].transpose(3, 2, 0, 1)), torch.tensor(conv.params["b"]),
                   stride=2)
    np.testing.assert_allclose(y, _nhwc(yt), rtol=1e-5, atol=1e-5)


def test_conv2d_float32_matches_torch_and_keeps_dtype():
    conv = layer.Conv2D(16, 5, padding=2)
    x = np.random.default_rng(3).normal(size=(8, 14, 14, 6)).astype(np.float32)
    y = conv.forward(x)
    dx = conv.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == conv.grads["w"].dtype == np.float32
    xt = _nchw(x)
    w = torch.tensor(conv.params["w"].transpose(3, 2, 0, 1))
    yt = TF.conv2d(xt, w, torch.tensor(conv.params["b"]), padding=2)
    yt.sum().backward()
    np.testing.assert_allclose(y, _nhwc(yt), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-4, atol=1e-4)


CONV1D_CONFIGS = [
    dict(out_channels=3, kernel_size=3),
    dict(out_channels=4, kernel_size=2, stride=2, padding=1, dilation=2),
    dict(out_channels=4, kernel_size=3, padding="same", groups=2, bias=False),
]


@pytest.mark.parametrize("config", CONV1D_CONFIGS, ids=[str(c) for c in CONV1D_CONFIGS])
def test_conv1d_matches_torch(config):
    with backend.default_dtype("float64"):
        conv = layer.Conv1D(**config)
        rng = np.random.default_rng(4)
        x = rng.normal(size=(3, 9, 4))  # (N, L, C)
        y = conv.forward(x)
        g = rng.normal(size=y.shape)
        dx = conv.backward(g)
    assert conv.params["w"].shape == (config["kernel_size"], 4 // conv.groups, config["out_channels"])
    w = torch.tensor(conv.params["w"].transpose(2, 1, 0), requires_grad=True)  # (C_out, Cg, K)
    xt = torch.tensor(x.transpose(0, 2, 1).copy(), requires_grad=True)
    b = torch.tensor(conv.params["b"]) if conv.bias else None
    yt = TF.conv1d(xt, w, b, stride=conv.stride[1], padding=config.get("padding", 0),
                   dilation=conv.dilation[1], groups=conv.groups)
    yt.backward(torch.tensor(g.transpose(0, 2, 1)))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.grads["w"], w.grad.numpy().transpose(2, 1, 0), rtol=1e-10, atol=1e-12)


TRANSPOSE_CONFIGS = [
    dict(out_channels=3, kernel_size=3),
    dict(out_channels=2, kernel_size=3, stride=2, padding=1, output_padding=1),
    dict(out_channels=2, kernel_size=(2, 4), stride=(3, 2), padding=(0, 1), dilation=(1, 2), bias=False),
    dict(out_channels=4, kernel_size=3, stride=2, padding=1, output_padding=1, groups=3 - 1),
    dict(out_channels=6, kernel_size=(3, 2), stride=(1, 2), groups=3, dilation=(3, 1), output_padding=(2, 1)),
    dict(out_channels=2, kernel_size=2, padding=1, dilation=3, output_padding=2),  # output_padding > padding
]


@pytest.mark.parametrize("config", TRANSPOSE_CONFIGS, ids=[str(c) for c in TRANSPOSE_CONFIGS])
def test_conv2d_transpose_matches_torch(config):
    with backend.default_dtype("float64"):
        conv = layer.Conv2DTranspose(**config)
        rng = np.random.default_rng(5)
        x = rng.normal(size=(2, 4, 3, 6))
        y = conv.forward(x)
        g = rng.normal(size=y.shape)
        dx = conv.backward(g)
    w = torch.tensor(conv.params["w"].transpose(3, 2, 0, 1), requires_grad=True)  # (C_in, C_out/G, KH, KW)
    b = torch.tensor(conv.params["b"], requires_grad=True) if conv.bias else None
    xt = _nchw(x)
    yt = TF.conv_transpose2d(xt, w, b, stride=conv.stride, padding=conv.padding,
                             output_padding=conv.output_padding, dilation=conv.dilation, groups=conv.groups)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2)))
    np.testing.assert_allclose(y, _nhwc(yt), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, _nhwc(xt.grad), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.grads["w"], w.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-10, atol=1e-12)
    if conv.bias:
        np.testing.assert_allclose(conv.grads["b"], b.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv2d_transpose_inverts_the_shape_of_a_strided_conv2d():
    x = np.zeros((1, 9, 10, 3), dtype=np.float32)
    down = layer.Conv2D(4, 3, stride=2, padding=1).forward(x)
    up = layer.Conv2DTranspose(3, 3, stride=2, padding=1, output_padding=(0, 1)).forward(down)
    assert down.shape == (1, 5, 5, 4) and up.shape == x.shape


# ------------------------------------------------------------- contract details
def test_first_layer_skips_input_gradient_but_fills_parameter_gradients():
    conv = layer.Conv2D(3, 3)
    x = np.random.default_rng(6).normal(size=(2, 5, 5, 2)).astype(np.float32)
    y = conv.forward(x)
    g = np.ones_like(y)
    conv.backward(g)
    expected = conv.grads["w"].copy()
    conv.requires_input_grad = False
    assert conv.backward(g) is None
    np.testing.assert_allclose(conv.grads["w"], expected)


def test_gradients_are_written_into_the_nets_flat_buffer():
    net = Net([layer.Conv2D(2, 3, groups=2), layer.Flatten()])
    x = np.random.default_rng(7).normal(size=(2, 4, 4, 2)).astype(np.float32)
    y = net.forward(x)
    grads_before = net.layers[0].grads["w"]
    net.backward(np.ones_like(y), input_grad=False)
    assert net.layers[0].grads["w"] is grads_before
    assert np.shares_memory(net.layers[0].grads["w"], net.grads.flat)
    assert np.abs(net.grads.flat).sum() > 0


@pytest.mark.parametrize("make", [
    lambda: layer.Conv2D(4, (3, 2), stride=(2, 1), padding="same", dilation=1, groups=2, bias=False,
                         w_init="XavierNormal", name="c"),
    lambda: layer.Conv2D(2, 3, padding=(1, 0)),
    lambda: layer.Conv1D(3, 5, stride=2, padding="valid", dilation=2),
    lambda: layer.Conv2DTranspose(3, 3, stride=2, padding=1, output_padding=1),
    lambda: layer.Conv2DTranspose(4, 3, dilation=2, output_padding=1, groups=2),
])
def test_get_config_round_trips(make):
    original = make()
    config = json.loads(json.dumps(layer_to_config(original)))
    rebuilt = layer_from_config(config)
    assert type(rebuilt) is type(original)
    assert layer_to_config(rebuilt) == config


def test_example_model_spec_builds_the_cnn_and_round_trips():
    spec = json.loads((ROOT / "examples" / "fashion_cnn.json").read_text())
    module = load_example("fashion_cnn")  # defines functions only; main() is not run
    assert module.spec() == spec, "examples/fashion_cnn.json is stale: run fashion_cnn.py --write-spec"
    net = Net.from_config(spec)
    y = net.forward(np.zeros((2, 28, 28, 1), dtype=np.float32))
    assert y.shape == (2, 10)
    assert json.loads(json.dumps(net.get_config()))["layers"] == spec["layers"]
    assert any(isinstance(lyr, layer.BatchNorm) for lyr in net.layers)


@pytest.mark.parametrize("kwargs,message", [
    (dict(out_channels=0, kernel_size=3), r"out_channels must be a positive integer, got 0"),
    (dict(out_channels=3, kernel_size=3, groups=2), r"out_channels \(3\) must be divisible by groups \(2\)"),
    (dict(out_channels=2, kernel_size=(3, 0)), r"kernel_size must be an int >= 1 or a pair of them, got \(3, 0\)"),
    (dict(out_channels=2, kernel_size=3, stride=1.5), r"stride must be .*got 1.5"),
    (dict(out_channels=2, kernel_size=3, padding="full"), r"padding must be 'same', 'valid'.*got 'full'"),
    (dict(out_channels=2, kernel_size=3, padding=-1), r"padding must be an int >= 0.*got -1"),
])
def test_conv2d_constructor_errors_quote_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        layer.Conv2D(**kwargs)


def test_conv_input_errors_say_what_was_expected():
    conv = layer.Conv2D(2, 3, groups=2)
    with pytest.raises(ShapeError, match=r"expects NHWC input \(N, H, W, C\), got shape \(4, 5, 5\)"):
        conv.forward(np.zeros((4, 5, 5), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"input channels \(3\) must be divisible by groups \(2\)"):
        conv.forward(np.zeros((1, 5, 5, 3), dtype=np.float32))
    conv.forward(np.zeros((1, 5, 5, 4), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"built for 4 input channels, got input of shape \(1, 5, 5, 6\)"):
        conv.forward(np.zeros((1, 5, 5, 6), dtype=np.float32))
    with pytest.raises(ShapeError, match="expected input of dtype float32, got float64"):
        conv.forward(np.zeros((1, 5, 5, 4)))
    with pytest.raises(ShapeError, match=r"expects NWC input \(N, L, C\)"):
        layer.Conv1D(2, 3).forward(np.zeros((1, 5, 5, 4), dtype=np.float32))
    with pytest.raises(ValueError, match=r"output_padding must be smaller than max\(stride, dilation\) = \(2, 2\) "
                                         r"on each axis \(stride \(2, 2\), dilation \(1, 1\)\), got \(2, 2\)"):
        layer.Conv2DTranspose(2, 3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"max\(stride, dilation\) = \(1, 3\).*got \(0, 3\)"):
        layer.Conv2DTranspose(2, 3, dilation=(1, 3), output_padding=(0, 3))
    layer.Conv2DTranspose(2, 3, dilation=(1, 3), output_padding=(0, 2))  # < dilation: PyTorch allows it
    with pytest.raises(ValueError, match=r"out_channels \(3\) must be divisible by groups \(2\)"):
        layer.Conv2DTranspose(3, 3, groups=2)
    with pytest.raises(ShapeError, match=r"input channels \(3\) must be divisible by groups \(2\)"):
        layer.Conv2DTranspose(4, 3, groups=2).forward(np.zeros((1, 4, 4, 3), dtype=np.float32))


def test_conv_keeps_its_input_not_the_im2col_matrix_and_unfolds_it_again_in_blocks(monkeypatch):
    rng = np.random.default_rng(11)
    x = rng.normal(size=(5, 6, 6, 8)).astype(np.float64)
    conv = layer.Conv2D(20, 3, padding=1)  # > 16 channels: im2col, copied row-wise
    with backend.default_dtype("float64"):
        y = conv.forward(x)
    saved = conv.ctx["cols"]
    assert saved.blocks is None and saved.x is x  # no (N*OH*OW, K) matrix is kept
    g = rng.normal(size=y.shape)
    dx = conv.backward(g)
    gw = conv.grads["w"].copy()
    monkeypatch.setattr(conv_module, "_BLOCK_BYTES", 1)  # one image per block
    assert conv_module.images_per_block(36, 72, 8) == 1
    np.testing.assert_allclose(conv.forward(x), y, rtol=1e-12)
    np.testing.assert_allclose(conv.backward(g), dx, rtol=1e-12)
    np.testing.assert_allclose(conv.grads["w"], gw, rtol=1e-12)
    # the same layer through the stored-columns path (a Fortran-ordered copy for few channels)
    monkeypatch.setattr(F, "im2col_fills_out", lambda *args: False)
    np.testing.assert_allclose(conv.forward(x), y, rtol=1e-12)
    assert conv.ctx["cols"].x is None and len(conv.ctx["cols"].blocks) >= 1
    np.testing.assert_allclose(conv.backward(g), dx, rtol=1e-12)
    np.testing.assert_allclose(conv.grads["w"], gw, rtol=1e-12)


def test_im2col_fills_out_only_when_it_fits():
    x = np.random.default_rng(12).normal(size=(2, 5, 5, 8)).astype(np.float32)
    shape = F.im2col_shape(x.shape, (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1)))
    assert shape == (50, 72)
    out = np.empty(shape, dtype=np.float32)
    cols = F.im2col(x, (3, 3), padding=((1, 1), (1, 1)), out=out)
    assert cols is out
    np.testing.assert_array_equal(cols, F.im2col(x, (3, 3), padding=((1, 1), (1, 1))))
    assert F.im2col(x, (3, 3), out=out) is not out  # another shape: a new array
