"""Merges of several tensors (``Add``, ``Multiply``, ``Concatenate``) and the ``Residual`` block.

A merge layer takes a list of arrays and returns one; its ``backward`` returns a list
of input gradients, one per input. ``Add`` and ``Multiply`` broadcast as NumPy does
(``(N, H, W, C) + (N, 1, 1, C)``), and a broadcast input's gradient is summed back to
its own shape; shapes that do not broadcast raise a :class:`~nnframe.errors.ShapeError`
listing every input shape and the first axis that disagrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nnframe import backend
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer, as_shape, layer_from_config, layer_to_config
from nnframe.layer.container import Container


def _check_inputs(owner: str, inputs: Any) -> list[Array]:
    if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
        got = f"{len(inputs)} arrays" if isinstance(inputs, (list, tuple)) else type(inputs).__name__
        raise ShapeError(f"{owner} expects a list of at least 2 arrays, got {got}")
    dtypes = {a.dtype for a in inputs}
    if len(dtypes) > 1:
        raise ShapeError(f"{owner}: all inputs must share one dtype, got {[str(a.dtype) for a in inputs]}")
    return list(inputs)


def _check_shapes(owner: str, shapes: Any) -> list[tuple[int, ...]]:
    shapes = as_shape(shapes)
    if not isinstance(shapes, list) or len(shapes) < 2:
        raise ShapeError(f"{owner} expects a list of at least 2 input shapes, got {shapes!r}")
    return shapes


def broadcast_shape(owner: str, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """The NumPy broadcast of ``shapes``.

    Raises:
        ShapeError: naming ``owner``, every input shape and the first axis (counted from
            the end, as broadcasting aligns them) where the sizes differ and neither is 1.
    """
    ndim = max(len(s) for s in shapes)
    out = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis}
        big = sizes - {1}
        if len(big) > 1:
            listed = ", ".join(str(tuple(s)) for s in shapes)
            raise ShapeError(
                f"{owner}: input shapes {listed} do not broadcast: axis {axis} has sizes "
                f"{sorted(big)} (sizes must be equal or 1)"
            )
        out.append(big.pop() if big else 1)
    return tuple(out)


def _reduce_to(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum ``grad`` over the axes along which an input of ``shape`` was broadcast."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def _all_real(masks: Any) -> Array | None:
    """Masks of padded steps (``True`` = a real step) combined: a step is real where it is
    real in every input that has a mask; ``None`` when no input has one."""
    if not isinstance(masks, list):
        return masks
    present = [m for m in masks if m is not None]
    if not present:
        return None
    out = backend.xp().asarray(present[0], dtype=bool).copy()
    for m in present[1:]:
        out &= m
    return out


class Add(Layer):
    """Element-wise sum of its inputs, broadcast as in NumPy: ``y = x_0 + x_1 + ...``.

    In a graph, the inputs' masks of padded steps combine (a step is real where every
    masked input has it real).

    Shapes:
        inputs: a list of at least 2 arrays whose shapes broadcast; output: the broadcast shape.
    """

    def compute_output_shape(self, input_shape: list[tuple[int, ...]]) -> tuple[int, ...]:
        return broadcast_shape(self.name, _check_shapes(self.name, input_shape))

    def forward(self, inputs: list[Array]) -> Array:
        xs = _check_inputs(self.name, inputs)
        broadcast_shape(self.name, [tuple(x.shape) for x in xs])
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out += x
        self.ctx = {"shapes": [tuple(x.shape) for x in xs]}
        return out

    propagates_mask = True

    def compute_mask(self, inputs: Any, mask: Any) -> Array | None:
        """The inputs' masks combined (a step is real where every masked input has it real)."""
        return _all_real(mask)

    def backward(self, grad: Array) -> list[Array] | None:
        if not self.requires_input_grad:
            return None
        return [_reduce_to(grad, shape) for shape in self.ctx["shapes"]]


class Multiply(Layer):
    """Element-wise product of its inputs, broadcast as in NumPy: ``y = x_0 * x_1 * ...``.

    ``dL/dx_i = grad * prod_{j != i} x_j``, summed back over broadcast axes. Masks of
    padded steps combine as for :class:`Add`.

    Shapes:
        inputs: a list of at least 2 arrays whose shapes broadcast; output: the broadcast shape.
    """

    def compute_output_shape(self, input_shape: list[tuple[int, ...]]) -> tuple[int, ...]:
        return broadcast_shape(self.name, _check_shapes(self.name, input_shape))

    def forward(self, inputs: list[Array]) -> Array:
        xs = _check_inputs(self.name, inputs)
        broadcast_shape(self.name, [tuple(x.shape) for x in xs])
        out = xs[0] * xs[1]
        for x in xs[2:]:
            out = out * x
        self.ctx = {"X": xs}
        return out

    propagates_mask = True

    def compute_mask(self, inputs: Any, mask: Any) -> Array | None:
        """The inputs' masks combined (a step is real where every masked input has it real)."""
        return _all_real(mask)

    def backward(self, grad: Array) -> list[Array] | None:
        if not self.requires_input_grad:
            return None
        xs = self.ctx["X"]
        grads = []
        for i, x in enumerate(xs):
            g = grad
            for j, other in enumerate(xs):
                if j != i:
                    g = g * other
            grads.append(_reduce_to(g, tuple(x.shape)))
        return grads


class Concatenate(Layer):
    """Join its inputs along ``axis`` (default the last: channels / features).

    Args:
        axis: a non-batch axis, negative counting from the end (``-1``) or positive
            counting the batch axis as 0 (``3`` for the channels of NHWC).

    Shapes:
        inputs: a list of at least 2 arrays of equal rank that agree on every axis but
        ``axis``; output: sizes along ``axis`` added.
    """

    def __init__(self, axis: int = -1, name: str | None = None) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int) or axis == 0:
            raise ValueError(f"Concatenate: axis must be a non-zero integer (axis 0 is the batch), got {axis!r}")
        super().__init__(name)
        self.axis = axis

    def _axis(self, shapes: list[tuple[int, ...]]) -> int:
        """The concatenation axis as a positive index, after checking that ``shapes`` fit."""
        ndim = len(shapes[0])
        axis = self.axis if self.axis > 0 else ndim + self.axis
        if any(len(s) != ndim for s in shapes) or not 0 < axis < ndim:
            raise ShapeError(f"{self.name}: axis {self.axis} needs inputs of equal rank with that non-batch "
                             f"axis, got shapes {shapes}")
        for shape in shapes[1:]:
            for a in range(ndim):
                if a != axis and shape[a] != shapes[0][a]:
                    raise ShapeError(f"{self.name}: inputs must agree on every axis but {self.axis}; shapes "
                                     f"{shapes} differ on axis {a} ({shapes[0][a]} vs {shape[a]})")
        return axis

    def compute_output_shape(self, input_shape: list[tuple[int, ...]]) -> tuple[int, ...]:
        shapes = _check_shapes(self.name, input_shape)
        axis = self._axis(shapes)
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def forward(self, inputs: list[Array]) -> Array:
        xs = _check_inputs(self.name, inputs)
        shapes = [tuple(x.shape) for x in xs]
        axis = self._axis(shapes)
        self.ctx = {"sizes": [s[axis] for s in shapes], "axis": axis}
        return backend.xp().concatenate(xs, axis=axis)

    def backward(self, grad: Array) -> list[Array] | None:
        if not self.requires_input_grad:
            return None
        xp = backend.xp()
        axis, sizes = self.ctx["axis"], self.ctx["sizes"]
        cuts = [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)]
        return [xp.ascontiguousarray(g) for g in xp.split(grad, cuts, axis=axis)]

    propagates_mask = True

    def compute_mask(self, inputs: Any, mask: Any) -> Array | None:
        """Along the time axis of ``(N, T, C)`` inputs (axis 1) the masks are joined too (an
        input without one is all real steps); along another axis they combine as for :class:`Add`."""
        if not isinstance(mask, list) or all(m is None for m in mask):
            return _all_real(mask)
        xs = list(inputs)
        if self._axis([tuple(x.shape) for x in xs]) != 1 or xs[0].ndim != 3:
            return _all_real(mask)
        xp = backend.xp()
        return xp.concatenate([xp.ones(x.shape[:2], dtype=bool) if m is None else xp.asarray(m, dtype=bool)
                               for x, m in zip(xs, mask, strict=True)], axis=1)

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis, **super().get_config()}


class Residual(Container):
    """``y = body(x) + shortcut(x)``: a residual block (He et al., 2015, https://arxiv.org/abs/1512.03385).

    Args:
        body: the residual branch (a layer or a container, e.g. a ``Net`` of conv-BN-ReLU).
        shortcut: the projection branch (e.g. a 1x1 ``Conv2D`` with stride, when the body
            changes the shape), or ``None`` for the identity.
        name: the layer name.

    Shapes:
        input ``(N, ...)``; ``body(x)`` and ``shortcut(x)`` must have the same shape, which
        is the output's. Parameter names: ``"body.<...>"``, ``"shortcut.<...>"``.
    """

    def __init__(self, body: Layer, shortcut: Layer | None = None, name: str | None = None,
                 dtype: Any = None) -> None:
        for arg, value in (("body", body), ("shortcut", shortcut)):
            if value is not None and not isinstance(value, Layer):
                raise TypeError(f"Residual: {arg} must be a nnframe Layer, got {type(value).__name__}")
        if body is None:
            raise TypeError("Residual: body must be a nnframe Layer, got None")
        if shortcut is body:
            raise ValueError("Residual: body and shortcut must be different layers")
        super().__init__(name=name, dtype=dtype)
        self.body = body
        self.shortcut = shortcut
        self._adopt([body] if shortcut is None else [body, shortcut])

    def sublayers(self) -> list[tuple[str, Layer]]:
        """``("body", body)`` and, when there is one, ``("shortcut", shortcut)``."""
        children: list[tuple[str, Layer]] = [("body", self.body)]
        if self.shortcut is not None:
            children.append(("shortcut", self.shortcut))
        return children

    def run_forward(self, inputs: Array) -> Array:
        """``body(x) + shortcut(x)`` (the identity when there is no shortcut)."""
        try:
            out = self.body.forward(inputs)
        except ShapeError as exc:
            raise ShapeError(f"{self.name}.body ({self.body.name}): {exc}") from None
        try:
            skip = inputs if self.shortcut is None else self.shortcut.forward(inputs)
        except ShapeError as exc:
            raise ShapeError(f"{self.name}.shortcut ({self.shortcut.name}): {exc}") from None
        self._check_branches(out.shape, skip.shape)
        return out + skip  # a new array: the body's output may be cached by its last layer

    def shape_walk(self, input_shape: Any, build: bool) -> list[Any]:
        """``[body output, shortcut output, output]`` shapes (see :meth:`Container.shape_walk`)."""
        try:
            out = self.child_shape(self.body, input_shape, build)
        except ShapeError as exc:
            raise ShapeError(f"{self.name}.body ({self.body.name}): {exc}") from None
        try:
            skip = input_shape if self.shortcut is None else self.child_shape(self.shortcut, input_shape, build)
        except ShapeError as exc:
            raise ShapeError(f"{self.name}.shortcut ({self.shortcut.name}): {exc}") from None
        self._check_branches(out, skip)
        return [out, skip, out]

    def _check_branches(self, out: Any, skip: Any) -> None:
        if tuple(out) != tuple(skip):
            what = "the input" if self.shortcut is None else f"the shortcut output ({self.shortcut.name})"
            hint = (" ; give a projection shortcut, e.g. shortcut=Conv2D(C_out, 1, stride=s)"
                    if self.shortcut is None else "")
            raise ShapeError(f"{self.name}: the body output ({self.body.name}) has shape {tuple(out)}, "
                             f"{what} {tuple(skip)}; they must be equal{hint}")

    def run_backward(self, grad: Array) -> Array | None:
        """The input gradient is the sum of both branches' input gradients."""
        dx = self.body.backward(grad)
        skip = grad if self.shortcut is None else self.shortcut.backward(grad)
        if not self.requires_input_grad:
            return None
        return dx + skip

    def _set_input_grad(self, value: bool) -> None:
        self.body.requires_input_grad = value
        if self.shortcut is not None:
            self.shortcut.requires_input_grad = value

    def _input_layers(self) -> list[Layer]:
        return [layer for _, layer in self.sublayers()]

    def get_config(self) -> dict[str, Any]:
        config = {"body": layer_to_config(self.body),
                  "shortcut": None if self.shortcut is None else layer_to_config(self.shortcut)}
        return {**config, **super().get_config()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Residual:
        """Rebuild an (unbuilt) block from :meth:`get_config`'s output."""
        shortcut = config.get("shortcut")
        return cls(layer_from_config(config["body"]), None if shortcut is None else layer_from_config(shortcut),
                   name=config.get("name"))
