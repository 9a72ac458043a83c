"""ONNX converters for RNN, LSTM and GRU (ONNX's ``RNN``/``LSTM``/``GRU`` operators, one per layer).

nnframe's recurrent layers keep PyTorch's parameters (``weight_ih_l0`` ``(G*H, D)``, gate order
LSTM ``i, f, g, o``, GRU ``r, z, n``); ONNX wants ``W`` ``(directions, G*H, D)``, ``R``, ``B =
[Wb, Rb]`` with gates LSTM ``i, o, f, c`` and GRU ``z, r, h`` (reordered by
:func:`nnframe.interop.layout.torch_to_onnx_gates`), and PyTorch's GRU is ONNX's
``linear_before_reset=1``. ONNX runs time-major ``(T, N, D)``, so the sequence is transposed
in and out. Inference only: no initial state input, no ``return_state``, no ``stateful``.
"""

from __future__ import annotations

import numpy as np

from nnframe import backend, layer
from nnframe.interop import layout
from nnframe.interop.onnx_export import ExportContext, ExportError, Tensor, register

_KIND = {"LSTM": "lstm", "GRU": "gru"}


def _weights(lay: layer.Layer, index: int, direction: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``W`` ``(G*H, D)``, ``R`` ``(G*H, H)`` and ``B`` ``(2*G*H,)`` of one layer and direction, ONNX order."""
    suffix = f"_l{index}" + ("_reverse" if direction else "")
    arrays = [backend.to_host(lay.params[f"{kind}{suffix}"]) for kind in ("weight_ih", "weight_hh", "bias_ih",
                                                                          "bias_hh")]
    kind = _KIND.get(type(lay).__name__)
    if kind is not None:
        arrays = [layout.torch_to_onnx_gates(a, kind) for a in arrays]
    w, r, b_ih, b_hh = arrays
    return w, r, np.concatenate([b_ih, b_hh])


@register(layer.RNN, layer.LSTM, layer.GRU)
def _recurrent(ctx: ExportContext, lay: layer.Layer, x: Tensor, out_shape: tuple) -> Tensor:
    op = type(lay).__name__
    if lay.return_state or lay.stateful:
        raise ExportError(f"cannot export layer {ctx.prefix} ({lay.name}): return_state and stateful layers "
                          "are not exported (their states would be extra graph inputs and outputs)")
    x = ctx.channels_last(x)
    hidden, dirs = lay.hidden_size, lay.directions
    seq = ctx.node("Transpose", [x.name], "time_major", perm=[1, 0, 2])  # (T, N, D)
    attrs: dict = {"hidden_size": hidden, "direction": "bidirectional" if dirs == 2 else "forward"}
    if op == "GRU":
        attrs["linear_before_reset"] = 1  # PyTorch's (and nnframe's) reset gate after the recurrent product
    if op == "RNN":
        attrs["activations"] = [lay.nonlinearity.capitalize()] * dirs
    last_h = None
    for index in range(lay.num_layers):
        parts = [_weights(lay, index, d) for d in range(dirs)]
        w, r, b = (np.stack([p[k] for p in parts]) for k in range(3))  # (dirs, ...)
        inputs = [seq, ctx.constant(w, f"W{index}"), ctx.constant(r, f"R{index}"), ctx.constant(b, f"B{index}")]
        if index == lay.num_layers - 1 and not lay.return_sequences:  # only the final state: Y unused, unnamed
            last_h = ctx.node_outputs(op, inputs, ["", f"Y_h{index}"], **attrs)[1]
            break
        y, last_h = ctx.node_outputs(op, inputs, [f"Y{index}", f"Y_h{index}"], **attrs)
        y = ctx.node("Transpose", [y], f"Y{index}_by_step", perm=[0, 2, 1, 3])  # (T, N, dirs, H)
        seq = ctx.node("Reshape", [y, ctx.ints([0, 0, dirs * hidden], "merge_directions")], f"seq{index}")
    if lay.return_sequences:
        return Tensor(ctx.node("Transpose", [seq], "batch_major", perm=[1, 0, 2]), out_shape)  # (N, T, dirs*H)
    h = ctx.node("Transpose", [last_h], "final_by_sample", perm=[1, 0, 2])  # (N, dirs, H)
    return Tensor(ctx.node("Reshape", [h, ctx.ints([0, dirs * hidden], "final_shape")], "final"), out_shape)
