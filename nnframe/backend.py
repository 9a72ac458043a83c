"""The array backend: which array module does the maths, and in which float dtype.

Every layer, loss and optimizer reaches its array functions through :func:`xp`
(never a bare ``np.`` on data), so a CuPy backend can replace NumPy without
touching them (the pattern of Chainer's ``get_array_module``). Host-only code —
file reading, serialisation — may use NumPy directly.

The default float dtype is float32 (Chainer's ``CHAINER_DTYPE``); float64 is
there for gradient checks and is switched on with :func:`set_default_dtype`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

Array = Any  # an ndarray of the active array module (numpy.ndarray today)

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_default_dtype = np.dtype(np.float32)
_xp: ModuleType = np


def xp() -> ModuleType:
    """Return the active array module (``numpy`` unless another backend is set)."""
    return _xp


def set_backend(name: str) -> None:
    """Select the array module by name: ``"numpy"`` or ``"cupy"``.

    Raises:
        ValueError: for an unknown name.
        ImportError: when ``"cupy"`` is asked for and CuPy is not installed.
    """
    global _xp
    if name == "numpy":
        _xp = np
    elif name == "cupy":
        import cupy  # noqa: PLC0415 - optional dependency, imported on request

        _xp = cupy
    else:
        raise ValueError(f"unknown backend {name!r}: expected 'numpy' or 'cupy'")


def get_default_dtype() -> np.dtype:
    """Return the float dtype new parameters, activations and state are made in."""
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the float dtype for everything built from now on (float32 or float64).

    Raises:
        ValueError: for any dtype other than float32 or float64.
    """
    global _default_dtype
    _default_dtype = as_float_dtype(dtype)


@contextlib.contextmanager
def default_dtype(dtype: Any) -> Iterator[np.dtype]:
    """Context manager that sets the default dtype and restores the old one on exit."""
    old = _default_dtype
    set_default_dtype(dtype)
    try:
        yield _default_dtype
    finally:
        set_default_dtype(old)


def as_float_dtype(dtype: Any) -> np.dtype:
    """Return ``dtype`` as a ``np.dtype``, checking it is float32 or float64.

    ``None`` is refused rather than read as NumPy reads it (float64): a caller meaning
    "the default" must pass :func:`get_default_dtype` itself.

    Raises:
        ValueError: for ``None`` or any dtype other than float32 or float64.
    """
    if dtype is None:
        raise ValueError("dtype must be float32 or float64, got None")
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from exc
    if resolved not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {resolved}")
    return resolved


def to_host(array: Array) -> np.ndarray:
    """Return ``array`` as a NumPy array in host memory (a no-op for NumPy arrays)."""
    if isinstance(array, np.ndarray):
        return array
    get = getattr(array, "get", None)
    return np.asarray(get() if get is not None else array)
