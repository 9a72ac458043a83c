"""Recognise an activation written as several element-wise ONNX nodes (GELU, SiLU, Softplus(beta), ...).

Exporters spell activations without an operator of their own as arithmetic: PyTorch writes
``GELU`` as ``Div, Erf, Add, Mul, Mul`` below opset 20, ``SiLU`` as ``Sigmoid, Mul``;
nnframe's own exporter does the same at opset 17. :func:`find_region` takes the run of
element-wise nodes that starts at the chain's current value and ends in one value;
:func:`identify` evaluates it on probe points and names the nnframe activation that
computes the same function (to 1e-6), whatever the spelling.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnx

from nnframe import layer

_ERF = np.vectorize(math.erf, otypes=[np.float64])
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


#: numerical definitions of the element-wise operators (NumPy broadcasting, float64)
OPS: dict[str, Callable[..., np.ndarray]] = {
    "Mul": np.multiply, "Add": np.add, "Sub": np.subtract, "Div": np.divide, "Pow": np.power,
    "Erf": _ERF, "Tanh": np.tanh, "Sigmoid": _sigmoid, "Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt,
    "Neg": np.negative, "Softplus": _softplus, "Relu": lambda x: np.maximum(x, 0.0),
}

#: (nnframe class, constructor arguments, its function), tried in order
CANDIDATES: list[tuple[type, dict[str, Any], Callable[[np.ndarray], np.ndarray]]] = [
    (layer.GELU, {}, lambda x: 0.5 * x * (1.0 + _ERF(x / math.sqrt(2.0)))),
    (layer.GELU, {"approximate": "tanh"},
     lambda x: 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3)))),
    (layer.SiLU, {}, lambda x: x * _sigmoid(x)),
    (layer.Sigmoid, {}, _sigmoid),
    (layer.Tanh, {}, np.tanh),
    (layer.Identity, {}, lambda x: x),
]
PROBE = np.linspace(-6.0, 6.0, 97)


def find_region(nodes: Sequence[onnx.NodeProto], start: int, current: str, constants: dict[str, np.ndarray],
                consumers: dict[str, int]) -> list[int]:
    """The possible ends (exclusive), longest first, of runs of two or more element-wise nodes from
    ``nodes[start]`` that read only ``current``, scalar constants and their own values, and leave
    exactly one of the values they compute for later nodes (``consumers``: how many nodes, or
    graph outputs, read each value).
    """
    produced = {current}
    uses: dict[str, int] = {}
    ends: list[int] = []
    for end in range(start, len(nodes)):
        node = nodes[end]
        if node.op_type not in OPS or len(node.output) != 1:
            break
        data = [i for i in node.input if i and i not in constants]
        if any(i not in produced for i in data) or any(np.asarray(constants[i]).size != 1 for i in node.input
                                                       if i in constants):
            break
        for i in data:
            uses[i] = uses.get(i, 0) + 1
        produced.add(node.output[0])
        # closed: every value it computes but the last is consumed only inside the run (its input may
        # be read elsewhere too: a branch of a graph)
        inner = produced - {node.output[0], current}
        if end > start and all(uses.get(v, 0) == consumers.get(v, 0) for v in inner):
            ends.append(end + 1)
    return ends[::-1]


def evaluate(nodes: Sequence[onnx.NodeProto], current: str, constants: dict[str, np.ndarray],
             x: np.ndarray) -> np.ndarray:
    """The run's output for input values ``x`` (float64)."""
    values = {current: x}
    for node in nodes:
        args = [values[i] if i in values else np.asarray(constants[i], dtype=np.float64).reshape(())
                for i in node.input if i]
        values[node.output[0]] = OPS[node.op_type](*args)
    return values[nodes[-1].output[0]]


def identify(nodes: Sequence[onnx.NodeProto], current: str, constants: dict[str, np.ndarray]) -> tuple[type, dict]:
    """The nnframe activation computing the run's function, as ``(class, kwargs)``.

    Raises:
        ValueError: naming the run's operators when no known activation matches.
    """
    with np.errstate(all="ignore"):
        y = evaluate(nodes, current, constants, PROBE)
        for cls, kwargs, func in CANDIDATES:
            if np.allclose(y, func(PROBE), rtol=1e-6, atol=1e-6):
                return cls, kwargs
        zero = float(evaluate(nodes, current, constants, np.zeros(1))[0])
        if zero > 0:  # softplus(beta x) / beta has the value log(2) / beta at 0
            beta = math.log(2.0) / zero
            if np.allclose(y, np.logaddexp(0.0, beta * PROBE) / beta, rtol=1e-6, atol=1e-6):
                return layer.Softplus, {"beta": beta}
    ops = ", ".join(n.op_type for n in nodes)
    raise ValueError(f"the element-wise nodes {[n.name for n in nodes]} ({ops}) compute no activation nnframe knows "
                     "(GELU, SiLU, Softplus, Sigmoid, Tanh)")
