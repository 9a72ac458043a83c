"""Walking a fixed run of ONNX nodes: the shared tool of the importers that recognise one nnframe
layer spelled as several nodes (self-attention, Masking).

A :class:`Cursor` steps through ``nodes`` from a start, taking the next node only if it is the
expected operator reading the expected values (and, where asked, one constant after them);
:func:`closed` says whether every value a run computes but its last is read only inside the
run, so that folding the run into one layer loses nothing another node reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper


class Cursor:
    """Walks ``nodes`` from ``start``, checking each one's operator and inputs."""

    def __init__(self, nodes: Sequence[onnx.NodeProto], start: int, constants: Mapping[str, np.ndarray]) -> None:
        self.nodes, self.at, self.constants = nodes, start, constants

    def take(self, op: str, data: Sequence[str], constant: bool = False) -> Any:
        """The next node if it is ``op`` reading exactly ``data`` (then one constant when ``constant``); else ``None``.

        Returns the node, or ``(node, constant value)`` when ``constant``.
        """
        if self.at >= len(self.nodes):
            return None
        node = self.nodes[self.at]
        inputs = [i for i in node.input if i]
        if node.op_type != op or inputs[: len(data)] != list(data) or len(node.output) != 1:
            return None
        rest = inputs[len(data):]
        fits = len(rest) == 1 and rest[0] in self.constants if constant else not rest
        if not fits:
            return None
        self.at += 1
        return (node, np.asarray(self.constants[rest[0]])) if constant else node

    @staticmethod
    def attrs(node: onnx.NodeProto) -> dict[str, Any]:
        """The node's attributes as Python values."""
        return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def closed(nodes: Sequence[onnx.NodeProto], last: str, consumers: Mapping[str, int]) -> bool:
    """Whether every value ``nodes`` compute, except ``last``, is read only by ``nodes``
    (``consumers``: how many nodes, or graph outputs, read each value of the whole graph)."""
    inner = {o for n in nodes for o in n.output} - {last}
    reads: dict[str, int] = {}
    for n in nodes:
        for i in n.input:
            reads[i] = reads.get(i, 0) + 1
    return all(reads.get(v, 0) == consumers.get(v, 0) for v in inner)
