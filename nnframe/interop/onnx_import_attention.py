"""Recognise the self-attention nnframe's exporter writes, and import it as one ``MultiHeadAttention``.

:mod:`nnframe.interop.onnx_export_attention` spells ``MultiHeadAttention`` (self-attention) as
a fixed run of nodes reading one value ``x`` of shape ``(N, T, D)``::

    for q, k, v:  MatMul(x, W) [+ Add(b)] -> Reshape(0, T, h, d) -> Transpose
    Mul(q, 1/sqrt(d)) -> MatMul(q, k) [-> Add(causal mask)] -> Softmax(-1) -> MatMul(., v)
    -> Transpose(0, 2, 1, 3) -> Reshape(0, T, E) -> MatMul(W_out) [+ Add(b_out)]

:func:`match` checks a run of nodes against that pattern, constants included (the scale is
``1/sqrt(d)``, the mask hides exactly the keys after each query), and returns the layer's
options and parameters; anything else is not attention to this module and is left to the
other importers (which refuse a product of two values by name).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx

from nnframe.interop.onnx_pattern import Cursor, closed


@dataclass
class Attention:
    """A recognised self-attention: where the run ends, the layer's options and its parameters."""

    end: int
    options: dict[str, Any]
    params: dict[str, np.ndarray]


def match(nodes: Sequence[onnx.NodeProto], start: int, current: str, constants: dict[str, np.ndarray],
          consumers: dict[str, int]) -> Attention | None:
    """The self-attention that ``nodes[start:]`` spell on the value ``current``, or ``None``.

    Every value the run computes but its last is read only inside the run (``consumers``).
    """
    c = Cursor(nodes, start, constants)
    weights, biases, shapes, heads = {}, {}, set(), {}
    for role, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        found = c.take("MatMul", [current], constant=True)
        if found is None or found[1].ndim != 2:
            return None
        node, weights[role] = found
        value = node.output[0]
        bias = c.take("Add", [value], constant=True)
        if bias is not None:
            node, biases[role] = bias
            value = node.output[0]
        reshape = c.take("Reshape", [value], constant=True)
        if reshape is None:
            return None
        shapes.add(tuple(int(s) for s in reshape[1]))
        transpose = c.take("Transpose", [reshape[0].output[0]])
        if transpose is None or list(c.attrs(transpose).get("perm", [])) != perm:
            return None
        heads[role] = transpose.output[0]
    if len(shapes) != 1 or len(biases) not in (0, 3):
        return None
    shape = shapes.pop()
    if len(shape) != 4 or shape[0] != 0:
        return None
    steps, h, d = shape[1:]
    e = h * d
    if any(w.shape[1] != e for w in weights.values()):
        return None
    scaled = c.take("Mul", [heads["q"]], constant=True)
    if scaled is None or scaled[1].size != 1 or \
            not math.isclose(float(scaled[1].reshape(-1)[0]), 1.0 / math.sqrt(d), rel_tol=1e-6):
        return None
    scores = c.take("MatMul", [scaled[0].output[0], heads["k"]])
    if scores is None:
        return None
    value = scores.output[0]
    masked = c.take("Add", [value], constant=True)
    causal = masked is not None
    if causal:
        hidden = np.triu(np.ones((steps, steps), dtype=bool), k=1)
        if masked[1].shape != (steps, steps) or not (np.all(np.isneginf(masked[1][hidden]))
                                                     and np.all(masked[1][~hidden] == 0)):
            return None
        value = masked[0].output[0]
    softmax = c.take("Softmax", [value])
    if softmax is None or c.attrs(softmax).get("axis") not in (-1, 3):  # explicit: the default differs by opset
        return None
    attended = c.take("MatMul", [softmax.output[0], heads["v"]])
    merge = attended and c.take("Transpose", [attended.output[0]])
    if merge is None or list(c.attrs(merge).get("perm", [])) != [0, 2, 1, 3]:
        return None
    merged = c.take("Reshape", [merge.output[0]], constant=True)
    if merged is None or [int(s) for s in merged[1]] != [0, steps, e]:
        return None
    out = c.take("MatMul", [merged[0].output[0]], constant=True)
    if out is None or out[1].shape != (e, e):
        return None
    last = out[0].output[0]
    out_bias = c.take("Add", [last], constant=True) if biases else None
    if biases and (out_bias is None or out_bias[1].shape != (e,)):
        return None
    if out_bias is not None:
        last = out_bias[0].output[0]
    if not closed(nodes[start:c.at], last, consumers):  # a value of the run read elsewhere
        return None
    params = {"w_qkv": np.concatenate([weights[r] for r in "qkv"], axis=1), "w_out": out[1]}
    if biases:
        params.update(b_qkv=np.concatenate([biases[r].reshape(-1) for r in "qkv"]), b_out=out_bias[1])
    return Attention(c.at, {"embed_dim": e, "num_heads": h, "causal": causal, "bias": bool(biases)}, params)
