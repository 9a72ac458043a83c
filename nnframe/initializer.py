"""Parameter initializers: callables mapping a shape to an array of the framework dtype.

Each initializer takes ``rng`` (an ``int`` seed, a ``numpy.random.Generator`` or
``None`` for a child of the global generator, see :mod:`nnframe.random`). Values
are drawn in float64 on the host and cast once to the requested dtype, so a
float32 and a float64 net built from the same seed start from the same numbers.

Fan-in and fan-out follow the usual conventions: for a 2-D shape ``(D_in, D_out)``
they are the two dimensions; for a convolution kernel ``(KH, KW, C_in, C_out)`` the
receptive field ``KH * KW`` multiplies both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnframe import backend
from nnframe import random as nn_random
from nnframe.backend import Array

Shape = Sequence[int]


def compute_fans(shape: Shape) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` for a weight of ``shape``.

    Shapes: ``(D,)`` -> (D, D); ``(D_in, D_out)``; ``(*receptive, C_in, C_out)``.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    """Base class: ``init(shape, dtype=None) -> array``.

    Subclasses implement :meth:`sample`, which returns float64 host values.
    """

    def __init__(self, rng: int | np.random.Generator | None = None) -> None:
        self._rng_arg = rng
        self._rng: np.random.Generator | None = None

    @property
    def rng(self) -> np.random.Generator:
        """The generator this initializer draws from (created on first use)."""
        if self._rng is None:
            self._rng = nn_random.get_rng(self._rng_arg)
        return self._rng

    def __call__(self, shape: Shape, dtype: Any = None) -> Array:
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"{type(self).__name__}: shape must be non-negative, got {shape}")
        dtype = backend.get_default_dtype() if dtype is None else backend.as_float_dtype(dtype)
        values = np.asarray(self.sample(shape), dtype=np.float64)
        return backend.xp().asarray(values.astype(dtype))

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        """Return float64 values of ``shape``."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments (without the generator) as a JSON-serialisable dict."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Constant(Initializer):
    """Every entry equal to ``value``."""

    def __init__(self, value: float = 0.0, rng: int | np.random.Generator | None = None) -> None:
        super().__init__(rng)
        self.value = float(value)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, self.value)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value}


class Zeros(Constant):
    """All zeros."""

    def __init__(self, rng: int | np.random.Generator | None = None) -> None:
        super().__init__(0.0, rng)

    def get_config(self) -> dict[str, Any]:
        return {}


class Ones(Constant):
    """All ones."""

    def __init__(self, rng: int | np.random.Generator | None = None) -> None:
        super().__init__(1.0, rng)

    def get_config(self) -> dict[str, Any]:
        return {}


def _check_positive(owner: str, name: str, value: float) -> float:
    value = float(value)
    if not value > 0:
        raise ValueError(f"{owner}: {name} must be > 0, got {value}")
    return value


class Normal(Initializer):
    """Gaussian ``N(mean, std**2)``."""

    def __init__(
        self, mean: float = 0.0, std: float = 1.0, rng: int | np.random.Generator | None = None
    ) -> None:
        super().__init__(rng)
        self.mean = float(mean)
        self.std = _check_positive("Normal", "std", std)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng.normal(self.mean, self.std, size=shape)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}


class TruncatedNormal(Initializer):
    """Gaussian ``N(mean, std**2)`` redrawn until within ``mean ± 2 std``."""

    def __init__(
        self, mean: float = 0.0, std: float = 1.0, rng: int | np.random.Generator | None = None
    ) -> None:
        super().__init__(rng)
        self.mean = float(mean)
        self.std = _check_positive("TruncatedNormal", "std", std)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        values = self.rng.standard_normal(size=shape)
        outside = np.abs(values) > 2.0
        while outside.any():
            values[outside] = self.rng.standard_normal(size=int(outside.sum()))
            outside = np.abs(values) > 2.0
        return self.mean + self.std * values

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std}


class Uniform(Initializer):
    """Uniform on ``[low, high)``."""

    def __init__(
        self, low: float = -0.05, high: float = 0.05, rng: int | np.random.Generator | None = None
    ) -> None:
        super().__init__(rng)
        if not float(low) < float(high):
            raise ValueError(f"Uniform: low must be < high, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng.uniform(self.low, self.high, size=shape)

    def get_config(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high}


class _FanScaled(Initializer):
    """Shared base for Xavier/He: a scale from the fans and a gain."""

    def __init__(self, gain: float = 1.0, rng: int | np.random.Generator | None = None) -> None:
        super().__init__(rng)
        self.gain = _check_positive(type(self).__name__, "gain", gain)

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain}


class XavierUniform(_FanScaled):
    """Glorot & Bengio (2010): ``U(-a, a)``, ``a = gain * sqrt(6 / (fan_in + fan_out))``."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        bound = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return self.rng.uniform(-bound, bound, size=shape)


class XavierNormal(_FanScaled):
    """Glorot & Bengio (2010): ``N(0, s**2)``, ``s = gain * sqrt(2 / (fan_in + fan_out))``."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, fan_out = compute_fans(shape)
        return self.rng.normal(0.0, self.gain * math.sqrt(2.0 / (fan_in + fan_out)), size=shape)


class HeUniform(_FanScaled):
    """He et al. (2015): ``U(-a, a)``, ``a = gain * sqrt(6 / fan_in)`` (ReLU nets)."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, _ = compute_fans(shape)
        bound = self.gain * math.sqrt(6.0 / fan_in)
        return self.rng.uniform(-bound, bound, size=shape)


class HeNormal(_FanScaled):
    """He et al. (2015): ``N(0, s**2)``, ``s = gain * sqrt(2 / fan_in)`` (ReLU nets)."""

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        fan_in, _ = compute_fans(shape)
        return self.rng.normal(0.0, self.gain * math.sqrt(2.0 / fan_in), size=shape)


class Orthogonal(_FanScaled):
    """Saxe et al. (2014): a (semi-)orthogonal matrix times ``gain``.

    The shape is flattened to ``(prod(shape[:-1]), shape[-1])``; rows or columns
    (whichever are fewer) are orthonormal.
    """

    def sample(self, shape: tuple[int, ...]) -> np.ndarray:
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: needs a shape of at least 2 dimensions, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = self.rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # make the decomposition unique (Mezzadri 2007)
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)


_REGISTRY = {
    cls.__name__: cls
    for cls in (
        Zeros, Ones, Constant, Normal, TruncatedNormal, Uniform,
        XavierUniform, XavierNormal, HeUniform, HeNormal, Orthogonal,
    )
}


def get(spec: str | Initializer | dict[str, Any]) -> Initializer:
    """Resolve an initializer from an instance, a class name or ``{"class": ..., **config}``.

    Raises:
        ValueError: for an unknown name.
    """
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, str):
        spec = {"class": spec}
    if isinstance(spec, dict):
        config = dict(spec)
        name = config.pop("class", None)
        if name not in _REGISTRY:
            raise ValueError(f"unknown initializer {name!r}; expected one of {sorted(_REGISTRY)}")
        return _REGISTRY[name](**config)
    raise TypeError(f"expected an Initializer, a name or a config dict, got {spec!r}")


def to_config(init: Initializer) -> dict[str, Any]:
    """Return ``{"class": name, **config}`` for :func:`get` to rebuild ``init``."""
    return {"class": type(init).__name__, **init.get_config()}
