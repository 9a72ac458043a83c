"""Weight and tensor layouts: nnframe (channels-last) <-> ONNX and PyTorch (channels-first), in one table.

nnframe keeps images NHWC and sequences NTC, so its kernels are ``(KH, KW, C_in/g, C_out)``
(HWIO) and a dense weight is ``(D_in, D_out)``. ONNX and PyTorch put channels first: NCHW
tensors, OIHW kernels, ``Linear.weight`` ``(D_out, D_in)``; ONNX's recurrent layers also
order their gates differently from PyTorch. Every conversion between the two lives here,
as a pair of functions ``to_*``/``from_*`` that invert each other (``tests/test_interop_layout.py``
checks every pair both ways); the exporter, the importer and the PyTorch converter use
these and nothing else.

The table (nnframe -> ONNX / PyTorch, and the functions that convert):

* ``Dense.w`` ``(D_in, D_out)`` -> ``Linear.weight`` / ``Gemm(transB=1)`` ``(D_out, D_in)``:
  :func:`to_linear`, :func:`from_linear`.
* ``Conv2D.w`` ``(KH, KW, C_in/g, C_out)`` -> ``(C_out, C_in/g, KH, KW)``; ``Conv1D.w``
  ``(K, C_in/g, C_out)`` -> ``(C_out, C_in/g, K)``: :func:`to_oihw`, :func:`from_oihw`.
* ``Conv2DTranspose.w`` ``(KH, KW, C_out/g, C_in)`` -> ``(C_in, C_out/g, KH, KW)``:
  :func:`to_iohw`, :func:`from_iohw`.
* tensors ``(N, H, W, C)`` -> ``(N, C, H, W)`` (any rank): :func:`to_channels_first`,
  :func:`to_channels_last`; flattened images ``(N, H*W*C)`` vs ``(N, C*H*W)``: :func:`flatten_order`.
* recurrent gates, PyTorch -> ONNX: LSTM ``i, f, g, o`` -> ``i, o, f, c``; GRU ``r, z, n`` ->
  ``z, r, h``: :func:`torch_to_onnx_gates`, :func:`onnx_to_torch_gates`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


# ----------------------------------------------------------------- tensors
def to_channels_first_perm(ndim: int) -> tuple[int, ...]:
    """The ``transpose`` axes taking channels-last ``(N, *S, C)`` to channels-first ``(N, C, *S)``."""
    return (0, ndim - 1, *range(1, ndim - 1))


def to_channels_last_perm(ndim: int) -> tuple[int, ...]:
    """The ``transpose`` axes taking channels-first ``(N, C, *S)`` to channels-last ``(N, *S, C)``."""
    return (0, *range(2, ndim), 1)


def to_channels_first(x: np.ndarray) -> np.ndarray:
    """``(N, *S, C) -> (N, C, *S)``, e.g. NHWC -> NCHW."""
    return x.transpose(to_channels_first_perm(x.ndim))


def to_channels_last(x: np.ndarray) -> np.ndarray:
    """``(N, C, *S) -> (N, *S, C)``, e.g. NCHW -> NHWC."""
    return x.transpose(to_channels_last_perm(x.ndim))


def flatten_order(channels_last_shape: Sequence[int]) -> np.ndarray:
    """Where each channels-first flattened feature sits in the channels-last flattening.

    For a per-sample shape ``(*S, C)`` (e.g. ``(H, W, C)``), ``index[j]`` is the position in
    ``x_nhwc.reshape(N, -1)`` of feature ``j`` of ``x_nchw.reshape(N, -1)``, so
    ``x_nchw.reshape(N, -1) == x_nhwc.reshape(N, -1)[:, index]``. A dense layer after an
    NCHW flatten with weight rows ``W`` computes the same after an NHWC flatten with rows
    ``W[argsort(index)]``.
    """
    shape = tuple(int(s) for s in channels_last_shape)
    positions = np.arange(int(np.prod(shape))).reshape(shape)  # position in the channels-last order
    return to_channels_first(positions[None])[0].reshape(-1)


# ----------------------------------------------------------------- weights
def to_linear(w: np.ndarray) -> np.ndarray:
    """``Dense.w`` ``(D_in, D_out)`` -> ``Linear.weight`` / ``Gemm(transB=1)`` ``(D_out, D_in)``."""
    return np.ascontiguousarray(w.T)


def from_linear(weight: np.ndarray) -> np.ndarray:
    """``Linear.weight`` ``(D_out, D_in)`` -> ``Dense.w`` ``(D_in, D_out)``."""
    return np.ascontiguousarray(weight.T)


def to_oihw(w: np.ndarray) -> np.ndarray:
    """A convolution kernel ``(*K, C_in/g, C_out)`` -> ``(C_out, C_in/g, *K)`` (2-D: HWIO -> OIHW)."""
    spatial = w.ndim - 2
    return np.ascontiguousarray(w.transpose(w.ndim - 1, w.ndim - 2, *range(spatial)))


def from_oihw(weight: np.ndarray) -> np.ndarray:
    """A convolution kernel ``(C_out, C_in/g, *K)`` -> ``(*K, C_in/g, C_out)`` (2-D: OIHW -> HWIO)."""
    return np.ascontiguousarray(weight.transpose(*range(2, weight.ndim), 1, 0))


def to_iohw(w: np.ndarray) -> np.ndarray:
    """``Conv2DTranspose.w`` ``(KH, KW, C_out/g, C_in)`` -> ``ConvTranspose`` weight ``(C_in, C_out/g, KH, KW)``."""
    return np.ascontiguousarray(w.transpose(3, 2, 0, 1))


def from_iohw(weight: np.ndarray) -> np.ndarray:
    """``ConvTranspose`` weight ``(C_in, C_out/g, KH, KW)`` -> ``Conv2DTranspose.w`` ``(KH, KW, C_out/g, C_in)``."""
    return np.ascontiguousarray(weight.transpose(2, 3, 1, 0))


# ------------------------------------------------------------ recurrent gates
#: the gate blocks of PyTorch's stacked recurrent weights, in ONNX's order
_ONNX_GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}  # LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h


def _gates(kind: str) -> tuple[int, ...]:
    if kind not in _ONNX_GATE_ORDER:
        raise ValueError(f"gate order: kind must be 'lstm' or 'gru', got {kind!r}")
    return _ONNX_GATE_ORDER[kind]


def torch_to_onnx_gates(weight: np.ndarray, kind: str) -> np.ndarray:
    """Reorder the gate blocks along axis 0 (``(G*H, ...)``) from PyTorch's order to ONNX's.

    LSTM: PyTorch ``i, f, g, o`` -> ONNX ``i, o, f, c``; GRU: PyTorch ``r, z, n`` -> ONNX ``z, r, h``.
    """
    order = _gates(kind)
    blocks = np.split(weight, len(order), axis=0)
    return np.concatenate([blocks[k] for k in order], axis=0)


def onnx_to_torch_gates(weight: np.ndarray, kind: str) -> np.ndarray:
    """Inverse of :func:`torch_to_onnx_gates`."""
    order = _gates(kind)
    blocks = np.split(weight, len(order), axis=0)
    inverse = np.argsort(order)
    return np.concatenate([blocks[k] for k in inverse], axis=0)
