"""Multi-head scaled dot-product attention (Vaswani et al., 2017, https://arxiv.org/abs/1706.03762).

Sequences are NTC: a query ``(N, T, D)`` attends over keys and values ``(N, S, D)``.
Every head is computed at once with batched matrix products over ``(N, heads)``;
there is no Python loop over heads or over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnframe import backend
from nnframe import functional as F
from nnframe import initializer as init_mod
from nnframe import random as nn_random
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer, as_shape, check_rate


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


class MultiHeadAttention(Layer):
    """Multi-head attention: ``softmax(Q K^T / sqrt(d) + mask) V`` per head, then an output projection.

    Called on one array it is self-attention (query = key = value = ``inputs``); on a
    list ``[query, key_value]`` or ``[query, key, value]`` it is cross-attention, and
    :meth:`backward` then returns one gradient per input, in the same order.

    ``causal=True`` lets query position ``i`` see key positions ``j <= i`` only. A
    ``key_padding_mask`` (``(N, S)`` bool, ``True`` = padding, PyTorch's convention)
    hides padded keys. In a :class:`~nnframe.net.Net` the mask of padded steps made by
    ``Embedding(mask_padding=True)`` or ``Masking`` (``True`` = a real step, Keras's
    convention) arrives as ``mask=`` and hides those keys the same way; the layer passes
    it on (its output has the query's steps). A query row whose keys are all hidden gets zero attention
    weights (its output is the output bias), never NaN.

    Parameters follow ``torch.nn.MultiheadAttention``'s layout, transposed like
    :class:`~nnframe.layer.Dense`: ``w_qkv = in_proj_weight.T``, ``b_qkv = in_proj_bias``,
    ``w_out = out_proj.weight.T``, ``b_out = out_proj.bias``; head ``h`` uses columns
    ``h*d:(h+1)*d`` of each of the query, key and value blocks.

    Args:
        embed_dim: ``E``, the width of the projected queries, keys and values and of the output.
        num_heads: number of heads; must divide ``embed_dim`` (head size ``d = E / heads``).
        dropout: dropout rate on the attention weights (training only), in ``[0, 1)``.
        bias: whether the projections have biases.
        causal: mask out keys after the query's position.
        rng: seed or generator for the dropout masks.

    Shapes:
        query ``(N, T, D)``, key and value ``(N, S, D)`` (``D`` inferred on first call,
        shared by all three); output ``(N, T, E)``; weights ``(N, heads, T, S)``;
        ``params["w_qkv"]``: ``(D, 3E)``, ``params["b_qkv"]``: ``(3E,)``,
        ``params["w_out"]``: ``(E, E)``, ``params["b_out"]``: ``(E,)``.
    """

    accepts_mask = True

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        causal: bool = False,
        rng: int | np.random.Generator | None = None,
        name: str | None = None,
    ) -> None:
        owner = type(self).__name__
        self.embed_dim = _positive_int(owner, "embed_dim", embed_dim)
        self.num_heads = _positive_int(owner, "num_heads", num_heads)
        if self.embed_dim % self.num_heads:
            raise ValueError(f"{owner}: embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        self.bias = bool(bias)
        self.causal = bool(causal)
        super().__init__(name)
        self.dropout = check_rate(owner, "dropout", dropout)
        self.rng = nn_random.get_rng(rng)
        self._causal_keep: Array | None = None  # the (T, S) 0/1 causal factor of the last call
        e = self.embed_dim
        self.initializers = {"w_qkv": init_mod.XavierUniform(), "w_out": init_mod.XavierUniform()}
        self.shapes = {"w_qkv": [None, 3 * e], "w_out": [e, e]}
        if self.bias:
            self.initializers.update(b_qkv=init_mod.Zeros(), b_out=init_mod.Zeros())
            self.shapes.update(b_qkv=[3 * e], b_out=[e])

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("w_qkv", "b_qkv", "w_out", "b_out") if self.bias else ("w_qkv", "w_out")

    @property
    def head_dim(self) -> int:
        """``d = embed_dim / num_heads``."""
        return self.embed_dim // self.num_heads

    # ------------------------------------------------------------------ forward
    def forward(self, inputs: Array | Sequence[Array], key_padding_mask: Array | None = None,
                return_weights: bool = False, mask: Array | None = None) -> Array | tuple[Array, Array]:
        """Attend from the query over the keys; see the class docstring.

        Args:
            inputs: ``(N, T, D)`` for self-attention, or ``[query, key_value]`` /
                ``[query, key, value]``.
            key_padding_mask: optional ``(N, S)`` bool array, ``True`` where a key is padding.
            return_weights: also return the attention weights ``(N, heads, T, S)``
                (before dropout).
            mask: optional ``(N, S)`` bool array, ``True`` where a key is a real step (the
                mask route's convention); its complement is added to ``key_padding_mask``.
                In a graph, a layer called on ``[query, key_value]`` or ``[query, key, value]``
                gets its inputs' masks as a list: the key's is used.

        Returns:
            the output ``(N, T, E)``, or ``(output, weights)``.
        """
        query, key, value, kind = self._split_inputs(inputs)
        if isinstance(mask, list):  # the inputs' masks, from a graph node: the keys' one counts
            mask = mask[0] if kind == "self" else mask[1]
        if mask is not None:
            padding = ~backend.xp().asarray(mask, dtype=bool)
            key_padding_mask = padding if key_padding_mask is None else (padding | key_padding_mask)
        self._build_and_check(query, key, value)
        n, t, s = query.shape[0], query.shape[1], key.shape[1]
        e, h, d = self.embed_dim, self.num_heads, self.head_dim
        xp = backend.xp()
        w, b = self._scaled_projection()
        if kind == "self":
            qkv = self._project(query, w, b, 0, 3 * e).reshape(n, t, 3, h, d)
            q, k, v = qkv.transpose(2, 0, 3, 1, 4)  # each (N, h, T, d), views; q already scaled
        else:
            q = self._project(query, w, b, 0, e).reshape(n, t, h, d).transpose(0, 2, 1, 3)  # (N, h, T, d)
            if kind == "kv":
                kv = self._project(key, w, b, e, 3 * e).reshape(n, s, 2, h, d)
                k, v = kv.transpose(2, 0, 3, 1, 4)  # each (N, h, S, d)
            else:
                k = self._project(key, w, b, e, 2 * e).reshape(n, s, h, d).transpose(0, 2, 1, 3)
                v = self._project(value, w, b, 2 * e, 3 * e).reshape(n, s, h, d).transpose(0, 2, 1, 3)
        k_t = xp.ascontiguousarray(k.transpose(0, 1, 3, 2))  # (N, h, d, S): the product runs ~2x faster
        scores = q @ k_t  # (N, h, T, S), already divided by sqrt(d)
        keep = self._keep(n, t, s, key_padding_mask, scores.dtype)  # broadcastable to (N, h, T, S)
        weights, inv_total = F.masked_exp(scores, axis=-1, keep=keep, overwrite=True)  # hidden: 0
        normalized = self.is_training or return_weights
        if normalized:  # backward and the caller need the weights; else (e @ v) is scaled, half the size
            weights *= inv_total  # (N, h, T, S); fully hidden rows are 0
        dropped, drop_mask = self._dropout(weights)
        attended = xp.empty((n, t, h, d), dtype=scores.dtype)  # (N, T, h, d) = (N, T, E) rows
        heads = attended.transpose(0, 2, 1, 3)  # (N, h, T, d) view: the product lands in (N, T, E) order
        xp.matmul(dropped, v, out=heads)
        if not normalized:  # scale (N, T, h, d) in memory order by a small (N, T, h, 1) copy: 2x faster
            attended *= xp.ascontiguousarray(inv_total.transpose(0, 2, 1, 3))
        attended = attended.reshape(n, t, e)
        out = attended.reshape(n * t, e) @ self.params["w_out"]  # one 2-D product (see _project)
        if self.bias:
            out += self.params["b_out"]
        out = out.reshape(n, t, e)
        self.ctx = {"inputs": (query, key, value), "kind": kind, "q": q, "k": k, "v": v, "weights": weights,
                    "inv_total": None if normalized else inv_total, "dropped": dropped, "drop_mask": drop_mask,
                    "attended": attended}
        return (out, weights) if return_weights else out

    def _scaled_projection(self) -> tuple[Array, Array | None]:
        """``w_qkv`` and ``b_qkv`` with the query columns times ``1 / sqrt(d)``: the projection
        then gives the scaled queries directly (no pass over ``(N, h, T, d)``). Copies of
        ``(D, 3E)`` and ``(3E,)``; the parameters themselves are untouched."""
        e, scale = self.embed_dim, 1.0 / math.sqrt(self.head_dim)
        w = self.params["w_qkv"].copy()
        w[:, :e] *= scale
        b = self.params.get("b_qkv")
        if b is not None:
            b = b.copy()
            b[:e] *= scale
        return w, b

    def _split_inputs(self, inputs: Any) -> tuple[Array, Array, Array, str]:
        if isinstance(inputs, (list, tuple)):
            if len(inputs) == 2:
                return inputs[0], inputs[1], inputs[1], "kv"
            if len(inputs) == 3:
                return inputs[0], inputs[1], inputs[2], "qkv"
            raise ShapeError(f"{self.name}: expected one array or a list [query, key_value] or "
                             f"[query, key, value], got a list of {len(inputs)}")
        return inputs, inputs, inputs, "self"

    def build(self, input_shape: Any) -> None:
        query, _, _ = self._check_shapes(input_shape)
        e = self.embed_dim
        self.shapes = {"w_qkv": (query[-1], 3 * e), "w_out": (e, e)}
        if self.bias:
            self.shapes.update(b_qkv=(3 * e,), b_out=(e,))

    def compute_output_shape(self, input_shape: Any) -> tuple[int, ...]:
        query, key, value = self._check_shapes(input_shape)
        features = self.shapes["w_qkv"][0]
        if features is not None:
            for role, shape in (("query", query), ("key", key), ("value", value)):
                if shape[-1] != features:
                    raise ShapeError(f"{self.name} was built for {features} features, got {role} of shape "
                                     f"{shape}")
        return (query[0], query[1], self.embed_dim)

    def _check_shapes(self, input_shape: Any) -> tuple[tuple[int, ...], ...]:
        """``(query, key, value)`` shapes of one shape (self-attention) or a list of 2 or 3."""
        shapes = as_shape(input_shape)
        if isinstance(shapes, tuple):
            shapes = [shapes]
        if len(shapes) not in (1, 2, 3):
            raise ShapeError(f"{self.name}: expected one array or a list [query, key_value] or "
                             f"[query, key, value], got a list of {len(shapes)}")
        query, key, value = (shapes * 3)[:3] if len(shapes) == 1 else (shapes[0], shapes[1], shapes[-1])
        for role, shape in (("query", query), ("key", key), ("value", value)):
            if not isinstance(shape, tuple) or len(shape) != 3:
                raise ShapeError(f"{self.name} expects {role} of shape (N, T, D), got {shape}")
        if key[:2] != value[:2]:
            raise ShapeError(f"{self.name}: key and value must share (N, S), got {key} and {value}")
        if query[0] != key[0]:
            raise ShapeError(f"{self.name}: query and key batch sizes differ: {query} vs {key}")
        return query, key, value

    def _build_and_check(self, query: Array, key: Array, value: Array) -> None:
        for role, x in (("query", query), ("key", key), ("value", value)):
            if getattr(x, "ndim", None) != 3:
                raise ShapeError(f"{self.name} expects {role} of shape (N, T, D), got "
                                 f"{getattr(x, 'shape', type(x).__name__)}")
        shapes = [query.shape, key.shape, value.shape]
        if not self.is_init:
            self.build(shapes)
            self._init_params()
        self.compute_output_shape(shapes)
        for x in (query, key, value):
            self._check_dtype(x)

    def _project(self, x: Array, w: Array, b: Array | None, start: int, stop: int) -> Array:
        """``x @ w[:, start:stop] + b[start:stop]``: ``(N, L, D) -> (N, L, stop - start)``.

        The product runs on the ``(N L, D)`` rows: NumPy computes a 3-D @ 2-D product as one
        GEMM per sample, 12-15% slower on one thread and up to 2.6x on two (N=16, L=64,
        D=128 -> 128 or 384; ``/work/scratch``-style medians of 300 calls)."""
        out = x.reshape(-1, x.shape[-1]) @ w[:, start:stop]
        if b is not None:
            out += b[start:stop]
        return out.reshape(*x.shape[:-1], stop - start)

    def _keep(self, n: int, t: int, s: int, key_padding_mask: Array | None, dtype: Any) -> Array | None:
        """The visible (query, key) pairs as a 0/1 array of ``dtype`` broadcastable to
        ``(N, h, T, S)`` (``(T, S)``, ``(N, 1, 1, S)`` or ``(N, 1, T, S)``), or None."""
        xp = backend.xp()
        keep = None
        if self.causal:
            keep = self._causal_keep
            if keep is None or keep.shape != (t, s) or keep.dtype != dtype:
                keep = self._causal_keep = xp.tri(t, s, dtype=dtype)  # (T, S): 1 where key <= query
        if key_padding_mask is not None:
            pad = xp.asarray(key_padding_mask)
            if pad.dtype != bool or pad.shape != (n, s):
                raise ShapeError(f"{self.name}: key_padding_mask must be a bool array of shape ({n}, {s}) "
                                 f"(True = padding), got {pad.dtype} {tuple(pad.shape)}")
            real = (~pad).astype(dtype)[:, None, None, :]  # (N, 1, 1, S)
            keep = real if keep is None else real * keep  # (N, 1, T, S)
        return keep

    def _dropout(self, weights: Array) -> tuple[Array, Array | None]:
        if not self.is_training or self.dropout == 0.0:
            return weights, None
        keep = 1.0 - self.dropout
        draws = self.rng.random(weights.shape, dtype=np.float32)
        mask = backend.xp().asarray(draws < keep).astype(weights.dtype)
        mask *= 1.0 / keep
        return weights * mask, mask

    # ----------------------------------------------------------------- backward
    def backward(self, grad: Array) -> Array | list[Array] | None:
        xp = backend.xp()
        c = self.ctx
        query, key, value = c["inputs"]
        kind = c["kind"]
        n, t, e = grad.shape
        s, h, d = key.shape[1], self.num_heads, self.head_dim
        g2 = grad.reshape(n * t, e)
        xp.matmul(c["attended"].reshape(n * t, e).T, g2, out=self._grad_buffer("w_out"))
        if self.bias:
            xp.dot(xp.ones(n * t, dtype=g2.dtype), g2, out=self._grad_buffer("b_out"))  # column sums, one BLAS call
        d_att = (g2 @ self.params["w_out"].T).reshape(n, t, h, d).transpose(0, 2, 1, 3)  # (N, h, T, d)
        weights, dropped = c["weights"], c["dropped"]
        if c["inv_total"] is not None:  # an evaluation-mode forward left exp(scores) unnormalised
            weights = dropped = c["weights"] = c["dropped"] = weights * c["inv_total"]
            c["inv_total"] = None
        d_q, d_k, d_v, blocks = self._projection_grad_buffers(kind, n, t, s, grad.dtype)
        xp.matmul(dropped.transpose(0, 1, 3, 2), d_att, out=d_v)  # (N, h, S, d)
        d_w = d_att @ c["v"].transpose(0, 1, 3, 2)  # (N, h, T, S)
        if c["drop_mask"] is not None:
            d_w *= c["drop_mask"]
        # softmax backward: dscores = w * (dw - sum(dw * w)), the row sums without a (N, h, T, S) product
        d_w -= xp.einsum("nhts,nhts->nht", d_w, weights)[..., None]
        d_w *= weights
        xp.matmul(d_w, c["k"], out=d_q)  # (N, h, T, d)
        d_q *= 1.0 / math.sqrt(d)  # w.r.t. the unscaled queries
        xp.matmul(d_w.transpose(0, 1, 3, 2), c["q"], out=d_k)  # (N, h, S, d)
        d_x = [self._project_backward(x, d_out, start, stop) for x, d_out, start, stop in blocks]
        if kind == "self":
            return d_x[0]
        return d_x if self.requires_input_grad else None

    def _projection_grad_buffers(self, kind: str, n: int, t: int, s: int,
                                 dtype: Any) -> tuple[Array, Array, Array, list[tuple[Any, ...]]]:
        """Where backward writes the query, key and value gradients: ``(N, h, L, d)`` views of
        the ``(N * L, columns)`` matrices :meth:`_project_backward` takes (no stacking copy),
        and those matrices as ``(input, d_out, start, stop)``."""
        xp = backend.xp()
        query, key, value = self.ctx["inputs"]
        e, h, d = self.embed_dim, self.num_heads, self.head_dim
        if kind == "self":
            flat = xp.empty((n, t, 3, h, d), dtype=dtype)  # (N, T, 3E) rows: query, key, value columns
            d_q, d_k, d_v = (flat[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # each (N, h, T, d)
            return d_q, d_k, d_v, [(query, flat.reshape(n * t, 3 * e), 0, 3 * e)]
        flat_q = xp.empty((n, t, h, d), dtype=dtype)
        d_q = flat_q.transpose(0, 2, 1, 3)  # (N, h, T, d)
        blocks = [(query, flat_q.reshape(n * t, e), 0, e)]
        if kind == "kv":
            flat_kv = xp.empty((n, s, 2, h, d), dtype=dtype)  # key and value columns
            d_k, d_v = (flat_kv[:, :, i].transpose(0, 2, 1, 3) for i in range(2))  # each (N, h, S, d)
            return d_q, d_k, d_v, [*blocks, (key, flat_kv.reshape(n * s, 2 * e), e, 3 * e)]
        flat_k, flat_v = (xp.empty((n, s, h, d), dtype=dtype) for _ in range(2))
        d_k, d_v = (f.transpose(0, 2, 1, 3) for f in (flat_k, flat_v))  # each (N, h, S, d)
        return d_q, d_k, d_v, [*blocks, (key, flat_k.reshape(n * s, e), e, 2 * e),
                               (value, flat_v.reshape(n * s, e), 2 * e, 3 * e)]

    def _project_backward(self, x: Array, d_out: Array, start: int, stop: int) -> Array | None:
        """Write columns ``start:stop`` of the ``w_qkv`` (and ``b_qkv``) gradient of
        ``x @ w[:, start:stop] + b[start:stop]`` and return ``dx``.

        ``x`` is ``(N, L, D)``, ``d_out`` is ``(N * L, stop - start)``. Every backward pass
        writes all ``3E`` columns (query, then key and value), so nothing stale remains.
        """
        xp = backend.xp()
        x2 = x.reshape(-1, x.shape[-1])  # (N * L, D)
        xp.matmul(x2.T, d_out, out=self._grad_buffer("w_qkv")[:, start:stop])
        if self.bias:
            xp.dot(xp.ones(d_out.shape[0], dtype=d_out.dtype), d_out, out=self._grad_buffer("b_qkv")[start:stop])
        if not self.requires_input_grad:
            return None
        return (d_out @ self.params["w_qkv"][:, start:stop].T).reshape(x.shape)

    def compute_mask(self, inputs: Any, mask: Any) -> Array | None:
        """The query's mask passes on: the output has the query's steps."""
        return mask[0] if isinstance(mask, list) else mask

    def get_config(self) -> dict[str, Any]:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "dropout": self.dropout,
                "bias": self.bias, "causal": self.causal, **super().get_config()}

