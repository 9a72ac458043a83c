"""Recognise the Masking nnframe's exporter writes, and import it as one ``Masking`` layer.

:mod:`nnframe.interop.onnx_export_seq` spells ``Masking(mask_value)`` on ``x`` of shape
``(N, T, C)`` as::

    Equal(x, mask_value) -> Not -> Cast(float) -> ReduceMax(last axis, keepdims) -> Mul(x, .)

(a step is kept when any of its features differs from ``mask_value``; the others are zeroed).
:func:`match` checks a run of nodes against that pattern and returns the mask value; anything
else is left to the other importers. The file carries the zeroing, not nnframe's mask of
padded steps: a layer after it that would read that mask (a recurrent layer) computes
something else in nnframe than in the file, so :func:`check_mask_unused` refuses such a net.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from nnframe.interop.builder import ConversionError
from nnframe.interop.onnx_pattern import Cursor, closed
from nnframe.layer.embedding import first_mask_read
from nnframe.net import Net

#: the operators of the pattern (known to the importer only inside it)
OPS = ("Equal", "Not", "Cast", "ReduceMax")
_FLOATS = (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16)


@dataclass
class Masked:
    """A recognised Masking: where the run ends and the value that marks padding."""

    end: int
    mask_value: float


def match(nodes: Sequence[onnx.NodeProto], start: int, current: str, constants: dict[str, np.ndarray],
          consumers: dict[str, int]) -> Masked | None:
    """The Masking that ``nodes[start:]`` spell on the value ``current``, or ``None``.

    Every value the run computes but its last is read only inside the run (``consumers``).
    """
    c = Cursor(nodes, start, constants)
    same = c.take("Equal", [current], constant=True)
    if same is None or same[1].size != 1:
        return None
    differs = c.take("Not", [same[0].output[0]])
    cast = differs and c.take("Cast", [differs.output[0]])
    if cast is None or c.attrs(cast).get("to") not in _FLOATS:
        return None
    reduce = c.take("ReduceMax", [cast.output[0]], constant=True) or c.take("ReduceMax", [cast.output[0]])
    if reduce is None:
        return None
    node, axes = reduce if isinstance(reduce, tuple) else (reduce, c.attrs(reduce).get("axes"))
    if axes is None or [int(a) for a in np.asarray(axes).reshape(-1)] not in ([-1], [2]) or \
            c.attrs(node).get("keepdims", 1) != 1:
        return None
    keep = node.output[0]
    zeroed = c.take("Mul", [current, keep]) or c.take("Mul", [keep, current])
    if zeroed is None or not closed(nodes[start:c.at], zeroed.output[0], consumers):
        return None
    return Masked(c.at, float(same[1].reshape(-1)[0]))


def check_mask_unused(net: Net) -> None:
    """Refuse a net where a layer after a Masking would read its mask of padded steps.

    Raises:
        ConversionError: naming the Masking layer and the layer that would read its mask.
    """
    read = first_mask_read(net.layers)  # an imported net makes masks only with Masking (no mask_padding)
    if read is not None:
        maker, reader = read
        raise ConversionError(f"ONNX import: layer {reader} ({type(net.layers[reader]).__name__}) would read the mask "
                              f"of padded steps of the Masking at layer {maker}; the file only zeroes those steps "
                              "(ONNX carries no mask), so nnframe would compute something else")
