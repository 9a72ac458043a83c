"""Pooling layers on NHWC images: ``MaxPool2D``, ``AvgPool2D``, ``GlobalAvgPool2D``.

Windows are visited by looping over the ``KH * KW`` kernel offsets, each a strided
slice of the whole batch (:func:`~nnframe.functional.window_offsets`), so there is no
Python loop over pixels and no copy of the unfolded windows. Max-pooling windows that
tile the input (stride == pool_size, no padding) are gathered into contiguous planes
instead, one per kernel offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnframe import backend, threads
from nnframe import functional as F
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer


class _Pool2D(Layer):
    """Shared arguments and geometry of the windowed pools."""

    def __init__(
        self,
        pool_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        name: str | None = None,
    ) -> None:
        owner = type(self).__name__
        super().__init__(name)
        self.pool_size = F.as_pair(pool_size, owner, "pool_size")
        self.stride = self.pool_size if stride is None else F.as_pair(stride, owner, "stride")
        self.padding = F.as_pair(padding, owner, "padding", minimum=0)
        if any(2 * p > k for p, k in zip(self.padding, self.pool_size, strict=True)):
            raise ValueError(
                f"{owner}: padding must be at most half of pool_size {self.pool_size}, got {self.padding}"
            )

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        _, (oh, ow) = self._geometry_of(tuple(input_shape))
        return (input_shape[0], oh, ow, input_shape[3])

    def _geometry(self, inputs: Array) -> tuple[F.Padding2D, F.Pair]:
        return self._geometry_of(tuple(inputs.shape))

    def _geometry_of(self, shape: tuple[int, ...]) -> tuple[F.Padding2D, F.Pair]:
        if len(shape) != 4:
            raise ShapeError(f"{self.name} expects NHWC input (N, H, W, C), got shape {shape}")
        (ph, pw), (kh, kw), (sh, sw) = self.padding, self.pool_size, self.stride
        out = (F.conv_output_size(shape[1], kh, sh, 1, 2 * ph),
               F.conv_output_size(shape[2], kw, sw, 1, 2 * pw))
        if min(out) < 1:
            raise ShapeError(f"{self.name}: pool_size {self.pool_size} with padding {self.padding} does not "
                             f"fit input of shape {shape}")
        return ((ph, ph), (pw, pw)), out

    def _offsets(self, out_size: F.Pair):
        return F.window_offsets(self.pool_size, self.stride, (1, 1), out_size)

    def _crop(self, padded: Array) -> Array:
        (ph, pw) = self.padding
        h, w = padded.shape[1] - 2 * ph, padded.shape[2] - 2 * pw
        return backend.xp().ascontiguousarray(padded[:, ph : ph + h, pw : pw + w, :])

    def get_config(self) -> dict[str, Any]:
        return {"pool_size": list(self.pool_size), "stride": list(self.stride),
                "padding": list(self.padding), **super().get_config()}


class MaxPool2D(_Pool2D):
    """Maximum over each ``KH x KW`` window; padding counts as ``-inf``.

    Ties: the gradient of a window goes to exactly one input, the first maximum in
    row-major window order (topmost row first, then leftmost column), as in
    PyTorch's CPU kernel. An input that wins several overlapping windows receives
    the sum of their gradients.

    Args:
        pool_size: ``(KH, KW)`` (an int or a pair).
        stride: ``(SH, SW)``; default ``pool_size`` (non-overlapping windows).
        padding: ``(PH, PW)`` on both sides of each axis, at most half the window.

    Shapes: input ``(N, H, W, C)``, output ``(N, OH, OW, C)``,
    ``OH = (H + 2 PH - KH) // SH + 1`` (likewise ``OW``).
    """

    def forward(self, inputs: Array) -> Array:
        xp = backend.xp()
        padding, out_size = self._geometry(inputs)
        if self._tiles(inputs):
            return self._forward_tiled(inputs, out_size)
        padded = F.pad2d(inputs, padding, value=-xp.inf)  # (N, H + 2PH, W + 2PW, C)
        out = None
        for _, _, rows, cols in self._offsets(out_size):
            tap = padded[:, rows, cols]  # (N, OH, OW, C)
            out = tap.copy() if out is None else xp.maximum(out, tap, out=out)
        self.ctx = {"padded": padded, "out": out}
        return out

    def backward(self, grad: Array) -> Array:
        xp = backend.xp()
        if "slices" in self.ctx:
            return self._backward_tiled(grad)
        padded, out = self.ctx["padded"], self.ctx["out"]
        (kh, kw), (oh, ow) = self.pool_size, out.shape[1:3]
        disjoint = self.stride[0] >= kh and self.stride[1] >= kw  # each input in <= 1 window: assign
        covers_all = self.stride == self.pool_size and padded.shape[1:3] == (oh * kh, ow * kw)
        dpadded = xp.empty_like(padded) if covers_all else xp.zeros_like(padded)
        unrouted = None  # windows whose gradient is not yet placed (None: all of them)
        for i, j, rows, cols in self._offsets((oh, ow)):
            if unrouted is None:  # the first tap: a winner wherever it holds the maximum
                winner = padded[:, rows, cols] == out
                unrouted = ~winner
            elif (i, j) == (kh - 1, kw - 1):  # the last tap wins every window still unrouted
                winner = unrouted
            else:
                winner = padded[:, rows, cols] == out
                winner &= unrouted
                unrouted ^= winner
            if disjoint:
                xp.multiply(grad, winner, out=dpadded[:, rows, cols])
            else:
                dpadded[:, rows, cols] += grad * winner
        return self._crop(dpadded)

    # Windows that tile the input (stride == pool_size, no padding: LeNet's and ResNet stems'
    # 2x2 pools). The input is viewed as ``(N, OH, KH, OW, KW, C)``, so each tap is a strided
    # view with nothing padded or gathered; the batch is split between threads, and backward
    # writes each tap's share straight into the input gradient. Measured (median of 21, idle,
    # 2 threads, forward / backward ms): 128x28x28x32: 1.8 / 3.0-9.9 -> 1.1 / 2.5-2.8
    # (the old path gathered the taps into contiguous planes and routed the gradient
    # through a second array of the input's size); 128x28x28x6 (LeNet): 0.64 / 0.8-3.5 ->
    # 0.47 / 0.9.

    def _tiles(self, inputs: Array) -> bool:
        """Whether the windows tile the input: stride == pool_size, no padding, sizes divisible."""
        (kh, kw), (_, h, w, _) = self.pool_size, inputs.shape
        return self.stride == self.pool_size and self.padding == (0, 0) and h % kh == 0 and w % kw == 0

    def _tile_view(self, a: Array) -> Array:
        """``(N, H, W, C)`` viewed as ``(N, OH, KH, OW, KW, C)``: tap ``(i, j)`` is ``[:, :, i, :, j]``."""
        (kh, kw), (n, h, w, c) = self.pool_size, a.shape
        return a.reshape(n, h // kh, kh, w // kw, kw, c)

    def _forward_tiled(self, inputs: Array, out_size: F.Pair) -> Array:
        xp = backend.xp()
        n, h, w, c = inputs.shape
        kh, kw = self.pool_size
        windows = self._tile_view(inputs)
        out = xp.empty((n, *out_size, c), dtype=inputs.dtype)

        taps = [windows[:, :, i, :, j] for i in range(kh) for j in range(kw)]  # each (N, OH, OW, C)

        def pool(part: slice) -> None:  # the images of one thread
            if len(taps) == 1:
                xp.copyto(out[part], taps[0][part])
            else:
                xp.maximum(taps[0][part], taps[1][part], out=out[part])
            for tap in taps[2:]:
                xp.maximum(out[part], tap[part], out=out[part])

        slices = threads.batch_slices(n, h * w * c)
        threads.map_slices(pool, slices)
        self.ctx = {"inputs": inputs, "out": out, "slices": slices}
        return out

    def _backward_tiled(self, grad: Array) -> Array:
        xp = backend.xp()
        inputs, out = self.ctx["inputs"], self.ctx["out"]  # (N, H, W, C), (N, OH, OW, C)
        kh, kw = self.pool_size
        windows = self._tile_view(inputs)
        dx = xp.empty_like(inputs)
        dwindows = self._tile_view(dx)

        def route(part: slice) -> None:  # the images of one thread
            unrouted = None  # windows whose gradient is not yet placed (None: all of them)
            for t in range(kh * kw):  # row-major window order: the first maximum wins
                i, j = divmod(t, kw)
                if t == kh * kw - 1:  # the last tap wins every window still unrouted
                    winner = True if unrouted is None else unrouted
                else:
                    winner = windows[part, :, i, :, j] == out[part]
                    if unrouted is None:
                        unrouted = ~winner
                    else:
                        winner &= unrouted
                        unrouted ^= winner
                xp.multiply(grad[part], winner, out=dwindows[part, :, i, :, j])

        threads.map_slices(route, self.ctx["slices"])
        return dx


class AvgPool2D(_Pool2D):
    """Mean over each ``KH x KW`` window.

    Args:
        pool_size, stride, padding: as for :class:`MaxPool2D` (padding is zeros).
        count_include_pad: divide by ``KH * KW`` even where the window overlaps the
            padding (PyTorch's default); else by the number of real pixels.

    Shapes: as for :class:`MaxPool2D`.
    """

    def __init__(
        self,
        pool_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        count_include_pad: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(pool_size, stride, padding, name)
        self.count_include_pad = bool(count_include_pad)

    def _divisor(self, inputs: Array, padding: F.Padding2D, out_size: F.Pair) -> Array | float:
        if self.count_include_pad or self.padding == (0, 0):
            return float(self.pool_size[0] * self.pool_size[1])
        xp = backend.xp()
        ones = F.pad2d(xp.ones((1, *inputs.shape[1:3], 1), dtype=inputs.dtype), padding)
        count = sum(ones[:, rows, cols] for _, _, rows, cols in self._offsets(out_size))
        return count  # (1, OH, OW, 1)

    def forward(self, inputs: Array) -> Array:
        padding, out_size = self._geometry(inputs)
        padded = F.pad2d(inputs, padding)  # (N, H + 2PH, W + 2PW, C)
        out = None
        for _, _, rows, cols in self._offsets(out_size):
            tap = padded[:, rows, cols]  # (N, OH, OW, C)
            out = tap.copy() if out is None else backend.xp().add(out, tap, out=out)
        divisor = self._divisor(inputs, padding, out_size)
        out /= divisor
        self.ctx = {"padded_shape": padded.shape, "divisor": divisor}
        return out

    def backward(self, grad: Array) -> Array:
        share = grad / self.ctx["divisor"]  # (N, OH, OW, C)
        dpadded = backend.xp().zeros(self.ctx["padded_shape"], dtype=grad.dtype)
        for _, _, rows, cols in self._offsets(grad.shape[1:3]):
            dpadded[:, rows, cols] += share
        return self._crop(dpadded)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "count_include_pad": self.count_include_pad}


class GlobalAvgPool2D(Layer):
    """Mean over the spatial axes: ``(N, H, W, C) -> (N, C)``.

    Shapes: input ``(N, H, W, C)``, output ``(N, C)``.
    """

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 4:
            raise ShapeError(f"{self.name} expects NHWC input (N, H, W, C), got shape {tuple(input_shape)}")
        return (input_shape[0], input_shape[3])

    def forward(self, inputs: Array) -> Array:
        self.compute_output_shape(inputs.shape)
        self.ctx = {"x_shape": inputs.shape}
        return inputs.mean(axis=(1, 2))  # (N, C)

    def backward(self, grad: Array) -> Array:
        n, h, w, c = self.ctx["x_shape"]
        share = grad * (1.0 / (h * w))  # (N, C)
        return backend.xp().broadcast_to(share[:, None, None, :], (n, h, w, c)).copy()
