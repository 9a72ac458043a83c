"""Build a channels-last nnframe ``Net`` from a channels-first chain of operations (ONNX or PyTorch).

Both importers (:mod:`nnframe.interop.onnx_import`, :mod:`nnframe.interop.torch_convert`)
describe the source model as calls on a :class:`NetBuilder` in the source's own terms
(NCHW tensors, OIHW kernels, ``Linear`` weights ``(D_out, D_in)``). The builder keeps track
of how the current source tensor relates to the nnframe tensor computing it:

* ``"same"``: equal (``(N, D)`` rows, or anything before the first convolution);
* ``"cf"``: the source tensor is the nnframe tensor channels-first (nnframe NHWC, source NCHW);
* ``"flat"``: a 2-D source tensor whose features are the nnframe tensor's in another order
  (a channels-first flatten: the next dense layer's weight rows are permuted to match);
* ``"unit"``: the source tensor has trailing unit axes nnframe drops (``(N, C, 1, 1)`` after
  a global pool is nnframe's ``(N, C)``).

So no transpose layer is ever needed for the usual conv -> flatten -> dense stack.
Everything else raises :class:`ConversionError` naming the operation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnframe import backend, layer
from nnframe.interop import layout
from nnframe.layer.container import Container, subtree
from nnframe.net import Net


class ConversionError(ValueError):
    """A source model (ONNX graph or PyTorch module) that has no nnframe equivalent."""


@dataclass
class _Spec:
    cls: type
    kwargs: dict[str, Any]
    params: dict[str, np.ndarray] = field(default_factory=dict)
    nt_params: dict[str, np.ndarray] = field(default_factory=dict)


def _residual(body: list[_Spec], shortcut: list[_Spec]) -> layer.Residual:
    """The ``Residual`` layer of :meth:`NetBuilder.residual`'s spec (a ``Net`` per branch; no shortcut: identity)."""
    return layer.Residual(Net([spec.cls(**spec.kwargs) for spec in body]),
                          Net([spec.cls(**spec.kwargs) for spec in shortcut]) if shortcut else None)


#: a value's layout state: ``(source per-sample shape, kind, flatten index)`` (:meth:`NetBuilder.state`)
State = tuple[tuple[int, ...], str, "np.ndarray | None"]


def merge_layer(what: str, op: str, states: Sequence[State], axis: int | None = None) -> tuple[layer.Layer, State]:
    """The nnframe merge joining values in the layout ``states``, and the state of its output.

    Args:
        what: names the joining operation in errors (``"ONNX import: Add node 'x'"``).
        op: ``"add"``, ``"mul"`` or ``"cat"``.
        states: the joined values' states.
        axis: the source's concatenation axis (batch axis 0), for ``"cat"``.

    Raises:
        ConversionError: for values in different layouts (or flattened ones), ``add``/``mul`` of
            values of different shapes (no broadcasting), or a concatenation along the batch axis.
    """
    kinds = {kind for _, kind, _ in states}
    shapes = [tuple(shape) for shape, _, _ in states]
    if len(kinds) != 1 or kinds & {"flat", "unit"}:
        raise ConversionError(f"{what} joins values of shapes {[(None, *s) for s in shapes]} held in different "
                              "layouts (or a flattened one); nnframe can join only values that all keep one layout")
    kind = kinds.pop()
    if op == "cat":
        ndim = len(shapes[0]) + 1
        axis = int(axis) % ndim
        if axis == 0:
            raise ConversionError(f"{what} joins along the batch axis; nnframe's Concatenate joins features")
        joined = list(shapes[0])
        joined[axis - 1] = sum(s[axis - 1] for s in shapes)
        nn_axis = layout.to_channels_first_perm(ndim)[axis] if kind == "cf" else axis  # source axis -> nnframe's
        return layer.Concatenate(axis=nn_axis), (tuple(joined), kind, None)
    if len(set(shapes)) != 1:
        raise ConversionError(f"{what} broadcasts values of shapes {[(None, *s) for s in shapes]}; only values of "
                              "one shape are joined")
    return (layer.Add() if op == "add" else layer.Multiply()), (shapes[0], kind, None)


class NetBuilder:
    """Collects layers from channels-first operations; :meth:`finish` builds the net.

    Args:
        input_shape: the source's per-sample input shape (no batch axis), e.g. ``(C, H, W)``.
        channels_first: whether that input is channels-first (then the net takes ``(H, W, C)``).
        dtype: the net's dtype.
    """

    def __init__(self, input_shape: Sequence[int], channels_first: bool, dtype: Any = np.float32) -> None:
        self.source_shape = tuple(int(s) for s in input_shape)  # current source per-sample shape
        rank = len(self.source_shape) + 1
        self.kind = "cf" if channels_first and rank >= 3 else "same"
        self.index: np.ndarray | None = None  # "flat": source feature j is nnframe feature index[j]
        self.dtype = np.dtype(dtype)
        self.specs: list[_Spec] = []
        self.integer_input = False
        self.input_shape = self.nnframe_shape()

    @classmethod
    def resume(cls, source_shape: Sequence[int], kind: str, index: np.ndarray | None,
               dtype: Any = np.float32) -> NetBuilder:
        """A builder that goes on from a value another builder left (a branch of a graph), in that
        builder's layout state (:meth:`state`); its net takes that value's nnframe tensor."""
        builder = cls(source_shape, channels_first=False, dtype=dtype)
        builder.kind, builder.index = kind, index
        builder.input_shape = builder.nnframe_shape()
        return builder

    def state(self) -> State:
        """``(source shape, layout kind, flatten index)`` of the current value, for :meth:`resume`."""
        return self.source_shape, self.kind, self.index

    # ------------------------------------------------------------------ helpers
    def nnframe_shape(self) -> tuple[int, ...]:
        """The per-sample shape nnframe holds the current value in (channels-last for ``"cf"``)."""
        s = self.source_shape
        if self.kind == "cf":
            return (*s[1:], s[0])
        if self.kind == "unit":
            return (s[0],)
        return s

    def _add(self, cls: type, params: dict | None = None, nt_params: dict | None = None, **kwargs: Any) -> _Spec:
        spec = _Spec(cls, kwargs, {k: np.asarray(v, self.dtype) for k, v in (params or {}).items()},
                     {k: np.asarray(v, self.dtype) for k, v in (nt_params or {}).items()})
        self.specs.append(spec)
        return spec

    def _need(self, what: str, kinds: Sequence[str], rank: int | None = None) -> None:
        if self.kind not in kinds or (rank is not None and len(self.source_shape) + 1 != rank):
            layout_name = {"same": "as nnframe holds it", "cf": "channels-first", "flat": "a channels-first "
                           "flattening", "unit": "with trailing unit axes"}[self.kind]
            raise ConversionError(f"{what}: cannot map an input of shape (N, {', '.join(map(str, self.source_shape))}) "
                                  f"held {layout_name} onto nnframe's channels-last layers")

    # --------------------------------------------------------------- operations
    def dense(self, weight: np.ndarray, bias: np.ndarray | None, what: str = "Linear") -> None:
        """``y = x @ weight.T + bias`` with ``weight`` ``(D_out, D_in)`` on the last axis."""
        if self.kind == "unit":
            self.kind = "same"
        self._need(what, ("same", "flat"))
        w = layout.from_linear(np.asarray(weight))
        if self.source_shape[-1] != w.shape[0]:
            raise ConversionError(f"{what}: weight expects {w.shape[0]} input features, got input of shape "
                                  f"(N, {', '.join(map(str, self.source_shape))})")
        if self.kind == "flat":
            permuted = np.empty_like(w)
            permuted[self.index] = w  # source feature j is nnframe feature index[j]
            w, self.kind, self.index = permuted, "same", None
        params = {"w": w} if bias is None else {"w": w, "b": bias}
        self._add(layer.Dense, params, num_out=int(w.shape[1]), bias=bias is not None)
        self.source_shape = (*self.source_shape[:-1], int(w.shape[1]))

    def add_bias(self, bias: np.ndarray, what: str = "Add") -> bool:
        """Fold ``+ bias`` into the last layer when it is a bias-less Dense/convolution; ``False`` if not."""
        if not self.specs:
            return False
        spec = self.specs[-1]
        if spec.cls not in (layer.Dense, layer.Conv2D, layer.Conv1D) or spec.kwargs.get("bias", True):
            return False
        out = spec.params["w"].shape[-1]
        b = np.asarray(bias).reshape(-1) if np.asarray(bias).size == out else None
        if b is None:
            return False
        spec.kwargs["bias"] = True
        spec.params["b"] = b.astype(self.dtype)
        return True

    def embedding(self, table: np.ndarray, what: str = "Gather", padding_idx: int | None = None) -> None:
        """A lookup of the (integer) input in ``table`` ``(V, E)``; only as the first operation."""
        if self.specs:
            raise ConversionError(f"{what}: an embedding lookup must read the net's integer input")
        table = np.asarray(table)
        self._add(layer.Embedding, {"weight": table}, num_embeddings=int(table.shape[0]), dim=int(table.shape[1]),
                  padding_idx=None if padding_idx is None else int(padding_idx))
        self.kind, self.integer_input = "same", True
        self.source_shape = (*self.source_shape, int(table.shape[1]))

    def recurrent(self, cls: type, hidden: int, params: dict[str, np.ndarray], what: str = "RNN",
                  **kwargs: Any) -> None:
        """A recurrent layer (RNN/LSTM/GRU with PyTorch's parameters) on ``(N, T, C)``."""
        self._need(what, ("same",), rank=3)
        self._add(cls, params, hidden_size=int(hidden), **kwargs)
        width = hidden * (2 if kwargs.get("bidirectional") else 1)
        steps = self.source_shape[0]
        self.source_shape = (steps, width) if kwargs.get("return_sequences") else (width,)

    def sequence_layer(self, cls: type, params: dict[str, np.ndarray], what: str, **kwargs: Any) -> None:
        """A layer on ``(N, T, C)`` that keeps its shape (positions, a Transformer block);
        ``params`` by their dotted names inside the layer (``"attention.w_qkv"``)."""
        self._need(what, ("same",), rank=3)
        self._add(cls, params, **kwargs)

    def masking(self, mask_value: float, what: str = "Masking") -> None:
        """A :class:`~nnframe.layer.Masking` on ``(N, T, C)``: steps whose features all equal ``mask_value`` zeroed."""
        self._need(what, ("same",), rank=3)
        self._add(layer.Masking, mask_value=float(mask_value))

    def self_attention(self, params: dict[str, np.ndarray], what: str, embed_dim: int, **kwargs: Any) -> None:
        """A :class:`~nnframe.layer.MultiHeadAttention` on ``(N, T, D)``, giving ``(N, T, embed_dim)``."""
        self._need(what, ("same",), rank=3)
        self._add(layer.MultiHeadAttention, params, embed_dim=int(embed_dim), **kwargs)
        self.source_shape = (self.source_shape[0], int(embed_dim))

    def add_positions(self, table: np.ndarray, what: str = "Add") -> bool:
        """``x + table`` for a ``(T, C)`` table on ``(N, T, C)`` input (a PositionalEmbedding); ``False`` if not."""
        table = np.asarray(table)
        if self.kind != "same" or len(self.source_shape) != 2 or table.shape != self.source_shape:
            return False
        self._add(layer.PositionalEmbedding, {"table": table}, max_len=int(table.shape[0]))
        return True

    def conv(self, weight: np.ndarray, bias: np.ndarray | None, strides: Sequence[int], pads: Sequence[int],
             dilations: Sequence[int], groups: int, what: str = "Conv") -> None:
        """A convolution with an OIHW (or OIL) ``weight`` and ONNX ``pads`` (begins, then ends)."""
        weight = np.asarray(weight)
        spatial = weight.ndim - 2
        self._need(what, ("cf",), rank=weight.ndim)
        begins, ends = list(pads[:spatial]), list(pads[spatial:])
        if begins != ends:
            if spatial != 2:
                raise ConversionError(f"{what}: asymmetric padding {list(pads)} of a 1-D convolution")
            self.pad([0, 0, begins[0], begins[1], 0, 0, ends[0], ends[1]], what)
            begins = [0, 0]
        w = layout.from_oihw(weight)
        params = {"w": w} if bias is None else {"w": w, "b": bias}
        out_channels = int(weight.shape[0])
        if spatial == 2:
            self._add(layer.Conv2D, params, out_channels=out_channels, kernel_size=list(weight.shape[2:]),
                      stride=list(strides), padding=list(begins), dilation=list(dilations), groups=int(groups),
                      bias=bias is not None)
        elif spatial == 1:
            self._add(layer.Conv1D, params, out_channels=out_channels, kernel_size=int(weight.shape[2]),
                      stride=int(strides[0]), padding=int(begins[0]), dilation=int(dilations[0]),
                      groups=int(groups), bias=bias is not None)
        else:
            raise ConversionError(f"{what}: only 1-D and 2-D convolutions exist in nnframe, got a "
                                  f"{spatial}-D kernel of shape {weight.shape}")
        sizes = [(n + 2 * p - d * (k - 1) - 1) // s + 1 for n, p, d, k, s in
                 zip(self.source_shape[1:], begins, dilations, weight.shape[2:], strides, strict=True)]
        self.source_shape = (out_channels, *sizes)

    def conv_transpose(self, weight: np.ndarray, bias: np.ndarray | None, strides: Sequence[int],
                       pads: Sequence[int], output_padding: Sequence[int], dilations: Sequence[int], groups: int,
                       what: str = "ConvTranspose") -> None:
        """A transposed 2-D convolution with weight ``(C_in, C_out, KH, KW)``."""
        weight = np.asarray(weight)
        self._need(what, ("cf",), rank=4)
        if weight.ndim != 4 or any(end > begin for begin, end in zip(pads[:2], pads[2:], strict=True)):
            raise ConversionError(f"{what}: nnframe's Conv2DTranspose is 2-D and crops at most as much at the "
                                  f"bottom/right as at the top/left; got weight {weight.shape}, pads {list(pads)}")
        # cropping less at the end is output padding: (n-1)s - b - e + ... = (n-1)s - 2b + ... + (b - e)
        output_padding = [op + b - e for op, b, e in zip(output_padding, pads[:2], pads[2:], strict=True)]
        params = {"w": layout.from_iohw(weight)}
        if bias is not None:
            params["b"] = bias
        self._add(layer.Conv2DTranspose, params, out_channels=int(weight.shape[1]) * groups,
                  kernel_size=list(weight.shape[2:]), stride=list(strides), padding=list(pads[:2]),
                  output_padding=list(output_padding), dilation=list(dilations), bias=bias is not None,
                  groups=groups)
        sizes = [(n - 1) * s - 2 * p + d * (k - 1) + op + 1 for n, s, p, d, k, op in
                 zip(self.source_shape[1:], strides, pads[:2], dilations, weight.shape[2:], output_padding,
                     strict=True)]
        self.source_shape = (int(weight.shape[1]) * groups, *sizes)

    def batch_norm(self, gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float,
                   momentum: float = 0.1, what: str = "BatchNormalization") -> None:
        """Batch normalization over axis 1 (channels) in evaluation form; ``momentum`` PyTorch's."""
        rank = len(self.source_shape) + 1
        if self.kind == "flat":  # source feature j is nnframe feature index[j]
            arrays = []
            for values in (gamma, beta, mean, var):
                permuted = np.empty_like(np.asarray(values))
                permuted[self.index] = values
                arrays.append(permuted)
            gamma, beta, mean, var = arrays
        elif not (self.kind == "cf" or (self.kind == "same" and rank == 2)):
            self._need(what, ("cf",))
        momentum = min(max(float(momentum), 0.0), 0.999)
        self._add(layer.BatchNorm, {"gamma": gamma, "beta": beta},
                  {"running_mean": mean, "running_var": var}, momentum=momentum, eps=float(eps))

    def layer_norm(self, gamma: np.ndarray, beta: np.ndarray, eps: float, what: str = "LayerNormalization") -> None:
        """Layer normalization over the last axis."""
        self._need(what, ("same",))
        self._add(layer.LayerNorm, {"gamma": gamma, "beta": beta}, eps=float(eps))

    def activation(self, cls: type, what: str = "", **kwargs: Any) -> None:
        """An element-wise layer (any layout)."""
        self._add(cls, **kwargs)

    def softmax(self, axis: int, what: str = "Softmax") -> None:
        """Softmax along the source's ``axis``."""
        rank = len(self.source_shape) + 1
        axis = axis % rank
        if self.kind == "cf":
            axis = layout.to_channels_first_perm(rank)[axis]
        elif self.kind == "flat" and axis != 1:
            self._need(what, ("same",))
        elif self.kind == "unit":
            if axis != 1:
                self._need(what, ("same",))
        self._add(layer.Softmax, axis=int(axis))

    def pool(self, kind: str, kernel: Sequence[int], strides: Sequence[int], pads: Sequence[int],
             count_include_pad: bool = True, what: str = "Pool") -> None:
        """``kind`` ``"max"`` or ``"avg"`` 2-D pooling with ONNX ``pads``."""
        self._need(what, ("cf",), rank=4)
        if list(pads[:2]) != list(pads[2:]):
            raise ConversionError(f"{what}: nnframe pools pad symmetrically, got pads {list(pads)}")
        cls = layer.MaxPool2D if kind == "max" else layer.AvgPool2D
        extra = {} if kind == "max" else {"count_include_pad": bool(count_include_pad)}
        self._add(cls, pool_size=list(kernel), stride=list(strides), padding=list(pads[:2]), **extra)
        sizes = [(n + 2 * p - k) // s + 1 for n, p, k, s in
                 zip(self.source_shape[1:], pads[:2], kernel, strides, strict=True)]
        self.source_shape = (self.source_shape[0], *sizes)

    def residual(self, body: NetBuilder, shortcut: NetBuilder, what: str = "Residual") -> None:
        """A :class:`~nnframe.layer.Residual` of two branches built from the current value
        (:meth:`resume`); an empty ``shortcut`` is the identity."""
        for branch, name in ((body, "body"), (shortcut, "shortcut")):
            if branch.kind == "flat":
                raise ConversionError(f"{what}: its {name} ends in a channels-first flattening")
        if (body.kind, body.source_shape) != (shortcut.kind, shortcut.source_shape):
            raise ConversionError(f"{what}: the body gives shape (N, {', '.join(map(str, body.source_shape))}) and "
                                  f"the shortcut (N, {', '.join(map(str, shortcut.source_shape))}); they must agree")
        params: dict[str, np.ndarray] = {}
        nt_params: dict[str, np.ndarray] = {}
        for branch, name in ((body, "body"), (shortcut, "shortcut")):
            for i, spec in enumerate(branch.specs):
                params.update({f"{name}.{i}.{k}": v for k, v in spec.params.items()})
                nt_params.update({f"{name}.{i}.{k}": v for k, v in spec.nt_params.items()})
        self.specs.append(_Spec(_residual, {"body": body.specs, "shortcut": shortcut.specs}, params, nt_params))
        self.source_shape, self.kind, self.index = body.source_shape, body.kind, body.index

    def finish_branch(self) -> layer.Layer:
        """:meth:`finish` for a branch of a graph (``inside_graph``): the one layer itself when
        there is one (so a graph's nodes are its layers), else the net."""
        net = self.finish(inside_graph=True)
        return net.layers[0] if len(net.layers) == 1 else net

    def prebuilt(self, lay: Container, state: State) -> None:
        """Append a container already built with its weights (a graph of branches); ``state`` is
        the layout state (:meth:`state`) of the value it gives."""
        self.specs.append(_Spec(lambda: lay, {}, {}, {k: np.asarray(v) for k, v in lay.state_dict().items()}))
        self.source_shape, self.kind, self.index = state

    def global_avg_pool(self, keep_dims: bool = True, what: str = "GlobalAveragePool") -> None:
        """Mean over the spatial axes; the source keeps ``(N, C, 1, 1)`` when ``keep_dims``."""
        self._need(what, ("cf",), rank=4)
        self._add(layer.GlobalAvgPool2D)
        channels = self.source_shape[0]
        self.source_shape, self.kind = ((channels, 1, 1), "unit") if keep_dims else ((channels,), "same")

    def flatten(self, what: str = "Flatten") -> None:
        """Flatten every axis after the batch."""
        size = int(np.prod(self.source_shape))
        if self.kind == "cf":
            self.index = layout.flatten_order(self.nnframe_shape())
            self._add(layer.Flatten)
            self.kind = "flat"
        elif self.kind == "unit":
            self.kind = "same"
        elif len(self.source_shape) > 1:
            self._add(layer.Flatten)
        self.source_shape = (size,)

    def reshape(self, shape: Sequence[int], what: str = "Reshape") -> None:
        """Reshape every sample to ``shape`` (batch axis excluded; one -1 allowed)."""
        shape = [int(s) for s in shape]
        size = int(np.prod(self.source_shape))
        if -1 in shape:
            shape[shape.index(-1)] = size // int(np.prod([s for s in shape if s != -1]))
        if int(np.prod(shape)) != size:
            raise ConversionError(f"{what}: cannot reshape (N, {self.source_shape}) to (N, {shape})")
        if len(shape) == 1:
            return self.flatten(what)
        if tuple(shape) == self.source_shape:
            return None
        if self.kind == "unit" and len(shape) == 1:
            return self.flatten(what)
        self._need(what, ("same",))
        self._add(layer.Reshape, shape=shape)
        self.source_shape = tuple(shape)
        return None

    def transpose(self, perm: Sequence[int], what: str = "Transpose") -> None:
        """Permute the axes (batch axis fixed): only moves between channels-last and channels-first."""
        rank = len(self.source_shape) + 1
        perm = [int(p) % rank for p in perm]
        current = tuple(range(rank)) if self.kind == "same" else layout.to_channels_first_perm(rank)
        if self.kind not in ("same", "cf") or len(perm) != rank or perm[0] != 0:
            raise ConversionError(f"{what}: cannot permute axes {perm} of (N, {self.source_shape})")
        combined = tuple(current[p] for p in perm)
        if combined == tuple(range(rank)):
            self.kind = "same"
        elif combined == layout.to_channels_first_perm(rank):
            self.kind = "cf"
        else:
            raise ConversionError(f"{what}: the permutation {perm} is neither channels-first nor channels-last; "
                                  "nnframe has no transpose layer")
        self.source_shape = tuple(self.source_shape[p - 1] for p in perm[1:])

    def pad(self, pads: Sequence[int], what: str = "Pad") -> None:
        """Zero padding of a 4-D tensor with ONNX ``pads`` (begins, then ends, batch axis included)."""
        pads = [int(p) for p in pads]
        if len(pads) != 8 or min(pads) < 0:
            raise ConversionError(f"{what}: only non-negative zero padding of 4-D tensors, got pads {pads}")
        b, e = pads[:4], pads[4:]
        if self.kind == "cf" and b[:2] == e[:2] == [0, 0]:
            top, left, bottom, right = b[2], b[3], e[2], e[3]
        elif self.kind == "same" and b[0] == e[0] == b[3] == e[3] == 0:
            top, left, bottom, right = b[1], b[2], e[1], e[2]
        else:
            raise ConversionError(f"{what}: only padding of the two spatial axes maps to ZeroPad2D, got pads {pads}")
        self._add(layer.ZeroPad2D, padding=[left, right, top, bottom])
        axes = (1, 2) if self.kind == "cf" else (0, 1)
        shape = list(self.source_shape)
        shape[axes[0]] += top + bottom
        shape[axes[1]] += left + right
        self.source_shape = tuple(shape)

    # ------------------------------------------------------------------- finish
    def finish(self, inside_graph: bool = False) -> Net:
        """The built net in evaluation mode, with every weight set.

        ``inside_graph``: the net is a branch of a graph whose next layers go on from its
        value (:meth:`state`), so it may end in a channels-first flattening they undo.
        """
        if self.kind == "flat" and not inside_graph:
            raise ConversionError("the model ends in a channels-first flatten that no dense layer follows; "
                                  "its output order has no nnframe equivalent")
        layers = [spec.cls(**spec.kwargs) for spec in self.specs]
        net = Net(layers, dtype=self.dtype)
        if self.integer_input:
            net.eval().forward(np.zeros((1, *self.input_shape), dtype=np.int64))  # id 0: a valid lookup
        else:
            net.build((1, *self.input_shape))
        state = {f"{i}.{k}": v for i, spec in enumerate(self.specs) for k, v in {**spec.params,
                                                                                 **spec.nt_params}.items()}
        try:
            net.load_state_dict(state)
        except ValueError as exc:
            raise ConversionError(f"the converted weights do not fit the nnframe layers: {exc}") from None
        return net.eval()


def layer_output_shapes(net: Net, input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Each layer's per-sample output shape, from one zero sample run in evaluation mode.

    Builds the net if it is not built yet. Every layer's training mode is restored after.
    """
    everything = subtree(net)
    modes = [lay.is_training for lay in everything]
    net.eval()
    try:
        integer = bool(net.layers) and net.layers[0].accepts_integer_input
        x = np.zeros((1, *input_shape), dtype=np.int64 if integer else net.dtype)  # id 0 is always valid
        if not net.is_built:
            net.forward(x)
        shapes = []
        out = backend.xp().asarray(x)
        for lay in net.layers:
            out = lay.forward(out)
            shapes.append(tuple(int(s) for s in out.shape[1:]))
        return shapes
    finally:
        for lay, mode in zip(everything, modes, strict=True):
            lay.is_training = mode


def layer_output_shape(lay: layer.Layer, input_shape: tuple[int, ...], dtype: Any) -> tuple[int, ...]:
    """One (built) layer's per-sample output shape for a zero sample, run in evaluation mode."""
    everything = subtree(lay)
    modes = [sub.is_training for sub in everything]
    for sub in everything:
        sub.is_training = False
    try:
        return tuple(int(s) for s in lay.forward(backend.xp().zeros((1, *input_shape), dtype=dtype)).shape[1:])
    finally:
        for sub, mode in zip(everything, modes, strict=True):
            sub.is_training = mode
