"""Mini-batches: an epoch-by-epoch iterator that shuffles from a generator.

Each batch is gathered by indexing the input with that batch's indices only, so an
epoch never copies the whole of ``x`` (``x[perm]``): a ``numpy.memmap`` of a data set
larger than memory works, and memory use stays at one batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from nnframe import backend
from nnframe.random import get_rng


class BatchIterator:
    """Mini-batches of ``(x, y)`` over one epoch per ``iter()`` call.

    Iterating twice gives two epochs; with ``shuffle`` each epoch draws a fresh
    permutation from the same generator, so the same seed gives the same sequence of
    epochs, bit for bit.

    Args:
        x: inputs, any array-like with ``len`` and fancy indexing along axis 0
            (``ndarray``, ``memmap``). Shape ``(N, ...)``. A list of such arrays (a graph
            with several inputs) gives a list per batch.
        y: targets of shape ``(N, ...)`` (a list of them for several outputs) or ``None``.
        batch_size: samples per batch (the last batch may be smaller).
        shuffle: visit samples in a random order, a new one each epoch.
        drop_last: skip the last batch when it has fewer than ``batch_size`` samples.
        rng: an int seed or a ``numpy.random.Generator`` for the shuffling (``None``:
            a child of the global generator, see :func:`nnframe.set_seed`). Only drawn
            from when ``shuffle`` is set.
        dtype: the dtype of the ``x`` batches (default: the framework dtype,
            :func:`nnframe.backend.get_default_dtype`). Values are cast, never scaled:
            uint8 pixels stay 0..255 (see :func:`nnframe.data.scale_pixels`). Pass
            ``dtype=x.dtype`` to keep, for example, integer token ids. For a list ``x``, a
            list of dtypes gives each input its own.

    Shapes:
        Each item is ``(xb, yb)`` with ``xb`` of shape ``(B, ...)`` in ``dtype`` and ``yb``
        of shape ``(B, ...)`` in ``y``'s own dtype (labels are left as they are), or just
        ``xb`` when ``y`` is ``None``. Batches are arrays of the backend's array module;
        without shuffling or a cast, a batch may be a view of ``x`` (treat it as read-only).
    """

    def __init__(self, x: Any, y: Any = None, batch_size: int = 128, shuffle: bool = False,
                 drop_last: bool = False, rng: int | np.random.Generator | None = None,
                 dtype: Any = None) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        x = _as_batchable(x, "x")
        n = num_samples(x)
        if y is not None:
            y = _as_batchable(y, "y")
            if num_samples(y) != n:
                raise ValueError(f"x and y must have the same length, got {n} and {num_samples(y)}")
        self.x = x
        self.y = y
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if isinstance(dtype, (list, tuple)):
            if not isinstance(x, list) or len(dtype) != len(x):
                raise ValueError(f"a list of dtypes needs x as a list of as many arrays, got {len(dtype)} dtypes")
            self.dtype: Any = [backend.get_default_dtype() if d is None else np.dtype(d) for d in dtype]
        else:
            self.dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
        self._rng = get_rng(rng) if self.shuffle else None

    @property
    def num_samples(self) -> int:
        """``N``: the number of samples in ``x``."""
        return num_samples(self.x)

    def __len__(self) -> int:
        """Number of batches in one epoch."""
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[Any]:
        """One epoch of batches (a new permutation each call when shuffling)."""
        n = self.num_samples
        order = self._rng.permutation(n) if self._rng is not None else None
        for b in range(len(self)):
            start = b * self.batch_size
            stop = min(start + self.batch_size, n)
            index = slice(start, stop) if order is None else order[start:stop]
            yield self._gather(index)

    def _gather(self, index: slice | np.ndarray) -> Any:
        xp = backend.xp()
        if isinstance(self.x, list):  # several inputs: each in its own dtype (a list) or the one dtype
            dtypes = self.dtype if isinstance(self.dtype, list) else [self.dtype] * len(self.x)
            xb = [xp.asarray(part[index], dtype=dtype) for part, dtype in zip(self.x, dtypes, strict=True)]
        else:
            xb = xp.asarray(self.x[index], dtype=self.dtype)  # reads only this batch's rows
        if self.y is None:
            return xb
        if isinstance(self.y, list):
            return xb, [xp.asarray(part[index]) for part in self.y]
        return xb, xp.asarray(self.y[index])

    def __repr__(self) -> str:
        dtype = [d.name for d in self.dtype] if isinstance(self.dtype, list) else self.dtype.name
        return (f"BatchIterator(num_samples={self.num_samples}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, drop_last={self.drop_last}, dtype={dtype})")


def is_multi(value: Any) -> bool:
    """Whether ``value`` is a list/tuple of arrays (one per input or output of a graph), not an array-like."""
    return (isinstance(value, (list, tuple)) and len(value) > 0
            and all(getattr(v, "ndim", 0) >= 1 for v in value))


def num_samples(value: Any) -> int:
    """``N`` of an array, or of a list of arrays (one per input or output)."""
    return len(value[0]) if isinstance(value, list) else len(value)


def _as_batchable(value: Any, name: str) -> Any:
    """An array with a batch axis, or a list of them of equal length (several inputs/outputs)."""
    if is_multi(value):
        parts = list(value)
        lengths = [len(p) for p in parts]
        if len(set(lengths)) > 1:
            raise ValueError(f"{name}: the arrays of a list (one per input/output) must have the same "
                             f"length, got {lengths}")
        return parts
    if not hasattr(value, "shape") or len(value.shape) == 0:
        value = np.asarray(value)
        if value.ndim == 0:
            raise ValueError(f"{name} must have a batch axis: got a 0-d value")
    return value


def batches(x: Any, y: Any = None, batch_size: int = 128, shuffle: bool = False,
            drop_last: bool = False, rng: int | np.random.Generator | None = None,
            dtype: Any = None) -> BatchIterator:
    """Mini-batches of ``(x, y)``: ``for xb, yb in batches(x, y, 128, shuffle=True, rng=0)``.

    Args:
        x: inputs of shape ``(N, ...)``, an ``ndarray`` or a ``memmap``.
        y: targets of shape ``(N, ...)``, or ``None`` to get ``xb`` alone.
        batch_size: samples per batch.
        shuffle: random order, a new permutation per epoch (per ``iter()``).
        drop_last: skip a last, smaller batch.
        rng: int seed or ``numpy.random.Generator`` for the shuffling.
        dtype: dtype of the ``x`` batches (default: the framework dtype); cast, not scaled.

    Returns:
        A :class:`BatchIterator`: ``len()`` is the number of batches per epoch, and each
        ``for`` loop over it is one epoch.

    Shapes:
        ``xb``: ``(B, ...)`` in ``dtype``; ``yb``: ``(B, ...)`` in ``y``'s dtype; ``B <= batch_size``.
    """
    return BatchIterator(x, y, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                         rng=rng, dtype=dtype)
