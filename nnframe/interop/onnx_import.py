"""ONNX -> nnframe: :func:`load` turns an ONNX graph into a built :class:`~nnframe.net.Net`
(one chain of operators) or :class:`~nnframe.graph.Graph` (branches joined by merges,
:mod:`nnframe.interop.onnx_import_graph`).

Supported operators (one handler each in ``_HANDLERS``): ``Gemm``, ``MatMul`` (+ ``Add`` of a
bias), ``Conv`` (1-D and 2-D, any stride/padding/dilation/group), ``ConvTranspose`` (2-D),
``BatchNormalization``, ``LayerNormalization``, ``Relu``, ``LeakyRelu``, ``Elu``, ``Selu``,
``Sigmoid``, ``Tanh``, ``Softplus``, ``Softmax``, ``Gelu``, ``Identity``, ``Dropout``,
``MaxPool``, ``AveragePool``, ``GlobalAveragePool``, ``Flatten``, ``Reshape``, ``Transpose``,
``Pad``, ``Gather`` of the integer input (Embedding), ``Add`` of a ``(T, C)`` table
(PositionalEmbedding) and ``Constant``; ``RNN``/``LSTM``/``GRU`` with the transposes around them
(:mod:`nnframe.interop.onnx_import_rnn`); activations spelled
as element-wise arithmetic (GELU, SiLU, Softplus(beta)) are recognised by
:mod:`nnframe.interop.onnx_elementwise`. The self-attention nnframe's exporter writes is recognised as one
MultiHeadAttention (:mod:`nnframe.interop.onnx_import_attention`). Values joined by ``Add``,
``Sum``, ``Mul`` or ``Concat`` make a graph; so does a file with several inputs or outputs.
The zeroing of padded steps nnframe's exporter writes for Masking is recognised as one Masking
(:mod:`nnframe.interop.onnx_import_masking`). That covers every file :func:`nnframe.onnx.export` writes, and what
``torch.onnx.export`` writes for models of the equivalent modules, residual networks included.

Layout: a channels-first model (a convolution or pool reads its input directly) becomes a
net that takes channels-last input, ``(N, H, W, C)`` for an ``(N, C, H, W)`` ONNX input;
kernels are converted by :mod:`nnframe.interop.layout`, and the first dense layer after a
channels-first flatten gets its weight rows permuted, so no transpose layer is needed
(see :mod:`nnframe.interop.builder`). Every operator the graph uses but nnframe cannot
run is listed in one :class:`UnsupportedOperatorError`.
"""

from __future__ import annotations

import copy
import json
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from nnframe import layer
from nnframe.graph import Graph
from nnframe.interop import onnx_elementwise as elementwise
from nnframe.interop import onnx_import_attention as attention
from nnframe.interop import onnx_import_graph as graph_import
from nnframe.interop import onnx_import_masking as masking
from nnframe.interop import onnx_import_rnn as recurrent
from nnframe.interop.builder import ConversionError, NetBuilder
from nnframe.net import Net

#: operators whose input is read channels-first by ONNX's definition
_CHANNELS_FIRST_OPS = {"Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool",
                       "BatchNormalization"}


class UnsupportedOperatorError(ConversionError):
    """An ONNX graph using operators nnframe cannot build (all of them are listed)."""


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The file's ``metadata_props`` with JSON values decoded (others stay strings)."""
    proto = onnx.load(str(path), load_external_data=False)
    out: dict[str, Any] = {}
    for prop in proto.metadata_props:
        try:
            out[prop.key] = json.loads(prop.value)
        except ValueError:
            out[prop.key] = prop.value
    return out


class _Graph:
    """Constants, attributes and the chain of a graph, for the handlers."""

    def __init__(self, proto: onnx.ModelProto) -> None:
        graph = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
        self.constants: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = _constant_value(node)
        self.nodes = [n for n in graph.node if n.op_type != "Constant"]
        self.inputs = [i for i in graph.input if i.name not in self.constants]
        self.outputs = list(graph.output)
        if not self.inputs or not self.outputs:
            raise ConversionError(f"ONNX import: the graph needs an input and an output, got inputs "
                                  f"{[i.name for i in self.inputs]} and outputs {[o.name for o in self.outputs]}")
        self.input_names = {i.name for i in self.inputs}
        # zero-filled values of the whole graph: a branch's chain may read one made outside it
        self.zero_states = recurrent.zero_values(self.nodes)
        self.consumers: dict[str, int] = Counter(i for n in self.nodes for i in n.input if i)
        for output in self.outputs:
            self.consumers[output.name] += 1

    def const(self, node: onnx.NodeProto, position: int, what: str) -> np.ndarray | None:
        """The constant at input ``position`` of ``node`` (``None`` when the input is absent)."""
        if position >= len(node.input) or node.input[position] == "":
            return None
        name = node.input[position]
        if name not in self.constants:
            raise ConversionError(f"ONNX import: {node.op_type} node {node.name!r}: its {what} ({name!r}) must be "
                                  "a constant (an initializer): graphs with more than one data path are not "
                                  "supported")
        return self.constants[name]


def _constant_value(node: onnx.NodeProto) -> np.ndarray:
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name in ("value_float", "value_int", "value_floats", "value_ints"):
            return np.asarray(helper.get_attribute_value(attr))
    raise ConversionError(f"ONNX import: Constant node {node.name!r} has no supported value attribute")


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


# --------------------------------------------------------------------- handlers
Handler = Callable[[NetBuilder, _Graph, onnx.NodeProto, dict], None]


def _spatial(attrs: dict, key: str, rank: int, default: int) -> list[int]:
    return list(attrs.get(key, [default] * rank))


def _pads(node: onnx.NodeProto, attrs: dict, spatial: int) -> list[int]:
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto not in ("NOTSET", "VALID"):
        raise ConversionError(f"ONNX import: {node.op_type} node {node.name!r}: auto_pad {auto!r} is not supported; "
                              "export with explicit pads")
    return list(attrs.get("pads", [0] * (2 * spatial)))


def _gemm(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    if attrs.get("transA", 0):
        raise ConversionError(f"ONNX import: Gemm node {node.name!r}: transA=1 is not supported")
    weight = g.const(node, 1, "weight B")
    weight = weight if attrs.get("transB", 0) else weight.T  # (D_out, D_in)
    weight = weight * attrs.get("alpha", 1.0)
    bias = g.const(node, 2, "bias C")
    if bias is not None:
        bias = np.broadcast_to(bias * attrs.get("beta", 1.0), (weight.shape[0],))
    b.dense(weight, bias, f"Gemm node {node.name!r}")


def _matmul(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    weight = g.const(node, 1, "second operand")
    if weight.ndim != 2:
        raise ConversionError(f"ONNX import: MatMul node {node.name!r}: the constant operand must be 2-D, got "
                              f"shape {weight.shape}")
    b.dense(weight.T, None, f"MatMul node {node.name!r}")


def _add(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    # Add commutes: PyTorch writes a Linear's bias on (N, T, D) input first, Add(bias, x @ w)
    bias = g.const(node, 0 if node.input[0] in g.constants else 1, "constant operand")
    if b.add_positions(bias, f"Add node {node.name!r}"):
        return
    if not b.add_bias(bias, f"Add node {node.name!r}"):
        raise ConversionError(f"ONNX import: Add node {node.name!r}: only the bias of a preceding MatMul or "
                              f"bias-less Conv is supported (got a constant of shape {bias.shape})")


def _conv(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    weight = g.const(node, 1, "weight")
    spatial = weight.ndim - 2
    b.conv(weight, g.const(node, 2, "bias"), _spatial(attrs, "strides", spatial, 1), _pads(node, attrs, spatial),
           _spatial(attrs, "dilations", spatial, 1), attrs.get("group", 1), f"Conv node {node.name!r}")


def _conv_transpose(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    weight = g.const(node, 1, "weight")
    if "output_shape" in attrs:
        raise ConversionError(f"ONNX import: ConvTranspose node {node.name!r}: output_shape is not supported; "
                              "use pads and output_padding")
    b.conv_transpose(weight, g.const(node, 2, "bias"), _spatial(attrs, "strides", 2, 1), _pads(node, attrs, 2),
                     _spatial(attrs, "output_padding", 2, 0), _spatial(attrs, "dilations", 2, 1),
                     attrs.get("group", 1), f"ConvTranspose node {node.name!r}")


def _batch_norm(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    if attrs.get("training_mode", 0):
        raise ConversionError(f"ONNX import: BatchNormalization node {node.name!r} is in training mode")
    gamma, beta, mean, var = (g.const(node, i, what) for i, what in
                              ((1, "scale"), (2, "bias"), (3, "mean"), (4, "var")))
    b.batch_norm(gamma, beta, mean, var, attrs.get("epsilon", 1e-5), 1.0 - attrs.get("momentum", 0.9),
                 f"BatchNormalization node {node.name!r}")


def _layer_norm(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    rank = len(b.source_shape) + 1
    if attrs.get("axis", -1) % rank != rank - 1:
        raise ConversionError(f"ONNX import: LayerNormalization node {node.name!r}: only the last axis is "
                              f"supported, got axis {attrs.get('axis')}")
    gamma = g.const(node, 1, "scale")
    beta = g.const(node, 2, "bias")
    beta = np.zeros_like(gamma) if beta is None else beta
    b.layer_norm(gamma, beta, attrs.get("epsilon", 1e-5), f"LayerNormalization node {node.name!r}")


def _activation(cls: type, **fixed: Any) -> Handler:
    def handle(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
        b.activation(cls, **{key: (attrs.get(onnx_key, default)) for key, (onnx_key, default) in fixed.items()})

    return handle


def _selu(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    alpha, gamma = attrs.get("alpha", 1.67326319217681884765625), attrs.get("gamma", 1.05070102214813232421875)
    if not (np.isclose(alpha, layer.SELU.ALPHA, rtol=1e-6) and np.isclose(gamma, layer.SELU.SCALE, rtol=1e-6)):
        raise ConversionError(f"ONNX import: Selu node {node.name!r}: only the standard constants are "
                              f"supported, got alpha {alpha}, gamma {gamma}")
    b.activation(layer.SELU)


def _gelu(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    approximate = attrs.get("approximate", b"none")
    b.activation(layer.GELU, approximate=approximate.decode() if isinstance(approximate, bytes) else approximate)


def _softmax(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    rank = len(b.source_shape) + 1
    axis = attrs.get("axis", -1 if g.opset >= 13 else 1)
    if g.opset < 13 and axis % rank != rank - 1:
        raise ConversionError(f"ONNX import: Softmax node {node.name!r} (opset {g.opset}) flattens from axis "
                              f"{axis}; only the last axis is supported before opset 13")
    b.softmax(axis, f"Softmax node {node.name!r}")


def _pool(kind: str) -> Handler:
    def handle(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
        kernel = list(attrs["kernel_shape"])
        if attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])) or len(kernel) != 2:
            raise ConversionError(f"ONNX import: {node.op_type} node {node.name!r}: only 2-D pools without "
                                  "ceil_mode or dilation are supported")
        b.pool(kind, kernel, _spatial(attrs, "strides", 2, 1), _pads(node, attrs, 2),
               bool(attrs.get("count_include_pad", 0)), f"{node.op_type} node {node.name!r}")

    return handle


def _flatten(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    if attrs.get("axis", 1) != 1:
        raise ConversionError(f"ONNX import: Flatten node {node.name!r}: only axis 1 is supported")
    b.flatten(f"Flatten node {node.name!r}")


def _reshape(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    shape = [int(s) for s in g.const(node, 1, "shape")]
    if not shape or shape[0] not in (0, -1, 1) and shape[0] != 0:
        raise ConversionError(f"ONNX import: Reshape node {node.name!r}: the batch axis must be kept, got {shape}")
    rest = [b.source_shape[i - 1] if s == 0 else s for i, s in enumerate(shape) if i > 0]
    if shape[0] == -1 and -1 in rest:
        raise ConversionError(f"ONNX import: Reshape node {node.name!r}: the batch axis must be kept, got {shape}")
    b.reshape(rest, f"Reshape node {node.name!r}")


def _transpose(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    b.transpose(list(attrs["perm"]), f"Transpose node {node.name!r}")


def _pad(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    mode = attrs.get("mode", b"constant")
    pads = attrs.get("pads") if g.opset < 11 else g.const(node, 1, "pads")
    value = attrs.get("value", 0.0) if g.opset < 11 else g.const(node, 2, "constant value")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "constant" or (value is not None and np.any(value)):
        raise ConversionError(f"ONNX import: Pad node {node.name!r}: only zero padding is supported")
    if len(node.input) > 3 and node.input[3]:
        raise ConversionError(f"ONNX import: Pad node {node.name!r}: the axes input is not supported")
    b.pad([int(p) for p in pads], f"Pad node {node.name!r}")


def _gather(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    table = g.const(node, 0, "table")
    if attrs.get("axis", 0) != 0 or table is None or table.ndim != 2 or node.input[1] not in g.input_names:
        raise ConversionError(f"ONNX import: Gather node {node.name!r}: only a lookup of the graph's integer "
                              "input in a constant 2-D table (an embedding) is supported")
    b.embedding(table, f"Gather node {node.name!r}")


def _skip(b: NetBuilder, g: _Graph, node: onnx.NodeProto, attrs: dict) -> None:
    """Identity, and Dropout (inference)."""


_HANDLERS: dict[str, Handler] = {
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Conv": _conv, "ConvTranspose": _conv_transpose,
    "BatchNormalization": _batch_norm, "LayerNormalization": _layer_norm,
    "Relu": _activation(layer.ReLU), "Sigmoid": _activation(layer.Sigmoid), "Tanh": _activation(layer.Tanh),
    "LeakyRelu": _activation(layer.LeakyReLU, negative_slope=("alpha", 0.01)),
    "Elu": _activation(layer.ELU, alpha=("alpha", 1.0)), "Selu": _selu, "Softplus": _activation(layer.Softplus),
    "Gelu": _gelu, "Softmax": _softmax, "MaxPool": _pool("max"), "AveragePool": _pool("avg"),
    "GlobalAveragePool": lambda b, g, node, attrs: b.global_avg_pool(what=f"GlobalAveragePool node {node.name!r}"),
    "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose, "Pad": _pad,
    "Gather": _gather, "Identity": _skip, "Dropout": _skip,
}


def supported_operators() -> list[str]:
    """The ONNX operator types :func:`load` understands (``Constant`` too; arithmetic ones inside activations)."""
    return sorted({*_HANDLERS, *elementwise.OPS, *recurrent.RECURRENT_OPS, *recurrent.SHAPE_OPS, *graph_import.MERGES,
                   "Constant"})


def _check_operators(g: _Graph) -> None:
    # the arithmetic ones only inside an activation, the shape ones only around recurrent layers
    known = set(_HANDLERS) | set(elementwise.OPS) | set(recurrent.RECURRENT_OPS) | recurrent.SHAPE_OPS | \
        set(graph_import.MERGES) | set(masking.OPS)
    unsupported = Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
                          for n in g.nodes if n.op_type not in known or n.domain not in ("", "ai.onnx"))
    if unsupported:
        listed = ", ".join(f"{op} (x{count})" for op, count in sorted(unsupported.items()))
        raise UnsupportedOperatorError(f"ONNX import: the graph uses operators nnframe does not support: {listed}; "
                                       f"supported: {', '.join(supported_operators())}")


def _input_shape(value: onnx.ValueInfoProto) -> tuple[int, ...]:
    dims = value.type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if len(shape) < 2 or any(s is None or s < 1 for s in shape[1:]):
        raise ConversionError(f"ONNX import: the input {value.name!r} must have a known size on every axis but "
                              f"the batch axis, got {['?' if s is None else s for s in shape]}")
    return tuple(int(s) for s in shape[1:])


def _channels_first(g: _Graph, name: str, input_layout: str, rank: int) -> bool:
    """Whether the input ``name`` is channels-first (``"auto"``: a convolution, pool or batch norm reads it)."""
    if input_layout not in ("auto", "channels_first", "channels_last"):
        raise ValueError(f"ONNX import: input_layout must be 'auto', 'channels_first' or 'channels_last', "
                         f"got {input_layout!r}")
    if input_layout != "auto":
        return input_layout == "channels_first"
    if rank < 3:
        return False
    first = next((n for n in g.nodes if name in n.input), None)
    return first is not None and first.op_type in _CHANNELS_FIRST_OPS


def _start(g: _Graph, value: onnx.ValueInfoProto, input_layout: str) -> tuple[NetBuilder, np.dtype]:
    """A builder for the graph input ``value``, and the dtype nnframe's input takes."""
    shape = _input_shape(value)
    elem = value.type.tensor_type.elem_type
    dtype = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64}.get(elem)
    first = next((n for n in g.nodes if value.name in n.input), None)
    ids = elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
    if ids and first is not None and first.op_type == "Gather":
        dtype = g.const(first, 0, "table").dtype  # integer ids into an embedding table
    if dtype is None:
        raise ConversionError(f"ONNX import: the input {value.name!r} must be float or double (or integer ids of "
                              f"an embedding), got {onnx.TensorProto.DataType.Name(elem)}")
    builder = NetBuilder(shape, _channels_first(g, value.name, input_layout, len(shape) + 1), dtype)
    return builder, np.dtype(helper.tensor_dtype_to_np_dtype(elem) if ids else dtype)


def _fold_attention(builder: NetBuilder, g: _Graph, position: int, current: str) -> int:
    """Add the self-attention nnframe's exporter spells from ``position``; the end of the run, or 0."""
    found = attention.match(g.nodes, position, current, g.constants, g.consumers)
    if found is None:
        return 0
    builder.self_attention(found.params, f"attention from node {g.nodes[position].name!r}", **found.options)
    return found.end


def _fold_masking(builder: NetBuilder, g: _Graph, position: int, current: str) -> int:
    """Add the Masking nnframe's exporter spells from ``position``; the end of the run, or 0."""
    found = masking.match(g.nodes, position, current, g.constants, g.consumers)
    if found is None:
        return 0
    builder.masking(found.mask_value, f"Masking from node {g.nodes[position].name!r}")
    return found.end


def _fold_activation(builder: NetBuilder, g: _Graph, position: int, current: str) -> int:
    """Add the activation spelled by element-wise nodes from ``position``; the end of the run, or 0."""
    if g.nodes[position].op_type not in elementwise.OPS:
        return 0
    for end in elementwise.find_region(g.nodes, position, current, g.constants, g.consumers):
        try:
            cls, kwargs = elementwise.identify(g.nodes[position:end], current, g.constants)
        except ValueError:
            continue
        if cls is not layer.Identity:
            builder.activation(cls, **kwargs)
        return end
    return 0


def load(path: str | os.PathLike, input_layout: str = "auto") -> Net | Graph:
    """Build a nnframe net, weights included, from an ONNX file (see the module docstring).

    Args:
        path: the ``.onnx`` file.
        input_layout: ``"auto"`` (channels-first when a convolution, pool or batch norm reads
            the input directly), ``"channels_first"`` (the ONNX input is ``(N, C, ...)``; the
            net takes ``(N, ..., C)``) or ``"channels_last"`` (the net takes the ONNX input as is).

    Returns:
        A built :class:`~nnframe.net.Net` in evaluation mode when the graph is one chain of
        operators, else a built :class:`~nnframe.graph.Graph` of such chains and merges. For a
        channels-first model the input (and an image-shaped output) is channels-last: feed
        ``x_nchw.transpose(0, 2, 3, 1)``.

    Raises:
        UnsupportedOperatorError: listing every unsupported operator of the graph (with counts).
        ConversionError: for a supported operator used in a way nnframe cannot express, or
            values joined by an operator that is not a merge (naming the node).
    """
    proto = onnx.load(str(path))
    g = _Graph(proto)
    _check_operators(g)
    starts = {value.name: _start(g, value, input_layout) for value in g.inputs}
    skipped = recurrent.shape_values(g.nodes, g.constants)  # shape arithmetic (zero initial states)
    units = graph_import.plan(g.nodes, g.constants, g.consumers, skipped)
    single = len(g.inputs) == len(g.outputs) == 1
    if single and graph_import.is_one_chain(units, g.inputs[0].name, g.outputs[0].name):
        builder = starts[g.inputs[0].name][0]
        end = _run_chain(builder, g, g.inputs[0].name, skipped)
        if end != g.outputs[0].name:
            raise ConversionError(f"ONNX import: the chain ends at {end!r}, not at the output {g.outputs[0].name!r}")
        net = builder.finish()
        masking.check_mask_unused(net)
        return net
    masks = [n.name for i, n in enumerate(g.nodes)
             if n.op_type == "Equal" and masking.match(g.nodes, i, n.input[0], g.constants, g.consumers)]
    if masks:
        raise ConversionError(f"ONNX import: the graph branches and masks padded steps (Masking from node "
                              f"{masks[0]!r}); Masking is imported only in a single chain of operators")

    def run_chain(chain_builder: NetBuilder, nodes: list[onnx.NodeProto], source: str) -> str:
        branch = copy.copy(g)
        branch.nodes = nodes
        return _run_chain(chain_builder, branch, source, skipped)

    return graph_import.assemble(units, starts, [o.name for o in g.outputs], run_chain)


def _run_chain(builder: NetBuilder, g: _Graph, current: str, skipped: set[str]) -> str:
    """Add ``g.nodes``, a chain of operators from the value ``current``, to ``builder``; the value it ends in."""
    position = 0
    while position < len(g.nodes):
        node = g.nodes[position]
        if node.output[0] in skipped:
            position += 1
            continue
        end = recurrent.fold_recurrent(builder, g, position, current, skipped) or \
            _fold_attention(builder, g, position, current) or _fold_masking(builder, g, position, current) or \
            _fold_activation(builder, g, position, current)
        if end:
            current, position = g.nodes[end - 1].output[0], end
            continue
        data_inputs = [i for i in node.input if i and i not in g.constants]
        if data_inputs != [current]:
            raise ConversionError(f"ONNX import: {node.op_type} node {node.name!r} reads {data_inputs}; only a "
                                  f"single chain of operators from the input is supported (expected {current!r})")
        if node.op_type not in _HANDLERS:
            raise ConversionError(f"ONNX import: {node.op_type} node {node.name!r} is supported only as part of an "
                                  "element-wise activation (GELU, SiLU, Softplus, ...), a Masking, or around a "
                                  "recurrent layer")
        _HANDLERS[node.op_type](builder, g, node, _attrs(node))
        current, position = node.output[0], position + 1
    return current
