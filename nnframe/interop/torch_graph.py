"""nnframe <-> PyTorch for layers that branch: ``Residual`` blocks, functional ``Graph`` s and their merges.

:func:`nnframe.interop.torch_convert.to_module` converts a stack of layers into an
``nn.Sequential``; a :class:`~nnframe.layer.Residual` or a :class:`~nnframe.graph.Graph`
in it becomes one of the small modules below, whose branches are ``nn.Sequential`` s
converted the same way:

- :class:`ResidualBlock`: ``body(x) + shortcut(x)`` (``nn.Identity`` when there is no shortcut);
- :class:`GraphModule`: the graph's nodes in its topological order, each reading the
  values its nodes read in nnframe; a layer used twice is one PyTorch module called twice,
  so its parameters stay shared;
- :class:`Merge`: ``Add`` (a sum), ``Multiply`` (a product) or ``Concatenate`` (``torch.cat``
  along the matching PyTorch axis: nnframe's channel axis is PyTorch's axis 1 for images).

Each value keeps the converter's layout state (held channels-first by PyTorch, or as
nnframe holds it); the values a merge joins must be in one layout. The way back
(:func:`graph_from_torch`, for ``from_module``) rebuilds the nnframe graph from a
:class:`GraphModule`; a :class:`ResidualBlock` comes back through
:meth:`~nnframe.interop.builder.NetBuilder.residual`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nnframe import backend, layer
from nnframe.graph import Graph
from nnframe.interop import layout
from nnframe.interop.builder import ConversionError, NetBuilder, layer_output_shape, merge_layer
from nnframe.layer.symbolic import Input

#: the nnframe merges a :class:`GraphModule` runs, and the :class:`Merge` operation of each
MERGES = {layer.Add: "add", layer.Multiply: "mul", layer.Concatenate: "cat"}


class ResidualBlock(nn.Module):
    """``body(x) + shortcut(x)``: nnframe's :class:`~nnframe.layer.Residual`."""

    def __init__(self, body: nn.Module, shortcut: nn.Module) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The sum of the two branches."""
        return self.body(x) + self.shortcut(x)


class Merge(nn.Module):
    """The sum (``"add"``), product (``"mul"``) or concatenation along ``dim`` (``"cat"``) of its inputs."""

    def __init__(self, op: str, dim: int | None = None) -> None:
        super().__init__()
        if op not in ("add", "mul", "cat"):
            raise ValueError(f"Merge: op must be 'add', 'mul' or 'cat', got {op!r}")
        self.op, self.dim = op, dim

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        """The inputs joined."""
        if self.op == "cat":
            return torch.cat(xs, dim=self.dim)
        out = xs[0]
        for x in xs[1:]:
            out = out + x if self.op == "add" else out * x
        return out

    def extra_repr(self) -> str:
        """``op`` (and ``dim`` for a concatenation), as PyTorch prints modules."""
        return self.op if self.dim is None else f"{self.op}, dim={self.dim}"


class GraphModule(nn.Module):
    """Runs ``steps`` in order on value slots: the inputs are slots ``0 .. inputs - 1``.

    Args:
        steps: ``(module, input slots, output slot)`` per node; a module may appear twice (shared).
        inputs: how many inputs ``forward`` takes.
        outputs: the slots returned (one tensor when there is one, else a tuple).
    """

    def __init__(self, steps: Sequence[tuple[nn.Module, Sequence[int], int]], inputs: int,
                 outputs: Sequence[int]) -> None:
        super().__init__()
        self.nodes = nn.ModuleList([module for module, _, _ in steps])
        self.wiring = [(list(ins), out) for _, ins, out in steps]
        self.inputs, self.outputs = inputs, list(outputs)

    def forward(self, *xs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The graph's outputs for its inputs."""
        if len(xs) != self.inputs:
            raise TypeError(f"GraphModule: expected {self.inputs} inputs, got {len(xs)}")
        values: dict[int, torch.Tensor] = dict(enumerate(xs))
        for module, (ins, out) in zip(self.nodes, self.wiring, strict=True):
            values[out] = module(*(values[s] for s in ins))
        results = tuple(values[s] for s in self.outputs)
        return results[0] if len(results) == 1 else results


#: ``convert(state, where, layer, in_shape) -> out_shape``: converts one layer (a container
#: too) into ``state``'s modules, updating its layout state (``torch_convert._ToTorch``)
Convert = Callable[[Any, str, layer.Layer, tuple], tuple]


def residual(state: Any, where: str, lay: layer.Residual, in_shape: tuple, convert: Convert) -> tuple:
    """Append a :class:`ResidualBlock` for ``lay`` to ``state``; nnframe's per-sample output shape."""
    body = state.branch()
    out_shape = convert(body, f"{where}.body", lay.body, in_shape)
    shortcut = state.branch()
    if lay.shortcut is not None:
        convert(shortcut, f"{where}.shortcut", lay.shortcut, in_shape)
    _check_same_layout(f"layer {where} ({lay.name})", [body, shortcut], [out_shape, out_shape])
    state.modules.append(ResidualBlock(nn.Sequential(*body.modules),
                                       nn.Sequential(*shortcut.modules) if shortcut.modules else nn.Identity()))
    state.kind, state.index = body.kind, body.index
    return out_shape


def graph(state: Any, where: str, lay: Graph, in_shape: tuple, convert: Convert) -> tuple:
    """Append a :class:`GraphModule` for a one-input, one-output graph used as a layer; its output shape."""
    if len(lay.inputs) != 1 or len(lay.outputs) != 1:
        raise ConversionError(f"to_module: layer {where} ({lay.name}): a graph inside a net must have one input "
                              f"and one output, got {len(lay.inputs)} and {len(lay.outputs)}")
    dtype = np.dtype(np.int64) if np.dtype(lay.inputs[0].dtype).kind in "iu" else np.dtype(lay.dtype)
    slots: dict[int, tuple[Any, tuple]] = {0: (state.branch(), tuple(in_shape))}  # slot -> (layout state, shape)
    converted: dict[tuple[int, str], tuple[nn.Module, Any]] = {}  # (layer id, layout) -> (module, state after)
    steps = []
    for index, (node_layer, ins, outs, multi_in, multi_out, _repeated) in enumerate(lay._steps):
        at = f"{where}.{index}" if where else str(index)
        if multi_out:
            raise ConversionError(f"to_module: graph node {at} ({node_layer.name}): a node with several outputs "
                                  "is not converted")
        if multi_in:
            module, after, shape = _merge(at, node_layer, [slots[s] for s in ins], dtype)
        else:
            before, shape_in = slots[ins[0]]
            key = (id(node_layer), before.kind)
            if key not in converted or before.kind == "flat":  # a flattening's order depends on the shape
                after = before.branch()
                convert(after, at, node_layer, shape_in)
                converted[key] = (nn.Sequential(*after.modules), after)
            module, after = converted[key]  # a shared layer: the same module again
            after = after.branch()
            shape = layer_output_shape(node_layer, shape_in, dtype if ins[0] == 0 else np.dtype(lay.dtype))
        steps.append((module, ins, outs[0]))
        slots[outs[0]] = (after, shape)
    last, shape = slots[lay._output_slots[0]]
    state.modules.append(GraphModule(steps, 1, lay._output_slots))
    state.kind, state.index = last.kind, last.index
    return shape


def _merge(at: str, lay: layer.Layer, inputs: list[tuple[Any, tuple]], dtype: Any) -> tuple[nn.Module, Any, tuple]:
    """The :class:`Merge` for a merge layer on ``inputs`` (``(layout state, shape)`` each)."""
    if type(lay) not in MERGES:
        raise ConversionError(f"to_module: graph node {at} ({lay.name}, class {type(lay).__name__}): a layer of "
                              f"several inputs with no PyTorch equivalent; convertible: Add, Multiply, Concatenate")
    states, shapes = [s for s, _ in inputs], [sh for _, sh in inputs]
    _check_same_layout(f"graph node {at} ({lay.name})", states, shapes)
    out = lay.forward([backend.xp().zeros((1, *s), dtype=dtype) for s in shapes])
    dim = None
    if isinstance(lay, layer.Concatenate):
        ndim = len(shapes[0]) + 1
        dim = lay.axis % ndim
        if states[0].kind == "cf":
            dim = layout.to_channels_first_perm(ndim).index(dim)
    return Merge(MERGES[type(lay)], dim), states[0].branch(), tuple(int(d) for d in out.shape[1:])


def _check_same_layout(what: str, states: list[Any], shapes: list[tuple]) -> None:
    """Refuse values PyTorch would hold in different layouts (or as a reordered flattening)."""
    kinds = {s.kind for s in states}
    if len(kinds) != 1 or "flat" in kinds:
        held = ["channels-first" if s.kind == "cf" else "reordered" if s.kind == "flat" else "as nnframe"
                for s in states]
        raise ConversionError(f"to_module: {what} joins values of shapes {[(None, *s) for s in shapes]} that "
                              f"PyTorch would hold {held}; they must be held alike")


#: ``convert_module(builder, name, module)``: adds a PyTorch module (an ``nn.Sequential`` too) to a builder
ConvertModule = Callable[[NetBuilder, str, nn.Module], None]


def graph_from_torch(b: NetBuilder, what: str, module: GraphModule, convert_module: ConvertModule) -> None:
    """Append to ``b`` the nnframe :class:`~nnframe.graph.Graph` a :class:`GraphModule` computes (one input
    and one output), from the builder's current value; a module called twice is one shared net."""
    if module.inputs != 1 or len(module.outputs) != 1:
        raise ConversionError(f"from_module: {what}: a graph converts with one input and one output, got "
                              f"{module.inputs} and {len(module.outputs)}")
    image = Input(shape=b.nnframe_shape(), dtype=b.dtype)
    values: dict[int, tuple[Any, tuple]] = {0: (image, b.state())}  # slot -> (symbolic tensor, layout state)
    nets: dict[int, tuple[Any, tuple]] = {}  # id(module) -> (nnframe net, the state after it)
    for index, (node, (ins, out)) in enumerate(zip(module.nodes, module.wiring, strict=True)):
        if isinstance(node, Merge):
            values[out] = _merge_from_torch(f"{what} node {index}", node, [values[s] for s in ins])
            continue
        tensor, state = values[ins[0]]
        if id(node) not in nets:
            branch = NetBuilder.resume(*state, dtype=b.dtype)
            convert_module(branch, f"{what.split(' ')[0]}.nodes.{index}", node)
            nets[id(node)] = (branch.finish_branch(), branch.state())
        net, after = nets[id(node)]
        values[out] = (net(tensor), after)
    tensor, state = values[module.outputs[0]]
    graph = Graph(inputs=image, outputs=tensor, dtype=b.dtype)
    graph.build((1, *b.nnframe_shape()))
    b.prebuilt(graph.eval(), state)


def _merge_from_torch(what: str, node: Merge, inputs: list[tuple[Any, tuple]]) -> tuple[Any, tuple]:
    """The nnframe merge of a :class:`Merge` on ``inputs`` (``(tensor, layout state)`` each)."""
    merge, state = merge_layer(f"from_module: {what}", node.op, [state for _, state in inputs], node.dim)
    return merge([tensor for tensor, _ in inputs]), state
