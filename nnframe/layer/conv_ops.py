"""The arithmetic of 2-D convolutions on NHWC arrays, used by the layers in :mod:`nnframe.layer.conv`.

Each convolution is a matrix product: :func:`~nnframe.functional.im2col` unfolds the
receptive fields into the rows of a ``(N * OH * OW, KH * KW * C_in)`` matrix, which is
multiplied by the kernel reshaped to ``(KH * KW * C_in, C_out)``. The usual convolution
(one group) splits the batch between threads (:mod:`nnframe.threads`) and unfolds and
multiplies a few images at a time (:func:`images_per_block`); backward unfolds the input
again. The input gradient of a stride-1 convolution is itself a convolution
(:func:`input_grad_as_conv`); otherwise it is the adjoint,
:func:`~nnframe.functional.col2im`. Grouped convolutions (``groups > 1``, depthwise when
``groups == C_in``) use one batched product over the groups. Narrow stride-1 layers (few
channels, like LeNet's) use a banded product instead (:func:`band_block`): each matrix
row holds whole input rows and gives a block of neighbouring outputs at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nnframe import backend, threads
from nnframe import functional as F
from nnframe.backend import Array


def xp_matmul_t(a: Array, b: Array) -> Array:
    """``a @ b^T`` over a leading batch axis: ``(G, M, K) x (G, N, K) -> (G, M, N)``."""
    return backend.xp().matmul(a, b.transpose(0, 2, 1))


def add_channel_bias(out: Array, b: Array) -> None:
    """``out += b`` in place over the channels (last axis) of a C-contiguous ``(N, H, W, C)`` array."""
    rows, reps = F.channel_rows(out)  # (N*H, W*C)
    rows += backend.xp().tile(b, reps)


#: The banded product (:func:`~nnframe.functional.unfold_rows`) replaces im2col for layers
#: this narrow: with few channels the im2col product is a tall, thin matrix (LeNet's
#: ``100352 x 25 x 6``) that runs at a fraction of the BLAS's speed, and im2col copies each
#: pixel ``KH * KW`` times. Measured in LeNet's training step (128 images, 2 BLAS threads),
#: forward + backward: conv 5x5, 1 -> 6 channels on 28x28 (block 7) 7.4 -> 3.8 ms; conv 5x5,
#: 6 -> 16 channels on 14x14 (block 5) 8.6 -> 5.3 ms. Wider layers are untested: im2col.
_BAND_MAX_CHANNELS = 16


def band_block(kernel_shape: Sequence[int], out_width: int, stride: F.Pair, dilation: F.Pair,
               groups: int) -> int:
    """Output columns per row of the banded product for this convolution, or 0 for im2col.

    Banded: stride 1, no dilation, one group, at most ``_BAND_MAX_CHANNELS`` input and output
    channels, and a divisor ``B`` of the output width with ``KW <= B <= 2 KW`` (so that the
    band's zeros cost at most ``(B + KW - 1) / KW < 3`` times im2col's multiplications).
    """
    kh, kw, cin, cout = kernel_shape
    if (groups != 1 or tuple(stride) != (1, 1) or tuple(dilation) != (1, 1) or kw < 2
            or max(cin, cout) > _BAND_MAX_CHANNELS):
        return 0
    return next((b for b in range(kw, 2 * kw + 1) if out_width % b == 0), 0)


#: The im2col matrix is built and multiplied a few images at a time, in blocks of about this
#: many bytes, so that each block is still in the core's cache when the product reads it,
#: and is never kept: backward unfolds the input again, block by block. Measured for 64
#: images, one thread, 3x3 conv 32 -> 32 on 32x32: forward 42.7 -> 30.2 ms (the whole
#: matrix vs one image per block); the kernel gradient 24.2 -> 36.6 (unfolding again);
#: the input gradient's unfolding is blocked the same way. Memory: no 151 MB matrix per
#: layer for 128 such images.
_BLOCK_BYTES = 1 << 22


def images_per_block(per_image_rows: int, width: int, itemsize: int) -> int:
    """How many images' im2col rows (``per_image_rows`` rows of ``width`` values) make one block."""
    return max(1, _BLOCK_BYTES // max(1, per_image_rows * width * itemsize))


@dataclass
class Unfolded:
    """What :func:`conv_forward` keeps for :func:`conv_backward`.

    Attributes:
        slices: the batch slices the work was split into (:func:`nnframe.threads.batch_slices`).
        blocks: per slice, its unfolded input (im2col rows ``(M_s, KH * KW * C)``, banded
            rows, or, grouped, ``(G, M, K_g)``); ``None`` where backward unfolds ``x`` again.
        x: the input, where backward unfolds it again block by block (``blocks`` is ``None``).
    """

    slices: list[slice]
    blocks: list[Array] | None
    x: Array | None = None


def conv_forward(x: Array, w: Array, b: Array | None, stride: F.Pair, dilation: F.Pair,
                 padding: F.Padding2D, groups: int) -> tuple[Array, Unfolded]:
    """The forward convolution and what backward needs.

    Shapes:
        ``x``: ``(N, H, W, C)``; ``w``: ``(KH, KW, C / groups, C_out)``; ``b``: ``(C_out,)``;
        output ``(N, OH, OW, C_out)``.

    Three ways, by shape: where :func:`band_block` gives a block ``B`` (narrow stride-1
    layers), one banded product over :func:`~nnframe.functional.unfold_rows`; grouped
    convolutions, one batched product over the groups of the im2col matrix; otherwise
    (the usual convolution) the batch is split between threads (:mod:`nnframe.threads`)
    and each thread unfolds and multiplies its images a block at a time
    (:func:`images_per_block`), keeping only ``x`` for backward where the im2col copy is
    row-wise (:func:`~nnframe.functional.im2col_fills_out`), else the unfolded columns.
    """
    xp = backend.xp()
    kh, kw, cg, cout = w.shape
    n, h, width, _ = x.shape
    oh = F.conv_output_size(h, kh, stride[0], dilation[0], sum(padding[0]))
    ow = F.conv_output_size(width, kw, stride[1], dilation[1], sum(padding[1]))
    whole = [slice(0, n)]
    block = band_block(w.shape, ow, stride, dilation, groups)
    if block:  # the bias rides in the product: a ones column times a bias row (not split: measured not to pay)
        rows = F.unfold_rows(F.pad2d(x, padding), (kh, kw), block, ones_column=b is not None)  # (M/B, KH*Wb*C+1)
        out = rows @ F.banded_kernel(w, block, b)  # (N*OH*OW/B, B*C_out)
        return out.reshape(n, oh, ow, cout), Unfolded(whole, [rows])
    m, k = F.im2col_shape(x.shape, (kh, kw), stride, dilation, padding)
    if groups != 1:
        cols = F.im2col(x, (kh, kw), stride, dilation, padding)  # (M, KH*KW*C)
        cols = cols.reshape(m, kh * kw, groups, cg).transpose(2, 0, 1, 3)  # (G, M, KH*KW, Cg)
        cols = xp.ascontiguousarray(cols).reshape(groups, m, kh * kw * cg)  # (G, M, K_g)
        w_g = w.reshape(kh * kw * cg, groups, cout // groups).transpose(1, 0, 2)  # (G, K_g, Co_g)
        out = xp.ascontiguousarray(xp.matmul(cols, w_g).transpose(1, 0, 2)).reshape(n, oh, ow, cout)
        if b is not None:
            add_channel_bias(out, b)
        return out, Unfolded(whole, [cols])
    per_image = oh * ow
    recompute = F.im2col_fills_out(x.shape, (kh, kw), dilation)
    out = xp.empty((n, oh, ow, cout), dtype=x.dtype)
    w2 = w.reshape(k, cout)
    step = images_per_block(per_image, k, x.dtype.itemsize) if recompute else n

    def forward_slice(part: slice) -> Array | None:
        scratch = xp.empty((min(step, part.stop - part.start) * per_image, k), dtype=x.dtype) if recompute else None
        for start in range(part.start, part.stop, step):
            images = slice(start, min(start + step, part.stop))
            rows = threads.rows_of(images, per_image)
            cols = F.im2col(x[images], (kh, kw), stride, dilation, padding,
                            out=None if scratch is None else scratch[: rows.stop - rows.start])  # (M_b, K)
            xp.matmul(cols, w2, out=out.reshape(m, cout)[rows])
            if b is not None:
                add_channel_bias(out[images], b)
        return None if recompute else cols

    slices = threads.batch_slices(n, per_image * (k + cout))
    blocks = threads.map_slices(forward_slice, slices)
    return out, (Unfolded(slices, None, x) if recompute else Unfolded(slices, blocks))


def transposed_as_conv(kernel_shape: Sequence[int], stride: F.Pair, dilation: F.Pair,
                       padding: F.Padding2D) -> bool:
    """Whether :func:`input_grad_as_conv` computes this layer's input gradient (else ``col2im``).

    Stride 1, padding at most the dilated kernel's reach, and ``C_out <= C_in``: the
    gradient's columns (``KH * KW * C_out`` wide) are then no wider than the ``col2im``
    path's, and one gather replaces ``KH * KW`` scattered adds. Measured (one thread, CPU
    ms, 128 images, 3x3): 32 -> 32 channels on 32x32, input gradient 95 -> 78; 64 -> 64 on
    16x16, 60 -> 48; 32 -> 64 on 16x16, 31 -> 40 (slower: hence ``C_out <= C_in``).
    """
    kh, kw, cin, cout = kernel_shape
    reach = (dilation[0] * (kh - 1), dilation[1] * (kw - 1))
    return (tuple(stride) == (1, 1) and cout <= cin and max(padding[0]) <= reach[0]
            and max(padding[1]) <= reach[1])


def flipped_kernel(w: Array) -> Array:
    """``w`` ``(KH, KW, C_in, C_out)`` flipped in space and transposed in channels: ``(KH * KW * C_out, C_in)``.

    The kernel of :func:`input_grad_as_conv`: ``wf[p, q, o, c] = w[KH-1-p, KW-1-q, c, o]``.
    """
    kh, kw, cin, cout = w.shape
    return backend.xp().ascontiguousarray(w[::-1, ::-1].transpose(0, 1, 3, 2)).reshape(kh * kw * cout, cin)


def input_grad_as_conv(grad: Array, w: Array, x_shape: Sequence[int], dilation: F.Pair,
                       padding: F.Padding2D, out: Array | None = None, flipped: Array | None = None,
                       scratch: Array | None = None) -> Array:
    """The input gradient of a stride-1 convolution, as a convolution of ``grad`` with the flipped kernel.

    ``dx[n, y, x, c] = sum_{p, q, o} g[n, y + top - p DH, x + left - q DW, o] w[p, q, c, o]``: a
    convolution of ``grad`` padded by ``DH (KH - 1) - top`` (above; likewise the other sides) with
    ``wf[p, q, o, c] = w[KH-1-p, KW-1-q, c, o]``; one :func:`~nnframe.functional.im2col` and one product.

    Shapes: ``grad`` ``(N, OH, OW, C_out)``; ``w`` ``(KH, KW, C_in, C_out)``; output ``x_shape``
    ``(N, H, W, C_in)``, written into ``out`` (C-contiguous, that shape) if given.
    ``flipped``: :func:`flipped_kernel` of ``w`` if the caller has it; ``scratch``: an
    array of the unfolded gradient's shape ``(N * H * W, KH * KW * C_out)`` to fill.
    """
    xp = backend.xp()
    kh, kw, cin, cout = w.shape
    (top, bottom), (left, right) = padding
    reach_h, reach_w = dilation[0] * (kh - 1), dilation[1] * (kw - 1)
    flipped = flipped_kernel(w) if flipped is None else flipped  # (K', C_in)
    grad_padding = ((reach_h - top, reach_h - bottom), (reach_w - left, reach_w - right))
    gcols = F.im2col(grad, (kh, kw), (1, 1), dilation, grad_padding, out=scratch)  # (N*H*W, K')
    if out is None:
        return (gcols @ flipped).reshape(x_shape)
    xp.matmul(gcols, flipped, out=out.reshape(-1, cin))
    return out


def conv_backward(grad: Array, saved: Unfolded, w: Array, x_shape: tuple[int, ...], stride: F.Pair,
                  dilation: F.Pair, padding: F.Padding2D, groups: int, grad_w: Array,
                  grad_b: Array | None, input_grad: bool) -> Array | None:
    """Write the kernel (and bias) gradients in place and return the input gradient.

    Args:
        grad: ``(N, OH, OW, C_out)``.
        saved: what :func:`conv_forward` returned beside the output.
        grad_w, grad_b: arrays of ``w``'s and ``b``'s shapes, written in place.
        input_grad: whether to compute the input gradient (``None`` is returned if not).

    The work is split by images as the forward's was: each thread takes its images'
    share of the kernel gradient (summed afterwards, in slice order) and their input gradient.
    """
    xp = backend.xp()
    kh, kw, cg, cout = w.shape
    block = band_block(w.shape, grad.shape[2], stride, dilation, groups)
    if block:
        return _banded_backward(grad, saved, w, x_shape, padding, block, grad_w, grad_b, input_grad)
    if groups != 1:
        return _grouped_backward(grad, saved.blocks[0], w, x_shape, stride, dilation, padding, groups,
                                 grad_w, grad_b, input_grad)
    w2 = w.reshape(kh * kw * cg, cout)  # (K, C_out)
    dx = xp.empty(x_shape, dtype=grad.dtype) if input_grad else None
    as_conv = transposed_as_conv(w.shape, stride, dilation, padding)
    n, oh, ow, _ = grad.shape
    per_image, k = oh * ow, kh * kw * cg
    blocks = {} if saved.blocks is None else dict(zip((p.start for p in saved.slices), saved.blocks, strict=True))
    step = images_per_block(per_image, k, grad.dtype.itemsize) if saved.blocks is None else n

    flipped = flipped_kernel(w) if as_conv and dx is not None else None
    x_rows = x_shape[1] * x_shape[2]  # rows of the unfolded gradient per image (as_conv)

    def backward_slice(part: slice) -> tuple[Array, Array | None]:
        gw = xp.zeros((cout, k), dtype=grad.dtype)
        images = min(step, part.stop - part.start)
        scratch = None if saved.blocks is not None else xp.empty((images * per_image, k), dtype=grad.dtype)
        g_scratch = None if flipped is None else xp.empty((images * x_rows, kh * kw * cout), dtype=grad.dtype)
        for start in range(part.start, part.stop, step):
            images = slice(start, min(start + step, part.stop))
            g = grad[images]  # (N_b, OH, OW, C_out)
            g2 = g.reshape(-1, cout)  # (M_b, C_out)
            if scratch is None:
                cols = blocks[part.start]
            else:  # unfold the input again, a block at a time (see _BLOCK_BYTES)
                cols = F.im2col(saved.x[images], (kh, kw), stride, dilation, padding,
                                out=scratch[: g2.shape[0]])
            gw += g2.T @ cols  # (C_out, K): faster than cols.T @ g2 (measured)
            if dx is not None:
                block_shape = (images.stop - images.start, *x_shape[1:])
                if as_conv:
                    input_grad_as_conv(g, w, block_shape, dilation, padding, out=dx[images], flipped=flipped,
                                       scratch=None if g_scratch is None else g_scratch[: block_shape[0] * x_rows])
                else:
                    dx[images] = _input_grad_col2im(g, w2, (kh, kw), block_shape, stride, dilation, padding)
        gb = None if grad_b is None else F.channel_sums(grad[part].reshape(-1, cout))
        return gw.T, gb

    parts = threads.map_slices(backward_slice, saved.slices)
    gw_total = grad_w.reshape(kh * kw * cg, cout)
    gw_total[...] = parts[0][0]
    for gw, _ in parts[1:]:
        gw_total += gw
    if grad_b is not None:
        grad_b[...] = parts[0][1]
        for _, gb in parts[1:]:
            grad_b += gb
    return dx


def _banded_backward(grad: Array, saved: Unfolded, w: Array, x_shape: tuple[int, ...], padding: F.Padding2D,
                     block: int, grad_w: Array, grad_b: Array | None, input_grad: bool) -> Array | None:
    """:func:`conv_backward` for the banded product (one block of rows: LeNet-size layers, not split)."""
    xp = backend.xp()
    kh, kw, _, cout = w.shape
    cols = saved.blocks[0]
    g_rows = grad.reshape(-1, block * cout)  # (N*OH*OW/B, B*C_out)
    F.banded_kernel_grad(cols.T @ g_rows, (kh, kw), block, out=grad_w, out_bias=grad_b)
    if not input_grad:
        return None
    (top, bottom), (left, right) = padding
    n, h, width, c = x_shape
    padded = F.fold_rows(g_rows @ F.banded_kernel(w, block).T, (n, h + top + bottom, width + left + right, c),
                         (kh, kw), block)  # (N, Hp, Wp, C)
    return xp.ascontiguousarray(padded[:, top : top + h, left : left + width])  # (N, H, W, C)


def _input_grad_col2im(g: Array, w2: Array, kernel_size: F.Pair, x_shape: Sequence[int], stride: F.Pair,
                       dilation: F.Pair, padding: F.Padding2D) -> Array:
    """The input gradient as one product and a :func:`~nnframe.functional.col2im` scatter (any stride).

    Shapes: ``g`` ``(N, OH, OW, C_out)``; ``w2`` ``(KH * KW * C_in, C_out)``; output ``x_shape`` ``(N, H, W, C_in)``.
    """
    n, oh, ow, cout = g.shape
    padded_width = x_shape[2] + sum(padding[1])
    if tuple(stride) == (1, 1) and ow < 24 and padded_width <= 2 * ow:
        # col2im over whole padded rows (contiguous adds): pad the gradient's rows to the
        # padded input width with zeros, which the product turns into zero columns. Pays
        # when output rows are short (LeNet's 10x10: col2im 3.6 -> 2.0 ms for 128 images,
        # for 1.4x the product); for 28-wide rows the padding copy costs more than it saves.
        g_wide = F.pad2d(g, ((0, 0), (0, padded_width - ow)))
        dcols = (w2 @ g_wide.reshape(-1, cout).T).T  # (N*OH*Wp, K), Fortran order
        return F.col2im(dcols, x_shape, kernel_size, stride, dilation, padding, wide=True)
    dcols = (w2 @ g.reshape(-1, cout).T).T  # (M, K), Fortran order: what col2im reads fastest
    return F.col2im(dcols, x_shape, kernel_size, stride, dilation, padding)


def _grouped_backward(grad: Array, cols: Array, w: Array, x_shape: tuple[int, ...], stride: F.Pair,
                      dilation: F.Pair, padding: F.Padding2D, groups: int, grad_w: Array,
                      grad_b: Array | None, input_grad: bool) -> Array | None:
    """:func:`conv_backward` for ``groups > 1``: one batched product over the groups."""
    xp = backend.xp()
    kh, kw, cg, cout = w.shape
    g2 = grad.reshape(-1, cout)  # (M, C_out)
    if grad_b is not None:
        F.channel_sums(g2, out=grad_b)
    m, cog = g2.shape[0], cout // groups
    g_g = g2.reshape(m, groups, cog).transpose(1, 0, 2)  # (G, M, Co_g)
    w_g = w.reshape(kh * kw * cg, groups, cog).transpose(1, 0, 2)  # (G, K_g, Co_g)
    gw_g = xp.matmul(cols.transpose(0, 2, 1), g_g)  # (G, K_g, Co_g)
    grad_w.reshape(kh * kw * cg, groups, cog)[...] = gw_g.transpose(1, 0, 2)
    if not input_grad:
        return None
    dcols = xp.matmul(g_g, w_g.transpose(0, 2, 1))  # (G, M, K_g)
    dcols = dcols.reshape(groups, m, kh * kw, cg).transpose(1, 2, 0, 3).reshape(m, -1)  # (M, K)
    return F.col2im(dcols, x_shape, (kh, kw), stride, dilation, padding)
