"""Gradient checking against central finite differences, in float64.

:func:`gradcheck` checks a layer (or a container, e.g. a :class:`~nnframe.net.Net`: then
its parameters carry their dotted names, ``"2.body.0.w"``): the gradient of
``sum(forward(x) * R)`` (``R`` a fixed random array) with respect to the input and
to every parameter, element by element for small tensors and along random
directions for large ones. :func:`gradcheck_loss` does the same for a loss with
respect to its predictions. Both raise :class:`GradcheckError` listing every
mismatch, and return the largest error seen per tensor.

Layers with a random generator in ``rng`` (dropout) have it rewound before every
evaluation, so each forward pass draws the same mask.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from nnframe import backend


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree; the message lists where."""


def smooth_input(shape: Iterable[int], seed: int = 0, kinks: Iterable[float] = (0.0,),
                 margin: float = 0.05, scale: float = 1.0) -> np.ndarray:
    """A float64 normal sample of ``shape`` with every value at least ``margin`` from each kink.

    Use it for inputs of functions with kinks (ReLU at 0, max-pool ties) so that
    finite differences do not straddle one.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, scale, size=tuple(shape))
    for kink in kinks:
        close = np.abs(x - kink) < margin
        x[close] = kink + np.where(x[close] >= kink, margin, -margin) * (1 + rng.random(int(close.sum())))
    return x


def _leaves_of(obj: Any) -> list[tuple[str, Any]]:
    """``(name prefix, leaf)``: a container's leaves by dotted path (``"2.body.0."``), else ``("0.", obj)``."""
    if hasattr(obj, "named_leaves"):
        return [(f"{path}.", leaf) for path, leaf in obj.named_leaves()]
    return [("0.", obj)]


def _rng_states(obj: Any) -> list[tuple[Any, dict]]:
    states = []
    for _, layer in _leaves_of(obj):
        rng = getattr(layer, "rng", None)
        if isinstance(rng, np.random.Generator):
            states.append((rng, copy.deepcopy(rng.bit_generator.state)))
    return states


def _compare(name: str, analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float,
             problems: list[str]) -> float:
    err = np.abs(analytic - numeric)
    bad = err > atol + rtol * np.abs(numeric)
    if bad.any():
        i = int(np.argmax(err - rtol * np.abs(numeric)))
        problems.append(
            f"{name}: {int(bad.sum())}/{bad.size} entries differ; worst analytic "
            f"{analytic.flat[i]:.8g} vs numeric {numeric.flat[i]:.8g}"
        )
    return float(err.max()) if err.size else 0.0


def _numeric_grad(f: Callable[[], float], array: np.ndarray, eps: float, max_full: int,
                  directions: int, rng: np.random.Generator,
                  analytic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(analytic_projection, numeric)`` for ``array``'s gradient.

    Element by element when ``array.size <= max_full``, else along ``directions``
    random unit directions (comparing directional derivatives).
    """
    if array.size <= max_full:
        numeric = np.zeros(array.shape)
        flat = array.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = f()
            flat[i] = old - eps
            down = f()
            flat[i] = old
            numeric.reshape(-1)[i] = (up - down) / (2 * eps)
        return analytic, numeric
    projections, numerics = [], []
    original = array.copy()
    for _ in range(directions):
        v = rng.normal(size=array.shape)
        v /= np.linalg.norm(v)
        array[...] = original + eps * v
        up = f()
        array[...] = original - eps * v
        down = f()
        array[...] = original
        projections.append(float((analytic * v).sum()))
        numerics.append((up - down) / (2 * eps))
    return np.array(projections), np.array(numerics)


def gradcheck(layer: Any, inputs: Any, *, eps: float = 1e-6, atol: float = 1e-6,
              rtol: float = 1e-4, seed: int = 0, max_full: int = 512, directions: int = 8,
              check_inputs: bool = True) -> dict[str, float]:
    """Check ``layer``'s backward against central differences of its forward.

    Args:
        layer: a built-or-unbuilt layer or net with float64 parameters.
        inputs: float64 input batch (modified in place during the check, restored after),
            or a list of them for a layer with several inputs (then reported as
            ``"input.0"``, ``"input.1"``, ...). A layer with several outputs is checked on
            ``sum_k sum(out_k * R_k)``.
        eps, atol, rtol: step and tolerances (``|a - n| <= atol + rtol |n|``).
        seed: seed of the projection ``R`` and of the random directions.
        max_full: tensors up to this size are checked entry by entry.
        directions: random directions for larger tensors.
        check_inputs: also check the input gradient.

    Returns:
        ``{"input": max error, "<layer>.<param>": max error, ...}``.

    Raises:
        ValueError: if the input or a parameter is not float64.
        GradcheckError: listing every tensor whose gradient disagrees.
    """
    if backend.xp() is not np:
        raise ValueError("gradcheck runs on the numpy backend only")
    multi_in = isinstance(inputs, (list, tuple))
    xs = []
    for item in (inputs if multi_in else [inputs]):
        item = np.asarray(item)
        if item.dtype.kind == "f" and item.dtype != np.float64:
            raise ValueError(f"gradcheck: inputs must be float64, got {item.dtype}")
        xs.append(np.array(item, copy=True) if item.dtype.kind == "f" else item)
    rng = np.random.default_rng(seed)
    rng_states = _rng_states(layer)

    def run() -> Any:
        for generator, state in rng_states:
            generator.bit_generator.state = copy.deepcopy(state)
        return layer.forward(xs if multi_in else xs[0])

    out = run()
    multi_out = isinstance(out, (list, tuple))
    projection = [rng.normal(size=o.shape) for o in out] if multi_out else rng.normal(size=out.shape)
    named = {
        f"{prefix}{k}": v
        for prefix, lyr in _leaves_of(layer)
        for k, v in lyr.params.items()
        if v is not None
    }
    for name, value in named.items():
        if value.dtype != np.float64:
            raise ValueError(
                f"gradcheck: parameter {name} is {value.dtype}; build the layer under "
                "nnframe.backend.default_dtype('float64')"
            )
    run()
    for _, lyr in _leaves_of(layer):
        lyr.requires_input_grad = True
    layer.requires_input_grad = True
    dx = layer.backward([p.copy() for p in projection] if multi_out else projection.copy())
    analytic = {name: np.array(lyr_grads, copy=True) for name, lyr_grads in (
        (f"{prefix}{k}", lyr.grads[k]) for prefix, lyr in _leaves_of(layer) for k in lyr.params
        if lyr.params[k] is not None
    )}

    def objective() -> float:
        result = run()
        if multi_out:
            return float(sum((o * p).sum() for o, p in zip(result, projection, strict=True)))
        return float((result * projection).sum())

    problems: list[str] = []
    report: dict[str, float] = {}
    dxs = dx if multi_in else [dx]
    if multi_in and (not isinstance(dx, (list, tuple)) or len(dx) != len(xs)):
        raise GradcheckError(f"expected a list of {len(xs)} input gradients, got {type(dx).__name__}")
    for index, (x, g) in enumerate(zip(xs, dxs, strict=True)):
        if not check_inputs or x.dtype.kind != "f":
            continue
        name = f"input.{index}" if multi_in else "input"
        if g is None or g.shape != x.shape:
            raise GradcheckError(f"{name} gradient has shape {getattr(g, 'shape', None)}, expected {x.shape}")
        a, n = _numeric_grad(objective, x, eps, max_full, directions, rng, np.asarray(g))
        report[name] = _compare(name, a, n, atol, rtol, problems)
    for name, value in named.items():
        a, n = _numeric_grad(objective, value, eps, max_full, directions, rng, analytic[name])
        report[name] = _compare(name, a, n, atol, rtol, problems)
    if problems:
        raise GradcheckError("gradient check failed:\n  " + "\n  ".join(problems))
    return report


def gradcheck_loss(loss: Any, predicted: np.ndarray, actual: Any, *, eps: float = 1e-6,
                   atol: float = 1e-7, rtol: float = 1e-4, seed: int = 0, max_full: int = 512,
                   directions: int = 8) -> float:
    """Check ``loss.grad`` (via ``loss_and_grad``) against central differences of ``loss.loss``.

    Returns the largest error; raises :class:`GradcheckError` on a mismatch.
    """
    pred = np.array(predicted, dtype=np.float64, copy=True)
    if np.asarray(predicted).dtype != np.float64:
        raise ValueError(f"gradcheck_loss: predictions must be float64, got {np.asarray(predicted).dtype}")
    value, grad = loss.loss_and_grad(pred, actual)
    if grad.dtype != np.float64 or grad.shape != pred.shape:
        raise GradcheckError(f"gradient is {grad.shape} {grad.dtype}, expected {pred.shape} float64")
    if abs(value - loss.loss(pred, actual)) > 1e-12 * max(1.0, abs(value)):
        raise GradcheckError("loss() and loss_and_grad() disagree on the value")
    rng = np.random.default_rng(seed)
    a, n = _numeric_grad(lambda: loss.loss(pred, actual), pred, eps, max_full, directions, rng, grad)
    problems: list[str] = []
    err = _compare("predictions", a, n, atol, rtol, problems)
    if problems:
        raise GradcheckError("gradient check failed:\n  " + "\n  ".join(problems))
    return err
