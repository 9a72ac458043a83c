"""Layers that only change the shape of their input."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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

    def forward(self, inputs: Array) -> Array:
        self.ctx = {"in_shape": inputs.shape}
        try:
            return inputs.reshape((inputs.shape[0], *self.shape))
        except ValueError:
            raise ShapeError(
                f"Reshape cannot reshape samples of shape {tuple(inputs.shape[1:])} "
                f"to {self.shape}"
            ) from None

    def backward(self, grad: Array) -> Array:
        return grad.reshape(self.ctx["in_shape"])

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), **super().get_config()}


class Flatten(Layer):
    """Flatten every sample: ``(N, d1, d2, ...) -> (N, d1 * d2 * ...)``."""

    def forward(self, inputs: Array) -> Array:
        self.ctx = {"in_shape": inputs.shape}
        return inputs.reshape(inputs.shape[0], -1)  # (N, D)

    def backward(self, grad: Array) -> Array:
        return grad.reshape(self.ctx["in_shape"])
