"""PyTorch -> nnframe for modules with their own ``forward`` (a ResNet's blocks): traced by ``torch.fx``.

:func:`nnframe.interop.torch_convert.from_module` walks ``nn.Sequential`` s; a module that
wires its children itself (``return torch.relu(self.body(x) + x)``) is traced instead
(:func:`torch.fx.symbolic_trace`) and every node of the trace becomes a node of a
functional :class:`~nnframe.graph.Graph`:

* a call of a submodule: the layers ``from_module`` makes of it (a nested ``nn.Sequential``
  or a module of this kind, too);
* ``torch.relu``, ``torch.sigmoid``, ``torch.tanh``, ``F.relu``, ``F.gelu``, ``F.silu`` and
  ``torch.flatten(x, 1)`` / ``x.flatten(1)``: the module of the same name;
* ``x + y``, ``torch.add``, ``x * y``, ``torch.mul`` of two tensors: :class:`~nnframe.layer.Add`
  or :class:`~nnframe.layer.Multiply`; ``torch.cat([...], dim)``:
  :class:`~nnframe.layer.Concatenate` on the matching nnframe axis.

Each value keeps the layout state of :class:`~nnframe.interop.builder.NetBuilder`, so a
convolutional network becomes a channels-last graph with the weights converted once, as
for a sequential one. Anything else in the trace (slicing, ``view``, arithmetic with
numbers, control flow the tracer cannot follow) is refused, naming the node.
"""

from __future__ import annotations

import contextlib
import contextvars
import operator
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.fx
from torch import nn

from nnframe.graph import Graph
from nnframe.interop.builder import ConversionError, NetBuilder, State, merge_layer
from nnframe.layer.symbolic import Input

#: functions of one tensor, and the module computing the same
_FUNCTIONS: dict[Any, Callable[[], nn.Module]] = {
    torch.relu: nn.ReLU, nn.functional.relu: nn.ReLU, torch.sigmoid: nn.Sigmoid, torch.tanh: nn.Tanh,
    nn.functional.gelu: nn.GELU, nn.functional.silu: nn.SiLU,
}
#: functions joining tensors, and the operation of each
_JOINS = {operator.add: "add", torch.add: "add", operator.mul: "mul", torch.mul: "mul", torch.cat: "cat"}

#: ``convert(builder, name, module)``: adds a module (an ``nn.Sequential`` too) to a builder
ConvertModule = Callable[[NetBuilder, str, nn.Module], None]


def from_traced(module: nn.Module, start: NetBuilder, convert_module: ConvertModule) -> tuple[Graph, State]:
    """The nnframe graph of ``module``'s trace, weights included, in evaluation mode, going on
    from the value ``start`` holds; and the layout state of its output.

    Args:
        module: the PyTorch module (one tensor in, one tensor out).
        start: the builder whose current value the module reads (its layout decides the graph's input).
        convert_module: adds one submodule to a builder (``from_module``'s converter).

    Raises:
        ConversionError: naming the first node of the trace nnframe cannot express, or the
            tracer's own error.
    """
    traced = trace(module)
    inputs = [n for n in traced.graph.nodes if n.op == "placeholder"]
    if len(inputs) != 1:
        raise ConversionError(f"from_module: {type(module).__name__}.forward takes {len(inputs)} inputs; one "
                              "tensor converts")
    image = Input(shape=start.nnframe_shape(), dtype=start.dtype, name=inputs[0].name)
    values: dict[torch.fx.Node, tuple[Any, State]] = {inputs[0]: (image, start.state())}
    output = None
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            continue
        what = f"node {node.name!r} ({node.op} {_describe(node.target)})"
        if node.op == "output":
            output = node.args[0]
            break
        if node.op == "call_function" and node.target in _JOINS:
            values[node] = _join(what, node, values)
            continue
        source, step = _one_input(what, node, traced, values)
        tensor, state = values[source]
        branch = NetBuilder.resume(*state, dtype=start.dtype)
        convert_module(branch, node.name, step)
        lay = branch.finish_branch() if branch.specs else None
        values[node] = (tensor if lay is None else lay(tensor), branch.state())
    if not isinstance(output, torch.fx.Node) or output not in values:
        raise ConversionError(f"from_module: {type(module).__name__}.forward must return one tensor, got {output!r}")
    tensor, state = values[output]
    graph = Graph(inputs=image, outputs=tensor, dtype=start.dtype)
    graph.build((1, *start.nnframe_shape()))
    return graph.eval(), state


#: the traces made within the current :func:`traces_kept` block: id(module) -> (module, its trace)
_KEPT: contextvars.ContextVar[dict[int, tuple[nn.Module, torch.fx.GraphModule]] | None] = \
    contextvars.ContextVar("nnframe_torch_fx_traces", default=None)


@contextlib.contextmanager
def traces_kept() -> Iterator[None]:
    """Within the block, :func:`trace` traces each module once (one conversion asks a module for
    its first layer, then converts it); the traces are dropped when the block ends, so a module
    changed between two conversions is traced afresh."""
    token = _KEPT.set({})
    try:
        yield
    finally:
        _KEPT.reset(token)


def trace(module: nn.Module) -> torch.fx.GraphModule:
    """``torch.fx.symbolic_trace(module)``, its failures as :class:`ConversionError`; kept for
    reuse inside a :func:`traces_kept` block."""
    kept = _KEPT.get()
    if kept is not None and id(module) in kept:
        return kept[id(module)][1]
    try:
        traced = torch.fx.symbolic_trace(module)
    except Exception as exc:  # the tracer's errors are of many kinds (TraceError, TypeError, ...)
        raise ConversionError(f"from_module: torch.fx cannot trace {type(module).__name__}: {exc}") from None
    if kept is not None:
        kept[id(module)] = (module, traced)  # the module kept too: its id stays its own
    return traced


def first_module(module: nn.Module) -> nn.Module | None:
    """The submodule the traced ``forward`` calls first on its input (``None`` if it calls none first)."""
    traced = trace(module)
    placeholder = next(n for n in traced.graph.nodes if n.op == "placeholder")
    first = next(iter(placeholder.users), None)
    return traced.get_submodule(first.target) if first is not None and first.op == "call_module" else None


def _describe(target: Any) -> str:
    return target if isinstance(target, str) else getattr(target, "__name__", repr(target))


def _one_input(what: str, node: torch.fx.Node, traced: torch.fx.GraphModule,
               values: dict[torch.fx.Node, Any]) -> tuple[torch.fx.Node, nn.Module]:
    """The one tensor a node reads and the module computing it, or a refusal naming the node."""
    tensors = [a for a in node.args if isinstance(a, torch.fx.Node)]
    extra = [a for a in node.args[1:] if not isinstance(a, torch.fx.Node)]
    if len(tensors) != 1 or node.args[0] is not tensors[0] or tensors[0] not in values:
        raise ConversionError(f"from_module: {what} reads {[str(a) for a in node.args]}; one tensor converts")
    if node.op == "call_module":
        if extra or node.kwargs:
            raise ConversionError(f"from_module: {what}: a submodule called with more than its input")
        return tensors[0], traced.get_submodule(node.target)
    flatten = (node.op == "call_function" and node.target is torch.flatten) or \
        (node.op == "call_method" and node.target == "flatten")
    if flatten:
        dims = [*extra, *node.kwargs.values()]
        if dims not in ([1], [1, -1]):
            raise ConversionError(f"from_module: {what}: only flatten from axis 1 to the end converts, got {dims}")
        return tensors[0], nn.Flatten()
    if node.op == "call_function" and node.target in _FUNCTIONS:
        kwargs = dict(node.kwargs)
        kwargs.pop("inplace", None)
        approximate = kwargs.pop("approximate", "none")
        if extra or kwargs:
            raise ConversionError(f"from_module: {what}: arguments {extra or kwargs} are not converted")
        made = _FUNCTIONS[node.target]()
        return tensors[0], (nn.GELU(approximate=approximate) if isinstance(made, nn.GELU) else made)
    raise ConversionError(f"from_module: {what} has no nnframe equivalent; a traced forward may call submodules, "
                          "torch.relu/sigmoid/tanh, F.relu/gelu/silu, flatten(x, 1), +, *, torch.add/mul/cat")


def _join(what: str, node: torch.fx.Node, values: dict[torch.fx.Node, tuple[Any, tuple]]) -> tuple[Any, tuple]:
    """The nnframe merge of ``x + y``, ``x * y`` or ``torch.cat([...], dim)``, with its output's layout state."""
    op = _JOINS[node.target]
    if op == "cat":
        parts = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        extra = {k: v for k, v in node.kwargs.items() if k not in ("tensors", "dim")}
    else:
        parts, dim = list(node.args), None
        extra = dict(node.kwargs)
    if extra or not isinstance(parts, (list, tuple)) or len(parts) < 2 or \
            not all(isinstance(p, torch.fx.Node) and p in values for p in parts):
        raise ConversionError(f"from_module: {what} joins {parts!r} {extra or ''}; only tensors of the model "
                              "are joined (no numbers, no alpha)")
    merge, state = merge_layer(f"from_module: {what}", op, [values[p][1] for p in parts], dim)
    return merge([values[p][0] for p in parts]), state


def needs_tracing(module: nn.Module, known: tuple[type, ...]) -> bool:
    """Whether ``module`` wires its children in its own ``forward``: it has children and is
    neither an ``nn.Sequential`` nor one of the ``known`` modules ``from_module`` converts whole."""
    return not isinstance(module, (nn.Sequential, *known)) and any(True for _ in module.children())

