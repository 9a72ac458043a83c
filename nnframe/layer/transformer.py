"""Transformer blocks as containers of existing layers (pre-norm, Xiong et al. 2020,
https://arxiv.org/abs/2002.04745)::

    h = x + Dropout(MultiHeadAttention(LayerNorm(x)))
    y = h + Dropout(Dense_E(Dropout(act(Dense_F(LayerNorm(h))))))

:class:`TransformerEncoderBlock` is ``torch.nn.TransformerEncoderLayer(norm_first=True,
batch_first=True)``; :class:`TransformerDecoderBlock` is the same block with causal
self-attention, the block of a decoder-only (GPT-style) language model.

The blocks are :class:`~nnframe.layer.container.Container`\\ s: their parameters live in
the outermost model's flat buffers, named ``"<block>.attention.w_qkv"``,
``"<block>.ff1.w"`` and so on.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnframe import backend, blas_env, threads
from nnframe import random as nn_random
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.activation import GELU, ReLU
from nnframe.layer.attention import MultiHeadAttention, _positive_int
from nnframe.layer.base import Layer, check_rate
from nnframe.layer.container import Container
from nnframe.layer.dense import Dense
from nnframe.layer.dropout import Dropout
from nnframe.layer.norm import LayerNorm

_ACTIVATIONS = {"relu": ReLU, "gelu": GELU}


class TransformerEncoderBlock(Container):
    """A pre-norm Transformer block: self-attention and a two-layer MLP, each in a residual.

    Args:
        embed_dim: ``E``, the width of the input and output.
        num_heads: attention heads (must divide ``embed_dim``).
        ff_dim: hidden width of the MLP (default ``4 * embed_dim``).
        dropout: dropout rate on the attention weights, after the attention, inside
            and after the MLP (as PyTorch's ``dropout``), in ``[0, 1)``.
        activation: ``"relu"`` (PyTorch's default) or ``"gelu"``.
        causal: causal self-attention (see :class:`TransformerDecoderBlock`).
        eps: the layer norms' epsilon.
        rng: seed or generator for the dropout masks.

    Shapes: input and output ``(N, T, E)``. Call ``forward(x, key_padding_mask=pad)``
    with a ``(N, T)`` bool mask (``True`` = padding) to hide padded steps from attention;
    in a :class:`~nnframe.net.Net` the mask made by ``Embedding(mask_padding=True)`` arrives
    as ``mask=`` (``True`` = a real step), does the same, and passes on.
    """

    accepts_mask = True

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int | None = None, dropout: float = 0.0,
                 activation: str = "relu", causal: bool = False, eps: float = 1e-5,
                 rng: int | np.random.Generator | None = None, name: str | None = None,
                 dtype: Any = None) -> None:
        owner = type(self).__name__
        self.embed_dim = _positive_int(owner, "embed_dim", embed_dim)
        self.num_heads = _positive_int(owner, "num_heads", num_heads)
        self.ff_dim = 4 * self.embed_dim if ff_dim is None else _positive_int(owner, "ff_dim", ff_dim)
        self.dropout = check_rate(owner, "dropout", dropout)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{owner}: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        self.activation_name = activation
        self.causal = bool(causal)
        self.eps = float(eps)
        super().__init__(name=name, dtype=dtype)
        rng = nn_random.get_rng(rng)
        self.norm1 = LayerNorm(eps)
        self.attention = MultiHeadAttention(self.embed_dim, self.num_heads, dropout=self.dropout,
                                            causal=self.causal, rng=rng)
        self.dropout1 = Dropout(self.dropout, rng=rng)
        self.norm2 = LayerNorm(eps)
        self.ff1 = Dense(self.ff_dim)
        # ReLU overwrites ff1's output, which nothing else reads (Dense keeps its input)
        self.activation = ReLU(inplace=True) if activation == "relu" else _ACTIVATIONS[activation]()
        self.dropout_ff = Dropout(self.dropout, rng=rng)
        self.ff2 = Dense(self.embed_dim)
        self.dropout2 = Dropout(self.dropout, rng=rng)
        self._children = [(n, getattr(self, n)) for n in (
            "norm1", "attention", "dropout1", "norm2", "ff1", "activation", "dropout_ff", "ff2", "dropout2")]
        self.rng = rng  # shared by the dropouts: rewinding it replays every mask (gradcheck)
        self._key_padding_mask: Array | None = None

    def sublayers(self) -> list[tuple[str, Layer]]:
        """The children by name, in the order they run."""
        return self._children

    def forward(self, inputs: Array, key_padding_mask: Array | None = None, mask: Array | None = None) -> Array:
        """``(N, T, E) -> (N, T, E)``; ``key_padding_mask`` ``(N, T)`` bool, ``True`` = padding;
        ``mask`` (the mask route's) ``(N, T)`` bool, ``True`` = a real step."""
        if mask is not None:
            padding = ~np.asarray(mask, dtype=bool)
            key_padding_mask = padding if key_padding_mask is None else (padding | key_padding_mask)
        self._key_padding_mask = key_padding_mask
        return super().forward(inputs)

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array | None:
        """The mask passes on (one output step per input step)."""
        return mask

    def shape_walk(self, input_shape: Any, build: bool) -> list[Any]:
        """The children's output shapes in order; the last (``dropout2``'s) is the block's."""
        self._check_width(input_shape)
        shape, outputs = input_shape, []
        for name, child in self._children:
            try:
                shape = self.child_shape(child, shape, build)
            except ShapeError as exc:
                raise ShapeError(f"{self.name}.{name}: {exc}") from None
            outputs.append(shape)
        return outputs

    def _check_width(self, shape: Any) -> None:
        if not isinstance(shape, tuple) or len(shape) != 3 or shape[-1] != self.embed_dim:
            raise ShapeError(f"{self.name} expects input of shape (N, T, embed_dim={self.embed_dim}) for its "
                             f"residual connections, got {shape}")

    def _set_input_grad(self, value: bool) -> None:
        self.norm1.requires_input_grad = value

    def run_forward(self, inputs: Array) -> Array:
        """The two residual branches (see the module docstring).

        In evaluation mode a large batch is split between threads (:mod:`nnframe.threads`):
        every sample's output depends on that sample only, so each thread runs the whole
        block on its slice with one BLAS thread, and NumPy's single-threaded element-wise
        passes use every core. The first slice runs on the children themselves, each other
        slice on *twins* of them (:meth:`_twins`: the same parameters, their own ``ctx`` and
        gradients), so a backward pass after it runs per slice too and adds the twins'
        gradients to the children's in slice order. A training pass runs in one piece, its
        products on the BLAS's threads: split the same way it was slower (the decoder-only
        benchmark's step, 2 threads, medians of 9 alternating rounds: 134 vs 116 ms and
        146 vs 140 ms in two runs).
        """
        self._check_width(tuple(getattr(inputs, "shape", ())))
        pad = self._key_padding_mask
        slices = self._batch_slices(inputs)
        if len(slices) == 1:
            self.ctx = {}
            return self._run_rows(dict(self._children), inputs, pad)
        sets = [dict(self._children), *(self._twins() for _ in slices[1:])]
        by_start = {part.start: layers for part, layers in zip(slices, sets, strict=True)}
        out = backend.xp().empty_like(inputs)
        threads.map_slices(lambda part: self._run_rows(by_start[part.start], inputs[part],
                                                       None if pad is None else pad[part], out=out[part]), slices)
        self.ctx = {"slices": list(slices), "sets": sets}  # a fresh dict: a shared block's uses keep theirs
        return out

    def _batch_slices(self, inputs: Array) -> threads.Slices:
        """How the batch is split between threads (one slice: not split; see :meth:`run_forward`)."""
        built = all(c.is_init or not c.param_names for _, c in self._children)
        per_sample = inputs.shape[1] * (2 * self.embed_dim + self.ff_dim)  # ~ the values one sample touches
        # with OpenBLAS's workers spinning after the previous product (NumPy imported before nnframe,
        # nnframe.blas_env), the slices share the cores with them: one forward of the benchmark's model,
        # 2 threads, 29 ms split against 19-21 ms whole (15.8 ms split with the workers asleep)
        if not built or self.is_training or not blas_env.workers_sleep_soon():
            return threads.batch_slices(inputs.shape[0], per_sample, num_threads=1)
        return threads.batch_slices(inputs.shape[0], per_sample)

    def _twins(self) -> dict[str, Layer]:
        """Shallow copies of the children for one batch slice: they share the children's
        parameters (the same ``params`` dicts) and have their own ``ctx`` and ``grads``."""
        twins = {}
        for name, child in self._children:
            twin = copy.copy(child)
            twin.ctx, twin.grads = {}, {}
            twins[name] = twin
        return twins

    @staticmethod
    def _run_rows(layers: Mapping[str, Layer], inputs: Array, pad: Array | None, out: Array | None = None) -> Array:
        """The block on ``inputs`` (all or a slice of the batch) through ``layers`` (the children
        or their twins, by name), the output written to ``out`` if given."""
        a = layers["norm1"].forward(inputs)
        a = layers["attention"].forward(a, key_padding_mask=pad)
        h = layers["dropout1"].forward(a)  # a fresh array no layer keeps: the residual is added in place
        h += inputs
        f = layers["norm2"].forward(h)
        for name in ("ff1", "activation", "dropout_ff", "ff2"):
            f = layers[name].forward(f)
        y = layers["dropout2"].forward(f)  # likewise fresh
        return backend.xp().add(y, h, out=y if out is None else out)

    def run_backward(self, grad: Array) -> Array | None:
        """Back through both branches; the residuals add the incoming gradient."""
        sets = self.ctx.get("sets")
        if sets is None:
            return self._backward_rows(dict(self._children), grad)
        slices = self.ctx["slices"]
        for twins in sets[1:]:  # set after the forward made them
            for name, child in self._children:
                twins[name].requires_input_grad = child.requires_input_grad
        dx = backend.xp().empty_like(grad) if self.norm1.requires_input_grad else None
        by_start = {part.start: layers for part, layers in zip(slices, sets, strict=True)}

        def backward_slice(part: slice) -> None:
            g = self._backward_rows(by_start[part.start], grad[part])
            if dx is not None:
                dx[part] = g

        threads.map_slices(backward_slice, slices)
        for twins in sets[1:]:  # the slices' parameter gradients, added in slice order
            for name, child in self._children:
                for key, g in twins[name].grads.items():
                    child.grads[key] += g
        return dx

    @staticmethod
    def _backward_rows(layers: Mapping[str, Layer], grad: Array) -> Array | None:
        """Backward through ``layers`` (the children or one slice's twins) for ``grad`` of their rows."""
        g = layers["dropout2"].backward(grad)
        for name in ("ff2", "dropout_ff", "activation", "ff1"):
            g = layers[name].backward(g)
        g_h = layers["norm2"].backward(g)
        g_h += grad
        g = layers["attention"].backward(layers["dropout1"].backward(g_h))
        g = layers["norm1"].backward(g)
        if g is None:  # requires_input_grad is False
            return None
        g += g_h
        return g

    def get_config(self) -> dict[str, Any]:
        config = {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "ff_dim": self.ff_dim,
                  "dropout": self.dropout, "activation": self.activation_name, "causal": self.causal,
                  "eps": self.eps}
        return {**config, **({"name": self._name} if self._name else {})}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TransformerEncoderBlock:
        """Rebuild an (unbuilt) block from :meth:`get_config`'s output."""
        return cls(**config)


class TransformerDecoderBlock(TransformerEncoderBlock):
    """The decoder-only (GPT-style) block: :class:`TransformerEncoderBlock` with causal
    self-attention, so step ``t`` sees steps ``<= t`` only. No cross-attention (that is
    :class:`~nnframe.layer.MultiHeadAttention` called on ``[query, memory]``).

    Args: as :class:`TransformerEncoderBlock`, without ``causal``.
    """

    def __init__(self, embed_dim: int, num_heads: int, ff_dim: int | None = None, dropout: float = 0.0,
                 activation: str = "relu", eps: float = 1e-5, rng: int | np.random.Generator | None = None,
                 name: str | None = None, dtype: Any = None) -> None:
        super().__init__(embed_dim, num_heads, ff_dim=ff_dim, dropout=dropout, activation=activation,
                         causal=True, eps=eps, rng=rng, name=name, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        del config["causal"]
        return config
