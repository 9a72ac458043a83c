"""Symbolic tensors: the functional API's placeholders (Keras's ``Input`` / ``KerasTensor``).

``x = Input(shape=(28, 28, 1))`` makes a :class:`SymbolicTensor`; calling any layer on
symbolic tensors (``Dense(10)(x)``, ``Add()([a, b])``) computes the output shape at once
(with the layer's shape inference, :func:`~nnframe.layer.base.infer_output_shape`), records
a :class:`Node` (the layer and the tensors it was called on) and returns the output
tensor(s). No array is computed; :class:`~nnframe.graph.Graph` turns the recorded nodes
into a container. A shape a layer cannot take is refused here, naming the layer and the
layers that made its inputs.

Shapes of symbolic tensors are per sample (no batch axis), as ``Input(shape=...)`` takes them.
"""

from __future__ import annotations

import itertools
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from nnframe import backend
from nnframe.errors import ShapeError
from nnframe.layer.base import as_shape, implements_shape_inference, infer_output_shape
from nnframe.layer.container import Container

if TYPE_CHECKING:
    from nnframe.layer.base import Layer

_ORDER = itertools.count()  # creation order of nodes: a deterministic tie-break for sorting
# layers already called symbolically: later calls check their shapes instead of rebuilding them
_CALLED: weakref.WeakSet = weakref.WeakSet()


class Node:
    """One call of a layer on symbolic tensors (``layer is None`` for an :func:`Input`).

    Attributes:
        layer: the layer called.
        inputs: the tensors it was called on, in order.
        multi_in: whether it was called on a list (``Add()([a, b])``) rather than one tensor.
        outputs: the tensors it returned.
        multi_out: whether it returned a list (a layer with several outputs).
        order: creation order (a deterministic tie-break).
    """

    def __init__(self, layer: Layer | None, inputs: list[SymbolicTensor], multi_in: bool) -> None:
        self.layer = layer
        self.inputs = inputs
        self.multi_in = multi_in
        self.outputs: list[SymbolicTensor] = []
        self.multi_out = False
        self.order = next(_ORDER)

    def describe(self) -> str:
        """``"dense_1 (Dense)"``, or ``"Input 'image'"``."""
        if self.layer is None:
            return f"Input {self.outputs[0].name!r}" if self.outputs and self.outputs[0].name else "an Input"
        return f"{self.layer.name} ({type(self.layer).__name__})"


class SymbolicTensor:
    """A placeholder for the output of a layer (or for a model input) in a graph being built.

    Attributes:
        shape: the per-sample shape (no batch axis).
        dtype: the array dtype (``Input``'s; float for layer outputs).
        node: the :class:`Node` that produced it.
        index: which of the node's outputs it is.
        name: the input's name (inputs only).
    """

    def __init__(self, shape: tuple[int, ...], dtype: Any, node: Node, index: int = 0,
                 name: str | None = None) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.node = node
        self.index = index
        self.name = name

    @property
    def is_input(self) -> bool:
        """Whether this is a model input made by :func:`Input`."""
        return self.node.layer is None

    def describe(self) -> str:
        """Where the tensor comes from, for error messages."""
        where = self.node.describe()
        if self.node.multi_out:
            where += f" output {self.index}"
        return f"tensor {(None, *self.shape)} from {where}"

    def __repr__(self) -> str:
        return f"<SymbolicTensor {self.describe()}>"


def Input(shape: Any, dtype: Any = None, name: str | None = None) -> SymbolicTensor:  # noqa: N802 - Keras's name
    """A model input of per-sample ``shape`` (no batch axis), e.g. ``Input(shape=(28, 28, 1))``.

    Args:
        shape: the per-sample shape, positive integers.
        dtype: the array dtype (default: the framework float dtype); an integer dtype
            (``"int64"``) for token ids fed to an ``Embedding``.
        name: the input's name (default ``"input_<k>"`` by position in the graph).

    Raises:
        ValueError: for a shape that is not a sequence of positive integers, or a
            dtype that is neither float nor integer.
    """
    try:
        dims = tuple(shape)
    except TypeError:
        dims = None
    if dims is None or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 1
                               for s in dims):
        raise ValueError(f"Input: shape must be a sequence of positive integers (no batch axis), got {shape!r}")
    dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
    if dtype.kind not in "fiu":
        raise ValueError(f"Input: dtype must be a float or integer dtype, got {dtype}")
    if name is not None and not isinstance(name, str):
        raise ValueError(f"Input: name must be a string, got {name!r}")
    node = Node(None, [], multi_in=False)
    tensor = SymbolicTensor(dims, dtype, node, 0, name)
    node.outputs = [tensor]
    return tensor


def is_symbolic(inputs: Any) -> bool:
    """Whether ``inputs`` is a symbolic tensor or a list holding one."""
    if isinstance(inputs, SymbolicTensor):
        return True
    return isinstance(inputs, (list, tuple)) and any(isinstance(i, SymbolicTensor) for i in inputs)


def connect(layer: Layer, inputs: Any) -> Any:
    """Call ``layer`` on symbolic ``inputs``: infer its output shape and record the node.

    The first call builds the layer's shapes for these inputs (allocating nothing, unless
    the layer has no shape inference and must be traced); a later call (a shared layer)
    checks the new inputs against the shapes already known.

    Returns:
        A :class:`SymbolicTensor`, or a list of them for a layer with several outputs.

    Raises:
        TypeError: when a list mixes symbolic tensors with other values.
        ShapeError: when the layer cannot take these shapes, naming it and its inputs.
    """
    multi_in = isinstance(inputs, (list, tuple))
    tensors = list(inputs) if multi_in else [inputs]
    odd = [type(t).__name__ for t in tensors if not isinstance(t, SymbolicTensor)]
    if odd:
        raise TypeError(f"calling {layer.name} on symbolic tensors: every input must be a symbolic tensor "
                        f"(from Input or a layer call), got {odd}")
    batch = [(1, *t.shape) for t in tensors]
    shape_in = batch if multi_in else batch[0]
    dtype = tensors[0].dtype if tensors[0].dtype.kind == "f" else None
    try:
        if isinstance(layer, Container):  # shapes only: the graph's root allocates later
            out = layer.shape_walk(as_shape(shape_in), build=layer not in _CALLED)[-1]
        elif layer in _CALLED and implements_shape_inference(layer):
            out = as_shape(layer.compute_output_shape(shape_in))
        else:
            out = infer_output_shape(layer, shape_in, dtype)
    except ShapeError as exc:
        inputs_text = ", ".join(t.describe() for t in tensors)
        raise ShapeError(f"calling {layer.name} ({type(layer).__name__}) on {inputs_text}: {exc}") from None
    _CALLED.add(layer)
    node = Node(layer, tensors, multi_in)
    multi_out = isinstance(out, list)
    float_dtype = backend.get_default_dtype()
    node.outputs = [SymbolicTensor(s[1:], float_dtype, node, k) for k, s in enumerate(out if multi_out else [out])]
    node.multi_out = multi_out
    return node.outputs if multi_out else node.outputs[0]
