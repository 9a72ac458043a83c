"""Layers that only change the shape of their input."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nnframe import functional as F
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer


class Reshape(Layer):
    """Reshape every sample to ``shape`` (the batch axis is kept; one entry may be -1).

    Shapes: input ``(N, *in_shape)``, output ``(N, *shape)``.
    """

    def __init__(self, shape: Sequence[int], name: str | None = None) -> None:
        super().__init__(name)
        shape = tuple(int(s) for s in shape)
        if sum(s == -1 for s in shape) > 1 or any(s < -1 or s == 0 for s in shape):
            raise ValueError(
                f"Reshape: shape must hold positive sizes and at most one -1, got {shape}"
            )
        self.shape = shape

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        size, known = math.prod(input_shape[1:]), math.prod(s for s in self.shape if s != -1)
        if (size % known if -1 in self.shape else size != known):
            raise self._error(input_shape)
        return (input_shape[0], *(size // known if s == -1 else s for s in self.shape))

    def _error(self, input_shape: tuple[int, ...]) -> ShapeError:
        return ShapeError(f"Reshape cannot reshape samples of shape {tuple(input_shape[1:])} to {self.shape}")

    def forward(self, inputs: Array) -> Array:
        self.ctx = {"in_shape": inputs.shape}
        try:
            return inputs.reshape((inputs.shape[0], *self.shape))
        except ValueError:
            raise self._error(inputs.shape) from None

    def backward(self, grad: Array) -> Array:
        return grad.reshape(self.ctx["in_shape"])

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), **super().get_config()}


class Flatten(Layer):
    """Flatten every sample: ``(N, d1, d2, ...) -> (N, d1 * d2 * ...)``."""

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], math.prod(input_shape[1:]))

    def forward(self, inputs: Array) -> Array:
        self.ctx = {"in_shape": inputs.shape}
        return inputs.reshape(inputs.shape[0], -1)  # (N, D)

    def backward(self, grad: Array) -> Array:
        return grad.reshape(self.ctx["in_shape"])


class ZeroPad2D(Layer):
    """Pad NHWC images with zeros on the H and W axes.

    Args:
        padding: an int (all four sides) or ``(left, right, top, bottom)``, as in
            PyTorch's ``ZeroPad2d``; non-negative.

    Shapes: input ``(N, H, W, C)``, output ``(N, top + H + bottom, left + W + right, C)``.
    """

    def __init__(self, padding: int | Sequence[int], name: str | None = None) -> None:
        super().__init__(name)
        sides = (padding,) * 4 if isinstance(padding, int) and not isinstance(padding, bool) else padding
        try:
            sides = tuple(sides)
        except TypeError:
            sides = ()
        if len(sides) != 4 or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in sides):
            raise ValueError(
                f"ZeroPad2D: padding must be an int >= 0 or (left, right, top, bottom), got {padding!r}"
            )
        self.padding = sides

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self._check_input_shape(input_shape)
        n, h, w, c = input_shape
        left, right, top, bottom = self.padding
        return (n, top + h + bottom, left + w + right, c)

    def _check_input_shape(self, shape: tuple[int, ...]) -> None:
        if len(shape) != 4:
            raise ShapeError(f"{self.name} expects NHWC input (N, H, W, C), got shape {tuple(shape)}")

    def forward(self, inputs: Array) -> Array:
        self._check_input_shape(inputs.shape)
        left, right, top, bottom = self.padding
        self.ctx = {"in_shape": inputs.shape}
        return F.pad2d(inputs, ((top, bottom), (left, right)))  # (N, H + top + bottom, W + left + right, C)

    def backward(self, grad: Array) -> Array:
        left, _, top, _ = self.padding
        _, h, w, _ = self.ctx["in_shape"]
        return grad[:, top : top + h, left : left + w, :]

    def get_config(self) -> dict[str, Any]:
        return {"padding": list(self.padding), **super().get_config()}
