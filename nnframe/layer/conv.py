"""Convolution layers on channels-last data: ``Conv2D`` and ``Conv2DTranspose`` (NHWC), ``Conv1D`` (NWC).

The layers hold the arguments, shapes, parameters and configuration; the arithmetic
(im2col products split between threads, banded and grouped variants, their gradients)
is in :mod:`nnframe.layer.conv_ops`.

Argument names follow PyTorch (``out_channels``, ``kernel_size``, ``stride``,
``padding``, ``dilation``, ``groups``); the input channels are inferred on the first
forward, like :class:`~nnframe.layer.Dense`'s input features.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnframe import backend
from nnframe import functional as F
from nnframe import initializer as init_mod
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer
from nnframe.layer.conv_ops import add_channel_bias, conv_backward, conv_forward, xp_matmul_t

InitSpec = init_mod.Initializer | str | dict | None
PaddingArg = str | int | Sequence[int]


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return value


def _padding_arg(owner: str, padding: PaddingArg, rank: int) -> str | tuple[int, ...]:
    """Validate ``padding``: ``"same"``, ``"valid"``, an int or ``rank`` ints (symmetric per axis)."""
    if isinstance(padding, str):
        if padding.lower() not in ("same", "valid"):
            raise ValueError(f"{owner}: padding must be 'same', 'valid', an int or a tuple, got {padding!r}")
        return padding.lower()
    if rank == 1:
        if isinstance(padding, (list, tuple)) and len(padding) == 1:
            padding = padding[0]
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"{owner}: padding must be 'same', 'valid' or an int >= 0, got {padding!r}")
        return (padding,)
    return F.as_pair(padding, owner, "padding", minimum=0)


def _resolve_padding(padding: str | tuple[int, ...], size: tuple[int, int], kernel: F.Pair,
                     stride: F.Pair, dilation: F.Pair) -> F.Padding2D:
    """``((top, bottom), (left, right))`` for an input of spatial ``size``."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return (F.same_padding(size[0], kernel[0], stride[0], dilation[0]),
                F.same_padding(size[1], kernel[1], stride[1], dilation[1]))
    ph, pw = padding if len(padding) == 2 else (0, padding[0])
    return (ph, ph), (pw, pw)


def _config_padding(padding: str | tuple[int, ...]) -> Any:
    if isinstance(padding, str):
        return padding
    return padding[0] if len(padding) == 1 else list(padding)


class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in PyTorch) of NHWC images.

    ``y[n, i, j, o] = b[o] + sum_{p, q, c} x_pad[n, i*SH + p*DH, j*SW + q*DW, g*Cg + c] w[p, q, c, o]``
    where ``g = o // (C_out / groups)`` is the group of output channel ``o``.

    Args:
        out_channels: ``C_out``, a multiple of ``groups``.
        kernel_size: ``KH`` and ``KW`` (an int or a pair).
        stride: ``(SH, SW)`` (an int or a pair).
        padding: ``"valid"`` (none), ``"same"`` (``ceil(H / SH)`` outputs; any odd unit of
            padding goes after, as in PyTorch and TensorFlow), an int, or ``(PH, PW)``
            (zeros on both sides of each axis).
        dilation: ``(DH, DW)`` spacing of the kernel taps.
        groups: input and output channels are split into this many groups, each
            convolved separately; ``groups == C_in`` is a depthwise convolution.
        bias: whether to learn ``b``.
        w_init: initializer of ``w`` (default :class:`~nnframe.initializer.HeUniform`:
            convolutions are usually followed by ReLU).
        b_init: initializer of ``b`` (default zeros).

    Shapes:
        input ``(N, H, W, C_in)``, output ``(N, OH, OW, C_out)`` with
        ``OH = (H + PH_total - DH (KH - 1) - 1) // SH + 1`` (likewise ``OW``);
        ``params["w"]``: ``(KH, KW, C_in / groups, C_out)``, ``params["b"]``: ``(C_out,)``.
    """

    def __init__(
        self,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: PaddingArg = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        bias: bool = True,
        w_init: InitSpec = None,
        b_init: InitSpec = None,
        name: str | None = None,
    ) -> None:
        owner = type(self).__name__
        self.out_channels = _positive_int(owner, "out_channels", out_channels)
        self.groups = _positive_int(owner, "groups", groups)
        if out_channels % groups:
            raise ValueError(f"{owner}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        self.kernel_size = F.as_pair(kernel_size, owner, "kernel_size")
        self.stride = F.as_pair(stride, owner, "stride")
        self.dilation = F.as_pair(dilation, owner, "dilation")
        self.padding = _padding_arg(owner, padding, 2)
        self.bias = bool(bias)
        super().__init__(name)
        self.initializers = {"w": init_mod.get(w_init or init_mod.HeUniform())}
        self.shapes = {"w": [*self.kernel_size, None, out_channels]}
        if self.bias:
            self.initializers["b"] = init_mod.get(b_init or init_mod.Zeros())
            self.shapes["b"] = [out_channels]

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("w", "b") if self.bias else ("w",)

    #: the input's rank and layout name (Conv1D: 3, "NWC")
    _rank, _layout = 4, "NHWC"

    def build(self, input_shape: tuple[int, ...]) -> None:
        self._check_rank(input_shape)
        channels = input_shape[-1]
        kernel = self.kernel_size if self._rank == 4 else self.kernel_size[1:]
        self.shapes = {"w": (*kernel, channels // self.groups, self.out_channels)}
        if self.bias:
            self.shapes["b"] = (self.out_channels,)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self._check_rank(input_shape)
        known = self.shapes["w"][-2]
        if known is not None and input_shape[-1] != known * self.groups:
            raise ShapeError(
                f"{self.name} was built for {known * self.groups} input channels, got input of shape "
                f"{tuple(input_shape)} ({self._layout}, {input_shape[-1]} channels)"
            )
        size = tuple(input_shape[1:3]) if self._rank == 4 else (1, input_shape[1])
        padding = _resolve_padding(self.padding, size, self.kernel_size, self.stride, self.dilation)
        out = [F.conv_output_size(size[axis], self.kernel_size[axis], self.stride[axis],
                                  self.dilation[axis], sum(padding[axis])) for axis in (0, 1)]
        if min(out) < 1:
            raise ShapeError(f"{self.name}: kernel {self.kernel_size} (dilation {self.dilation}) does not fit "
                             f"input of shape {tuple(input_shape)} with padding {padding}")
        spatial = out if self._rank == 4 else out[1:]
        return (input_shape[0], *spatial, self.out_channels)

    def _check_rank(self, shape: tuple[int, ...]) -> None:
        if len(shape) != self._rank:
            dims = "(N, H, W, C)" if self._rank == 4 else "(N, L, C)"
            raise ShapeError(f"{self.name} expects {self._layout} input {dims}, got shape {tuple(shape)}")
        if shape[-1] % self.groups:
            raise ShapeError(
                f"{self.name}: input channels ({shape[-1]}) must be divisible by groups ({self.groups})"
            )

    def _check_channels(self, inputs: Array, layout: str) -> None:
        expected = self.params["w"].shape[-2] * self.groups
        if inputs.shape[-1] != expected:
            raise ShapeError(
                f"{self.name} was built for {expected} input channels, got input of shape "
                f"{tuple(inputs.shape)} ({layout}, {inputs.shape[-1]} channels)"
            )
        self._check_dtype(inputs)

    def forward(self, inputs: Array) -> Array:
        self._check_rank(inputs.shape)
        if not self.is_init:
            self.build(inputs.shape)
            self._init_params()
        self._check_channels(inputs, "NHWC")
        padding = _resolve_padding(self.padding, inputs.shape[1:3], self.kernel_size, self.stride,
                                   self.dilation)
        out, cols = conv_forward(inputs, self.params["w"], self.params.get("b"), self.stride,
                                 self.dilation, padding, self.groups)
        self.ctx = {"cols": cols, "x_shape": inputs.shape, "padding": padding}
        return out

    def backward(self, grad: Array) -> Array | None:
        return conv_backward(
            grad, self.ctx["cols"], self.params["w"], self.ctx["x_shape"], self.stride, self.dilation,
            self.ctx["padding"], self.groups, self._grad_buffer("w"),
            self._grad_buffer("b") if self.bias else None, self.requires_input_grad,
        )

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": _config_padding(self.padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
            "bias": self.bias,
            "w_init": init_mod.to_config(self.initializers["w"]),
        }
        if self.bias:
            config["b_init"] = init_mod.to_config(self.initializers["b"])
        return {**config, **super().get_config()}


class Conv1D(Conv2D):
    """1-D convolution of sequences with channels last (NWC), e.g. ``(N, T, C)``.

    Computed as a :class:`Conv2D` of height 1. Arguments as for :class:`Conv2D`, with
    ints for ``kernel_size``, ``stride``, ``dilation`` and ``padding`` (or ``"same"``/``"valid"``).

    Shapes:
        input ``(N, L, C_in)``, output ``(N, L_out, C_out)``,
        ``L_out = (L + 2 P - D (K - 1) - 1) // S + 1``;
        ``params["w"]``: ``(K, C_in / groups, C_out)``, ``params["b"]``: ``(C_out,)``.
    """

    def __init__(
        self,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: str | int = 0,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = True,
        w_init: InitSpec = None,
        b_init: InitSpec = None,
        name: str | None = None,
    ) -> None:
        owner = type(self).__name__
        size = _positive_int(owner, "kernel_size", kernel_size)
        super().__init__(out_channels, (1, size), (1, _positive_int(owner, "stride", stride)), 0,
                         (1, _positive_int(owner, "dilation", dilation)), groups, bias, w_init, b_init, name)
        self.padding = _padding_arg(owner, padding, 1)
        self.shapes["w"] = [size, None, out_channels]

    _rank, _layout = 3, "NWC"

    def forward(self, inputs: Array) -> Array:
        self._check_rank(inputs.shape)
        if not self.is_init:
            self.build(inputs.shape)
            self._init_params()
        self._check_channels(inputs, "NWC")
        n, length, c = inputs.shape
        padding = _resolve_padding(self.padding, (1, length), self.kernel_size, self.stride, self.dilation)
        w = self.params["w"]
        out, cols = conv_forward(inputs.reshape(n, 1, length, c), w.reshape(1, *w.shape),
                                 self.params.get("b"), self.stride, self.dilation, padding, self.groups)
        self.ctx = {"cols": cols, "x_shape": (n, 1, length, c), "padding": padding}
        return out.reshape(n, out.shape[2], out.shape[3])  # (N, L_out, C_out)

    def backward(self, grad: Array) -> Array | None:
        n, length, cout = grad.shape
        w = self.params["w"]
        dx = conv_backward(
            grad.reshape(n, 1, length, cout), self.ctx["cols"], w.reshape(1, *w.shape),
            self.ctx["x_shape"], self.stride, self.dilation, self.ctx["padding"], self.groups,
            self._grad_buffer("w").reshape(1, *w.shape), self._grad_buffer("b") if self.bias else None,
            self.requires_input_grad,
        )
        return None if dx is None else dx.reshape(n, dx.shape[2], dx.shape[3])  # (N, L, C_in)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(kernel_size=self.kernel_size[1], stride=self.stride[1],
                      dilation=self.dilation[1], padding=_config_padding(self.padding))
        return config


class Conv2DTranspose(Layer):
    """Transposed 2-D convolution of NHWC images (the input gradient of a :class:`Conv2D`).

    Each input pixel scatters ``x[n, i, j, :] @ w[p, q].T`` to output pixel
    ``(i*SH + p*DH - PH, j*SW + q*DW - PW)``, as PyTorch's ``ConvTranspose2d``. With
    ``groups``, input channel group ``g`` (``C_in / groups`` channels) scatters only to
    output channel group ``g``.

    Args:
        out_channels: ``C_out``, a multiple of ``groups``.
        kernel_size, stride, dilation: ints or pairs, as for :class:`Conv2D`.
        padding: an int or ``(PH, PW)``: rows/columns cropped from each side of the output.
        output_padding: an int or pair, each smaller than ``max(stride, dilation)`` on its
            axis (PyTorch's rule): rows/columns added to the bottom and right of the output,
            to reach the size of a strided convolution's input.
        groups: input and output channels are split into this many groups (``C_in`` must
            be divisible by it too).
        bias, w_init, b_init: as for :class:`Conv2D`.

    Shapes:
        input ``(N, H, W, C_in)``, output ``(N, OH, OW, C_out)`` with
        ``OH = (H - 1) SH - 2 PH + DH (KH - 1) + output_padding + 1``;
        ``params["w"]``: ``(KH, KW, C_out / groups, C_in)`` (Keras' layout: the kernel of the
        ``C_out -> C_in`` convolution this layer transposes; PyTorch's ``weight`` is
        ``w.transpose(3, 2, 0, 1)``), ``params["b"]``: ``(C_out,)``.
    """

    def __init__(
        self,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        output_padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        bias: bool = True,
        w_init: InitSpec = None,
        b_init: InitSpec = None,
        name: str | None = None,
        groups: int = 1,
    ) -> None:
        owner = type(self).__name__
        self.out_channels = _positive_int(owner, "out_channels", out_channels)
        self.groups = _positive_int(owner, "groups", groups)
        if out_channels % groups:
            raise ValueError(f"{owner}: out_channels ({out_channels}) must be divisible by groups ({groups})")
        self.kernel_size = F.as_pair(kernel_size, owner, "kernel_size")
        self.stride = F.as_pair(stride, owner, "stride")
        self.dilation = F.as_pair(dilation, owner, "dilation")
        self.padding = F.as_pair(0 if padding == "valid" else padding, owner, "padding", minimum=0)
        self.output_padding = F.as_pair(output_padding, owner, "output_padding", minimum=0)
        limit = tuple(max(s, d) for s, d in zip(self.stride, self.dilation, strict=True))
        if any(op >= m for op, m in zip(self.output_padding, limit, strict=True)):
            raise ValueError(
                f"{owner}: output_padding must be smaller than max(stride, dilation) = {limit} on each axis "
                f"(stride {self.stride}, dilation {self.dilation}), got {self.output_padding}"
            )
        self.bias = bool(bias)
        super().__init__(name)
        self.initializers = {"w": init_mod.get(w_init or init_mod.HeUniform())}
        self.shapes = {"w": [*self.kernel_size, out_channels // groups, None]}
        if self.bias:
            self.initializers["b"] = init_mod.get(b_init or init_mod.Zeros())
            self.shapes["b"] = [out_channels]

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("w", "b") if self.bias else ("w",)

    def build(self, input_shape: tuple[int, ...]) -> None:
        self._check_rank(input_shape)
        if input_shape[3] % self.groups:
            raise ShapeError(f"{self.name}: input channels ({input_shape[3]}) must be divisible by groups "
                             f"({self.groups})")
        self.shapes = {"w": (*self.kernel_size, self.out_channels // self.groups, input_shape[3])}
        if self.bias:
            self.shapes["b"] = (self.out_channels,)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self._check_rank(input_shape)
        n, h, w, channels = input_shape
        known = self.shapes["w"][3]
        if known is not None and channels != known:
            raise ShapeError(f"{self.name} was built for {known} input channels, got input of shape "
                             f"{tuple(input_shape)} (NHWC, {channels} channels)")
        sizes = [
            (size - 1) * s - 2 * p + d * (k - 1) + op + 1
            for size, s, p, d, k, op in zip((h, w), self.stride, self.padding, self.dilation,
                                            self.kernel_size, self.output_padding, strict=True)
        ]
        if min(sizes) < 1:
            raise ShapeError(f"{self.name}: padding {self.padding} crops away the whole output of input "
                             f"shape {tuple(input_shape)}")
        return n, sizes[0], sizes[1], self.out_channels

    def _check_rank(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 4:
            raise ShapeError(f"{self.name} expects NHWC input (N, H, W, C), got shape {tuple(shape)}")

    def _col2im_geometry(self, out_shape: Sequence[int]) -> tuple[tuple[int, ...], F.Padding2D, F.Pair]:
        """Where :func:`~nnframe.functional.col2im` writes: ``(core shape, its padding, zero rows/columns after)``.

        The scattered plane is ``(H - 1) SH + DH (KH - 1) + 1`` rows high; the output crops
        ``PH`` rows above and keeps ``PH - output_padding`` below, or, where ``output_padding``
        exceeds ``PH`` (possible when the dilation exceeds the stride), the whole plane plus
        ``output_padding - PH`` rows of zeros (bias only). Likewise the columns.
        """
        extra = tuple(max(op - p, 0) for op, p in zip(self.output_padding, self.padding, strict=True))
        after = tuple(max(p - op, 0) for op, p in zip(self.output_padding, self.padding, strict=True))
        n, oh, ow, c = out_shape
        core = (n, oh - extra[0], ow - extra[1], c)
        return core, ((self.padding[0], after[0]), (self.padding[1], after[1])), extra

    def _grouped(self, x2: Array, w: Array) -> tuple[Array, Array]:
        """Per-group views: ``x2`` ``(M, C_in)`` -> ``(G, M, C_in/G)``; ``w`` -> ``(G, KH*KW*C_out/G, C_in/G)``."""
        g, cig = self.groups, x2.shape[1] // self.groups
        kh, kw, cog, _ = w.shape
        x_g = x2.reshape(-1, g, cig).transpose(1, 0, 2)  # (G, M, C_in/G)
        w_g = w.reshape(kh * kw * cog, g, cig).transpose(1, 0, 2)  # (G, KH*KW*Co_g, C_in/G)
        return x_g, w_g

    def forward(self, inputs: Array) -> Array:
        self._check_rank(inputs.shape)
        if not self.is_init:
            self.build(inputs.shape)
            self._init_params()
        out_shape = self.compute_output_shape(inputs.shape)
        self._check_dtype(inputs)
        w = self.params["w"]
        core, padding, extra = self._col2im_geometry(out_shape)
        kh, kw, cog, cin = w.shape
        x2 = inputs.reshape(-1, cin)  # (M_in, C_in)
        if self.groups == 1:
            cols = (w.reshape(kh * kw * cog, cin) @ x2.T).T  # (M_in, KH*KW*C_out), Fortran order
        else:
            x_g, w_g = self._grouped(x2, w)  # (G, M_in, C_in/G), (G, KH*KW*Co_g, C_in/G)
            cols_g = xp_matmul_t(x_g, w_g)  # (G, M_in, KH*KW*Co_g)
            m = x2.shape[0]
            cols = cols_g.reshape(self.groups, m, kh * kw, cog).transpose(1, 2, 0, 3).reshape(m, -1)  # (M_in, K)
        out = F.col2im(cols, core, self.kernel_size, self.stride, self.dilation, padding)
        if any(extra):  # output_padding beyond the scattered plane: zero rows/columns
            out = F.pad2d(out, ((0, extra[0]), (0, extra[1])))
        if self.bias:
            add_channel_bias(out, self.params["b"])
        self.ctx = {"x2": x2, "x_shape": inputs.shape, "padding": padding, "core": core}
        return out

    def backward(self, grad: Array) -> Array | None:
        xp = backend.xp()
        w = self.params["w"]
        kh, kw, cog, cin = w.shape
        _, ch, cw, _ = self.ctx["core"]  # output_padding rows beyond the plane got no input: no gradient
        gcols = F.im2col(grad[:, :ch, :cw], self.kernel_size, self.stride, self.dilation,
                         self.ctx["padding"])  # (M_in, KH*KW*C_out)
        if self.bias:
            F.channel_sums(grad, out=self._grad_buffer("b"))
        if self.groups == 1:
            xp.matmul(gcols.T, self.ctx["x2"], out=self._grad_buffer("w").reshape(kh * kw * cog, cin))
            if not self.requires_input_grad:
                return None
            return (gcols @ w.reshape(kh * kw * cog, cin)).reshape(self.ctx["x_shape"])
        x_g, w_g = self._grouped(self.ctx["x2"], w)
        m, g = gcols.shape[0], self.groups
        gcols_g = gcols.reshape(m, kh * kw, g, cog).transpose(2, 0, 1, 3).reshape(g, m, kh * kw * cog)  # (G, M, K_g)
        gw = self._grad_buffer("w").reshape(kh * kw * cog, g, cin // g)  # a view of the buffer
        gw[...] = xp.matmul(gcols_g.transpose(0, 2, 1), x_g).transpose(1, 0, 2)  # (K_g, G, C_in/G)
        if not self.requires_input_grad:
            return None
        dx_g = xp.matmul(gcols_g, w_g)  # (G, M, C_in/G)
        return xp.ascontiguousarray(dx_g.transpose(1, 0, 2)).reshape(self.ctx["x_shape"])

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "output_padding": list(self.output_padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
            "bias": self.bias,
            "w_init": init_mod.to_config(self.initializers["w"]),
        }
        if self.bias:
            config["b_init"] = init_mod.to_config(self.initializers["b"])
        return {**config, **super().get_config()}
