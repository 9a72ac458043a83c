"""Stateless array maths shared by layers and losses, written against the backend's ``xp``.

Every function returns the dtype it was given: constants are Python floats, which
NumPy 2 does not let promote a float32 array.
"""

from __future__ import annotations

from nnframe import backend
from nnframe.backend import Array


def logsumexp(x: Array, axis: int = -1) -> Array:
    """``log(sum(exp(x), axis, keepdims=True))``, stable for large ``x``."""
    xp = backend.xp()
    shift = x.max(axis=axis, keepdims=True)
    total = xp.exp(x - shift).sum(axis=axis, keepdims=True)
    return xp.log(total) + shift


def log_softmax(x: Array, axis: int = -1) -> Array:
    """``x - logsumexp(x)``: log-probabilities along ``axis``."""
    return x - logsumexp(x, axis)


def softmax(x: Array, axis: int = -1) -> Array:
    """``exp(x) / sum(exp(x))`` along ``axis``, computed without overflow."""
    xp = backend.xp()
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


def sigmoid(x: Array) -> Array:
    """``1 / (1 + exp(-x))`` without overflow for any finite ``x``."""
    xp = backend.xp()
    e = xp.exp(-xp.abs(x))  # in (0, 1]: never overflows
    return xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log_sigmoid(x: Array) -> Array:
    """``log(sigmoid(x)) = -softplus(-x)``, finite for any finite ``x``."""
    return -softplus(-x)


def softplus(x: Array) -> Array:
    """``log(1 + exp(x))`` computed as ``max(x, 0) + log1p(exp(-|x|))``."""
    xp = backend.xp()
    return xp.maximum(x, 0.0) + xp.log1p(xp.exp(-xp.abs(x)))


def one_hot(labels: Array, num_classes: int, dtype=None) -> Array:
    """Return ``(N, K)`` one-hot rows for integer ``labels`` of shape ``(N,)``.

    Raises:
        ValueError: if a label lies outside ``[0, num_classes)``.
    """
    xp = backend.xp()
    labels = xp.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"one_hot: labels must have shape (N,), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must lie in [0, {num_classes}), got range "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    dtype = backend.get_default_dtype() if dtype is None else dtype
    out = xp.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[xp.arange(labels.shape[0]), labels] = 1
    return out


def erf(x: Array) -> Array:
    """The error function, to 1.2e-7 relative error (Numerical Recipes' ``erfcc``).

    NumPy has no ``erf``; this Chebyshev-fitted form keeps the dtype of ``x``.
    """
    xp = backend.xp()
    z = xp.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * xp.exp(-z * z + poly)
    return xp.where(x >= 0, 1.0 - erfc, erfc - 1.0)
