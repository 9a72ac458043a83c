"""PyTorch <-> nnframe for sequence models: embeddings, positions and Transformer blocks.

:mod:`nnframe.interop.torch_convert` calls :func:`to_torch` and :func:`from_torch` for
these layers, so that a GPT-style stack (``Embedding``, ``PositionalEmbedding`` or
``SinusoidalPositionalEncoding``, Transformer blocks, ``LayerNorm``, ``Dense``) converts
both ways as an ``nn.Sequential`` of standard modules plus three small ones defined
here:

- :class:`LearnedPositions` (``x + table[:T]``) and :class:`SinusoidalPositions`
  (``x + P[:T]``), which PyTorch has no module for;
- :class:`Recurrent`, a batch-first ``nn.RNN``/``nn.LSTM``/``nn.GRU`` (nnframe's ``RNN``,
  ``LSTM``, ``GRU``: the same parameter names and layouts) giving one tensor, the outputs
  or the final state;
- :class:`CausalEncoderLayer`, an ``nn.TransformerEncoderLayer`` that applies its causal
  mask itself (an ``nn.Sequential`` passes no mask).

``TransformerEncoderBlock`` is ``nn.TransformerEncoderLayer(norm_first=True,
batch_first=True)``; its weights map as ``in_proj_weight = w_qkv.T``,
``out_proj.weight = w_out.T``, ``linear1.weight = ff1.w.T``, ``linear2.weight = ff2.w.T``.
A sequential stack carries no mask of padded steps, so an ``Embedding`` with
``mask_padding=True`` is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from nnframe import backend, layer
from nnframe.interop.builder import ConversionError, NetBuilder
from nnframe.layer.position import sinusoid_table

#: the nnframe layers :func:`to_torch` converts
LAYERS = (layer.Embedding, layer.PositionalEmbedding, layer.SinusoidalPositionalEncoding,
          layer.TransformerEncoderBlock, layer.TransformerDecoderBlock, layer.RNN, layer.LSTM, layer.GRU)
_RECURRENT = {layer.RNN: nn.RNN, layer.LSTM: nn.LSTM, layer.GRU: nn.GRU}


class LearnedPositions(nn.Module):
    """``x + table[:T]`` for ``x`` of shape ``(N, T, C)``: nnframe's ``PositionalEmbedding``."""

    def __init__(self, max_len: int, channels: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.zeros(max_len, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the first ``T`` rows of the table."""
        return x + self.table[: x.shape[1]]


class SinusoidalPositions(nn.Module):
    """``x + P[:T]`` with Vaswani et al.'s fixed table (:func:`~nnframe.layer.position.sinusoid_table`)."""

    def __init__(self, base: float = 10000.0, max_len: int | None = None) -> None:
        super().__init__()
        self.base, self.max_len = float(base), max_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the table for ``x``'s steps and channels."""
        table = sinusoid_table(x.shape[1], x.shape[2], self.base)
        return x + torch.from_numpy(table).to(dtype=x.dtype, device=x.device)


class CausalEncoderLayer(nn.TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` with causal self-attention applied by the layer itself:
    nnframe's ``TransformerDecoderBlock`` (step ``t`` sees steps ``<= t``)."""

    def forward(self, src: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:  # noqa: D417
        """The encoder layer with a causal mask of ``src``'s length (other masks are not taken)."""
        if args or kwargs:
            raise TypeError("CausalEncoderLayer applies its own causal mask and takes no other arguments")
        mask = nn.Transformer.generate_square_subsequent_mask(src.shape[1], dtype=src.dtype, device=src.device)
        return super().forward(src, src_mask=mask, is_causal=True)


class Recurrent(nn.Module):
    """A batch-first ``nn.RNN``/``nn.LSTM``/``nn.GRU`` giving one tensor, as nnframe's recurrent layers do:
    every step's output with ``return_sequences``, else the last layer's final state, both
    directions concatenated (``(N, D * H)``)."""

    def __init__(self, rnn: nn.RNNBase, return_sequences: bool) -> None:
        super().__init__()
        if not rnn.batch_first:
            raise ValueError("Recurrent: the wrapped layer must be batch_first")
        self.rnn, self.return_sequences = rnn, bool(return_sequences)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The sequence of outputs, or the final state."""
        y, state = self.rnn(x)
        if self.return_sequences:
            return y
        h = state[0] if isinstance(state, tuple) else state  # an LSTM's (h, c)
        directions = 2 if self.rnn.bidirectional else 1
        return torch.cat(list(h[-directions:]), dim=-1)  # (N, D * H)

    def extra_repr(self) -> str:
        """``return_sequences``, as PyTorch prints modules."""
        return f"return_sequences={self.return_sequences}"


def check_convertible(lay: layer.Layer, what: str) -> None:
    """Refuse, before anything runs, one of :data:`LAYERS` whose options an ``nn.Sequential`` cannot carry.

    Raises:
        ConversionError: for an ``Embedding`` with ``mask_padding=True``, or a recurrent layer
            with ``return_state`` or ``stateful``.
    """
    if isinstance(lay, layer.Embedding) and lay.mask_padding:
        raise ConversionError(f"to_module: cannot convert {what}: mask_padding=True makes a mask of padded "
                              "steps, which an nn.Sequential cannot carry")
    if type(lay) in _RECURRENT and (lay.return_state or lay.stateful):
        raise ConversionError(f"to_module: cannot convert {what}: return_state and stateful layers give or keep "
                              "states an nn.Sequential cannot carry")


def _recurrent_to_torch(lay: Any) -> tuple[nn.Module, dict[str, np.ndarray]]:
    """The :class:`Recurrent` module for nnframe's RNN/LSTM/GRU (same parameter names and layouts)."""
    p = {k: backend.to_host(v) for k, v in lay.params.items() if v is not None}
    extra = {"nonlinearity": lay.nonlinearity} if isinstance(lay, layer.RNN) else {}
    rnn = _RECURRENT[type(lay)](p["weight_ih_l0"].shape[1], lay.hidden_size, num_layers=lay.num_layers,
                                batch_first=True, dropout=lay.dropout, bidirectional=lay.bidirectional, **extra)
    return Recurrent(rnn, lay.return_sequences), {f"rnn.{k}": v for k, v in p.items()}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def to_torch(lay: layer.Layer, dtype: torch.dtype, what: str) -> nn.Module:
    """The PyTorch module for one of :data:`LAYERS`, with its weights (as ``dtype``).

    Raises:
        ConversionError: as :func:`check_convertible`.
    """
    check_convertible(lay, what)
    p = {k: backend.to_host(v) for k, v in lay.params.items() if v is not None}
    if isinstance(lay, layer.Embedding):
        table = p["weight"]
        module: nn.Module = nn.Embedding(table.shape[0], table.shape[1], padding_idx=lay.padding_idx)
        arrays = {"weight": table}
    elif isinstance(lay, layer.PositionalEmbedding):
        module, arrays = LearnedPositions(*p["table"].shape), {"table": p["table"]}
    elif isinstance(lay, layer.SinusoidalPositionalEncoding):
        return SinusoidalPositions(lay.base, lay.max_len).to(dtype)
    elif type(lay) in _RECURRENT:
        module, arrays = _recurrent_to_torch(lay)
    else:  # a Transformer block
        cls = CausalEncoderLayer if lay.causal else nn.TransformerEncoderLayer
        module = cls(lay.embed_dim, lay.num_heads, dim_feedforward=lay.ff_dim, dropout=lay.dropout,
                     activation=lay.activation_name, layer_norm_eps=lay.eps, batch_first=True, norm_first=True)
        att, ff1, ff2 = lay.attention.params, lay.ff1.params, lay.ff2.params
        n1, n2 = lay.norm1.params, lay.norm2.params
        arrays = {"self_attn.in_proj_weight": att["w_qkv"].T, "self_attn.in_proj_bias": att["b_qkv"],
                  "self_attn.out_proj.weight": att["w_out"].T, "self_attn.out_proj.bias": att["b_out"],
                  "linear1.weight": ff1["w"].T, "linear1.bias": ff1["b"], "linear2.weight": ff2["w"].T,
                  "linear2.bias": ff2["b"], "norm1.weight": n1["gamma"], "norm1.bias": n1["beta"],
                  "norm2.weight": n2["gamma"], "norm2.bias": n2["beta"]}
    module = module.to(dtype)
    targets = dict(module.named_parameters())
    with torch.no_grad():
        for key, value in arrays.items():
            targets[key].copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float64)))
    return module


def from_torch(b: NetBuilder, what: str, m: nn.Module) -> bool:
    """Add the nnframe layer for ``m`` to ``b`` if it is a sequence module this module knows; ``False`` if not.

    Raises:
        ConversionError: for a Transformer layer nnframe's blocks do not express (post-norm,
            sequence-first, without biases, or with another activation).
    """
    if isinstance(m, nn.Embedding):
        if m.max_norm is not None or m.scale_grad_by_freq or m.sparse:
            raise ConversionError(f"{what}: max_norm, scale_grad_by_freq and sparse have no nnframe equivalent")
        b.embedding(_np(m.weight), what, padding_idx=m.padding_idx)
    elif isinstance(m, LearnedPositions):
        b.sequence_layer(layer.PositionalEmbedding, {"table": _np(m.table)}, what, max_len=int(m.table.shape[0]))
    elif isinstance(m, SinusoidalPositions):
        b.sequence_layer(layer.SinusoidalPositionalEncoding, {}, what, base=m.base, max_len=m.max_len)
    elif isinstance(m, nn.TransformerEncoderLayer):
        _block(b, what, m)
    elif isinstance(m, Recurrent):
        _recurrent(b, what, m)
    elif isinstance(m, nn.RNNBase):
        raise ConversionError(f"{what}: it returns (output, state), which the next module of an nn.Sequential "
                              "cannot take; wrap it as nnframe.interop.torch_sequence.Recurrent(module, "
                              "return_sequences=...) (batch_first=True)")
    else:
        return False
    return True


def _recurrent(b: NetBuilder, what: str, m: Recurrent) -> None:
    rnn = m.rnn
    cls = next(ours for ours, theirs in _RECURRENT.items() if type(rnn) is theirs)
    if not rnn.bias or getattr(rnn, "proj_size", 0):
        raise ConversionError(f"{what}: a recurrent layer without biases or with proj_size has no nnframe equivalent")
    extra = {"nonlinearity": rnn.nonlinearity} if cls is layer.RNN else {}
    b.recurrent(cls, rnn.hidden_size, {k: _np(v) for k, v in rnn.named_parameters()}, what,
                num_layers=rnn.num_layers, bidirectional=rnn.bidirectional, dropout=float(rnn.dropout),
                return_sequences=m.return_sequences, **extra)


def _block(b: NetBuilder, what: str, m: nn.TransformerEncoderLayer) -> None:
    if not (m.norm_first and m.self_attn.batch_first):
        raise ConversionError(f"{what}: only norm_first=True, batch_first=True (nnframe's pre-norm block on "
                              "(N, T, E)) converts")
    activation = {1: "relu", 2: "gelu"}.get(getattr(m, "activation_relu_or_gelu", 0))
    attn = m.self_attn
    parts = (attn.in_proj_weight, attn.in_proj_bias, attn.out_proj.bias, m.linear1.bias, m.linear2.bias,
             m.norm1.weight, m.norm1.bias, m.norm2.weight, m.norm2.bias)
    if activation is None or any(t is None for t in parts) or not attn._qkv_same_embed_dim:
        raise ConversionError(f"{what}: only ReLU or GELU layers with every bias and affine norm, and query, key "
                              "and value of one width, convert")
    if m.norm1.eps != m.norm2.eps:
        raise ConversionError(f"{what}: the two layer norms' eps differ ({m.norm1.eps} vs {m.norm2.eps})")
    params = {"attention.w_qkv": _np(attn.in_proj_weight).T, "attention.b_qkv": _np(attn.in_proj_bias),
              "attention.w_out": _np(attn.out_proj.weight).T, "attention.b_out": _np(attn.out_proj.bias),
              "ff1.w": _np(m.linear1.weight).T, "ff1.b": _np(m.linear1.bias),
              "ff2.w": _np(m.linear2.weight).T, "ff2.b": _np(m.linear2.bias),
              "norm1.gamma": _np(m.norm1.weight), "norm1.beta": _np(m.norm1.bias),
              "norm2.gamma": _np(m.norm2.weight), "norm2.beta": _np(m.norm2.bias)}
    cls = layer.TransformerDecoderBlock if isinstance(m, CausalEncoderLayer) else layer.TransformerEncoderBlock
    b.sequence_layer(cls, params, what, embed_dim=int(attn.embed_dim), num_heads=int(attn.num_heads),
                     ff_dim=int(m.linear1.out_features), dropout=float(m.dropout.p), activation=activation,
                     eps=float(m.norm1.eps))
