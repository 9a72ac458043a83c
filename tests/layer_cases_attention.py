"""Conformance cases of the attention and positional layers.

The conformance test feeds one array, so cross-attention and masked attention are
checked through :class:`_Split`, a test-only layer that cuts its input ``(N, T + S, D)``
into a query ``(N, T, D)`` and keys/values, and passes a fixed key-padding mask; its
parameters are the wrapped layer's own dicts, so the gradient check covers them.
"""

from __future__ import annotations

import numpy as np
from layer_cases import Case

from nnframe import layer
from nnframe.layer.base import Layer


class _Split(Layer):
    """Test helper: ``(N, T + S, D)`` -> ``attention([x[:, :T], x[:, T:], ...], key_padding_mask)``."""

    def __init__(self, inner: layer.MultiHeadAttention, query_len: int, parts: int = 2,
                 pad: np.ndarray | None = None) -> None:
        self.inner, self.query_len, self.parts, self.pad = inner, query_len, parts, pad
        super().__init__()
        self.params, self.grads = inner.params, inner.grads
        self.rng = inner.rng  # rewound by gradcheck for the dropout masks

    @property
    def param_names(self) -> tuple[str, ...]:
        return self.inner.param_names

    @property
    def is_training(self) -> bool:
        return self.inner.is_training

    @is_training.setter
    def is_training(self, value: bool) -> None:
        self.inner.is_training = value

    def _shapes(self, input_shape):
        n, total, d = input_shape
        t = self.query_len
        if self.parts == 1:
            return input_shape
        if self.parts == 2:
            return [(n, t, d), (n, total - t, d)]
        s = (total - t) // 2
        return [(n, t, d), (n, s, d), (n, total - t - s, d)]

    def build(self, input_shape):
        self.inner.build(self._shapes(input_shape))

    def compute_output_shape(self, input_shape):
        return self.inner.compute_output_shape(self._shapes(input_shape))

    def state_shapes(self):
        return self.inner.state_shapes()

    @property
    def is_init(self):
        return self.inner.is_init

    def _init_params(self, dtype=None):
        self.inner._init_params(dtype)

    def forward(self, inputs):
        t = self.query_len
        query, rest = inputs[:, :t], inputs[:, t:]
        if self.parts == 1:  # self-attention with a mask
            return self.inner.forward(inputs, key_padding_mask=self.pad)
        if self.parts == 2:
            return self.inner.forward([query, rest], key_padding_mask=self.pad)
        s = rest.shape[1] // 2
        return self.inner.forward([query, rest[:, :s], rest[:, s:]], key_padding_mask=self.pad)

    def backward(self, grad):
        self.inner.requires_input_grad = True
        grads = self.inner.backward(grad)
        return grads if self.parts == 1 else np.concatenate(grads, axis=1)  # (N, T + S, D)


# (N=2, S=4): the second sample's last two keys are padding
_PAD = np.array([[False, False, False, False], [False, False, True, True]])
# the second sample's keys are all padding: its rows must come out finite (zero attention)
_PAD_ALL = np.array([[False, True, False, False], [True, True, True, True]])

ATTENTION_CASES = [
    Case("MultiHeadAttention", lambda: layer.MultiHeadAttention(6, 2), (2, 4, 5), output_shape=(2, 4, 6)),
    Case("MultiHeadAttention-causal", lambda: layer.MultiHeadAttention(4, 2, causal=True), (2, 5, 4)),
    Case("MultiHeadAttention-nobias-1head", lambda: layer.MultiHeadAttention(3, 1, bias=False), (3, 3, 2)),
    Case("MultiHeadAttention-dropout", lambda: layer.MultiHeadAttention(4, 2, dropout=0.3, rng=0), (2, 4, 4),
         train_differs=True),
    Case("MultiHeadAttention-cross-kv", lambda: _Split(layer.MultiHeadAttention(4, 2), 3), (2, 7, 4),
         output_shape=(2, 3, 4)),
    Case("MultiHeadAttention-cross-qkv-causal",
         lambda: _Split(layer.MultiHeadAttention(4, 2, causal=True), 3, parts=3), (2, 11, 4)),
    Case("MultiHeadAttention-padding", lambda: _Split(layer.MultiHeadAttention(4, 2), 4, 1, _PAD), (2, 4, 3)),
    Case("MultiHeadAttention-padding-all-masked-causal",
         lambda: _Split(layer.MultiHeadAttention(4, 2, causal=True), 3, 2, _PAD_ALL), (2, 7, 4)),
    Case("PositionalEmbedding", lambda: layer.PositionalEmbedding(6), (2, 4, 3), output_shape=(2, 4, 3)),
    Case("PositionalEmbedding-full", lambda: layer.PositionalEmbedding(4), (2, 4, 3)),
    Case("SinusoidalPositionalEncoding", lambda: layer.SinusoidalPositionalEncoding(), (2, 5, 5)),
]

BLOCK_CASES = [
    Case("TransformerEncoderBlock", lambda: layer.TransformerEncoderBlock(4, 2, ff_dim=6), (2, 3, 4),
         output_shape=(2, 3, 4)),
    Case("TransformerDecoderBlock-dropout-gelu",
         lambda: layer.TransformerDecoderBlock(4, 2, ff_dim=5, dropout=0.2, activation="gelu", rng=1), (2, 3, 4),
         train_differs=True),
]
