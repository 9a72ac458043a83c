"""Position information for sequences ``(N, T, C)``: a learned table or the fixed sinusoids.

Both add a ``(T, C)`` table to their input, so they go right after an
:class:`~nnframe.layer.Embedding` (or a patch projection) in a net.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nnframe import backend
from nnframe import initializer as init_mod
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer


def _check_max_len(owner: str, max_len: Any) -> int:
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"{owner}: max_len must be a positive integer, got {max_len!r}")
    return int(max_len)


def _check_sequence(layer: Layer, inputs: Array, max_len: int | None) -> None:
    if getattr(inputs, "ndim", None) != 3:
        raise ShapeError(f"{layer.name} expects input of shape (N, T, C), got "
                         f"{getattr(inputs, 'shape', type(inputs).__name__)}")
    _check_sequence_shape(layer, tuple(inputs.shape), max_len)


def _check_sequence_shape(layer: Layer, shape: tuple[int, ...], max_len: int | None) -> None:
    if len(shape) != 3:
        raise ShapeError(f"{layer.name} expects input of shape (N, T, C), got {shape}")
    if max_len is not None and shape[1] > max_len:
        raise ShapeError(f"{layer.name} holds positions for sequences up to max_len={max_len}, got "
                         f"input of shape {shape} ({shape[1]} steps)")


class PositionalEmbedding(Layer):
    """A learned position table added to the input: ``y[n, t] = x[n, t] + table[t]``.

    A mask of padded steps (see :func:`~nnframe.layer.base.forward_with_mask`) passes through.

    Args:
        max_len: the longest sequence it accepts (rows of the table).
        init: initializer of the table (default ``Normal(0, 0.02)``, as GPT-2).

    Shapes: input and output ``(N, T, C)`` with ``T <= max_len``; ``params["table"]``:
    ``(max_len, C)``, ``C`` inferred on first forward.
    """

    propagates_mask = True

    def __init__(self, max_len: int, init: init_mod.Initializer | str | dict | None = None,
                 name: str | None = None) -> None:
        self.max_len = _check_max_len(type(self).__name__, max_len)
        super().__init__(name)
        self.initializers = {"table": init_mod.get(init or init_mod.Normal(0.0, 0.02))}
        self.shapes = {"table": [self.max_len, None]}

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("table",)

    def build(self, input_shape: tuple[int, ...]) -> None:
        _check_sequence_shape(self, tuple(input_shape), self.max_len)
        self.shapes = {"table": (self.max_len, input_shape[2])}

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        _check_sequence_shape(self, tuple(input_shape), self.max_len)
        channels = self.shapes["table"][1]
        if channels is not None and input_shape[2] != channels:
            raise ShapeError(f"{self.name} was built for {channels} channels, got input of shape "
                             f"{tuple(input_shape)}")
        return tuple(input_shape)

    def forward(self, inputs: Array) -> Array:
        _check_sequence(self, inputs, self.max_len)
        if not self.is_init:
            self.build(inputs.shape)
            self._init_params()
        table = self.params["table"]
        if inputs.shape[2] != table.shape[1]:
            raise ShapeError(f"{self.name} was built for {table.shape[1]} channels, got input of shape "
                             f"{tuple(inputs.shape)}")
        self._check_dtype(inputs)
        self.ctx = {"steps": inputs.shape[1]}
        return inputs + table[: inputs.shape[1]]

    def backward(self, grad: Array) -> Array:
        steps = self.ctx["steps"]
        d_table = self._grad_buffer("table")
        d_table[steps:] = 0.0
        grad.sum(axis=0, out=d_table[:steps])  # (T, C): summed over the batch
        return grad

    def get_config(self) -> dict[str, Any]:
        return {"max_len": self.max_len, "init": init_mod.to_config(self.initializers["table"]),
                **super().get_config()}


def sinusoid_table(steps: int, channels: int, base: float = 10000.0) -> np.ndarray:
    """The ``(steps, channels)`` float64 table of Vaswani et al. (2017, section 3.5).

    ``P[t, 2i] = sin(t / base^(2i/C))`` and ``P[t, 2i+1] = cos(t / base^(2i/C))``.
    """
    position = np.arange(steps, dtype=np.float64)[:, None]  # (T, 1)
    rates = np.exp(np.arange(0, channels, 2, dtype=np.float64) * (-math.log(base) / channels))  # (ceil(C/2),)
    angles = position * rates  # (T, ceil(C/2))
    table = np.empty((steps, channels))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, : channels // 2])
    return table


class SinusoidalPositionalEncoding(Layer):
    """The fixed sinusoidal encoding added to the input (no parameters): ``y = x + P[:T]``.

    ``P`` is :func:`sinusoid_table`; it is computed once per ``(T, C)`` and dtype. A mask
    of padded steps passes through.

    Args:
        base: the wavelength base (10000 in the paper).
        max_len: optional longest sequence accepted (``None``: any length).

    Shapes: input and output ``(N, T, C)``.
    """

    propagates_mask = True

    def __init__(self, base: float = 10000.0, max_len: int | None = None, name: str | None = None) -> None:
        owner = type(self).__name__
        if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 1.0:
            raise ValueError(f"{owner}: base must be a number > 1, got {base!r}")
        self.base = float(base)
        self.max_len = None if max_len is None else _check_max_len(owner, max_len)
        super().__init__(name)
        self._table: Array | None = None

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        _check_sequence_shape(self, tuple(input_shape), self.max_len)
        return tuple(input_shape)

    def forward(self, inputs: Array) -> Array:
        _check_sequence(self, inputs, self.max_len)
        steps, channels = inputs.shape[1], inputs.shape[2]
        table = self._table
        if table is None or table.shape != (steps, channels) or table.dtype != inputs.dtype:
            table = backend.xp().asarray(sinusoid_table(steps, channels, self.base).astype(inputs.dtype))
            self._table = table
        return inputs + table

    def backward(self, grad: Array) -> Array:
        return grad

    def get_config(self) -> dict[str, Any]:
        return {"base": self.base, "max_len": self.max_len, **super().get_config()}
