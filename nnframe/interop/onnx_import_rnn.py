"""ONNX import of recurrent layers: ``RNN``/``LSTM``/``GRU`` operators back into nnframe's RNN/LSTM/GRU.

ONNX's recurrent operators run time-major (``(T, N, D)``) with gates in ONNX's order, so both
nnframe's exporter and ``torch.onnx.export`` wrap them in transposes and reshapes. This
module recognises those wrappings as one unit, from the ``Transpose`` into time-major to the
value that is nnframe's layer output:

* nnframe's files: ``Transpose(1, 0, 2)``, then per stacked layer ``RNN``/``LSTM``/``GRU`` ->
  ``Transpose(0, 2, 1, 3)`` -> ``Reshape(0, 0, D*H)``; the sequence ends in ``Transpose(1, 0, 2)``,
  the final state is ``Y_h`` -> ``Transpose(1, 0, 2)`` -> ``Reshape(0, D*H)``;
* PyTorch's (``batch_first=True``): ``Squeeze`` of the direction axis instead of the reshape,
  ``Transpose(1, 0, 2)`` back, and ``y[:, -1]`` as ``Gather(axis=1, index=-1)`` (the final
  state of a one-direction layer); zero initial states built from ``Shape`` of the input.

Gates are reordered by :func:`nnframe.interop.layout.onnx_to_torch_gates` (nnframe keeps
PyTorch's parameters). GRU must be ``linear_before_reset=1`` (PyTorch's and nnframe's GRU).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper

from nnframe import layer
from nnframe.interop import layout
from nnframe.interop.builder import ConversionError, NetBuilder

RECURRENT_OPS = ("RNN", "LSTM", "GRU")
#: operators whose output is all zeros when their first input is (they only move or pick values)
_ZERO_PRESERVING = ("Slice", "Gather", "Reshape", "Squeeze", "Unsqueeze", "Expand", "Transpose", "Identity")
#: operators that only compute shapes (PyTorch's zero initial states): skipped when the chain is walked
SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Concat", "ConstantOfShape", "Slice", "Cast", "Squeeze"}
_GATES = {"LSTM": "lstm", "GRU": "gru"}


def shape_values(nodes: list[onnx.NodeProto], constants: dict[str, np.ndarray]) -> set[str]:
    """Names of the values computed from shapes and constants only (e.g. ``ConstantOfShape(Shape(x))``)."""
    derived: set[str] = set()
    for node in nodes:
        data = [i for i in node.input if i and i not in constants]
        if node.op_type == "Shape" or (node.op_type in SHAPE_OPS and data and all(i in derived for i in data)):
            derived.update(node.output)
    return derived


def zero_values(nodes: list[onnx.NodeProto]) -> set[str]:
    """Names of the values that are all zeros: filled by ``ConstantOfShape`` with 0 (PyTorch's
    initial states), or a slice, gather or reshape of such a value (one layer's share of a
    stacked layer's states)."""
    zeros = set()
    for node in nodes:
        if node.op_type == "ConstantOfShape":
            value = _attrs(node).get("value")
            if not np.any(np.zeros(1) if value is None else onnx.numpy_helper.to_array(value)):
                zeros.add(node.output[0])
        elif node.op_type in _ZERO_PRESERVING and node.input and node.input[0] in zeros:
            zeros.add(node.output[0])
    return zeros


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _const(g: Any, node: onnx.NodeProto, position: int) -> np.ndarray | None:
    if position >= len(node.input) or not node.input[position]:
        return None
    return g.constants.get(node.input[position])


def _is_zero_state(g: Any, name: str, zero_states: set[str]) -> bool:
    if not name:
        return True
    if name in g.constants:
        return not np.any(g.constants[name])
    return name in zero_states


def fold_recurrent(builder: NetBuilder, g: Any, position: int, current: str, skipped: set[str]) -> int:
    """Add the recurrent layer that starts with a time-major ``Transpose`` at ``position``; the end, or 0."""
    nodes = [n for n in g.nodes[position:] if n.output[0] not in skipped]
    if len(nodes) < 2 or nodes[0].op_type != "Transpose" or list(_attrs(nodes[0]).get("perm", [])) != [1, 0, 2] \
            or nodes[1].op_type not in RECURRENT_OPS or nodes[1].input[0] != nodes[0].output[0]:
        return 0
    zero_states = g.zero_states
    op, k, layers, seq = nodes[1].op_type, 1, [], nodes[0].output[0]
    final: str | None = None
    while k < len(nodes) and nodes[k].op_type == op and nodes[k].input[0] == seq:
        rnn = nodes[k]
        layers.append(_layer_params(g, rnn, zero_states))
        dirs = 2 if layers[-1]["direction"] == "bidirectional" else 1
        k += 1
        nxt = nodes[k] if k < len(nodes) else None
        if nxt is not None and nxt.input[0] == rnn.output[0]:  # the sequence Y goes on
            if nxt.op_type == "Squeeze" and dirs == 1:
                seq, k = nxt.output[0], k + 1
            elif nxt.op_type == "Transpose" and list(_attrs(nxt)["perm"]) == [0, 2, 1, 3] and k + 1 < len(nodes) \
                    and nodes[k + 1].op_type == "Reshape":
                seq, k = nodes[k + 1].output[0], k + 2
            else:
                raise ConversionError(f"ONNX import: {op} node {rnn.name!r}: its output Y goes to an unsupported "
                                      f"{nxt.op_type} node {nxt.name!r}")
        elif nxt is not None and len(rnn.output) > 1 and nxt.input[0] == rnn.output[1]:  # the final state Y_h
            if nxt.op_type == "Squeeze" and dirs == 1:
                final, k = nxt.output[0], k + 1
            elif nxt.op_type == "Transpose" and k + 1 < len(nodes) and nodes[k + 1].op_type == "Reshape":
                final, k = nodes[k + 1].output[0], k + 2
            else:
                raise ConversionError(f"ONNX import: {op} node {rnn.name!r}: its state Y_h goes to an unsupported "
                                      f"{nxt.op_type} node {nxt.name!r}")
            break
    return_sequences = final is None
    end_value = final
    if return_sequences:  # the time-major sequence goes back to batch-major
        back = nodes[k] if k < len(nodes) else None
        if back is None or back.op_type != "Transpose" or list(_attrs(back)["perm"]) != [1, 0, 2] \
                or back.input[0] != seq:
            raise ConversionError(f"ONNX import: the {op} layers' sequence is not transposed back to (N, T, C)")
        end_value, k = back.output[0], k + 1
        take = nodes[k] if k < len(nodes) else None
        if take is not None and take.op_type == "Gather" and take.input[0] == end_value \
                and _attrs(take).get("axis", 0) == 1 and layers[-1]["direction"] == "forward":
            index = _const(g, take, 1)
            if index is not None and index.ndim == 0 and int(index) in (-1, builder.source_shape[0] - 1):
                end_value, k, return_sequences = take.output[0], k + 1, False  # y[:, -1]: the final state
    _add_layer(builder, op, layers, return_sequences)
    last = nodes[k - 1]
    return g.nodes.index(last) + 1 if last.output[0] == end_value else 0


def _layer_params(g: Any, rnn: onnx.NodeProto, zero_states: set[str]) -> dict[str, Any]:
    attrs = _attrs(rnn)
    direction = attrs.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    where = f"ONNX import: {rnn.op_type} node {rnn.name!r}"
    if direction not in ("forward", "bidirectional"):
        raise ConversionError(f"{where}: direction {direction!r} is not supported")
    if rnn.op_type == "GRU" and attrs.get("linear_before_reset", 0) != 1:
        raise ConversionError(f"{where}: only linear_before_reset=1 (PyTorch's GRU) is supported")
    if "clip" in attrs or attrs.get("input_forget", 0) or attrs.get("layout", 0):
        raise ConversionError(f"{where}: clip, input_forget and layout=1 are not supported")
    if len(rnn.input) > 4 and rnn.input[4]:
        raise ConversionError(f"{where}: sequence_lens is not supported")
    for position in (5, 6):
        if position < len(rnn.input) and not _is_zero_state(g, rnn.input[position], zero_states):
            raise ConversionError(f"{where}: only zero initial states are supported")
    if len(rnn.input) > 7 and rnn.input[7]:
        raise ConversionError(f"{where}: peephole weights are not supported")
    w, r = _const(g, rnn, 1), _const(g, rnn, 2)
    if w is None or r is None:
        raise ConversionError(f"{where}: W and R must be constants")
    b = _const(g, rnn, 3)
    b = np.zeros((w.shape[0], 2 * w.shape[1]), w.dtype) if b is None else b
    acts = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
    nonlinearity = "tanh"
    if rnn.op_type == "RNN" and acts:
        if len(set(acts)) != 1 or acts[0] not in ("Tanh", "Relu"):
            raise ConversionError(f"{where}: activations {acts}; only Tanh or Relu (the same for both directions)")
        nonlinearity = acts[0].lower()
    elif acts:
        raise ConversionError(f"{where}: custom activations {acts} are not supported")
    return {"W": w, "R": r, "B": b, "hidden": int(attrs["hidden_size"]), "direction": direction,
            "nonlinearity": nonlinearity}


def _add_layer(builder: NetBuilder, op: str, layers: list[dict[str, Any]], return_sequences: bool) -> None:
    first = layers[0]
    hidden, dirs = first["hidden"], (2 if first["direction"] == "bidirectional" else 1)
    params: dict[str, np.ndarray] = {}
    gate = _GATES.get(op)
    for index, lay in enumerate(layers):
        width = lay["W"].shape[1]
        for d in range(dirs):
            suffix = f"_l{index}" + ("_reverse" if d else "")
            arrays = {"weight_ih": lay["W"][d], "weight_hh": lay["R"][d], "bias_ih": lay["B"][d][:width],
                      "bias_hh": lay["B"][d][width:]}
            for kind, value in arrays.items():
                params[f"{kind}{suffix}"] = layout.onnx_to_torch_gates(value, gate) if gate else value
    kwargs: dict[str, Any] = {"num_layers": len(layers), "bidirectional": dirs == 2,
                              "return_sequences": return_sequences}
    if op == "RNN":
        kwargs["nonlinearity"] = first["nonlinearity"]
    builder.recurrent(getattr(layer, op), hidden, params, **kwargs)
