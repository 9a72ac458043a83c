"""ONNX converters for the attention family: MultiHeadAttention (self-attention), positional encodings,
Transformer blocks.

Registered into :mod:`nnframe.interop.onnx_export`'s table when that module loads. The
sequence length ``T`` is fixed by the exported input shape (only the batch is dynamic), so
positional tables and causal masks are constants.
"""

from __future__ import annotations

import math

import numpy as np

from nnframe import backend, layer
from nnframe.interop.onnx_export import ExportContext, Tensor, convert_child, register
from nnframe.layer.position import sinusoid_table


@register(layer.PositionalEmbedding)
def _positional_embedding(ctx: ExportContext, lay: layer.PositionalEmbedding, x: Tensor, out_shape: tuple) -> Tensor:
    x = ctx.channels_last(x)
    steps = x.shape[1]
    table = ctx.constant(backend.to_host(lay.params["table"])[:steps], "table")  # (T, C)
    return Tensor(ctx.node("Add", [x.name, table], "add_positions"), out_shape)


@register(layer.SinusoidalPositionalEncoding)
def _sinusoidal(ctx: ExportContext, lay: layer.SinusoidalPositionalEncoding, x: Tensor, out_shape: tuple) -> Tensor:
    x = ctx.channels_last(x)
    table = ctx.constant(sinusoid_table(x.shape[1], x.shape[2], lay.base), "table")  # (T, C)
    return Tensor(ctx.node("Add", [x.name, table], "add_positions"), out_shape)


@register(layer.MultiHeadAttention)
def _multi_head_attention(ctx: ExportContext, lay: layer.MultiHeadAttention, x: Tensor, out_shape: tuple) -> Tensor:
    """Self-attention on ``(N, T, D)``: projections, per-head scaled scores, softmax, output projection."""
    x = ctx.channels_last(x)
    steps, e, h, d = x.shape[1], lay.embed_dim, lay.num_heads, lay.head_dim
    w = backend.to_host(lay.params["w_qkv"])  # (D, 3E): query, key, value blocks
    b = backend.to_host(lay.params["b_qkv"]) if lay.bias else None
    heads_shape = ctx.ints([0, steps, h, d], "heads_shape")
    parts = []
    for k, role in enumerate(("q", "k", "v")):
        y = ctx.node("MatMul", [x.name, ctx.constant(w[:, k * e:(k + 1) * e], f"w_{role}")], f"proj_{role}")
        if b is not None:
            y = ctx.node("Add", [y, ctx.constant(b[k * e:(k + 1) * e], f"b_{role}")], f"proj_{role}_bias")
        y = ctx.node("Reshape", [y, heads_shape], f"{role}_heads")  # (N, T, h, d)
        perm = [0, 2, 3, 1] if role == "k" else [0, 2, 1, 3]  # k: (N, h, d, T); q, v: (N, h, T, d)
        parts.append(ctx.node("Transpose", [y], f"{role}_by_head", perm=perm))
    q, k, v = parts
    q = ctx.node("Mul", [q, ctx.constant(1.0 / math.sqrt(d), "scale")], "q_scaled")
    scores = ctx.node("MatMul", [q, k], "scores")  # (N, h, T, T)
    if lay.causal:
        hidden = np.triu(np.ones((steps, steps), dtype=bool), k=1)  # key after query
        scores = ctx.node("Add", [scores, ctx.constant(np.where(hidden, -np.inf, 0.0), "causal_mask")], "masked")
    weights = ctx.node("Softmax", [scores], "weights", axis=-1)
    attended = ctx.node("MatMul", [weights, v], "attended")  # (N, h, T, d)
    merged = ctx.node("Transpose", [attended], "merge", perm=[0, 2, 1, 3])  # (N, T, h, d)
    merged = ctx.node("Reshape", [merged, ctx.ints([0, steps, e], "merged_shape")], "merged")  # (N, T, E)
    out = ctx.node("MatMul", [merged, ctx.constant(lay.params["w_out"], "w_out")], "out_proj")
    if lay.bias:
        out = ctx.node("Add", [out, ctx.constant(lay.params["b_out"], "b_out")], "out_proj_bias")
    return Tensor(out, out_shape)


@register(layer.TransformerEncoderBlock, layer.TransformerDecoderBlock)
def _transformer_block(ctx: ExportContext, lay: layer.TransformerEncoderBlock, x: Tensor,
                       out_shape: tuple) -> Tensor:
    """Pre-norm block: ``h = x + attention(norm1(x))``, ``y = h + ff2(act(ff1(norm2(h))))`` (dropouts: nothing)."""
    x = ctx.channels_last(x)
    where = ctx.where
    a = x
    for name in ("norm1", "attention", "dropout1"):
        a = convert_child(ctx, getattr(lay, name), a, f"{where}.{name}")
    h = Tensor(ctx.node("Add", [x.name, a.name], "residual1"), x.shape)
    f = h
    for name in ("norm2", "ff1", "activation", "dropout_ff", "ff2", "dropout2"):
        f = convert_child(ctx, getattr(lay, name), f, f"{where}.{name}")
    return Tensor(ctx.node("Add", [h.name, f.name], "residual2"), out_shape)
