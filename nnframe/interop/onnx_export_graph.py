"""ONNX converters for functional graphs (:class:`nnframe.graph.Graph`) and the merges (Add, Multiply, Concatenate).

A graph is data: its nodes run in topological order, each reading tensor slots and writing
one. The converter walks the same order, keeping an ONNX :class:`Tensor` per slot; merges
get the list of their inputs' tensors. Shapes come from running each node on zero samples
in evaluation mode. A top-level graph's inputs and outputs become the ONNX graph's own
(:func:`convert_graph`); a graph inside a net is a single-input, single-output layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnframe import backend, layer
from nnframe.graph import Graph
from nnframe.interop.onnx_export import (
    INPUT_NAME,
    TOP_LEVEL,
    ExportContext,
    ExportError,
    Tensor,
    convert_child,
    register,
)
from nnframe.layer.container import subtree


def _zeros(shape: tuple[int, ...], dtype: Any) -> Any:
    return backend.xp().zeros((1, *shape), dtype=dtype)


def convert_graph(ctx: ExportContext, graph: Graph, inputs: list[Tensor]) -> list[Tensor]:
    """Convert every node of ``graph`` from the ONNX tensors of its inputs; the output tensors, in order."""
    everything = subtree(graph)
    modes = [sub.is_training for sub in everything]
    for sub in everything:
        sub.is_training = False
    try:
        tensors: dict[int, Tensor] = dict(enumerate(inputs))
        samples: dict[int, Any] = {k: _zeros(tuple(t.shape), graph.dtype if t.dtype.kind == "f" else t.dtype)
                                    for k, t in enumerate(graph.inputs)}
        for index, (lay, ins, outs, multi_in, multi_out, _repeated) in enumerate(graph._steps):
            where = f"{ctx.where}.{index}" if ctx.where else str(index)
            if multi_out:
                raise ExportError(f"cannot export graph node {where} ({lay.name}, class {type(lay).__name__}): "
                                  "a node with several outputs is not exported")
            args = [samples[s] for s in ins] if multi_in else samples[ins[0]]
            out = lay.forward(args)
            samples[outs[0]] = out
            x = [tensors[s] for s in ins] if multi_in else tensors[ins[0]]
            tensors[outs[0]] = convert_child(ctx, lay, x, where, tuple(int(d) for d in out.shape[1:]))
        return [tensors[s] for s in graph._output_slots]
    finally:
        for sub, mode in zip(everything, modes, strict=True):
            sub.is_training = mode


@register(Graph)
def _graph(ctx: ExportContext, lay: Graph, x: Tensor, out_shape: tuple) -> Tensor:
    """A single-input, single-output graph used as a layer."""
    if len(lay.inputs) != 1 or len(lay.outputs) != 1:
        raise ExportError(f"cannot export layer {ctx.where} ({lay.name}): a graph inside a net must have one input "
                          f"and one output, got {len(lay.inputs)} and {len(lay.outputs)}")
    return convert_graph(ctx, lay, [x])[0]


def _same_layout(ctx: ExportContext, xs: list[Tensor]) -> tuple[list[Tensor], bool]:
    """All channels-first when they all are (a conv block's merge stays NCHW), else all channels-last."""
    first = all(x.channels_first for x in xs) and len({x.ndim for x in xs}) == 1
    return [x if first else ctx.channels_last(x) for x in xs], first


def _elementwise_merge(op: str) -> Any:
    def convert(ctx: ExportContext, lay: layer.Layer, xs: list[Tensor], out_shape: tuple) -> Tensor:
        xs, first = _same_layout(ctx, xs)
        y = xs[0].name
        for k, other in enumerate(xs[1:], start=1):  # NumPy broadcasting is ONNX's multidirectional one
            y = ctx.node(op, [y, other.name], f"{op.lower()}{k}")
        return Tensor(y, out_shape, first)

    return convert


register(layer.Add)(_elementwise_merge("Add"))
register(layer.Multiply)(_elementwise_merge("Mul"))


@register(layer.Concatenate)
def _concatenate(ctx: ExportContext, lay: layer.Concatenate, xs: list[Tensor], out_shape: tuple) -> Tensor:
    xs = [ctx.channels_last(x) for x in xs]
    return Tensor(ctx.node("Concat", [x.name for x in xs], "concat", axis=int(lay.axis)), out_shape)


def _signature(graph: Graph) -> list[tuple[str, tuple[int, ...], np.dtype]]:
    """``[(ONNX input name, per-sample shape, dtype)]``: ``"input"`` for one input, else the Inputs' names."""
    names = [INPUT_NAME] if len(graph.inputs) == 1 else list(graph.input_names)
    return [(n, tuple(t.shape), np.dtype(t.dtype)) for n, t in zip(names, graph.inputs, strict=True)]


TOP_LEVEL[Graph] = (_signature, convert_graph)
