"""ONNX -> nnframe for graphs that branch: chains of operators joined by merges become a :class:`~nnframe.graph.Graph`.

:func:`plan` cuts the ONNX graph into *units*, in the file's (topological) order:

* a **chain**: operators that each read one value (plus constants), every value but the last
  read by nothing else: what :mod:`nnframe.interop.onnx_import` turns into a
  :class:`~nnframe.net.Net` (an activation spelled as several element-wise nodes, GELU's
  ``Div, Erf, Add, Mul, Mul``, the self-attention nnframe exports
  (:mod:`nnframe.interop.onnx_import_attention`) and its Masking
  (:mod:`nnframe.interop.onnx_import_masking`) stay inside one chain);
* a **merge**: ``Add``, ``Mul``, ``Sum`` or ``Concat`` of two or more values, which becomes
  :class:`~nnframe.layer.Add`, :class:`~nnframe.layer.Multiply` or
  :class:`~nnframe.layer.Concatenate`.

A value read by several units starts a new chain in each of them. :func:`assemble` then
calls each chain's net and each merge on the symbolic tensors of their inputs, from one
:func:`~nnframe.Input`, so a residual block ``Relu(Add(Conv(Relu(Conv(x))), x))`` becomes
``ReLU()(Add()([Net([Conv2D, ReLU, Conv2D])(x), x]))``. Every value keeps the layout state
of :class:`~nnframe.interop.builder.NetBuilder` (channels-first source over a channels-last
nnframe tensor, ...), so branches of a convolutional network stay channels-last in nnframe;
a merge needs its inputs in one layout, and a ``Concat`` along ONNX's channel axis becomes
nnframe's last axis.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx

from nnframe.graph import Graph
from nnframe.interop import onnx_elementwise as elementwise
from nnframe.interop import onnx_import_attention as attention
from nnframe.interop import onnx_import_masking as masking
from nnframe.interop.builder import ConversionError, NetBuilder, State, merge_layer
from nnframe.layer.symbolic import Input

#: ONNX operators that join values, and the operation of :func:`~nnframe.interop.builder.merge_layer` for each
MERGES = {"Add": "add", "Sum": "add", "Mul": "mul", "Concat": "cat"}


@dataclass
class Chain:
    """Operators that each read the value the one before wrote (``nodes``: the ONNX nodes, in order)."""

    source: str
    nodes: list[onnx.NodeProto] = field(default_factory=list)

    @property
    def outputs(self) -> list[str]:
        """The values its last node writes (a recurrent node writes several; the next node reads one)."""
        return list(self.nodes[-1].output)


@dataclass
class Merge:
    """One ONNX node joining the values ``sources``."""

    node: onnx.NodeProto
    sources: list[str]


Unit = Chain | Merge


def plan(nodes: list[onnx.NodeProto], constants: dict[str, np.ndarray], consumers: Counter,
         skipped: set[str]) -> list[Unit]:
    """Cut ``nodes`` (topologically ordered, ``Constant`` nodes removed) into chains and merges.

    Args:
        nodes: the graph's nodes.
        constants: initializers and constant values by name.
        consumers: how many nodes (or graph outputs) read each value.
        skipped: values computed from shapes only (left out: their nodes are not units).

    Raises:
        ConversionError: for a node reading several values that is not a merge, naming it.
    """
    units: list[Unit] = []
    open_chains: dict[str, Chain] = {}  # the value a chain ends in -> the chain, while it may go on
    position = 0
    while position < len(nodes):
        node = nodes[position]
        if node.output[0] in skipped:
            position += 1
            continue
        reads = [i for i in node.input if i and i not in constants and i not in skipped]
        data = list(dict.fromkeys(reads))  # each value once
        if not reads:
            raise ConversionError(f"ONNX import: {node.op_type} node {node.name!r} reads no value of the graph, only "
                                  "constants; nnframe computes layers of the input")
        found = (attention.match(nodes, position, data[0], constants, consumers)
                 or masking.match(nodes, position, data[0], constants, consumers)) if len(data) == 1 else None
        end = found.end if found else _activation_end(nodes, position, data, constants, consumers)
        if end == 0 and len(reads) != 1:
            if node.op_type not in MERGES or len(reads) < 2 or len(reads) != len([i for i in node.input if i]):
                raise ConversionError(f"ONNX import: {node.op_type} node {node.name!r} reads {reads}; only "
                                      f"{', '.join(sorted(MERGES))} of values (no constants) may join several")
            units.append(Merge(node, reads))
            position += 1
            continue
        run = nodes[position:end] if end else [node]
        chain = open_chains.pop(data[0], None)
        if chain is None or consumers[data[0]] != sum(list(n.input).count(data[0]) for n in run):  # read elsewhere
            chain = Chain(data[0])
            units.append(chain)
        for value in chain.outputs if chain.nodes else []:
            open_chains.pop(value, None)
        chain.nodes.extend(run)
        open_chains.update(dict.fromkeys(chain.outputs, chain))
        position = end or position + 1
    return units


def _activation_end(nodes: list[onnx.NodeProto], position: int, data: list[str],
                    constants: dict[str, np.ndarray], consumers: Counter) -> int:
    """The end of an activation spelled as element-wise nodes from ``position`` (reading one value), or 0."""
    if len(data) != 1 or nodes[position].op_type not in elementwise.OPS:
        return 0
    for end in elementwise.find_region(nodes, position, data[0], constants, consumers):
        try:
            elementwise.identify(nodes[position:end], data[0], constants)
        except ValueError:
            continue
        return end
    return 0


@dataclass
class _Value:
    """A value of the ONNX graph as nnframe computes it: its tensor and the builder's layout state."""

    tensor: Any
    state: State  # NetBuilder.state(): source shape, kind, index


RunChain = Callable[[NetBuilder, list[onnx.NodeProto], str], str]


def assemble(units: list[Unit], inputs: dict[str, tuple[NetBuilder, Any]], outputs: list[str],
             run_chain: RunChain) -> Graph:
    """The :class:`~nnframe.graph.Graph` computing ``outputs`` from ``inputs``, in evaluation mode.

    Args:
        units: what :func:`plan` returned.
        inputs: per ONNX graph input, a builder for it (its layout decides the Input's shape)
            and the dtype nnframe's input takes (an integer one for embedding ids).
        outputs: the ONNX graph's outputs.
        run_chain: ``run_chain(builder, nodes, source)`` adds ``nodes`` to ``builder`` and
            returns the name of the value they end in (the chain importer of
            :mod:`nnframe.interop.onnx_import`).

    Returns:
        A graph whose ``forward`` takes one array per ONNX input (a list when there are
        several) and returns one per output (likewise).
    """
    images = {name: Input(shape=b.input_shape, dtype=dtype, name=name) for name, (b, dtype) in inputs.items()}
    values = {name: _Value(images[name], b.state()) for name, (b, _) in inputs.items()}
    dtype = next(iter(inputs.values()))[0].dtype
    for unit in units:
        node = unit.nodes[0] if isinstance(unit, Chain) else unit.node
        missing = [s for s in ([unit.source] if isinstance(unit, Chain) else unit.sources) if s not in values]
        if missing:
            raise ConversionError(f"ONNX import: {node.op_type} node {node.name!r} reads {missing}, which no earlier "
                                  "node writes (a graph's nodes must be in topological order)")
        if isinstance(unit, Chain):
            source = values[unit.source]
            builder = NetBuilder.resume(*source.state, dtype=dtype)
            end = run_chain(builder, unit.nodes, unit.source)
            lay = builder.finish_branch() if builder.specs else None
            tensor = source.tensor if lay is None else lay(source.tensor)
            values[end] = _Value(tensor, builder.state())
        else:
            values[unit.node.output[0]] = _merge(unit, [values[s] for s in unit.sources])
    results = []
    for name in outputs:
        if name not in values:
            raise ConversionError(f"ONNX import: no node writes the graph's output {name!r}")
        if values[name].state[1] == "flat":
            raise ConversionError(f"ONNX import: the output {name!r} is a channels-first flatten that no dense "
                                  "layer follows; its order has no nnframe equivalent")
        results.append(values[name].tensor)
    ins = list(images.values())
    return Graph(inputs=ins[0] if len(ins) == 1 else ins, outputs=results[0] if len(results) == 1 else results,
                 dtype=dtype).eval()


def _merge(unit: Merge, inputs: list[_Value]) -> _Value:
    """The nnframe merge of ``unit``'s inputs, with the layout state of its output."""
    node = unit.node
    axis = int(next((a.i for a in node.attribute if a.name == "axis"), 0)) if node.op_type == "Concat" else None
    merge, state = merge_layer(f"ONNX import: {node.op_type} node {node.name!r}", MERGES[node.op_type],
                               [v.state for v in inputs], axis)
    return _Value(merge([v.tensor for v in inputs]), state)


def is_one_chain(units: list[Unit], input_name: str, output_name: str) -> bool:
    """Whether the plan is a single chain from the input to the output (imported as a plain ``Net``)."""
    return (len(units) == 1 and isinstance(units[0], Chain) and units[0].source == input_name
            and output_name in units[0].outputs)
