"""nnframe -> ONNX: a converter per layer class, a context that builds the graph, :func:`export`.

The exported graph takes exactly what :meth:`nnframe.model.Model.predict` takes: channels-last
input (``(N, H, W, C)`` images, ``(N, T, C)`` sequences, ``(N, D)`` rows) with a dynamic
batch axis ``N``. Convolutions and pools run channels-first inside the graph (as ONNX
defines them); a ``Transpose`` is inserted only where the layout has to change, so a run
of conv/pool/batch-norm/activation layers stays NCHW.

Adding a layer: write ``def convert(ctx, layer, x, out_shape) -> Tensor`` and decorate it
with ``@register(LayerClass)``. ``x`` is the input :class:`Tensor` (its ONNX value name,
its nnframe shape with ``None`` for the batch axis, and whether it is held channels-first);
return the output :class:`Tensor`. :meth:`ExportContext.node` adds a node,
:meth:`ExportContext.constant` an initializer, :meth:`ExportContext.channels_last` /
:meth:`ExportContext.channels_first` a transpose when needed. Lookup is by exact class: a
subclass with its own ``forward`` needs its own converter.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nnframe import backend, layer
from nnframe.atomic import atomic_write
from nnframe.interop import layout
from nnframe.interop.builder import layer_output_shape, layer_output_shapes
from nnframe.layer.container import Container
from nnframe.layer.embedding import first_mask_read
from nnframe.model import Model
from nnframe.net import Net

DEFAULT_OPSET = 17  #: LayerNormalization needs 17; ONNX Runtime (and onnxruntime-web) run 17 everywhere
MIN_OPSET = 17
INPUT_NAME, OUTPUT_NAME, BATCH_DIM = "input", "output", "N"
_ELEM_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}


class ExportError(ValueError):
    """A net that cannot be written as ONNX (an unexportable layer, an unknown input shape, ...)."""


@dataclass(frozen=True)
class Tensor:
    """An ONNX value standing for an nnframe activation.

    Attributes:
        name: the ONNX value name.
        shape: nnframe's (channels-last) shape, ``None`` for the batch axis.
        channels_first: whether the ONNX value holds it channels-first (``(N, C, *S)``).
    """

    name: str
    shape: tuple[int | None, ...]
    channels_first: bool = False

    @property
    def ndim(self) -> int:
        """Number of axes, batch included."""
        return len(self.shape)


Converter = Callable[["ExportContext", layer.Layer, Tensor, tuple], Tensor]
_CONVERTERS: dict[type, Converter] = {}
#: containers exported with their own graph inputs and outputs: class -> (signature, convert), where
#: ``signature(net)`` gives ``[(input name, per-sample shape, dtype)]`` and ``convert(ctx, net, inputs)``
#: the output tensors (see :mod:`nnframe.interop.onnx_export_graph`)
TOP_LEVEL: dict[type, tuple[Callable[[Any], list], Callable[..., list]]] = {}


def register(*classes: type) -> Callable[[Converter], Converter]:
    """Decorator: register ``convert(ctx, layer, x, out_shape) -> Tensor`` for these layer classes."""

    def decorate(func: Converter) -> Converter:
        for cls in classes:
            _CONVERTERS[cls] = func
        return func

    return decorate


def exportable_classes() -> list[str]:
    """Names of the layer classes that have a converter."""
    return sorted(cls.__name__ for cls in _CONVERTERS)


def converter_for(obj: layer.Layer, where: str) -> Converter:
    """The converter of ``obj``'s exact class, or :class:`ExportError` naming the layer."""
    func = _CONVERTERS.get(type(obj))
    if func is None:
        raise ExportError(
            f"cannot export layer {where} ({obj.name}, class {type(obj).__name__}): no ONNX converter is "
            f"registered for {type(obj).__name__}; exportable classes: {', '.join(exportable_classes())}"
        )
    return func


class ExportContext:
    """The graph under construction: nodes, initializers and unique value names."""

    def __init__(self, opset: int, dtype: np.dtype) -> None:
        self.opset = opset
        self.dtype = np.dtype(dtype)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.prefix = ""  # set per layer: "3_Conv2D" (value names start with it)
        self.where = ""  # the layer's dotted path: "3", "2.body.0"
        self._used: set[str] = {INPUT_NAME, OUTPUT_NAME}

    @property
    def elem_type(self) -> int:
        """The ONNX element type of the net's float dtype."""
        return _ELEM_TYPES[self.dtype]

    def reserve(self, names: Sequence[str]) -> None:
        """Keep ``names`` (graph inputs and outputs) from being handed out by :meth:`fresh`."""
        self._used.update(names)

    def fresh(self, hint: str) -> str:
        """A value name not used yet, starting with the current layer's prefix."""
        base = f"{self.prefix}/{hint}" if self.prefix else hint
        name, k = base, 1
        while name in self._used:
            k += 1
            name = f"{base}_{k}"
        self._used.add(name)
        return name

    def constant(self, array: Any, hint: str, dtype: Any = None) -> str:
        """Add an initializer (in the net's dtype unless ``dtype`` is given) and return its name."""
        value = np.asarray(backend.to_host(array) if not isinstance(array, (list, tuple)) else array,
                           dtype=self.dtype if dtype is None else dtype)
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def ints(self, values: Sequence[int], hint: str) -> str:
        """An int64 initializer (shapes, pads, axes)."""
        return self.constant(np.asarray(values, dtype=np.int64), hint, dtype=np.int64)

    def node(self, op: str, inputs: Sequence[str], hint: str | None = None, **attrs: Any) -> str:
        """Add one node with a single output and return the output's name."""
        out = self.fresh(hint or op)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def node_outputs(self, op: str, inputs: Sequence[str], hints: Sequence[str], **attrs: Any) -> list[str]:
        """Add one node with several outputs (one per hint; ``""`` leaves an optional output out) and
        return their names."""
        outs = [self.fresh(hint) if hint else "" for hint in hints]
        self.nodes.append(helper.make_node(op, list(inputs), outs, name=next(o for o in outs if o), **attrs))
        return outs

    def channels_last(self, x: Tensor) -> Tensor:
        """``x`` held channels-last (a ``Transpose`` when it is channels-first)."""
        if not x.channels_first:
            return x
        name = self.node("Transpose", [x.name], "to_channels_last", perm=list(layout.to_channels_last_perm(x.ndim)))
        return replace(x, name=name, channels_first=False)

    def channels_first(self, x: Tensor) -> Tensor:
        """``x`` held channels-first (a ``Transpose`` when it is channels-last; 2-D is both)."""
        if x.channels_first or x.ndim <= 2:
            return replace(x, channels_first=x.ndim > 2)
        name = self.node("Transpose", [x.name], "to_channels_first",
                         perm=list(layout.to_channels_first_perm(x.ndim)))
        return replace(x, name=name, channels_first=True)


# --------------------------------------------------------------------------- export
def _net_and_metadata(model_or_net: Model | Net) -> tuple[Net, tuple[int, ...] | None, dict[str, Any]]:
    if isinstance(model_or_net, Model):
        return model_or_net.net, model_or_net.input_shape, dict(model_or_net.metadata)
    if isinstance(model_or_net, Container):  # a Net, or a functional graph
        return model_or_net, model_or_net.input_shape, {}
    raise TypeError(f"export: expected a nnframe Model or Net, got {type(model_or_net).__name__}")


def _input_shape(net: Net, known: tuple[int, ...] | None, given: Sequence[int] | None) -> tuple[int, ...]:
    if given is not None:
        shape = tuple(given)
        if not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
            raise ExportError(f"export: input_shape must be the per-sample shape (no batch axis) as positive "
                              f"integers, e.g. (28, 28, 1), got {given!r}")
        return tuple(int(s) for s in shape)
    if known is None:
        raise ExportError("export: the input shape is unknown (the net has not seen a batch and the model "
                          "records none); pass input_shape=(...) without the batch axis, e.g. (28, 28, 1)")
    return tuple(known)


def convert_layers(ctx: ExportContext, layers: Sequence[layer.Layer], x: Tensor,
                   shapes: Sequence[tuple[int, ...]], prefix: str = "") -> Tensor:
    """Convert ``layers`` in order from input ``x``; ``shapes`` are their per-sample output shapes.

    ``prefix`` is the dotted path of the container holding them (``"2."`` for a nested net).
    """
    for index, (lay, shape) in enumerate(zip(layers, shapes, strict=True)):
        x = convert_child(ctx, lay, x, f"{prefix}{index}", shape)
    return x


def convert_child(ctx: ExportContext, lay: layer.Layer, x: Tensor, where: str,
                  shape: tuple[int, ...] | None = None) -> Tensor:
    """Convert one layer (``where``: its dotted path) from input ``x``; ``shape`` is its per-sample
    output shape (computed from a zero sample when not given)."""
    if shape is None:
        shape = layer_output_shape(lay, tuple(x.shape[1:]), ctx.dtype)
    func = converter_for(lay, where)
    outer_prefix, outer_where = ctx.prefix, ctx.where
    ctx.prefix, ctx.where = f"{where}_{lay.name}", where
    try:
        return func(ctx, lay, x, (None, *shape))
    finally:
        ctx.prefix, ctx.where = outer_prefix, outer_where


def build_model(model_or_net: Model | Net, input_shape: Sequence[int] | None = None,
                opset: int = DEFAULT_OPSET, metadata: dict[str, Any] | None = None) -> onnx.ModelProto:
    """The ONNX model of a nnframe model or net, in memory (see :func:`export`)."""
    net, known_shape, meta = _net_and_metadata(model_or_net)
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not MIN_OPSET <= opset <= newest:
        raise ExportError(f"export: opset must be an integer from {MIN_OPSET} to {newest} "
                          f"(the installed onnx's newest), got {opset!r}")
    dtype = np.dtype(net.dtype)
    if dtype not in _ELEM_TYPES:
        raise ExportError(f"export: the net's dtype must be float32 or float64, got {dtype}")
    if not isinstance(net, Net) and type(net) not in TOP_LEVEL:  # a container class with no exporter yet
        converter_for(net, "0")
    _check_exportable(net)
    ctx = ExportContext(opset, dtype)
    top = TOP_LEVEL.get(type(net))
    if top is None:  # a Net: one input, the layers in order
        shape = _input_shape(net, known_shape, input_shape)
        shapes = layer_output_shapes(net, shape)
        integer_input = bool(net.layers) and net.layers[0].accepts_integer_input
        inputs = [(INPUT_NAME, shape, np.dtype(np.int64) if integer_input else dtype)]
        outputs = [convert_layers(ctx, net.layers, Tensor(INPUT_NAME, (None, *shape)), shapes)]
    else:  # a container with its own inputs and outputs (a functional graph)
        signature, convert = top
        inputs = [(name, shape, np.dtype(np.int64) if in_dtype.kind in "iu" else dtype)
                  for name, shape, in_dtype in signature(net)]
        ctx.reserve([name for name, _, _ in inputs])
        outputs = convert(ctx, net, [Tensor(name, (None, *shape)) for name, shape, _ in inputs])
    names = [OUTPUT_NAME] if len(outputs) == 1 else [f"{OUTPUT_NAME}_{k}" for k in range(len(outputs))]
    ctx.reserve(names)
    for y, name in zip(outputs, names, strict=True):
        _name_output(ctx, ctx.channels_last(y).name, name, set(names))
    graph = helper.make_graph(
        ctx.nodes, "nnframe", [_value_info(name, (None, *shape), dt) for name, shape, dt in inputs],
        [_value_info(name, y.shape, dtype) for y, name in zip(outputs, names, strict=True)],
        initializer=ctx.initializers,
    )
    shape = inputs[0][1]
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="nnframe",
                              producer_version=_version(), doc_string=_doc(net, shape))
    proto.ir_version = min(proto.ir_version, 10)  # what current ONNX Runtime builds load
    meta.update(metadata or {})
    _set_metadata(proto, meta, shape)
    return proto


def export(model_or_net: Model | Net, path: str | os.PathLike, input_shape: Sequence[int] | None = None,
           opset: int = DEFAULT_OPSET, metadata: dict[str, Any] | None = None) -> onnx.ModelProto:
    """Write a nnframe model or net as an ONNX file that ONNX Runtime runs like ``Model.predict``.

    The graph's input ``"input"`` is channels-last, like nnframe's (``(N, 28, 28, 1)`` for
    Fashion-MNIST), with a dynamic batch axis ``N``; its output is ``"output"`` (the net's
    output, e.g. logits). The model's ``metadata`` (class names, input normalisation, data
    set; see ``nnframe train``) is stored as JSON strings in the file's ``metadata_props``,
    with ``input_layout`` and ``input_shape``. The file is checked with
    ``onnx.checker.check_model(full_check=True)`` before it is written, and written
    atomically: on any error no file (and no partial file) is left at ``path``.

    Args:
        model_or_net: a :class:`~nnframe.model.Model` or :class:`~nnframe.net.Net`.
        path: the ``.onnx`` file to write.
        input_shape: per-sample input shape (no batch axis); default: the model's.
        opset: the ONNX opset (17 or newer).
        metadata: extra JSON-serialisable entries for ``metadata_props`` (over the model's).

    Returns:
        The ``onnx.ModelProto`` written.

    Raises:
        ExportError: for a layer without a converter (naming it), an unknown input shape,
            a bad opset or a model the checker rejects.
    """
    proto = build_model(model_or_net, input_shape, opset, metadata)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"export: the ONNX checker rejects the graph: {exc}") from None
    data = proto.SerializeToString()
    with atomic_write(path) as f:
        f.write(data)
    return proto


def _walk(container: Container, prefix: str = "") -> Any:
    """``(dotted path, layer)`` of every layer, containers before their children, in order."""
    if isinstance(container, Net):
        children = [(str(i), child) for i, child in enumerate(container.layers)]
    else:
        children = container.sublayers()
    for name, child in children:
        yield f"{prefix}{name}", child
        if isinstance(child, Container):
            yield from _walk(child, f"{prefix}{name}.")


def _check_exportable(net: Net) -> None:
    """Fail before building anything: a layer without a converter, or one that would use a padding mask."""
    for where, lay in _walk(net):
        converter_for(lay, where)
    read = first_mask_read(net.layers)
    if read is not None:
        maker, reader = read
        lay = net.layers[reader]
        raise ExportError(f"cannot export layer {reader} ({lay.name}, class {type(lay).__name__}): it would use the "
                          f"mask of padded steps made by layer {maker} ({net.layers[maker].name}); masks are not "
                          "exported")


def _name_output(ctx: ExportContext, name: str, output: str, outputs: set[str]) -> None:
    """Rename the value ``name`` to the graph output ``output`` (an ``Identity`` when it is a graph
    input or already one of the ``outputs``)."""
    for node in reversed(ctx.nodes):
        if name in node.output and name not in outputs:
            node.output[list(node.output).index(name)] = output
            for other in ctx.nodes:  # a later node may read it
                for i, inp in enumerate(other.input):
                    if inp == name:
                        other.input[i] = output
            return
    ctx.nodes.append(helper.make_node("Identity", [name], [output], name=f"{output}_identity"))


def _value_info(name: str, shape: tuple[int | None, ...], dtype: np.dtype) -> onnx.ValueInfoProto:
    dims = [BATCH_DIM if d is None else int(d) for d in shape]
    elem = TensorProto.INT64 if dtype == np.int64 else _ELEM_TYPES[dtype]
    return helper.make_tensor_value_info(name, elem, dims)


def _version() -> str:
    import nnframe  # noqa: PLC0415 - the package sits above this module

    return nnframe.__version__


def _doc(net: Net, shape: tuple[int, ...]) -> str:
    names = ", ".join(lay.name for lay in net.layers)
    return f"nnframe net [{names}]; input (N, {', '.join(map(str, shape))}) channels-last, float {net.dtype}"


def _set_metadata(proto: onnx.ModelProto, meta: dict[str, Any], shape: tuple[int, ...]) -> None:
    entries = {"input_layout": "NHWC" if len(shape) == 3 else ("NTC" if len(shape) == 2 else "ND"),
               "input_shape": json.dumps(list(shape))}
    for key, value in meta.items():
        try:
            entries[str(key)] = value if isinstance(value, str) else json.dumps(value)
        except TypeError as exc:
            raise ExportError(f"export: metadata {key!r} is not JSON-serialisable ({exc})") from None
    helper.set_model_props(proto, entries)


# ------------------------------------------------------------------- converters
def _attr_float(value: float) -> float:
    return float(value)


@register(layer.Dense)
def _dense(ctx: ExportContext, lay: layer.Dense, x: Tensor, out_shape: tuple) -> Tensor:
    x = ctx.channels_last(x)
    w = ctx.constant(lay.params["w"], "w")
    if x.ndim == 2:
        inputs = [x.name, w] + ([ctx.constant(lay.params["b"], "b")] if lay.bias else [])
        return Tensor(ctx.node("Gemm", inputs, "gemm"), out_shape)
    y = ctx.node("MatMul", [x.name, w], "matmul")
    if lay.bias:
        y = ctx.node("Add", [y, ctx.constant(lay.params["b"], "b")], "add")
    return Tensor(y, out_shape)


def _unary(op: str, **attrs: Any) -> Converter:
    def convert(ctx: ExportContext, lay: layer.Layer, x: Tensor, out_shape: tuple) -> Tensor:
        return replace(x, name=ctx.node(op, [x.name], op.lower(), **attrs), shape=out_shape)

    return convert


register(layer.ReLU)(_unary("Relu"))
register(layer.Sigmoid)(_unary("Sigmoid"))
register(layer.Tanh)(_unary("Tanh"))
register(layer.SELU)(_unary("Selu", alpha=layer.SELU.ALPHA, gamma=layer.SELU.SCALE))


@register(layer.Identity, layer.Dropout, layer.Dropout2D)
def _identity(ctx: ExportContext, lay: layer.Layer, x: Tensor, out_shape: tuple) -> Tensor:
    return replace(x, shape=out_shape)  # evaluation mode: no node at all


@register(layer.LeakyReLU)
def _leaky_relu(ctx: ExportContext, lay: layer.LeakyReLU, x: Tensor, out_shape: tuple) -> Tensor:
    return replace(x, name=ctx.node("LeakyRelu", [x.name], alpha=lay.negative_slope), shape=out_shape)


@register(layer.ELU)
def _elu(ctx: ExportContext, lay: layer.ELU, x: Tensor, out_shape: tuple) -> Tensor:
    return replace(x, name=ctx.node("Elu", [x.name], alpha=lay.alpha), shape=out_shape)


@register(layer.SiLU)
def _silu(ctx: ExportContext, lay: layer.SiLU, x: Tensor, out_shape: tuple) -> Tensor:
    s = ctx.node("Sigmoid", [x.name])
    return replace(x, name=ctx.node("Mul", [x.name, s], "silu"), shape=out_shape)


@register(layer.Softplus)
def _softplus(ctx: ExportContext, lay: layer.Softplus, x: Tensor, out_shape: tuple) -> Tensor:
    if lay.beta == 1.0:
        return replace(x, name=ctx.node("Softplus", [x.name]), shape=out_shape)
    scaled = ctx.node("Mul", [x.name, ctx.constant(lay.beta, "beta")], "scaled")
    sp = ctx.node("Softplus", [scaled])
    return replace(x, name=ctx.node("Div", [sp, ctx.constant(lay.beta, "beta")], "softplus"), shape=out_shape)


@register(layer.GELU)
def _gelu(ctx: ExportContext, lay: layer.GELU, x: Tensor, out_shape: tuple) -> Tensor:
    if ctx.opset >= 20:
        return replace(x, name=ctx.node("Gelu", [x.name], approximate=lay.approximate), shape=out_shape)
    half = ctx.constant(0.5, "half")
    one = ctx.constant(1.0, "one")
    if lay.approximate == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = ctx.node("Mul", [x.name, ctx.node("Mul", [x.name, x.name], "sq")], "cube")
        inner = ctx.node("Add", [x.name, ctx.node("Mul", [cube, ctx.constant(0.044715, "c")])], "inner")
        t = ctx.node("Tanh", [ctx.node("Mul", [inner, ctx.constant(math.sqrt(2.0 / math.pi), "k")])])
    else:  # 0.5 x (1 + erf(x / sqrt(2)))
        t = ctx.node("Erf", [ctx.node("Mul", [x.name, ctx.constant(1.0 / math.sqrt(2.0), "inv_sqrt2")])])
    y = ctx.node("Mul", [ctx.node("Mul", [x.name, half]), ctx.node("Add", [t, one])], "gelu")
    return replace(x, name=y, shape=out_shape)


@register(layer.Softmax)
def _softmax(ctx: ExportContext, lay: layer.Softmax, x: Tensor, out_shape: tuple) -> Tensor:
    x = ctx.channels_last(x)
    return Tensor(ctx.node("Softmax", [x.name], axis=lay.axis), out_shape)


@register(layer.Flatten)
def _flatten(ctx: ExportContext, lay: layer.Flatten, x: Tensor, out_shape: tuple) -> Tensor:
    x = ctx.channels_last(x)
    return Tensor(ctx.node("Flatten", [x.name], axis=1), out_shape)


@register(layer.Reshape)
def _reshape(ctx: ExportContext, lay: layer.Reshape, x: Tensor, out_shape: tuple) -> Tensor:
    x = ctx.channels_last(x)
    shape = ctx.ints([0, *lay.shape], "shape")  # 0: keep the (dynamic) batch axis
    return Tensor(ctx.node("Reshape", [x.name, shape]), out_shape)


def _spatial_pads(before_after: Sequence[tuple[int, int]]) -> list[int]:
    """ONNX ``pads``: all begins, then all ends."""
    return [p[0] for p in before_after] + [p[1] for p in before_after]


@register(layer.Conv2D, layer.Conv1D)
def _conv(ctx: ExportContext, lay: layer.Conv2D, x: Tensor, out_shape: tuple) -> Tensor:
    from nnframe.layer.conv import _resolve_padding  # noqa: PLC0415 - the layer's own rule for "same"

    x = ctx.channels_first(x)
    one_d = isinstance(lay, layer.Conv1D)
    size = (1, x.shape[1]) if one_d else x.shape[1:3]
    padding = _resolve_padding(lay.padding, size, lay.kernel_size, lay.stride, lay.dilation)
    keep = slice(1, 2) if one_d else slice(0, 2)  # Conv1D is a Conv2D of height 1
    inputs = [x.name, ctx.constant(layout.to_oihw(backend.to_host(lay.params["w"])), "w")]
    if lay.bias:
        inputs.append(ctx.constant(lay.params["b"], "b"))
    y = ctx.node("Conv", inputs, "conv", kernel_shape=list(lay.kernel_size[keep]),
                 strides=list(lay.stride[keep]), dilations=list(lay.dilation[keep]),
                 pads=_spatial_pads(padding[keep]), group=lay.groups)
    return Tensor(y, out_shape, channels_first=True)


@register(layer.Conv2DTranspose)
def _conv_transpose(ctx: ExportContext, lay: layer.Conv2DTranspose, x: Tensor, out_shape: tuple) -> Tensor:
    x = ctx.channels_first(x)
    inputs = [x.name, ctx.constant(layout.to_iohw(backend.to_host(lay.params["w"])), "w")]
    attrs: dict[str, Any] = {}
    if getattr(lay, "groups", 1) != 1:
        attrs["group"] = lay.groups
    if all(op < s for op, s in zip(lay.output_padding, lay.stride, strict=True)):
        if lay.bias:
            inputs.append(ctx.constant(lay.params["b"], "b"))
        y = ctx.node("ConvTranspose", inputs, "conv_transpose", kernel_shape=list(lay.kernel_size),
                     strides=list(lay.stride), dilations=list(lay.dilation),
                     pads=[*lay.padding, *lay.padding], output_padding=list(lay.output_padding), **attrs)
        return Tensor(y, out_shape, channels_first=True)
    # output_padding >= stride (allowed when the dilation is larger; ONNX Runtime refuses it): crop less
    # at the bottom/right instead, and pad zero rows/columns where output_padding exceeds the padding
    after = [max(p - op, 0) for p, op in zip(lay.padding, lay.output_padding, strict=True)]
    extra = [max(op - p, 0) for p, op in zip(lay.padding, lay.output_padding, strict=True)]
    if lay.bias and not any(extra):
        inputs.append(ctx.constant(lay.params["b"], "b"))
    y = ctx.node("ConvTranspose", inputs, "conv_transpose", kernel_shape=list(lay.kernel_size),
                 strides=list(lay.stride), dilations=list(lay.dilation), pads=[*lay.padding, *after], **attrs)
    if any(extra):
        y = ctx.node("Pad", [y, ctx.ints([0, 0, 0, 0, 0, 0, *extra], "pads")], "output_padding")  # NCHW
        if lay.bias:
            y = ctx.node("Add", [y, ctx.constant(backend.to_host(lay.params["b"]).reshape(1, -1, 1, 1), "b")], "bias")
    return Tensor(y, out_shape, channels_first=True)


@register(layer.MaxPool2D, layer.AvgPool2D)
def _pool(ctx: ExportContext, lay: layer.MaxPool2D, x: Tensor, out_shape: tuple) -> Tensor:
    x = ctx.channels_first(x)
    attrs = {"kernel_shape": list(lay.pool_size), "strides": list(lay.stride), "pads": [*lay.padding, *lay.padding]}
    if isinstance(lay, layer.AvgPool2D):
        y = ctx.node("AveragePool", [x.name], "avgpool", count_include_pad=int(lay.count_include_pad), **attrs)
    else:
        y = ctx.node("MaxPool", [x.name], "maxpool", **attrs)
    return Tensor(y, out_shape, channels_first=True)


@register(layer.GlobalAvgPool2D)
def _global_avg_pool(ctx: ExportContext, lay: layer.GlobalAvgPool2D, x: Tensor, out_shape: tuple) -> Tensor:
    x = ctx.channels_first(x)
    pooled = ctx.node("GlobalAveragePool", [x.name])  # (N, C, 1, 1)
    return Tensor(ctx.node("Flatten", [pooled], axis=1), out_shape)  # (N, C)


@register(layer.BatchNorm)
def _batch_norm(ctx: ExportContext, lay: layer.BatchNorm, x: Tensor, out_shape: tuple) -> Tensor:
    # evaluation form: BatchNormalization with the running statistics, channels on axis 1
    x = ctx.channels_first(x)
    inputs = [x.name] + [ctx.constant(arr, key) for key, arr in (
        ("gamma", lay.params["gamma"]), ("beta", lay.params["beta"]),
        ("running_mean", lay.nt_params["running_mean"]), ("running_var", lay.nt_params["running_var"]))]
    y = ctx.node("BatchNormalization", inputs, "batchnorm", epsilon=lay.eps, momentum=1.0 - lay.momentum)
    return Tensor(y, out_shape, channels_first=x.ndim > 2)


@register(layer.LayerNorm)
def _layer_norm(ctx: ExportContext, lay: layer.LayerNorm, x: Tensor, out_shape: tuple) -> Tensor:
    x = ctx.channels_last(x)
    inputs = [x.name, ctx.constant(lay.params["gamma"], "gamma"), ctx.constant(lay.params["beta"], "beta")]
    return Tensor(ctx.node("LayerNormalization", inputs, "layernorm", axis=-1, epsilon=lay.eps), out_shape)


@register(layer.ZeroPad2D)
def _zero_pad(ctx: ExportContext, lay: layer.ZeroPad2D, x: Tensor, out_shape: tuple) -> Tensor:
    left, right, top, bottom = lay.padding
    if x.channels_first:  # (N, C, H, W)
        pads = [0, 0, top, left, 0, 0, bottom, right]
    else:  # (N, H, W, C)
        pads = [0, top, left, 0, 0, bottom, right, 0]
    y = ctx.node("Pad", [x.name, ctx.ints(pads, "pads"), ctx.constant(0.0, "zero")], "pad", mode="constant")
    return replace(x, name=y, shape=out_shape)


@register(Net)
def _nested_net(ctx: ExportContext, lay: Net, x: Tensor, out_shape: tuple) -> Tensor:
    """A net inside a net: its layers, in order, named by their dotted paths (``2.0``, ``2.1``)."""
    shapes = layer_output_shapes(lay, tuple(x.shape[1:]))
    return convert_layers(ctx, lay.layers, x, shapes, prefix=f"{ctx.where}.")


@register(layer.Residual)
def _residual(ctx: ExportContext, lay: layer.Residual, x: Tensor, out_shape: tuple) -> Tensor:
    """``body(x) + shortcut(x)``, added in the body's layout (a conv block stays NCHW)."""
    where = ctx.where
    body = convert_child(ctx, lay.body, x, f"{where}.body")
    skip = x if lay.shortcut is None else convert_child(ctx, lay.shortcut, x, f"{where}.shortcut")
    skip = ctx.channels_first(skip) if body.channels_first else ctx.channels_last(skip)
    return Tensor(ctx.node("Add", [body.name, skip.name], "residual_add"), out_shape, body.channels_first)


# the converters of newer layer families register themselves into the same table
from nnframe.interop import (  # noqa: E402, F401
    onnx_export_attention,
    onnx_export_graph,
    onnx_export_rnn,
    onnx_export_seq,
)
