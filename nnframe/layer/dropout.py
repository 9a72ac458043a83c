"""Dropout layers: inverted, seeded, identity in evaluation mode."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nnframe import backend
from nnframe import random as nn_random
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer, check_rate


class Dropout(Layer):
    """Zero each element with probability ``rate`` and scale the rest by ``1 / (1 - rate)``.

    In evaluation mode (``is_training == False``) the layer is the identity.

    Args:
        rate: drop probability in ``[0, 1)``.
        rng: seed or generator for the masks (default: a child of the global generator).
    """

    propagates_mask: ClassVar[bool] = True  # acts on the last axis only

    def __init__(
        self,
        rate: float = 0.5,
        rng: int | np.random.Generator | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        self.rate = check_rate(type(self).__name__, "rate", rate)
        self.rng = nn_random.get_rng(rng)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self._mask_shape_of(tuple(input_shape))
        return tuple(input_shape)

    def _mask_shape_of(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return input_shape

    def _mask_shape(self, inputs: Array) -> tuple[int, ...]:
        return self._mask_shape_of(tuple(inputs.shape))

    def forward(self, inputs: Array) -> Array:
        if not self.is_training or self.rate == 0.0:
            self.ctx = {"mask": None}
            return inputs
        keep = 1.0 - self.rate
        draws = self.rng.random(self._mask_shape(inputs), dtype=np.float32)
        mask = backend.xp().asarray((draws < keep).astype(inputs.dtype) / inputs.dtype.type(keep))
        self.ctx = {"mask": mask}
        return inputs * mask

    def backward(self, grad: Array) -> Array:
        mask = self.ctx["mask"]
        return grad if mask is None else grad * mask

    def get_config(self) -> dict[str, Any]:
        return {"rate": self.rate, **super().get_config()}


class Dropout2D(Dropout):
    """Channel dropout for NHWC images: zero whole feature maps with probability ``rate``.

    One keep/drop draw per sample and channel, shared by every pixel (Tompson et al.,
    2015, https://arxiv.org/abs/1411.4280); kept channels are scaled by ``1 / (1 - rate)``.
    The identity in evaluation mode.

    Args:
        rate: drop probability in ``[0, 1)``.
        rng: seed or generator for the masks.

    Shapes: input and output ``(N, H, W, C)``; the mask is ``(N, 1, 1, C)``.
    """

    def _mask_shape_of(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 4:
            raise ShapeError(f"{self.name} expects NHWC input (N, H, W, C), got shape {input_shape}")
        return (input_shape[0], 1, 1, input_shape[3])
