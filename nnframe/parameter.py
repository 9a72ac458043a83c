"""Flat parameter storage: many named arrays as views into one contiguous buffer.

A :class:`ParamBuffer` is allocated once; each named entry (``"3.w"``: layer 3's
``w``) is a reshaped view into its flat array. Parameters, gradients, optimizer
steps and optimizer state all share one :class:`ParamLayout`, so an optimizer
updates every parameter with a few whole-buffer operations and ``apply_grad`` is a
single in-place add (tinygrad's fused-optimizer idea).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnframe import backend
from nnframe.backend import Array


@dataclass(frozen=True)
class ParamLayout:
    """Names, shapes and offsets of parameters packed into one flat buffer.

    Attributes:
        names: dotted names, ``"<layer index>.<param name>"``, in packing order.
        shapes: the shape of each entry.
        dtype: the one float dtype of every entry.
        num_layers: how many layers the names index into (layers without
            parameters included), for :meth:`ParamBuffer.per_layer`.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtype: np.dtype
    num_layers: int

    @property
    def sizes(self) -> tuple[int, ...]:
        """Number of elements of each entry."""
        return tuple(math.prod(s) for s in self.shapes)

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each entry in the flat buffer."""
        starts, total = [], 0
        for size in self.sizes:
            starts.append(total)
            total += size
        return tuple(starts)

    @property
    def size(self) -> int:
        """Total number of elements."""
        return sum(self.sizes)

    @classmethod
    def from_layers(cls, param_dicts: Sequence[Mapping[str, Array]]) -> ParamLayout:
        """Build the layout of a list of per-layer ``{name: array}`` dicts (the seed's form).

        Raises:
            ValueError: if the arrays do not all share one dtype, or it is not a float dtype.
        """
        names, shapes, dtypes = [], [], set()
        for index, params in enumerate(param_dicts):
            for key, value in params.items():
                if value is None:
                    continue
                names.append(f"{index}.{key}")
                shapes.append(tuple(int(s) for s in value.shape))
                dtypes.add(np.dtype(value.dtype))
        if len(dtypes) > 1:
            found = ", ".join(sorted(str(d) for d in dtypes))
            raise ValueError(f"all parameters must share one dtype, found {found}")
        dtype = dtypes.pop() if dtypes else backend.get_default_dtype()
        if np.dtype(dtype).kind != "f":
            raise ValueError(f"parameters must be floating point (float32 or float64), got dtype {dtype}")
        return cls(tuple(names), tuple(shapes), dtype, len(param_dicts))

    @classmethod
    def from_named(cls, named: Mapping[str, Array], num_layers: int = 0) -> ParamLayout:
        """Build the layout of ``{dotted name: array}`` in the mapping's order (a container's walk).

        Args:
            named: the arrays by dotted name (``"2.body.0.w"``).
            num_layers: how many top-level layers the names index into (for :meth:`ParamBuffer.per_layer`).

        Raises:
            ValueError: if the arrays do not all share one dtype, or it is not a float dtype.
        """
        dtypes = {np.dtype(v.dtype) for v in named.values()}
        if len(dtypes) > 1:
            found = ", ".join(sorted(str(d) for d in dtypes))
            raise ValueError(f"all parameters must share one dtype, found {found}")
        dtype = dtypes.pop() if dtypes else backend.get_default_dtype()
        if np.dtype(dtype).kind != "f":
            raise ValueError(f"parameters must be floating point (float32 or float64), got dtype {dtype}")
        shapes = tuple(tuple(int(s) for s in v.shape) for v in named.values())
        return cls(tuple(named), shapes, dtype, num_layers)


class ParamBuffer(Mapping[str, Array]):
    """A flat array with named, shaped views; read-only as a mapping, writable in place.

    ``buffer["0.w"]`` is a view: writing into it (``buffer["0.w"][...] = x``)
    writes the flat array. ``buffer.flat`` is the whole contiguous vector.
    """

    def __init__(self, layout: ParamLayout, flat: Array | None = None) -> None:
        xp = backend.xp()
        if flat is None:
            flat = xp.zeros(layout.size, dtype=layout.dtype)
        elif flat.shape != (layout.size,) or flat.dtype != layout.dtype:
            raise ValueError(
                f"flat buffer must have shape ({layout.size},) and dtype {layout.dtype}, "
                f"got {flat.shape} {flat.dtype}"
            )
        self.layout = layout
        self.flat = flat
        self._views = {
            name: flat[start : start + size].reshape(shape)
            for name, shape, start, size in zip(
                layout.names, layout.shapes, layout.offsets, layout.sizes, strict=True
            )
        }

    def __getitem__(self, name: str) -> Array:
        return self._views[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._views)

    def __len__(self) -> int:
        return len(self._views)

    def per_layer(self) -> list[dict[str, Array]]:
        """The views grouped as the seed's list of per-layer dicts (empty for no parameters)."""
        groups: list[dict[str, Array]] = [{} for _ in range(self.layout.num_layers)]
        for name, view in self._views.items():
            index, key = name.split(".", 1)
            if not index.isdigit() or int(index) >= len(groups):
                raise ValueError(f"per_layer: {name!r} does not start with a layer index below "
                                 f"{len(groups)} (only a Net's names do)")
            groups[int(index)][key] = view
        return groups

    @classmethod
    def from_layers(cls, param_dicts: Sequence[Mapping[str, Array]]) -> ParamBuffer:
        """Copy a list of per-layer dicts into a new buffer (one concatenation)."""
        layout = ParamLayout.from_layers(param_dicts)
        buffer = cls(layout)
        for index, params in enumerate(param_dicts):
            for key, value in params.items():
                if value is not None:
                    buffer[f"{index}.{key}"][...] = value
        return buffer

    def __repr__(self) -> str:
        return f"ParamBuffer({len(self)} entries, {self.layout.size} values, {self.layout.dtype})"


def as_buffer(values: ParamBuffer | Sequence[Mapping[str, Array]] | Any) -> ParamBuffer:
    """Return ``values`` as a :class:`ParamBuffer`, copying a seed-style list of dicts.

    Raises:
        TypeError: for anything else.
    """
    if isinstance(values, ParamBuffer):
        return values
    if isinstance(values, (list, tuple)) and all(isinstance(v, Mapping) for v in values):
        return ParamBuffer.from_layers(values)
    raise TypeError(
        f"expected a ParamBuffer or a list of per-layer dicts, got {type(values).__name__}"
    )
