"""PyTorch <-> nnframe: :func:`from_module` (``nn.Sequential`` -> ``Net``) and :func:`to_module` (the reverse).

Both keep each side's own conventions: the PyTorch module takes channels-first input
(``(N, C, H, W)``, ``(N, C, L)``), the nnframe net channels-last (``(N, H, W, C)``,
``(N, L, C)``). Weights go through :mod:`nnframe.interop.layout`; a ``Flatten`` of a
channels-first map is matched by permuting the rows of the next dense layer (and of a
batch norm in between), so both sides stay plain stacks of standard layers.

Supported modules (and their nnframe layers): ``Linear`` (Dense), ``Conv1d``/``Conv2d``
(Conv1D/Conv2D, zero padding), ``ConvTranspose2d`` (Conv2DTranspose),
``BatchNorm1d``/``BatchNorm2d`` (BatchNorm), ``LayerNorm`` over the last axis, ``ReLU``,
``LeakyReLU``, ``ELU``, ``SELU``, ``GELU``, ``SiLU``, ``Sigmoid``, ``Tanh``, ``Softplus``,
``Softmax``, ``Identity``, ``Dropout``/``Dropout2d``, ``MaxPool2d``, ``AvgPool2d``,
``AdaptiveAvgPool2d(1)`` (GlobalAvgPool2D), ``Flatten``, ``ZeroPad2d``; nested
``nn.Sequential`` containers are walked in order. Embeddings, positions and Transformer
blocks are converted by :mod:`nnframe.interop.torch_sequence`; ``Residual`` blocks and
functional graphs, both ways, by :mod:`nnframe.interop.torch_graph`; a module that wires its
children in its own ``forward`` is traced by :mod:`nnframe.interop.torch_fx` into a graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from nnframe import backend, layer
from nnframe.graph import Graph
from nnframe.interop import layout, torch_fx, torch_graph, torch_sequence
from nnframe.interop.builder import ConversionError, NetBuilder, layer_output_shape, layer_output_shapes
from nnframe.layer.conv import _resolve_padding
from nnframe.model import Model
from nnframe.net import Net

_CHANNELS_FIRST_MODULES = (nn.Conv1d, nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d, nn.AvgPool2d, nn.BatchNorm2d,
                           nn.AdaptiveAvgPool2d, nn.ZeroPad2d)
_ACTIVATIONS = {nn.ReLU: layer.ReLU, nn.Sigmoid: layer.Sigmoid, nn.Tanh: layer.Tanh, nn.SELU: layer.SELU,
                nn.SiLU: layer.SiLU}
_SKIPPED = (nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d)
#: modules with children that convert whole (not traced)
_WHOLE = (nn.TransformerEncoderLayer, nn.RNNBase, torch_sequence.Recurrent, torch_graph.ResidualBlock,
          torch_graph.GraphModule)


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy()


def _leaves(module: nn.Module) -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        return [(f"{name}.{sub}" if sub else name, leaf) for name, child in module.named_children()
                for sub, leaf in _leaves(child)]
    return [("", module)]


def _pair(value: Any) -> list[int]:
    return [int(value)] * 2 if isinstance(value, int) else [int(v) for v in value]


def _conv_pads(module: nn.Module, spatial: int, in_sizes: Sequence[int]) -> list[int]:
    if module.padding_mode != "zeros":
        raise ConversionError(f"{type(module).__name__}: padding_mode {module.padding_mode!r}; nnframe pads with "
                              "zeros only")
    if module.padding == "valid":
        return [0] * (2 * spatial)
    if module.padding == "same":
        totals = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size, strict=True)]
        return [t // 2 for t in totals] + [t - t // 2 for t in totals]
    pads = [int(p) for p in module.padding]
    return pads + pads


def _first_computing(module: nn.Module) -> nn.Module | None:
    """The first module that computes something, looking into sequentials, residual blocks, graph
    modules and modules that wire their children in ``forward``."""
    if isinstance(module, torch_graph.ResidualBlock):
        return _first_computing(module.body)
    if torch_fx.needs_tracing(module, _WHOLE):
        first = torch_fx.first_module(module)
        return None if first is None else _first_computing(first)
    if isinstance(module, (torch_graph.GraphModule, nn.Sequential)):
        children = module.nodes if isinstance(module, torch_graph.GraphModule) else module.children()
        return next((_first_computing(c) for c in children if not isinstance(c, _SKIPPED)), None)
    return module


def _convert_sequence(b: NetBuilder, name: str, module: nn.Module) -> None:
    """Add a module, or the leaves of an ``nn.Sequential`` in order, to ``b``."""
    for sub, leaf in _leaves(module):
        if not isinstance(leaf, _SKIPPED):
            _convert_one(b, f"{name}.{sub}" if sub else name, leaf)


def _convert_one(b: NetBuilder, name: str, m: nn.Module) -> None:
    what = f"module {name!r} ({type(m).__name__})"
    if isinstance(m, _SKIPPED):
        return
    if isinstance(m, torch_graph.GraphModule):
        torch_graph.graph_from_torch(b, what, m, _convert_sequence)
        return
    if torch_fx.needs_tracing(m, _WHOLE):  # wires its children itself: traced into a graph
        b.prebuilt(*torch_fx.from_traced(m, b, _convert_sequence))
        return
    if isinstance(m, torch_graph.ResidualBlock):
        branches = []
        for part in ("body", "shortcut"):
            branch = NetBuilder.resume(*b.state(), dtype=b.dtype)
            _convert_sequence(branch, f"{name}.{part}", getattr(m, part))
            branches.append(branch)
        b.residual(*branches, what)
        return
    if type(m) in _ACTIVATIONS:
        b.activation(_ACTIVATIONS[type(m)])
    elif isinstance(m, nn.Linear):
        b.dense(_np(m.weight), _np(m.bias), what)
    elif isinstance(m, (nn.Conv1d, nn.Conv2d)):
        spatial = 1 if isinstance(m, nn.Conv1d) else 2
        b.conv(_np(m.weight), _np(m.bias), list(m.stride), _conv_pads(m, spatial, b.source_shape[1:]),
               list(m.dilation), m.groups, what)
    elif isinstance(m, nn.ConvTranspose2d):
        b.conv_transpose(_np(m.weight), _np(m.bias), list(m.stride), [*m.padding, *m.padding],
                         list(m.output_padding), list(m.dilation), m.groups, what)
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        if not m.track_running_stats:
            raise ConversionError(f"{what}: track_running_stats=False has no nnframe equivalent")
        c = m.num_features
        gamma = _np(m.weight) if m.affine else np.ones(c)
        beta = _np(m.bias) if m.affine else np.zeros(c)
        b.batch_norm(gamma, beta, _np(m.running_mean), _np(m.running_var), m.eps,
                     0.1 if m.momentum is None else m.momentum, what)
    elif isinstance(m, nn.LayerNorm):
        if len(m.normalized_shape) != 1:
            raise ConversionError(f"{what}: only normalisation over the last axis, got {tuple(m.normalized_shape)}")
        d = m.normalized_shape[0]
        b.layer_norm(_np(m.weight) if m.weight is not None else np.ones(d),
                     _np(m.bias) if m.bias is not None else np.zeros(d), m.eps, what)
    elif isinstance(m, nn.LeakyReLU):
        b.activation(layer.LeakyReLU, negative_slope=float(m.negative_slope))
    elif isinstance(m, nn.ELU):
        b.activation(layer.ELU, alpha=float(m.alpha))
    elif isinstance(m, nn.GELU):
        b.activation(layer.GELU, approximate=m.approximate)
    elif isinstance(m, nn.Softplus):
        b.activation(layer.Softplus, beta=float(m.beta))
    elif isinstance(m, nn.Softmax):
        b.softmax(-1 if m.dim is None else m.dim, what)
    elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
        kind = "max" if isinstance(m, nn.MaxPool2d) else "avg"
        if m.ceil_mode or (kind == "max" and _pair(m.dilation) != [1, 1]) or \
                (kind == "avg" and m.divisor_override is not None):
            raise ConversionError(f"{what}: ceil_mode, dilation and divisor_override are not supported")
        pads = _pair(m.padding)
        b.pool(kind, _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size), pads + pads,
               getattr(m, "count_include_pad", True), what)
    elif isinstance(m, nn.AdaptiveAvgPool2d):
        if _pair(m.output_size) != [1, 1]:
            raise ConversionError(f"{what}: only output_size 1 (a global average pool), got {m.output_size}")
        b.global_avg_pool(True, what)
    elif isinstance(m, nn.Flatten):
        if m.start_dim != 1 or m.end_dim != -1:
            raise ConversionError(f"{what}: only Flatten(1, -1), got ({m.start_dim}, {m.end_dim})")
        b.flatten(what)
    elif isinstance(m, nn.ZeroPad2d):
        left, right, top, bottom = (int(p) for p in m.padding)
        b.pad([0, 0, top, left, 0, 0, bottom, right], what)
    elif not torch_sequence.from_torch(b, what, m):
        raise ConversionError(f"from_module: cannot convert {what}: no nnframe equivalent is known; supported: "
                              "Linear, Conv1d, Conv2d, ConvTranspose2d, BatchNorm1d/2d, LayerNorm, activations, "
                              "Dropout, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d(1), Flatten, ZeroPad2d, Embedding, "
                              "TransformerEncoderLayer (norm_first, batch_first), nnframe's LearnedPositions, "
                              "SinusoidalPositions and CausalEncoderLayer, Sequential")


def from_module(module: nn.Module, input_shape: Sequence[int]) -> Net:
    """Convert a PyTorch ``nn.Sequential`` (or one module) with its weights into a built nnframe net.

    Args:
        module: the module; nested ``nn.Sequential`` are walked in order.
        input_shape: PyTorch's per-sample input shape without the batch axis, e.g. ``(1, 28, 28)``.

    Returns:
        A :class:`~nnframe.net.Net` in evaluation mode (float32, or float64 for a double module).
        For a channels-first model (its first layer a convolution, pool, 2-D batch norm or
        padding) the net takes channels-last input: ``net.forward(x_nchw.transpose(0, 2, 3, 1))``
        equals ``module(x_nchw)`` (an image-shaped output is channels-last too).

    Raises:
        ConversionError: naming the first module that cannot be converted.
    """
    leaves = [(name, m) for name, m in _leaves(module) if not isinstance(m, _SKIPPED)]
    shape = tuple(int(s) for s in input_shape)
    with torch_fx.traces_kept():  # a module with its own forward is traced once, not once per question
        first = _first_computing(leaves[0][1]) if leaves else None
        channels_first = len(shape) >= 2 and isinstance(first, _CHANNELS_FIRST_MODULES + (nn.BatchNorm1d,)) \
            and not (isinstance(first, nn.BatchNorm1d) and len(shape) == 1)
        dtype = next((p.dtype for p in module.parameters()), torch.float32)
        b = NetBuilder(shape, channels_first, np.float64 if dtype == torch.float64 else np.float32)
        for name, m in leaves:
            _convert_one(b, name, m)
    return b.finish()


# ---------------------------------------------------------------------------- to_module
def to_module(model_or_net: Model | Net | Graph, input_shape: Sequence[int] | None = None) -> nn.Sequential:
    """Convert a nnframe net or graph (or a model's) into a PyTorch ``nn.Sequential`` with the same weights.

    The module takes PyTorch's channels-first input: ``module(x_nchw)`` equals
    ``net.forward(x_nhwc)`` with ``x_nchw = x_nhwc.transpose(0, 3, 1, 2)`` for image nets (an
    image-shaped output comes back channels-first). The module is in evaluation mode.

    Args:
        model_or_net: a :class:`~nnframe.model.Model`, :class:`~nnframe.net.Net` or a
            :class:`~nnframe.graph.Graph` of one input and one output.
        input_shape: nnframe's per-sample input shape; default: the one the net has seen.

    Raises:
        ConversionError: naming the first layer with no PyTorch equivalent in this position
            (a graph of several inputs or outputs, too).
    """
    net = model_or_net.net if isinstance(model_or_net, Model) else model_or_net
    if not isinstance(net, (Net, Graph)):
        raise TypeError(f"to_module: expected a nnframe Model, Net or Graph, got {type(model_or_net).__name__}")
    shape = input_shape if input_shape is not None else (
        model_or_net.input_shape if isinstance(model_or_net, Model) else net.input_shape)
    if isinstance(net, Graph) and (len(net.inputs) != 1 or len(net.outputs) != 1):
        raise ConversionError(f"to_module: a graph converts with one input and one output, got "
                              f"{len(net.inputs)} and {len(net.outputs)}")
    if shape is None:
        raise ConversionError("to_module: the input shape is unknown; pass input_shape=(...) without the batch axis")
    shape = tuple(int(s) for s in shape)
    for where, sub in _named_containers(net):
        if isinstance(sub, Graph) and (len(sub.inputs) != 1 or len(sub.outputs) != 1):
            raise ConversionError(f"to_module: cannot convert layer {where} ({sub.name}): a graph inside a net must "
                                  f"have one input and one output, got {len(sub.inputs)} and {len(sub.outputs)}")
    for where, lay in _named_leaves(net):  # before running anything
        if type(lay) not in _TO_TORCH:
            raise ConversionError(f"to_module: cannot convert layer {where} ({lay.name}, class {type(lay).__name__}): "
                                  f"no PyTorch equivalent is known; convertible: "
                                  f"{', '.join(sorted(c.__name__ for c in _TO_TORCH))}")
        if type(lay) in torch_sequence.LAYERS:
            torch_sequence.check_convertible(lay, f"layer {where} ({lay.name})")
    if isinstance(net, Net):
        layer_output_shapes(net, shape)  # builds the net if needed
    elif not net.is_built:
        net.build((1, *shape))
    dtype = torch.float64 if np.dtype(net.dtype) == np.float64 else torch.float32
    conv_like = (layer.Conv2D, layer.Conv1D, layer.Conv2DTranspose, layer.MaxPool2D, layer.AvgPool2D,
                 layer.GlobalAvgPool2D, layer.ZeroPad2D, layer.BatchNorm)
    leaves = _named_leaves(net)
    first = leaves[0][1] if leaves else None
    state = _ToTorch(dtype, "cf" if len(shape) >= 2 and isinstance(first, conv_like) else "same", net.dtype)
    _convert(state, "", net, shape)
    if state.kind == "flat":
        raise ConversionError("to_module: the net ends in a Flatten of an image that no Dense follows; "
                              "PyTorch would order its output channels-first")
    return nn.Sequential(*state.modules).eval()


def _convert(state: _ToTorch, where: str, lay: layer.Layer, in_shape: tuple) -> tuple:
    """Append the PyTorch module(s) for ``lay`` (a nested net, ``Residual`` or graph too); its output shape."""
    if isinstance(lay, Net):
        for index, child in enumerate(lay.layers):
            in_shape = _convert(state, f"{where}.{index}" if where else str(index), child, in_shape)
        return in_shape
    if isinstance(lay, layer.Residual):
        return torch_graph.residual(state, where, lay, in_shape, _convert)
    if isinstance(lay, Graph):
        return torch_graph.graph(state, where, lay, in_shape, _convert)
    state.convert(where, lay, in_shape)
    return layer_output_shape(lay, in_shape, np.int64 if lay.accepts_integer_input else state.np_dtype)


def _named_containers(lay: layer.Layer, where: str = "") -> list[tuple[str, layer.Layer]]:
    """``(dotted path, container)`` of ``lay`` and every net, residual block and graph under it."""
    if not isinstance(lay, (Net, layer.Residual, Graph)):
        return []
    out = [(where, lay)]
    for name, child in lay.sublayers():
        out += _named_containers(child, f"{where}.{name}" if where else name)
    return out


def _named_leaves(lay: layer.Layer, where: str = "") -> list[tuple[str, layer.Layer]]:
    """``(dotted path, layer)`` of every layer under ``lay`` that is not a container (nets, residual
    blocks and graphs are walked; a graph's merges are leaves)."""
    if not isinstance(lay, (Net, layer.Residual, Graph)):
        return [(where, lay)]
    out: list[tuple[str, layer.Layer]] = []
    for name, child in lay.sublayers():
        out += _named_leaves(child, f"{where}.{name}" if where else name)
    return out


_TO_TORCH = {*torch_sequence.LAYERS, *torch_graph.MERGES, layer.ReLU, layer.Sigmoid, layer.Tanh, layer.SELU, layer.SiLU,
             layer.Identity, layer.LeakyReLU,
             layer.ELU, layer.GELU, layer.Softplus, layer.Dropout, layer.Dropout2D, layer.Dense, layer.Conv2D,
             layer.Conv1D, layer.Conv2DTranspose, layer.BatchNorm, layer.LayerNorm, layer.Softmax, layer.MaxPool2D,
             layer.AvgPool2D, layer.GlobalAvgPool2D, layer.Flatten, layer.ZeroPad2D}


class _ToTorch:
    """Walks nnframe layers, tracking how the PyTorch tensor relates to nnframe's (as :class:`NetBuilder`)."""

    def __init__(self, dtype: torch.dtype, kind: str, np_dtype: Any = np.float32) -> None:
        self.dtype = dtype
        self.np_dtype = np.dtype(np_dtype)  # the net's, for running layers on zero samples
        self.kind = kind  # "same", "cf" (PyTorch holds it channels-first) or "flat" (features reordered)
        self.index: np.ndarray | None = None
        self.modules: list[nn.Module] = []

    def branch(self) -> _ToTorch:
        """A walker for a branch from the current value: the same layout state, no modules yet."""
        other = _ToTorch(self.dtype, self.kind, self.np_dtype)
        other.index = self.index
        return other

    def _need(self, index: str, lay: layer.Layer, kinds: Sequence[str], in_shape: tuple) -> None:
        if self.kind not in kinds:
            raise ConversionError(f"to_module: cannot convert layer {index} ({lay.name}) on input of shape "
                                  f"(N, {', '.join(map(str, in_shape))}) held "
                                  f"{'channels-first' if self.kind == 'cf' else 'as a reordered flattening'} "
                                  "by PyTorch")

    def _set(self, module: nn.Module, **arrays: np.ndarray | None) -> nn.Module:
        module = module.to(self.dtype)
        with torch.no_grad():
            for key, value in arrays.items():
                if value is not None:
                    getattr(module, key).copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float64)))
        self.modules.append(module)
        return module

    def convert(self, index: str, lay: layer.Layer, in_shape: tuple) -> None:
        """Append the PyTorch module(s) for ``lay`` on per-sample input ``in_shape``."""
        cls = type(lay)
        if cls in torch_sequence.LAYERS:
            self._need(index, lay, ("same",), in_shape)
            self.modules.append(torch_sequence.to_torch(lay, self.dtype, f"layer {index} ({lay.name})"))
            return
        p = {k: backend.to_host(v) for k, v in lay.params.items() if v is not None}
        nt = {k: backend.to_host(v) for k, v in lay.nt_params.items() if v is not None}
        simple = {layer.ReLU: nn.ReLU, layer.Sigmoid: nn.Sigmoid, layer.Tanh: nn.Tanh, layer.SELU: nn.SELU,
                  layer.SiLU: nn.SiLU, layer.Identity: nn.Identity}
        if cls in simple:
            self.modules.append(simple[cls]())
        elif cls is layer.LeakyReLU:
            self.modules.append(nn.LeakyReLU(lay.negative_slope))
        elif cls is layer.ELU:
            self.modules.append(nn.ELU(lay.alpha))
        elif cls is layer.GELU:
            self.modules.append(nn.GELU(approximate=lay.approximate))
        elif cls is layer.Softplus:
            self.modules.append(nn.Softplus(beta=lay.beta, threshold=1e9))
        elif cls in (layer.Dropout, layer.Dropout2D):
            self.modules.append((nn.Dropout if cls is layer.Dropout else nn.Dropout2d)(lay.rate))
        elif cls is layer.Dense:
            self._need(index, lay, ("same", "flat"), in_shape)
            w = p["w"] if self.kind == "same" else p["w"][self.index]  # PyTorch feature j is nnframe's index[j]
            self._set(nn.Linear(w.shape[0], w.shape[1], bias=lay.bias), weight=layout.to_linear(w), bias=p.get("b"))
            self.kind = "same"
        elif cls in (layer.Conv2D, layer.Conv1D):
            self._conv(index, lay, in_shape, p)
        elif cls is layer.Conv2DTranspose:
            self._need(index, lay, ("cf",), in_shape)
            w = p["w"]
            groups = getattr(lay, "groups", 1)
            module = nn.ConvTranspose2d(w.shape[3], w.shape[2] * groups, tuple(w.shape[:2]), stride=lay.stride,
                                        padding=lay.padding, output_padding=lay.output_padding,
                                        dilation=lay.dilation, groups=groups, bias=lay.bias)
            self._set(module, weight=layout.to_iohw(w), bias=p.get("b"))
        elif cls is layer.BatchNorm:
            self._batch_norm(index, lay, in_shape, p, nt)
        elif cls is layer.LayerNorm:
            self._need(index, lay, ("same",), in_shape)
            self._set(nn.LayerNorm(in_shape[-1], eps=lay.eps), weight=p["gamma"], bias=p["beta"])
        elif cls is layer.Softmax:
            ndim = len(in_shape) + 1
            axis = lay.axis % ndim
            if self.kind == "cf":
                axis = layout.to_channels_first_perm(ndim).index(axis)
            elif self.kind == "flat" and axis != 1:
                self._need(index, lay, ("same",), in_shape)
            self.modules.append(nn.Softmax(dim=axis))
        elif cls in (layer.MaxPool2D, layer.AvgPool2D):
            self._need(index, lay, ("cf",), in_shape)
            if cls is layer.MaxPool2D:
                self.modules.append(nn.MaxPool2d(lay.pool_size, lay.stride, lay.padding))
            else:
                self.modules.append(nn.AvgPool2d(lay.pool_size, lay.stride, lay.padding,
                                                 count_include_pad=lay.count_include_pad))
        elif cls is layer.GlobalAvgPool2D:
            self._need(index, lay, ("cf",), in_shape)
            self.modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            self.kind = "same"
        elif cls is layer.Flatten:
            if self.kind == "cf":
                self.index = layout.flatten_order(in_shape)
                self.kind = "flat"
            self.modules.append(nn.Flatten())
        elif cls is layer.ZeroPad2D:
            self._need(index, lay, ("cf",), in_shape)
            self.modules.append(nn.ZeroPad2d(tuple(lay.padding)))
        else:
            raise ConversionError(f"to_module: cannot convert layer {index} ({lay.name}, class {cls.__name__}): "
                                  "no PyTorch equivalent is known")

    def _conv(self, index: str, lay: layer.Conv2D, in_shape: tuple, p: dict) -> None:
        self._need(index, lay, ("cf",), in_shape)
        one_d = isinstance(lay, layer.Conv1D)
        size = (1, in_shape[0]) if one_d else in_shape[:2]
        (top, bottom), (left, right) = _resolve_padding(lay.padding, size, lay.kernel_size, lay.stride, lay.dilation)
        keep = slice(1, 2) if one_d else slice(0, 2)
        if (top, left) != (bottom, right):
            if one_d:
                raise ConversionError(f"to_module: layer {index} ({lay.name}): asymmetric padding of a 1-D conv")
            self.modules.append(nn.ZeroPad2d((left, right, top, bottom)))
            top = left = 0
        w = p["w"]
        cls = nn.Conv1d if one_d else nn.Conv2d
        module = cls(w.shape[-2] * lay.groups, w.shape[-1], lay.kernel_size[keep], stride=lay.stride[keep],
                     padding=(top, left)[keep], dilation=lay.dilation[keep], groups=lay.groups, bias=lay.bias)
        self._set(module, weight=layout.to_oihw(w), bias=p.get("b"))

    def _batch_norm(self, index: str, lay: layer.BatchNorm, in_shape: tuple, p: dict, nt: dict) -> None:
        ndim = len(in_shape) + 1
        if self.kind == "same" and ndim > 2:
            self._need(index, lay, ("cf",), in_shape)
        arrays = {"weight": p["gamma"], "bias": p["beta"], "running_mean": nt["running_mean"],
                  "running_var": nt["running_var"]}
        if self.kind == "flat":  # PyTorch feature j is nnframe feature index[j]
            arrays = {k: v[self.index] for k, v in arrays.items()}
        cls = nn.BatchNorm2d if ndim == 4 else nn.BatchNorm1d
        self._set(cls(len(p["gamma"]), eps=lay.eps, momentum=lay.momentum), **arrays)
