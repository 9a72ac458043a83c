"""Recurrent layers: ``RNN``, ``LSTM`` and ``GRU`` on batch-first sequences ``(N, T, C)``.

Built like :class:`~nnframe.layer.Dense`: the hidden size first, the input size inferred on
the first forward. Parameters use PyTorch's names, layouts and gate order
(``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``..._reverse`` for
the second direction), so a ``state_dict`` copies 1:1 from ``torch.nn.RNN/LSTM/GRU``;
the cell maths is in :mod:`nnframe.layer.rnn_cells`.

How the extra inputs and outputs travel:

* **initial state**: ``forward(x, initial_state=h0)`` (``(h0, c0)`` for LSTM), or the
  list form ``forward([x, h0])`` / ``forward([x, h0, c0])`` (a layer with several inputs,
  as in a graph): then :meth:`backward` returns ``[dx, dh0]`` / ``[dx, dh0, dc0]``. With the
  keyword, the state gradients are left in :attr:`initial_state_grads`. States are laid
  out as PyTorch's ``(num_layers * directions, N, H)``; ``(N, H)`` is accepted for one
  layer and one direction.
* **padded batches**: ``forward(x, mask=m)`` (``(N, T)``, ``True`` = real step) or
  ``forward(x, lengths=l)`` (``(N,)``, right padding). In a :class:`~nnframe.net.Net` the
  mask comes from ``Embedding(padding_idx=..., mask_padding=True)`` or ``Masking``.
  Padded steps leave the state unchanged and get no gradient; their outputs are zero (as
  ``pad_packed_sequence``'s); the final state is each sequence's state at its true end.
* **return_state**: the output is ``[y, h_n]`` (``[y, h_n, c_n]`` for LSTM) and ``backward``
  takes a list of gradients in the same order (``None`` for an unused one).
* **stateful**: each call starts from the previous call's final state (gradient does not
  flow across calls: truncated back-propagation through time) until :meth:`reset_states`;
  text generation feeds one step at a time this way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from nnframe import backend
from nnframe import initializer as init_mod
from nnframe import random as nn_random
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer import rnn_cells
from nnframe.layer.base import Layer, check_rate


def _positive_int(owner: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


class _Recurrent(Layer):
    """Shared machinery of RNN/LSTM/GRU: layers, directions, masks, states, dropout."""

    accepts_mask: ClassVar[bool] = True
    #: number of state arrays (1: h; 2: h and c)
    num_states: ClassVar[int] = 1

    def __init__(
        self,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        return_sequences: bool = False,
        return_state: bool = False,
        stateful: bool = False,
        w_init: init_mod.Initializer | str | dict | None = None,
        u_init: init_mod.Initializer | str | dict | None = None,
        b_init: init_mod.Initializer | str | dict | None = None,
        rng: int | np.random.Generator | None = None,
        name: str | None = None,
    ) -> None:
        owner = type(self).__name__
        self.hidden_size = _positive_int(owner, "hidden_size", hidden_size)
        self.num_layers = _positive_int(owner, "num_layers", num_layers)
        self.bidirectional = bool(bidirectional)
        self.dropout = check_rate(owner, "dropout", dropout)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.stateful = bool(stateful)
        self.rng = nn_random.get_rng(rng)
        super().__init__(name)
        bound = 1.0 / math.sqrt(self.hidden_size)  # PyTorch's U(-1/sqrt(H), 1/sqrt(H)) for every tensor
        default = init_mod.Uniform(-bound, bound)
        kinds = {"weight_ih": w_init, "weight_hh": u_init, "bias_ih": b_init, "bias_hh": b_init}
        self._inits = {kind: init_mod.get(spec) if spec is not None else default for kind, spec in kinds.items()}
        self._init_specs = {"w_init": w_init, "u_init": u_init, "b_init": b_init}
        self.cell = self._make_cell()
        width = self.cell.gates * self.hidden_size
        for layer_index in range(self.num_layers):
            in_size = None if layer_index == 0 else self.directions * self.hidden_size
            for direction in range(self.directions):
                for kind, shape in (("weight_ih", [width, in_size]), ("weight_hh", [width, self.hidden_size]),
                                    ("bias_ih", [width]), ("bias_hh", [width])):
                    name_ = self._pname(kind, layer_index, direction)
                    self.shapes[name_] = shape
                    self.initializers[name_] = self._inits[kind]
        self.states: list[Array] | None = None  # the carried state of a stateful layer
        self.initial_state_grads: list[Array] | None = None
        self._ws: dict[Any, rnn_cells.Workspace] = {}

    def _make_cell(self) -> rnn_cells.Cell:
        raise NotImplementedError

    @property
    def directions(self) -> int:
        """1, or 2 when bidirectional."""
        return 2 if self.bidirectional else 1

    @staticmethod
    def _pname(kind: str, layer_index: int, direction: int) -> str:
        return f"{kind}_l{layer_index}" + ("_reverse" if direction else "")

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(self._pname(kind, k, d) for k in range(self.num_layers) for d in range(self.directions)
                     for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def _workspace(self, key: Any) -> rnn_cells.Workspace:
        if key not in self._ws:
            self._ws[key] = rnn_cells.Workspace()
        return self._ws[key]

    # ------------------------------------------------------------------ inputs
    def _split_inputs(self, inputs: Any, initial_state: Any) -> tuple[Array, Any, bool]:
        if isinstance(inputs, (list, tuple)):
            if initial_state is not None:
                raise ValueError(f"{self.name}: pass the initial state either in the input list or as "
                                 "initial_state=, not both")
            if len(inputs) != 1 + self.num_states:
                names = "[x, h0, c0]" if self.num_states == 2 else "[x, h0]"
                raise ShapeError(f"{self.name}: a list input must be {names}, got a list of {len(inputs)}")
            return inputs[0], list(inputs[1:]), True
        return inputs, initial_state, False

    def _x_shape(self, input_shape: Any) -> tuple[int, ...]:
        """The sequence's shape ``(N, T, C)`` from one shape or a list ``[x, h0(, c0)]`` of shapes."""
        shape = tuple(input_shape[0]) if isinstance(input_shape, list) else tuple(input_shape)
        if len(shape) != 3:
            raise ShapeError(f"{self.name} expects sequences of shape (N, T, C), got shape {shape}")
        if shape[1] < 1:
            raise ShapeError(f"{self.name} needs at least one time step, got shape {shape}")
        built = self.shapes[self._pname("weight_ih", 0, 0)][1]
        if built is not None and shape[2] != built:
            raise ShapeError(f"{self.name} was built for {built} input features, got input of shape "
                             f"{shape} ({shape[2]} features on the last axis)")
        return shape

    def build(self, input_shape: Any) -> None:
        """Set the input size of the first layer's ``weight_ih`` from ``(N, T, C)``; allocate nothing."""
        features = self._x_shape(input_shape)[2]
        for direction in range(self.directions):
            self.shapes[self._pname("weight_ih", 0, direction)][1] = features

    def compute_output_shape(self, input_shape: Any) -> Any:
        """``(N, T, D*H)`` or ``(N, D*H)``; with ``return_state`` a list adding the state shapes."""
        n, steps, _ = self._x_shape(input_shape)
        width = self.directions * self.hidden_size
        out = (n, steps, width) if self.return_sequences else (n, width)
        if not self.return_state:
            return out
        return [out] + [(self.num_layers * self.directions, n, self.hidden_size)] * self.num_states

    def _check_input(self, x: Array) -> None:
        if not hasattr(x, "ndim") or x.ndim != 3:
            raise ShapeError(f"{self.name} expects sequences of shape (N, T, C), got shape "
                             f"{tuple(getattr(x, 'shape', ()))}")
        if x.dtype.kind != "f":
            raise ShapeError(f"{self.name} expects float input, got dtype {x.dtype}; put an Embedding "
                             "before it for token ids")
        if not self.is_init:
            self.build(tuple(x.shape))
            self._init_params()
        self._x_shape(tuple(x.shape))
        self._check_dtype(x)

    def _keep(self, x: Array, mask: Any, lengths: Any) -> Array | None:
        """``(T, N, 1)`` bool of real steps from ``mask`` or ``lengths``, or ``None``."""
        xp = backend.xp()
        n, steps = x.shape[:2]
        if mask is not None and lengths is not None:
            raise ValueError(f"{self.name}: pass mask or lengths, not both")
        if lengths is not None:
            lengths = xp.asarray(lengths)
            if lengths.shape != (n,) or lengths.dtype.kind not in "iu":
                raise ShapeError(f"{self.name}: lengths must be {n} integers (one per sequence), got "
                                 f"shape {tuple(lengths.shape)} dtype {lengths.dtype}")
            if lengths.size and (int(lengths.min()) < 0 or int(lengths.max()) > steps):
                raise ShapeError(f"{self.name}: lengths must be in [0, {steps}] (the number of steps), got "
                                 f"values from {int(lengths.min())} to {int(lengths.max())}")
            mask = xp.arange(steps)[None, :] < lengths[:, None]
        if mask is None:
            return None
        mask = xp.asarray(mask)
        if mask.shape != (n, steps):
            raise ShapeError(f"{self.name}: mask must have shape (N, T) = {(n, steps)}, got {tuple(mask.shape)}")
        if mask.dtype != bool:
            if mask.dtype.kind not in "iub" or not bool(xp.isin(mask, (0, 1)).all()):
                raise ShapeError(f"{self.name}: mask must be boolean (True = real step) or 0/1, got dtype "
                                 f"{mask.dtype}")
            mask = mask.astype(bool)
        if bool(mask.all()):
            return None  # nothing padded: the plain loop
        return xp.ascontiguousarray(mask.T)[:, :, None]  # (T, N, 1)

    def _initial_states(self, state: Any, n: int, dtype: Any) -> list[Array]:
        """The ``num_states`` initial arrays, each ``(num_layers * directions, N, H)``."""
        xp = backend.xp()
        shape = (self.num_layers * self.directions, n, self.hidden_size)
        if state is None:
            if self.stateful and self.states is not None:
                if self.states[0].shape != shape:
                    raise ShapeError(f"{self.name} is stateful and carries a state for batch size "
                                     f"{self.states[0].shape[1]}, got a batch of {n}; call reset_states() first")
                return self.states
            return [xp.zeros(shape, dtype=dtype) for _ in range(self.num_states)]
        arrays = [state] if self.num_states == 1 and not isinstance(state, (list, tuple)) else list(state)
        what = "(h0, c0)" if self.num_states == 2 else "h0"
        if len(arrays) != self.num_states:
            raise ShapeError(f"{self.name}: initial_state must be {what}, got {len(arrays)} arrays")
        result = []
        for label, array in zip(("h0", "c0"), arrays, strict=False):
            array = xp.asarray(array)
            if array.ndim == 2 and shape[0] == 1:
                array = array[None]  # (N, H) -> (1, N, H)
            if tuple(array.shape) != shape:
                raise ShapeError(f"{self.name}: {label} must have shape (num_layers * directions, N, H) = "
                                 f"{shape}, got {tuple(array.shape)}")
            if array.dtype != dtype:
                raise ShapeError(f"{self.name}: {label} must have dtype {dtype}, got {array.dtype}")
            result.append(array)
        return result

    # ----------------------------------------------------------------- forward
    def forward(self, inputs: Array | Sequence[Array], mask: Array | None = None, lengths: Array | None = None,
                initial_state: Array | Sequence[Array] | None = None) -> Array | list[Array]:
        """Run the sequence; see the module docstring for the optional inputs and outputs.

        Returns:
            ``(N, T, directions * H)`` with ``return_sequences``, else ``(N, directions * H)``
            (the last layer's final state, both directions concatenated); with
            ``return_state`` a list ``[y, h_n(, c_n)]``, states ``(num_layers * directions, N, H)``.
        """
        xp = backend.xp()
        x, state, listed = self._split_inputs(inputs, initial_state)
        self._check_input(x)
        n, steps, _ = x.shape
        keep = self._keep(x, mask, lengths)
        given = state is not None
        init = self._initial_states(state, n, x.dtype)
        layer_in = xp.ascontiguousarray(x.transpose(1, 0, 2))  # (T, N, C) time-major
        caches, drops, finals = [], [], [[] for _ in range(self.num_states)]
        hidden, dirs = self.hidden_size, self.directions
        for k in range(self.num_layers):
            ws = self._workspace(("out", k))
            out = ws.get("y", (steps, n, dirs * hidden), x.dtype)  # (T, N, D*H)
            layer_caches = []
            for d in range(dirs):
                cache = self._run_direction(layer_in, k, d, [s[k * dirs + d] for s in init], keep)
                rnn_cells_out = rnn_cells.outputs(cache["h"], bool(d))
                out[:, :, d * hidden:(d + 1) * hidden] = rnn_cells_out
                finals[0].append(cache["h"][0 if d else steps])
                if self.num_states == 2:
                    finals[1].append(cache["c"][0 if d else steps])
                layer_caches.append(cache)
            if keep is not None:
                out *= keep  # padded steps output zero
            caches.append((layer_in, layer_caches))
            drop = None
            if self.dropout and self.is_training and k < self.num_layers - 1:
                draws = self.rng.random(out.shape, dtype=np.float32)
                drop = xp.asarray((draws >= self.dropout).astype(x.dtype) / x.dtype.type(1.0 - self.dropout))
                out = out * drop
            drops.append(drop)
            layer_in = out
        final = [xp.stack(f) for f in finals]  # each (L*D, N, H), fresh arrays
        self.ctx = {"caches": caches, "drops": drops, "keep": keep, "listed": listed, "given": given,
                    "shape": x.shape}
        self.initial_state_grads = None
        if self.stateful:
            self.states = [f.copy() for f in final]
        if self.return_sequences:
            y = xp.ascontiguousarray(layer_in.transpose(1, 0, 2))  # (N, T, D*H)
        else:
            y = xp.concatenate([final[0][-dirs + d] for d in range(dirs)], axis=1)  # (N, D*H)
        return [y, *final] if self.return_state else y

    def _run_direction(self, layer_in: Array, k: int, d: int, init: list[Array], keep: Array | None) -> dict:
        xp = backend.xp()
        steps, n, in_size = layer_in.shape
        w_ih, w_hh = self.params[self._pname("weight_ih", k, d)], self.params[self._pname("weight_hh", k, d)]
        b_ih, b_hh = self.params[self._pname("bias_ih", k, d)], self.params[self._pname("bias_hh", k, d)]
        ws = self._workspace((k, d))
        w_ih, w_hh_fwd, bias = self.cell.forward_weights(w_ih, w_hh, b_ih, b_hh)
        gx = ws.get("gx", (steps, n, w_ih.shape[0]), layer_in.dtype)  # (T, N, G*H)
        xp.matmul(layer_in.reshape(steps * n, in_size), w_ih.T, out=gx.reshape(steps * n, -1))  # all steps at once
        gx += bias
        return self.cell.forward(gx, w_hh_fwd, b_hh, init[0], init[1] if len(init) > 1 else None, keep, bool(d),
                                 ws)

    # ---------------------------------------------------------------- backward
    def backward(self, grad: Array | Sequence[Array | None]) -> Array | list[Array] | None:
        """Back-propagate through time; ``grad`` is a list ``[dy, dh_n(, dc_n)]`` with ``return_state``.

        Returns the input gradient (``[dx, dh0(, dc0)]`` for a list input) and leaves
        the initial-state gradients in :attr:`initial_state_grads` when a state was given.
        """
        xp = backend.xp()
        n, steps, _ = self.ctx["shape"]
        dirs, hidden = self.directions, self.hidden_size
        if self.return_state:
            if not isinstance(grad, (list, tuple)) or len(grad) != 1 + self.num_states:
                raise ShapeError(f"{self.name} returns [y, states...]: backward needs a list of "
                                 f"{1 + self.num_states} gradients (None for unused ones)")
            dy, d_final = grad[0], list(grad[1:])
        else:
            dy, d_final = grad, [None] * self.num_states
        keep = self.ctx["keep"]
        dtype = self.params[self._pname("weight_ih", 0, 0)].dtype
        shape = (self.num_layers * dirs, n, hidden)
        d_final = [xp.zeros(shape, dtype) if g is None else xp.array(g, dtype=dtype) for g in d_final]
        d_out = None
        if dy is not None:
            if self.return_sequences:
                d_out = xp.ascontiguousarray(xp.asarray(dy).transpose(1, 0, 2))  # (T, N, D*H)
            else:
                for d in range(dirs):  # y is the last layer's final state
                    d_final[0][-dirs + d] += dy[:, d * hidden:(d + 1) * hidden]
        d_init = [xp.empty(shape, dtype) for _ in range(self.num_states)]
        dx = None
        for k in reversed(range(self.num_layers)):
            layer_in, layer_caches = self.ctx["caches"][k]
            if d_out is not None and keep is not None:
                d_out = d_out * keep  # outputs at padded steps were zeroed
            d_in = None
            for d in range(dirs):
                dy_d = None if d_out is None else d_out[:, :, d * hidden:(d + 1) * hidden]
                d_in_d = self._back_direction(layer_in, k, d, layer_caches[d], dy_d,
                                              [g[k * dirs + d] for g in d_final], d_init, keep)
                if d_in is None:
                    d_in = d_in_d
                else:
                    d_in += d_in_d
            if k > 0:
                drop = self.ctx["drops"][k - 1]
                d_out = d_in.reshape(layer_in.shape)  # (T, N, D*H)
                if drop is not None:
                    d_out *= drop
            else:
                dx = d_in
        if self.ctx["given"]:
            self.initial_state_grads = d_init
        if self.ctx["listed"]:
            return [self._input_grad(dx), *d_init]
        return self._input_grad(dx)

    def _input_grad(self, dx: Array | None) -> Array | None:
        if dx is None:
            return None
        n, steps, c = self.ctx["shape"]
        return backend.xp().ascontiguousarray(dx.reshape(steps, n, c).transpose(1, 0, 2))  # (N, T, C)

    def _back_direction(self, layer_in: Array, k: int, d: int, cache: dict, dy: Array | None,
                        d_final: list[Array], d_init: list[Array], keep: Array | None) -> Array | None:
        xp = backend.xp()
        steps, n, in_size = layer_in.shape
        names = [self._pname(kind, k, d) for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        w_ih, w_hh = self.params[names[0]], self.params[names[1]]
        ws = self._workspace((k, d))
        dh = d_final[0].copy()
        dc = d_final[1].copy() if self.num_states == 2 else None
        dgx, dgh, dh0, dc0 = self.cell.backward(cache, dy, dh, dc, w_hh, keep, bool(d), ws)
        index = k * self.directions + d
        d_init[0][index] = dh0
        if self.num_states == 2:
            d_init[1][index] = dc0
        rows = steps * n
        dgx2, dgh2 = dgx.reshape(rows, -1), dgh.reshape(rows, -1)  # (T*N, G*H)
        prev = rnn_cells.prev_states(cache["h"], bool(d)).reshape(rows, -1)  # (T*N, H)
        ones = ws.get("ones", (rows,), dgx.dtype)
        ones[...] = 1.0
        xp.matmul(dgx2.T, layer_in.reshape(rows, in_size), out=self.grad_buffer(names[0]))
        xp.matmul(dgh2.T, prev, out=self.grad_buffer(names[1]))
        xp.dot(ones, dgx2, out=self.grad_buffer(names[2]))
        if dgh is dgx:  # RNN, LSTM: both biases have the same gradient
            self.grad_buffer(names[3])[...] = self.grads[names[2]]
        else:
            xp.dot(ones, dgh2, out=self.grad_buffer(names[3]))
        if k == 0 and not self.requires_input_grad:
            return None
        return dgx2 @ w_ih  # (T*N, C_in)

    # ------------------------------------------------------------------- misc
    def reset_states(self) -> None:
        """Forget the carried state of a stateful layer (the next call starts from zeros)."""
        self.states = None

    def compute_mask(self, inputs: Any, mask: Array | None) -> Array | None:
        """The mask passes on with ``return_sequences`` (same time axis); else it stops here."""
        return mask if self.return_sequences else None

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "hidden_size": self.hidden_size, "num_layers": self.num_layers, "bidirectional": self.bidirectional,
            "dropout": self.dropout, "return_sequences": self.return_sequences, "return_state": self.return_state,
            "stateful": self.stateful,
        }
        for key, spec in self._init_specs.items():
            if spec is not None:
                config[key] = init_mod.to_config(init_mod.get(spec))
        return {**config, **super().get_config()}


class RNN(_Recurrent):
    """Elman RNN, ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (``torch.nn.RNN``, batch first).

    Args:
        hidden_size: ``H``.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        num_layers: stacked layers; layer ``k + 1`` reads layer ``k``'s output sequence.
        bidirectional: also run each layer backwards in time and concatenate the outputs.
        dropout: dropout rate on each layer's output except the last (training only).
        return_sequences: output every step ``(N, T, D*H)`` instead of the final state ``(N, D*H)``.
        return_state: also return the final states ``(num_layers * D, N, H)``.
        stateful: carry the final state into the next call (see :meth:`reset_states`).
        w_init, u_init, b_init: initializers of ``weight_ih``, ``weight_hh`` and both biases
            (default PyTorch's ``U(-1/sqrt(H), 1/sqrt(H))``).
        rng: seed or generator of the dropout masks.

    Shapes: input ``(N, T, C)``; ``weight_ih_l0``: ``(H, C)``, ``weight_hh_l0``: ``(H, H)``,
    ``bias_ih_l0``, ``bias_hh_l0``: ``(H,)``. See the module docstring for masks and states.
    """

    def __init__(self, hidden_size: int, nonlinearity: str = "tanh", **kwargs: Any) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(hidden_size, **kwargs)

    def _make_cell(self) -> rnn_cells.Cell:
        return rnn_cells.RNNCell(self.nonlinearity)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "nonlinearity": self.nonlinearity}


class LSTM(_Recurrent):
    """Long short-term memory (``torch.nn.LSTM``, batch first; gate order i, f, g, o).

    Arguments and shapes as :class:`RNN` (without ``nonlinearity``), with four gates:
    ``weight_ih_l0``: ``(4H, C)``, ``weight_hh_l0``: ``(4H, H)``; the state is ``(h, c)``.
    """

    num_states: ClassVar[int] = 2

    def _make_cell(self) -> rnn_cells.Cell:
        return rnn_cells.LSTMCell()


class GRU(_Recurrent):
    """Gated recurrent unit (``torch.nn.GRU``, batch first; gate order r, z, n, reset after the product).

    Arguments and shapes as :class:`RNN` (without ``nonlinearity``), with three gates:
    ``weight_ih_l0``: ``(3H, C)``, ``weight_hh_l0``: ``(3H, H)``.
    """

    def _make_cell(self) -> rnn_cells.Cell:
        return rnn_cells.GRUCell()
