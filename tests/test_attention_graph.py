"""Cross-attention through the functional graph API: a decoder layer reads an encoder's memory."""

from __future__ import annotations

import numpy as np

import nnframe
from nnframe import backend, layer
from nnframe.gradcheck import gradcheck, smooth_input


def _encoder_decoder():
    source = nnframe.Input(shape=(5, 8), name="source")
    target = nnframe.Input(shape=(4, 8), name="target")
    memory = layer.TransformerEncoderBlock(8, 2, ff_dim=12)(source)
    h = layer.MultiHeadAttention(8, 2, causal=True)(target)  # causal self-attention
    h = layer.Add()([target, h])
    attended = layer.MultiHeadAttention(8, 2)([layer.LayerNorm()(h), memory])  # cross-attention
    out = layer.Dense(3)(layer.Add()([h, attended]))
    return nnframe.Graph(inputs=[source, target], outputs=out)


def test_cross_attention_in_a_graph_is_gradient_checked():
    rng = np.random.default_rng(0)
    with backend.default_dtype("float64"):
        graph = _encoder_decoder()
        x = [smooth_input((2, 5, 8), seed=1), smooth_input((2, 4, 8), seed=2)]
        report = gradcheck(graph, x)
    assert {"input.0", "input.1"} <= set(report)
    assert any(name.endswith("w_qkv") for name in report) and any(".ff1." in name for name in report)
    graph32 = _encoder_decoder()
    y = graph32.forward([rng.normal(size=(3, 5, 8)).astype(np.float32), rng.normal(size=(3, 4, 8)).astype(np.float32)])
    assert y.shape == (3, 4, 3) and y.dtype == np.float32
