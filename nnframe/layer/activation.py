"""Element-wise activation layers (subclasses of the seed's ``Activation``).

Each keeps its input's dtype and shape. Layers whose derivative is cheaper from the
output (ReLU, Sigmoid, Tanh) override ``forward``/``backward`` to cache the output.
"""

from __future__ import annotations

import math
from typing import Any

from nnframe import backend, threads
from nnframe import functional as F
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Activation

_SQRT_2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class Identity(Activation):
    """``f(x) = x``."""

    def forward_func(self, x: Array) -> Array:
        return x

    def backward_func(self, x: Array) -> Array:
        return backend.xp().ones_like(x)

    def backward(self, grad: Array) -> Array:
        return grad


class ReLU(Activation):
    """``f(x) = max(x, 0)``; the derivative at 0 is taken as 0.

    Args:
        inplace: overwrite the input with the output (as ``torch.nn.ReLU(inplace=True)``),
            and in backward the incoming gradient with the input gradient: no new arrays,
            ~1-2 ms less per 1M float32 values here than writing fresh ones. Only where
            nothing else reads those arrays afterwards (a Transformer block's hidden layer:
            its ``Dense`` keeps its input, not its output, and hands back a fresh gradient).
    """

    def __init__(self, inplace: bool = False, name: str | None = None) -> None:
        super().__init__(name)
        self.inplace = bool(inplace)

    def forward(self, inputs: Array) -> Array:
        out = F.relu(inputs, out=inputs if self.inplace else None)
        self.ctx = {"Y": out}
        return out

    def backward(self, grad: Array) -> Array:
        xp, y = backend.xp(), self.ctx["Y"]
        inplace = self.inplace and grad.shape == y.shape
        slices = [slice(None)]
        if grad.shape == y.shape and y.ndim:  # large batches: split between threads
            slices = threads.batch_slices(y.shape[0], y.size // max(y.shape[0], 1))
        if len(slices) == 1:
            return xp.multiply(grad, y > 0.0, out=grad) if inplace else grad * (y > 0.0)
        dx = grad if inplace else xp.empty(y.shape, dtype=grad.dtype)
        threads.map_slices(lambda part: xp.multiply(grad[part], y[part] > 0.0, out=dx[part]), slices)
        return dx

    def forward_func(self, x: Array) -> Array:
        return F.relu(x)

    def backward_func(self, x: Array) -> Array:
        return (x > 0.0).astype(x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {**({"inplace": True} if self.inplace else {}), **super().get_config()}


class LeakyReLU(Activation):
    """``f(x) = x`` for ``x > 0``, else ``negative_slope * x`` (PyTorch's default slope 0.01)."""

    def __init__(self, negative_slope: float = 0.01, name: str | None = None) -> None:
        super().__init__(name)
        self.negative_slope = float(negative_slope)

    def forward_func(self, x: Array) -> Array:
        return backend.xp().where(x > 0.0, x, x * self.negative_slope)

    def backward_func(self, x: Array) -> Array:
        return backend.xp().where(x > 0.0, 1.0, self.negative_slope).astype(x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope, **super().get_config()}


class ELU(Activation):
    """``f(x) = x`` for ``x > 0``, else ``alpha * (exp(x) - 1)`` (Clevert et al., 2015)."""

    def __init__(self, alpha: float = 1.0, name: str | None = None) -> None:
        super().__init__(name)
        if not float(alpha) > 0:
            raise ValueError(f"ELU: alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    def forward_func(self, x: Array) -> Array:
        xp = backend.xp()
        return xp.where(x > 0.0, x, xp.expm1(xp.minimum(x, 0.0)) * self.alpha)

    def backward_func(self, x: Array) -> Array:
        xp = backend.xp()
        return xp.where(x > 0.0, 1.0, xp.exp(xp.minimum(x, 0.0)) * self.alpha).astype(x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"alpha": self.alpha, **super().get_config()}


class SELU(Activation):
    """``scale * ELU(x, alpha)`` with the self-normalising constants (Klambauer et al., 2017)."""

    ALPHA = 1.6732632423543772848170429916717
    SCALE = 1.0507009873554804934193349852946

    def forward_func(self, x: Array) -> Array:
        xp = backend.xp()
        neg = xp.expm1(xp.minimum(x, 0.0)) * (self.ALPHA * self.SCALE)
        return xp.where(x > 0.0, x * self.SCALE, neg)

    def backward_func(self, x: Array) -> Array:
        xp = backend.xp()
        neg = xp.exp(xp.minimum(x, 0.0)) * (self.ALPHA * self.SCALE)
        return xp.where(x > 0.0, self.SCALE, neg).astype(x.dtype)


class GELU(Activation):
    """Gaussian error linear unit (Hendrycks & Gimpel, 2016).

    ``approximate="none"``: ``x * Phi(x)`` with ``Phi`` the normal CDF (erf to about
    1e-15 relative error in float64, 2e-7 absolute in float32, see :func:`nnframe.functional.erf`);
    ``approximate="tanh"``: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.
    """

    def __init__(self, approximate: str = "none", name: str | None = None) -> None:
        super().__init__(name)
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward_func(self, x: Array) -> Array:
        xp = backend.xp()
        if self.approximate == "tanh":
            inner = (x + x * x * x * 0.044715) * _SQRT_2_OVER_PI
            return x * (xp.tanh(inner) + 1.0) * 0.5
        return x * (F.erf(x / _SQRT_2) + 1.0) * 0.5

    def backward_func(self, x: Array) -> Array:
        xp = backend.xp()
        if self.approximate == "tanh":
            inner = (x + x * x * x * 0.044715) * _SQRT_2_OVER_PI
            t = xp.tanh(inner)
            d_inner = (x * x * (3 * 0.044715) + 1.0) * _SQRT_2_OVER_PI
            return (t + 1.0) * 0.5 + x * 0.5 * (1.0 - t * t) * d_inner
        cdf = (F.erf(x / _SQRT_2) + 1.0) * 0.5
        pdf = xp.exp(x * x * -0.5) * _INV_SQRT_2PI
        return cdf + x * pdf

    def get_config(self) -> dict[str, Any]:
        return {"approximate": self.approximate, **super().get_config()}


class SiLU(Activation):
    """``f(x) = x * sigmoid(x)`` (a.k.a. swish)."""

    def forward_func(self, x: Array) -> Array:
        return x * F.sigmoid(x)

    def backward_func(self, x: Array) -> Array:
        s = F.sigmoid(x)
        return s * (1.0 + x * (1.0 - s))


class Sigmoid(Activation):
    """``f(x) = 1 / (1 + exp(-x))``, finite for every input."""

    def forward(self, inputs: Array) -> Array:
        out = F.sigmoid(inputs)
        self.ctx = {"Y": out}
        return out

    def backward(self, grad: Array) -> Array:
        y = self.ctx["Y"]
        return grad * y * (1.0 - y)

    def forward_func(self, x: Array) -> Array:
        return F.sigmoid(x)

    def backward_func(self, x: Array) -> Array:
        s = F.sigmoid(x)
        return s * (1.0 - s)


class Tanh(Activation):
    """``f(x) = tanh(x)``."""

    def forward(self, inputs: Array) -> Array:
        out = backend.xp().tanh(inputs)
        self.ctx = {"Y": out}
        return out

    def backward(self, grad: Array) -> Array:
        y = self.ctx["Y"]
        return grad * (1.0 - y * y)

    def forward_func(self, x: Array) -> Array:
        return backend.xp().tanh(x)

    def backward_func(self, x: Array) -> Array:
        t = backend.xp().tanh(x)
        return 1.0 - t * t


class Softplus(Activation):
    """``f(x) = log(1 + exp(beta x)) / beta``, computed without overflow."""

    def __init__(self, beta: float = 1.0, name: str | None = None) -> None:
        super().__init__(name)
        if not float(beta) > 0:
            raise ValueError(f"Softplus: beta must be > 0, got {beta}")
        self.beta = float(beta)

    def forward_func(self, x: Array) -> Array:
        return F.softplus(x * self.beta) / self.beta

    def backward_func(self, x: Array) -> Array:
        return F.sigmoid(x * self.beta)

    def get_config(self) -> dict[str, Any]:
        return {"beta": self.beta, **super().get_config()}


class Softmax(Activation):
    """``softmax(x)`` along ``axis``; backward is the Jacobian-vector product
    ``y * (g - sum(g * y, axis))``."""

    def __init__(self, axis: int = -1, name: str | None = None) -> None:
        super().__init__(name)
        self.axis = int(axis)

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if not -len(input_shape) <= self.axis < len(input_shape):
            raise ShapeError(f"{self.name}: axis {self.axis} is out of range for input of shape "
                             f"{tuple(input_shape)}")
        return tuple(input_shape)

    def forward(self, inputs: Array) -> Array:
        out = F.softmax(inputs, self.axis)
        self.ctx = {"Y": out}
        return out

    def backward(self, grad: Array) -> Array:
        y = self.ctx["Y"]
        return y * (grad - (grad * y).sum(axis=self.axis, keepdims=True))

    def forward_func(self, x: Array) -> Array:
        return F.softmax(x, self.axis)

    def backward_func(self, x: Array) -> Array:
        raise NotImplementedError("Softmax's derivative is a Jacobian; backward() handles it")

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis, **super().get_config()}
