"""Stateless array maths shared by layers and losses, written against the backend's ``xp``.

Every function returns the dtype it was given: constants are Python floats, which
NumPy 2 does not let promote a float32 array.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

from nnframe import backend, threads
from nnframe.backend import Array
from nnframe.errors import ShapeError


def _finite_max(x: Array, axis: int) -> Array:
    """The maximum along ``axis`` (kept), with 0 where it is infinite or NaN: the shift
    that keeps ``exp(x - shift)`` from overflowing without turning ``-inf - -inf`` into NaN."""
    xp = backend.xp()
    shift = x.max(axis=axis, keepdims=True)
    return xp.where(xp.isfinite(shift), shift, xp.zeros_like(shift))


def logsumexp(x: Array, axis: int = -1) -> Array:
    """``log(sum(exp(x), axis, keepdims=True))``, stable for large ``x``.

    A slice that is all ``-inf`` (every entry masked out) gives ``-inf``, one holding
    ``+inf`` gives ``+inf``.
    """
    xp = backend.xp()
    shift = _finite_max(x, axis)
    total = xp.exp(x - shift).sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):  # log(0) = -inf is the answer for an all -inf slice
        return xp.log(total) + shift


def log_softmax(x: Array, axis: int = -1) -> Array:
    """``x - logsumexp(x)``: log-probabilities along ``axis``.

    Computed as ``(x - max) - log(sum(exp(x - max)))``, so the largest logit's
    log-probability keeps full precision however large the logits; ``-inf`` entries
    (masked classes) get ``-inf``.
    """
    xp = backend.xp()
    shifted = x - _finite_max(x, axis)
    with np.errstate(divide="ignore"):
        return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x: Array, axis: int = -1) -> Array:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed without overflow."""
    xp = backend.xp()
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def relu(x: Array, out: Array | None = None) -> Array:
    """``max(x, 0)`` element-wise (NaN stays NaN), into ``out`` when given (``out=x``
    overwrites the input: no new array, the fastest form for a temporary).

    NumPy's ``maximum`` against a scalar skips its vectorised loop: against a row of
    zeros it runs 2.3x faster (LeNet's 128x28x28x6 activations: 0.42 -> 0.18 ms), so a
    C-contiguous ``x`` is compared row by row, the batch split between threads
    (:mod:`nnframe.threads`) when it is large.
    """
    xp = backend.xp()
    if x.ndim < 2 or not x.flags.c_contiguous or (out is not None and not out.flags.c_contiguous):
        return xp.maximum(x, 0.0, out=out)
    zeros = xp.zeros(x.shape[-1] * (x.shape[-2] if x.ndim > 2 else 1), dtype=x.dtype)
    slices = threads.batch_slices(x.shape[0], x.size // max(x.shape[0], 1))
    if len(slices) == 1:
        rows = x.reshape(-1, zeros.shape[0])  # (N*H, W*C), (N, D) ...
        if out is None:
            return xp.maximum(rows, zeros).reshape(x.shape)
        xp.maximum(rows, zeros, out=out.reshape(rows.shape))
        return out
    out = xp.empty_like(x) if out is None else out
    threads.map_slices(lambda part: xp.maximum(x[part].reshape(-1, zeros.shape[0]), zeros,
                                               out=out[part].reshape(-1, zeros.shape[0])), slices)
    return out


def sigmoid(x: Array) -> Array:
    """``1 / (1 + exp(-x))`` without overflow for any finite ``x``."""
    xp = backend.xp()
    e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log_sigmoid(x: Array) -> Array:
    """``log(sigmoid(x)) = -softplus(-x)``, finite for any finite ``x``."""
    return -softplus(-x)


def softplus(x: Array) -> Array:
    """``log(1 + exp(x))`` computed as ``max(x, 0) + log1p(exp(-|x|))``."""
    xp = backend.xp()
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


def one_hot(labels: Array, num_classes: int, dtype=None) -> Array:
    """Return ``(N, K)`` one-hot rows for integer ``labels`` of shape ``(N,)``.

    Raises:
        ValueError: if a label lies outside ``[0, num_classes)``.
    """
    xp = backend.xp()
    labels = xp.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"one_hot: labels must have shape (N,), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must lie in [0, {num_classes}), got range "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    dtype = backend.get_default_dtype() if dtype is None else dtype
    out = xp.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[xp.arange(labels.shape[0]), labels] = 1
    return out


def erf(x: Array) -> Array:
    """The error function, keeping the dtype of ``x``.

    NumPy has no ``erf``. Float64 input is computed to about 1e-15 relative error
    (:func:`_erf_float64`), so float64 results match PyTorch's and SciPy's to rounding.
    Other dtypes use a Chebyshev-fitted ``erfc`` (Numerical Recipes' ``erfcc``: 1.2e-7
    relative error on ``erfc``, so below 2e-7 absolute error on ``erf``), four passes
    cheaper: at float32's resolution for ``GELU``, whose ``1 + erf`` it feeds.
    """
    xp = backend.xp()
    if x.dtype == xp.float64:
        return _erf_float64(x)
    z = xp.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * xp.exp(-z * z + poly)
    return xp.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def _erf_series(z: Array, terms: int) -> Array:
    """``erf(z) = 2/sqrt(pi) exp(-z^2) sum_n (2z^2)^n z / (2n+1)!!`` for ``z >= 0`` (positive terms:
    no cancellation), summed to ``terms`` terms after the first."""
    xp = backend.xp()
    ratio = 2.0 * z * z
    term, total = z.copy(), z.copy()
    for n in range(terms):
        term *= ratio / (2 * n + 3)
        total += term
    return (2.0 / math.sqrt(math.pi)) * xp.exp(-z * z) * total


#: :func:`_erf_float64` sums the series below this ``|x|`` and uses the continued fraction above it
_ERF_SERIES_BELOW = 2.0


def _erf_float64(x: Array) -> Array:
    """``erf`` of a float64 array to ~1e-15 relative error (checked against ``math.erf`` in the tests).

    ``|x| < 2``: ``erf(x) = 2/sqrt(pi) exp(-x^2) sum_n (2x^2)^n x / (2n+1)!!``, a series of
    positive terms (no cancellation); 34 terms reach float64 precision at ``|x| = 2``.
    ``|x| >= 2``: ``1 - erfc(x)`` with Laplace's continued fraction
    ``erfc(x) = exp(-x^2) / sqrt(pi) / (x + (1/2) / (x + 1 / (x + (3/2) / (x + ...))))``,
    60 levels deep, evaluated from the bottom.
    """
    xp = backend.xp()
    z = xp.abs(x)
    out = xp.empty_like(z)
    small = z < _ERF_SERIES_BELOW
    out[small] = _erf_series(z[small], terms=34)
    zl = z[~small]
    fraction = zl.copy()
    for k in range(60, 0, -1):
        fraction = zl + (0.5 * k) / fraction
    out[~small] = 1.0 - xp.exp(-zl * zl) / (math.sqrt(math.pi) * fraction)
    return xp.copysign(out, x)


# --------------------------------------------------------------------------------------
# Convolution geometry and im2col/col2im (NHWC images: N batch, H height, W width, C channels)
# --------------------------------------------------------------------------------------

Pair = tuple[int, int]
Padding2D = tuple[Pair, Pair]  # ((top, bottom), (left, right))

#: im2col copies whole windows row by row (NHWC order) when a window row holds at least
#: this many contiguous values (KW * C); below it, it copies one kernel offset at a time in
#: channel-first order (a Fortran-ordered matrix). Measured on 128 images: C=1, 5x5: the
#: channel-first copy is 5x faster; C=6, 5x5 (run 30): NHWC 2.5x faster, and LeNet's
#: training step 6% faster than with the channel-first copy.
_NHWC_MIN_RUN = 16


def as_pair(value: int | Sequence[int], owner: str, name: str, minimum: int = 1) -> Pair:
    """Return ``value`` as ``(height, width)`` integers, each ``>= minimum``.

    Args:
        value: an int (used for both axes) or a sequence of two ints.
        owner, name: the layer and argument, quoted in the error.

    Raises:
        ValueError: for anything else, quoting the value received.
    """
    items = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        items = tuple(items)
    except TypeError:
        items = ()
    if (len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in items)
            or any(v < minimum for v in items)):
        raise ValueError(
            f"{owner}: {name} must be an int >= {minimum} or a pair of them, got {value!r}"
        )
    return int(items[0]), int(items[1])


def conv_output_size(size: int, kernel: int, stride: int = 1, dilation: int = 1, pad_total: int = 0) -> int:
    """Number of window positions along one axis: ``(size + pad - d (k - 1) - 1) // s + 1``.

    Returns 0 or less when the (dilated) kernel does not fit.
    """
    return (size + pad_total - dilation * (kernel - 1) - 1) // stride + 1


def same_padding(size: int, kernel: int, stride: int = 1, dilation: int = 1) -> Pair:
    """``(before, after)`` padding that gives ``ceil(size / stride)`` outputs (TensorFlow's "same").

    The odd unit goes after, as in PyTorch's ``padding="same"`` (which is this for stride 1).
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def pad2d(x: Array, padding: Padding2D, value: float = 0.0) -> Array:
    """Pad the H and W axes of an NHWC batch with ``value`` (``x`` itself when there is none).

    Args:
        x: ``(N, H, W, C)``.
        padding: ``((top, bottom), (left, right))``, non-negative.

    Shapes: output ``(N, top + H + bottom, left + W + right, C)``.
    """
    (top, bottom), (left, right) = padding
    if not (top or bottom or left or right):
        return x
    xp = backend.xp()
    n, h, w, c = x.shape
    out = xp.full((n, top + h + bottom, left + w + right, c), value, dtype=x.dtype)
    out[:, top : top + h, left : left + w, :] = x
    return out


def window_offsets(kernel_size: Pair, stride: Pair, dilation: Pair,
                   out_size: Pair) -> Iterator[tuple[int, int, slice, slice]]:
    """Yield ``(i, j, rows, cols)`` for every kernel offset ``(i, j)``.

    ``x[:, rows, cols]`` of a padded ``(N, Hp, Wp, C)`` batch is the ``(N, OH, OW, C)``
    array of the values that kernel tap ``(i, j)`` sees at every output position. Loops
    over these offsets are loops over the kernel (``KH * KW`` steps), never over pixels.
    """
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel_size, stride, dilation, out_size
    for i in range(kh):
        rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            yield i, j, rows, slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)


def _geometry(shape: Sequence[int], kernel_size: Pair, stride: Pair, dilation: Pair,
              padding: Padding2D) -> tuple[int, int]:
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    (top, bottom), (left, right) = padding
    oh = conv_output_size(shape[1], kh, sh, dh, top + bottom)
    ow = conv_output_size(shape[2], kw, sw, dw, left + right)
    if oh < 1 or ow < 1:
        raise ShapeError(
            f"kernel {kernel_size} (dilation {dilation}) does not fit input of spatial size "
            f"{tuple(shape[1:3])} with padding {padding}"
        )
    return oh, ow


def im2col(x: Array, kernel_size: Pair, stride: Pair = (1, 1), dilation: Pair = (1, 1),
           padding: Padding2D = ((0, 0), (0, 0)), out: Array | None = None) -> Array:
    """Unfold every receptive field of an NHWC batch into one row of a matrix.

    Zero padding is applied first. The matrix may be C- or Fortran-ordered, whichever
    copy is faster for this shape; both multiply the same way (``cols @ w``).

    Args:
        x: ``(N, H, W, C)``.
        kernel_size, stride, dilation: ``(KH, KW)``, ``(SH, SW)``, ``(DH, DW)``.
        padding: ``((top, bottom), (left, right))``.
        out: a C-contiguous array of the output's shape and dtype to fill (a workspace kept
            between steps: writing into memory already mapped skips the page faults of a
            fresh allocation, 31 -> 19 ms for a 151 MB matrix); used where the row-wise
            (NHWC) copy applies, ignored otherwise. Use :func:`im2col_shape` for its shape.

    Shapes:
        output ``(N * OH * OW, KH * KW * C)``: rows in ``(N, OH, OW)`` order, columns in
        ``(KH, KW, C)`` order (that of a ``(KH, KW, C, C_out)`` kernel reshaped to 2-D).
    """
    xp = backend.xp()
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, stride, dilation
    oh, ow = _geometry(x.shape, kernel_size, stride, dilation, padding)
    if im2col_fills_out(x.shape, kernel_size, dilation):
        padded = pad2d(x, padding)
        windows = xp.lib.stride_tricks.sliding_window_view(
            padded, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(1, 2)
        )[:, ::sh, ::sw, :, ::dh, ::dw]  # (N, OH, OW, C, KH, KW), a view
        windows = windows.transpose(0, 1, 2, 4, 5, 3)  # (N, OH, OW, KH, KW, C)
        if (out is not None and tuple(out.shape) == (n * oh * ow, kh * kw * c) and out.dtype == x.dtype
                and out.flags.c_contiguous):
            xp.copyto(out.reshape(windows.shape), windows)
            return out
        return xp.ascontiguousarray(windows).reshape(n * oh * ow, kh * kw * c)
    (top, bottom), (left, right) = padding
    if top or bottom or left or right:
        planes = xp.zeros((c, n, h + top + bottom, w + left + right), dtype=x.dtype)
        planes[:, :, top : top + h, left : left + w] = x.transpose(3, 0, 1, 2)
    else:
        planes = x.transpose(3, 0, 1, 2)  # (C, N, H, W), a view
    cols_t = xp.empty((kh, kw, c, n, oh, ow), dtype=x.dtype)
    for i, j, rows, columns in window_offsets(kernel_size, stride, dilation, (oh, ow)):
        cols_t[i, j] = planes[:, :, rows, columns]
    return cols_t.reshape(kh * kw * c, n * oh * ow).T  # (M, K), Fortran order


def im2col_fills_out(x_shape: Sequence[int], kernel_size: Pair, dilation: Pair = (1, 1)) -> bool:
    """Whether :func:`im2col` copies row-wise (C order) for an input of ``x_shape``, and so fills its ``out``.

    It does when each kernel row's values for one output position are a long enough run
    (``KW * C`` with no horizontal dilation, else ``C``); with few channels it gathers
    whole channel planes instead and returns a new Fortran-ordered matrix.
    """
    c, kw, dw = int(x_shape[3]), kernel_size[1], dilation[1]
    return (kw * c if dw == 1 else c) >= _NHWC_MIN_RUN


def im2col_shape(x_shape: Sequence[int], kernel_size: Pair, stride: Pair = (1, 1), dilation: Pair = (1, 1),
                 padding: Padding2D = ((0, 0), (0, 0))) -> tuple[int, int]:
    """The shape ``(N * OH * OW, KH * KW * C)`` of :func:`im2col`'s matrix for an input of ``x_shape``."""
    oh, ow = _geometry(x_shape, kernel_size, stride, dilation, padding)
    return int(x_shape[0]) * oh * ow, kernel_size[0] * kernel_size[1] * int(x_shape[3])


def col2im(cols: Array, input_shape: Sequence[int], kernel_size: Pair, stride: Pair = (1, 1),
           dilation: Pair = (1, 1), padding: Padding2D = ((0, 0), (0, 0)), wide: bool = False) -> Array:
    """The adjoint of :func:`im2col`: add every row's values back to the pixels they came from.

    Accumulates by looping over the ``KH * KW`` kernel offsets and adding strided
    slices (no ``add.at``); the padding is cropped off. Pass ``cols`` in Fortran order
    (e.g. ``(w @ g.T).T``) to avoid one transposing copy.

    ``wide=True`` (stride 1 only) takes rows for ``Wp`` output columns per output row
    instead of ``OW``, where ``Wp = left + W + right`` is the padded width and the rows of
    columns ``OW..Wp-1`` are zero (e.g. from a gradient padded with :func:`pad2d`). Each
    kernel offset is then one contiguous add over whole padded rows, not ``OH`` short
    runs: 2-3x faster for small images, at the price of ``Wp / OW`` more rows.

    Args:
        cols: ``(N * OH * OW, KH * KW * C)`` laid out as :func:`im2col` returns, or
            ``(N * OH * Wp, KH * KW * C)`` with ``wide=True``.
        input_shape: ``(N, H, W, C)`` of the unpadded image.

    Shapes: output ``(N, H, W, C)``, C-contiguous.
    """
    xp = backend.xp()
    n, h, w, c = (int(s) for s in input_shape)
    (kh, kw), (dh, dw) = kernel_size, dilation
    (top, bottom), (left, right) = padding
    hp, wp = h + top + bottom, w + left + right
    oh, ow = _geometry((n, h, w, c), kernel_size, stride, dilation, padding)
    if wide and tuple(stride) != (1, 1):
        raise ValueError(f"col2im: wide=True needs stride (1, 1), got {tuple(stride)}")
    rows_per_image = oh * (wp if wide else ow)
    if tuple(cols.shape) != (n * rows_per_image, kh * kw * c):
        raise ShapeError(
            f"col2im: expected columns of shape {(n * rows_per_image, kh * kw * c)} for input "
            f"{(n, h, w, c)}{' (wide)' if wide else ''}, got {tuple(cols.shape)}"
        )
    if wide:
        cols_t = cols.T.reshape(kh, kw, c, n, oh * wp)  # a view when cols is Fortran-ordered
        slack = (kw - 1) * dw  # the zero columns of the last row run past the plane's end
        flat = xp.zeros((c, n, hp * wp + slack), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                start = i * dh * wp + j * dw
                flat[:, :, start : start + oh * wp] += cols_t[i, j]
        planes = flat[:, :, : hp * wp].reshape(c, n, hp, wp)
    else:
        cols_t = cols.T.reshape(kh, kw, c, n, oh, ow)  # a view when cols is Fortran-ordered
        planes = xp.zeros((c, n, hp, wp), dtype=cols.dtype)
        for i, j, rows, columns in window_offsets(kernel_size, stride, dilation, (oh, ow)):
            planes[:, :, rows, columns] += cols_t[i, j]
    return xp.ascontiguousarray(planes[:, :, top : top + h, left : left + w].transpose(1, 2, 3, 0))


# --------------------------------------------------------------------------------------
# Banded convolution (stride 1, no dilation): whole blocks of output columns per matrix row
# --------------------------------------------------------------------------------------


def unfold_rows(x: Array, kernel_size: Pair, block: int, ones_column: bool = False) -> Array:
    """Unfold a padded NHWC batch for a banded convolution (stride 1, no dilation).

    Each row holds the ``KH`` input rows that one output row reads, cut to the
    ``Wb = block + KW - 1`` columns that ``block`` neighbouring output columns read.
    Multiplied by :func:`banded_kernel` it gives those ``block`` outputs at once: a
    product ``block`` times wider (and ``Wb / KW`` times longer) than :func:`im2col`'s,
    from a matrix ``KW * block / Wb`` times smaller. ``block=1`` is :func:`im2col`.

    Args:
        x: ``(N, Hp, Wp, C)``, padded already.
        kernel_size: ``(KH, KW)``.
        block: output columns per row, a divisor of ``OW = Wp - KW + 1``.
        ones_column: append a column of ones, which multiplies the bias row of
            ``banded_kernel(w, block, b)``: the products then add the bias and sum its gradient.

    Shapes: output ``(N * OH * OW / block, KH * Wb * C (+ 1))``, rows in ``(N, OH, block index)``
    order, columns in ``(KH, Wb, C)`` order.
    """
    xp = backend.xp()
    n, hp, wp, c = x.shape
    kh, kw = kernel_size
    oh, ow, wb = hp - kh + 1, wp - kw + 1, block + kw - 1
    if ow % block:
        raise ValueError(f"unfold_rows: block {block} does not divide the output width {ow}")
    windows = xp.lib.stride_tricks.sliding_window_view(x, (kh, wb), axis=(1, 2))[:, :, ::block]
    windows = windows.transpose(0, 1, 2, 4, 5, 3)  # (N, OH, OW/block, KH, Wb, C), a view
    size = kh * wb * c
    rows = xp.empty((n * oh * (ow // block), size + ones_column), dtype=x.dtype)
    rows[:, :size].reshape(windows.shape)[...] = windows  # a view of the strided rows: (N, OH, OW/block, KH, Wb, C)
    if ones_column:
        rows[:, size] = 1.0
    return rows


def banded_kernel(w: Array, block: int, b: Array | None = None) -> Array:
    """A ``(KH, KW, C, C_out)`` kernel as the banded matrix that multiplies :func:`unfold_rows`.

    ``T[(i, q, c), (j, o)] = w[i, q - j, c, o]`` for ``0 <= q - j < KW``, else 0: output
    column ``j`` of a block reads columns ``j .. j + KW - 1`` of the block's ``Wb``.
    With a bias ``b`` ``(C_out,)``, a last row ``T[-1, (j, o)] = b[o]`` (for rows with
    ``ones_column``).

    Shapes: output ``(KH * Wb * C (+ 1), block * C_out)`` with ``Wb = block + KW - 1``.
    """
    xp = backend.xp()
    kh, kw, c, cout = w.shape
    size = kh * (block + kw - 1) * c
    matrix = xp.zeros((size + (b is not None), block * cout), dtype=w.dtype)
    band = matrix[:size].reshape(kh, block + kw - 1, c, block, cout)  # a view
    for j in range(block):
        band[:, j : j + kw, :, j, :] = w
    if b is not None:
        matrix[size] = xp.tile(b, block)
    return matrix


def banded_kernel_grad(band_grad: Array, kernel_size: Pair, block: int, out: Array,
                       out_bias: Array | None = None) -> Array:
    """The adjoint of :func:`banded_kernel`: add up the gradients of the ``block`` copies of ``w`` (and ``b``).

    Shapes: ``band_grad`` ``(KH * Wb * C (+ 1), block * C_out)``; ``out`` ``(KH, KW, C, C_out)``
    and ``out_bias`` ``(C_out,)`` (from ``band_grad``'s last row), written in place; returns ``out``.
    """
    kh, kw = kernel_size
    cout = band_grad.shape[1] // block
    size = band_grad.shape[0] - (out_bias is not None)
    band = band_grad[:size].reshape(kh, block + kw - 1, -1, block, cout)  # (KH, Wb, C, block, C_out)
    out[...] = band[:, 0:kw, :, 0, :]
    for j in range(1, block):
        out += band[:, j : j + kw, :, j, :]
    if out_bias is not None:
        out_bias[...] = band_grad[size].reshape(block, cout).sum(axis=0)
    return out


def fold_rows(rows: Array, padded_shape: Sequence[int], kernel_size: Pair, block: int) -> Array:
    """The adjoint of :func:`unfold_rows`: add every row's values back to the pixels they came from.

    One contiguous add per kernel row and block (``KH * OW / block`` adds).

    Args:
        rows: ``(N * OH * OW / block, KH * Wb * C)`` as :func:`unfold_rows` returns.
        padded_shape: ``(N, Hp, Wp, C)`` of the padded input.

    Shapes: output ``(N, Hp, Wp, C)``, C-contiguous.
    """
    xp = backend.xp()
    n, hp, wp, c = (int(s) for s in padded_shape)
    kh, kw = kernel_size
    oh, ow, wb = hp - kh + 1, wp - kw + 1, block + kw - 1
    parts = rows.reshape(n, oh, ow // block, kh, wb * c)  # (N, OH, OW/block, KH, Wb*C)
    out = xp.zeros((n, hp, wp * c), dtype=rows.dtype)  # (N, Hp, Wp*C)
    for i in range(kh):
        for b in range(ow // block):
            start = b * block * c
            out[:, i : i + oh, start : start + wb * c] += parts[:, :, b, i]
    return out.reshape(n, hp, wp, c)


def channel_sums(x: Array, out: Array | None = None) -> Array:
    """Sum a channels-last array over every axis but the last, as one matrix-vector product.

    ``ones @ x.reshape(-1, C)`` runs in the BLAS: about 10x faster than
    ``x.sum(axis=0)`` on a tall ``(M, C)`` array with few channels.

    Shapes: input ``(..., C)``, output ``(C,)`` (written into ``out`` if given).
    """
    xp = backend.xp()
    x2 = x.reshape(-1, x.shape[-1])  # (M, C)
    return xp.matmul(xp.ones(x2.shape[0], dtype=x.dtype), x2, out=out)


def channel_rows(x: Array) -> tuple[Array, int]:
    """View a C-contiguous channels-last array as wide rows for fast per-channel broadcasting.

    Adding a ``(C,)`` vector to an ``(M, C)`` array with few channels runs a short
    inner loop per row; viewing ``(..., W, C)`` as ``(-1, W * C)`` and adding
    ``xp.tile(v, W)`` does the same with rows ``W`` times longer (5x faster for C=6).

    Returns:
        ``(rows, reps)``: the 2-D view ``(-1, reps * C)`` (in-place changes reach ``x``)
        and how many times to tile a channel vector to match a row.
    """
    reps = x.shape[-2] if x.ndim >= 3 else 1
    if not x.flags.c_contiguous:
        raise ValueError("channel_rows needs a C-contiguous array (in-place updates must reach it)")
    return x.reshape(-1, reps * x.shape[-1]), reps


def safe_softmax(x: Array, axis: int = -1, keep: Array | None = None) -> Array:
    """Softmax along ``axis`` for masked scores: hidden entries get weight 0, and a slice
    whose entries are all hidden gives all zeros instead of NaN.

    Entries are hidden by being ``-inf`` in ``x``, or ``False`` in ``keep`` (a bool array
    broadcastable to ``x``). Computed as ``e * inv_total`` from :func:`masked_exp`.
    """
    e, inv_total = masked_exp(x, axis=axis, keep=keep)
    e *= inv_total
    return e


def masked_exp(x: Array, axis: int = -1, keep: Array | None = None,
               overwrite: bool = False) -> tuple[Array, Array]:
    """The parts of a masked softmax: ``softmax(x) = e * inv_total``, so that a caller can
    apply the normalisation to something smaller than ``x`` (attention scales its
    ``(N, h, T, d)`` output instead of the ``(N, h, T, S)`` weights: ``(e @ v) * inv_total``).

    Entries are hidden by being ``-inf`` in ``x``, or ``False`` in ``keep`` (a bool array
    broadcastable to ``x``); they get ``e = 0``. A slice whose entries are all hidden gets
    ``inv_total = 1`` (so its softmax is all zeros, never NaN). When every score lies
    within ``±60`` (checked with two whole-array reductions) ``exp(x)`` can neither overflow
    nor underflow, so the per-slice maximum is not subtracted (that reduction over a short
    last axis is the slowest step); otherwise it is. Sums along the last axis are taken as
    one matrix-vector product with a ones vector (a BLAS call, ~3x faster than ``sum``).

    Args:
        x: scores, any shape.
        axis: the softmax axis.
        keep: optional bool array broadcastable to ``x``, ``False`` = hidden.
        overwrite: ``e`` may be written into ``x`` (a temporary the caller gives up).

    Returns:
        ``(e, inv_total)``: ``e`` has ``x``'s shape and dtype; ``inv_total`` has ``x``'s
        shape with ``axis`` of size 1.
    """
    xp = backend.xp()
    if x.size == 0:  # an empty batch: nothing to reduce
        kept = list(x.shape)
        kept[axis] = 1
        return (x if overwrite else x.copy()), xp.ones(kept, dtype=x.dtype)
    if -_NO_SHIFT_LIMIT < float(x.min()) and float(x.max()) < _NO_SHIFT_LIMIT:  # False for NaN and -inf
        e = xp.exp(x, out=x) if overwrite else xp.exp(x)
        if keep is not None:
            e *= keep if keep.size >= e.size else keep.astype(e.dtype, copy=False)  # a float factor: faster
    else:
        if keep is not None:
            x = xp.where(keep, x, -np.inf).astype(x.dtype, copy=False)
        e = xp.subtract(x, _finite_max(x, axis), out=x if overwrite else None)
        xp.exp(e, out=e)
    if e.flags.c_contiguous and axis in (-1, e.ndim - 1):
        total = (e.reshape(-1, e.shape[-1]) @ xp.ones(e.shape[-1], dtype=e.dtype)).reshape(*e.shape[:-1], 1)
    else:
        total = e.sum(axis=axis, keepdims=True)
    total[total == 0.0] = 1.0  # all-hidden slices: 0 * 1
    return e, xp.reciprocal(total, out=total)


_NO_SHIFT_LIMIT = 60.0  # exp(60) * 1e12 terms stays below float32's max; exp(-60) above its tiny
