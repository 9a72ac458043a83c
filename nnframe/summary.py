"""The text of :meth:`Model.summary <nnframe.model.Model.summary>`: one row per layer.

::

    Model: 5 layers, input (None, 784), float32
    -------------------------------------------
    #  Layer     Output shape  Params
    ...
    Total params: 79,510
    Loss: SoftmaxCrossEntropy()   Optimizer: Adam(lr=0.001)

Output shapes come from one zero sample run through the net in evaluation mode, traced
layer by layer (:func:`~nnframe.layer.container.trace_output_shapes`), so nested
containers and graphs get a row for every layer, indented by depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnframe import backend
from nnframe.layer.container import trace_output_shapes


def summary_text(model: Any, input_shape: Sequence[int] | None = None) -> str:
    """The table :meth:`Model.summary <nnframe.model.Model.summary>` prints, as a string.

    Args:
        model: a :class:`~nnframe.model.Model`.
        input_shape: the per-sample input shape (no batch axis), e.g. ``(28, 28, 1)``, kept
            as ``model.input_shape``; default: the model's (seen by the first forward pass
            or stored in the checkpoint).

    Raises:
        ValueError: when the input shape is unknown.
    """
    if input_shape is not None:
        model.input_shape = input_shape
    shape = model.input_shape
    if shape is None:
        raise ValueError("summary: the input shape is unknown; pass input_shape=(...) without the batch "
                         "axis, e.g. model.summary(input_shape=(28, 28, 1))")
    net = model.net
    shapes = _output_shapes(model, shape)
    rows = [(path, "  " * path.count(".") + layer.name, shape_text(shapes.get(id(layer))),
             f"{layer.num_params:,}") for path, layer in net.named_layers()]
    header = ("#", "Layer", "Output shape", "Params")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(4)]

    def line(row: Sequence[str]) -> str:
        return (f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  "
                f"{row[3]:>{widths[3]}}")

    rule = "-" * len(line(header))
    buffers = sum(int(v.size) for v in net.nt_params.values())
    count = len(net.sublayers())
    text = "\n".join([
        f"Model: {count} layers, input {shape_text(shape)}, {net.dtype}",
        rule, line(header), rule, *map(line, rows), rule,
        f"Total params: {net.num_params:,}" + (f" (+ {buffers:,} non-trainable)" if buffers else ""),
        f"Loss: {model.loss!r}   Optimizer: {model.optimizer!r}",
    ])
    return text


def shape_text(shape: Any) -> str:
    """``(None, 28, 28, 1)`` for a per-sample shape (``?`` for ``None``); several shapes joined by commas."""
    if shape is None:
        return "?"
    if shape and isinstance(shape[0], (list, tuple)):
        return ", ".join(shape_text(s) for s in shape)
    return str((None, *shape))


def _output_shapes(model: Any, shape: Any) -> dict[int, Any]:
    """Each layer's per-sample output shape by ``id(layer)``, from one zero sample run in
    evaluation mode (``shape`` is a list of shapes for a net with several inputs)."""
    net = model.net
    xp = backend.xp()
    dtype = np.int64 if net.accepts_integer_input else net.dtype
    zeros = ([xp.zeros((1, *s), dtype=dtype) for s in shape] if shape and isinstance(shape[0], (list, tuple))
             else xp.zeros((1, *shape), dtype=dtype))
    with model.mode(training=False):
        if not net.is_built:
            net.forward(zeros)
        return trace_output_shapes(net, zeros)
