"""Token embeddings and the mask of padded steps.

``Embedding`` maps integer ids to rows of a learned table; ``Masking`` marks the steps of
a right-padded float sequence. Either can start the mask route (see
:func:`~nnframe.layer.base.forward_with_mask`) that tells a recurrent layer later in the
net which steps are padding.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nnframe import backend
from nnframe import initializer as init_mod
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


class Embedding(Layer):
    """A lookup table: ``y[n, ...] = weight[ids[n, ...]]`` (PyTorch's ``nn.Embedding``).

    The gradient of a row is the sum of the output gradients of every position holding
    its id (``np.add.at``: with NumPy 2 it was as fast as or faster than sorting the ids
    and ``np.add.reduceat``, or a one-hot product, at 100 to 50,000 rows).

    Args:
        num_embeddings: vocabulary size ``V``; valid ids are ``0 .. V-1``.
        dim: embedding width ``E``.
        padding_idx: an id whose row starts at zero and gets no gradient (PyTorch's
            convention; negative values count from the end).
        mask_padding: also mark the positions that hold ``padding_idx`` as padding for
            the layers after it (Keras's ``mask_zero``): a recurrent layer then skips those
            steps. Needs ``padding_idx``.
        w_init: initializer of the table (default ``Normal(0, 1)``, as PyTorch).

    Shapes:
        input ``(N, ...)`` integer ids; output ``(N, ..., E)``; ``params["weight"]``: ``(V, E)``.
    """

    accepts_integer_input: ClassVar[bool] = True

    def __init__(
        self,
        num_embeddings: int,
        dim: int,
        padding_idx: int | None = None,
        mask_padding: bool = False,
        w_init: init_mod.Initializer | str | dict | None = None,
        name: str | None = None,
    ) -> None:
        self.num_embeddings = _positive_int("Embedding", "num_embeddings", num_embeddings)
        self.dim = _positive_int("Embedding", "dim", dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
                    or not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be an integer in [{-self.num_embeddings}, "
                                 f"{self.num_embeddings}) or None, got {padding_idx!r}")
            padding_idx = int(padding_idx) % self.num_embeddings
        if mask_padding and padding_idx is None:
            raise ValueError("Embedding: mask_padding=True needs a padding_idx (the id that marks padding)")
        self.padding_idx = padding_idx
        self.mask_padding = bool(mask_padding)
        super().__init__(name)
        self.initializers = {"weight": init_mod.get(w_init or init_mod.Normal(0.0, 1.0))}
        self.shapes = {"weight": [self.num_embeddings, self.dim]}

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("weight",)

    def _init_params(self, dtype: Any = None) -> None:
        super()._init_params(dtype)
        if self.padding_idx is not None:
            self.params["weight"][self.padding_idx] = 0.0

    def _check_ids(self, ids: Array) -> None:
        xp = backend.xp()
        if ids.dtype.kind not in "iu":
            raise ShapeError(f"{self.name} expects integer ids in [0, {self.num_embeddings}), got input of dtype "
                             f"{ids.dtype}")
        if ids.ndim < 1:
            raise ShapeError(f"{self.name} expects ids of shape (N, ...), got a scalar")
        if ids.size == 0:
            return
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= self.num_embeddings:
            bad = low if low < 0 else high
            where = tuple(int(i) for i in xp.argwhere(ids == bad)[0])
            raise ShapeError(f"{self.name}: id {bad} at position {where} is out of range; valid ids are "
                             f"0 .. {self.num_embeddings - 1} (num_embeddings={self.num_embeddings})")

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) < 1:
            raise ShapeError(f"{self.name} expects ids of shape (N, ...), got a scalar")
        return (*input_shape, self.dim)

    def forward(self, inputs: Array) -> Array:
        self._check_ids(inputs)
        if not self.is_init:
            self._init_params()
        self.ctx = {"ids": inputs}
        return self.params["weight"][inputs]  # (N, ..., E)

    def backward(self, grad: Array) -> None:
        xp = backend.xp()
        ids = self.ctx["ids"]
        dw = self.grad_buffer("weight")
        dw[...] = 0.0
        xp.add.at(dw, ids.reshape(-1), grad.reshape(-1, self.dim))  # repeated ids accumulate
        if self.padding_idx is not None:
            dw[self.padding_idx] = 0.0
        return None  # integer ids have no gradient

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array | None:
        """``ids != padding_idx`` (``(N, T)``) with ``mask_padding``, else ``None``."""
        return inputs != self.padding_idx if self.mask_padding else None

    def get_config(self) -> dict[str, Any]:
        return {"num_embeddings": self.num_embeddings, "dim": self.dim, "padding_idx": self.padding_idx,
                "mask_padding": self.mask_padding, "w_init": init_mod.to_config(self.initializers["weight"]),
                **super().get_config()}


class Masking(Layer):
    """Mark the steps of a right-padded float sequence whose features all equal ``mask_value``.

    The output is the input with those steps zeroed (so a padded step contributes nothing
    even to a layer that ignores the mask); the mask (``(N, T)``, ``True`` = a real step)
    goes to the layers after it, where a recurrent layer neither updates its state on the
    padded steps nor sends them gradient (Keras's ``Masking``).

    Args:
        mask_value: the value that fills a padded step.

    Shapes: input and output ``(N, T, C)``.
    """

    def __init__(self, mask_value: float = 0.0, name: str | None = None) -> None:
        super().__init__(name)
        self.mask_value = float(mask_value)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) < 3:
            raise ShapeError(f"{self.name} expects sequences (N, T, C), got shape {tuple(input_shape)}")
        return tuple(input_shape)

    def _mask(self, inputs: Array) -> Array:
        self.compute_output_shape(inputs.shape)
        return (inputs != self.mask_value).any(axis=-1)  # (N, T)

    def forward(self, inputs: Array) -> Array:
        keep = self._mask(inputs)[..., None]  # (N, T, 1)
        self.ctx = {"keep": keep}
        return inputs * keep

    def backward(self, grad: Array) -> Array:
        return grad * self.ctx["keep"]

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array:
        """``(N, T)``: ``True`` where some feature differs from ``mask_value``."""
        return self.ctx["keep"][..., 0] if "keep" in self.ctx else self._mask(inputs)

    def get_config(self) -> dict[str, Any]:
        return {"mask_value": self.mask_value, **super().get_config()}


def first_mask_read(layers: list[Layer]) -> tuple[int, int] | None:
    """Where, in a sequence of layers, a mask of padded steps is first read: ``(maker, reader)``
    indices, or ``None`` when no layer reads one.

    Makers are :class:`Masking` and an :class:`Embedding` with ``mask_padding``; the mask passes
    through layers with ``propagates_mask`` and stops at any other; a layer with
    ``accepts_mask`` that it reaches reads it. Formats that carry no mask (ONNX) need this:
    such a layer computes something else without it.
    """
    maker = None
    for index, lay in enumerate(layers):
        if maker is not None and lay.accepts_mask:
            return maker, index
        if isinstance(lay, Masking) or getattr(lay, "mask_padding", False):
            maker = index
        elif not lay.propagates_mask:
            maker = None
    return None

