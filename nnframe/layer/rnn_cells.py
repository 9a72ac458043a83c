"""The time loops of the recurrent cells: one direction of one layer, forward and back through time.

PyTorch's parameterisation and gate order, so weights copy 1:1 from ``torch.nn.RNN``,
``LSTM`` and ``GRU`` (``W_ih``: ``(G*H, C)``, ``W_hh``: ``(G*H, H)``)::

    RNN   h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)
    LSTM  i, f, g, o = split(x W_ih^T + b_ih + h W_hh^T + b_hh)    (sigmoid, sigmoid, tanh, sigmoid)
          c' = f c + i g,  h' = o tanh(c')
    GRU   r, z = sigmoid(split(x W_ih^T + b_ih + h W_hh^T + b_hh)[:2])
          n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)),  h' = (1 - z) n + z h

The caller (:mod:`nnframe.layer.recurrent`) computes the input projection ``gx`` of every
step in one product and the parameter gradients after the loop in one product each; the
loops here only do the recurrent product and the element-wise gate maths of one step,
writing into buffers of a :class:`Workspace` that are allocated once and reused by every
call of the same shape. Time-major arrays: ``gx`` is ``(T, N, G*H)``.

Masks: ``keep`` (``(T, N, 1)`` bool, ``None`` for none) marks real steps. On a padded step
the state is carried over unchanged and nothing flows into the gates, so padded steps
neither update the state nor receive gradient, and the state after the last step is each
sequence's state at its true end (PyTorch's ``pack_padded_sequence``).
"""

from __future__ import annotations

from typing import Any

from nnframe import backend
from nnframe.backend import Array


class Workspace:
    """Named scratch arrays, reallocated only when a shape or dtype changes."""

    def __init__(self) -> None:
        self._arrays: dict[str, Array] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any) -> Array:
        """The array called ``name`` of ``shape`` and ``dtype`` (contents undefined)."""
        array = self._arrays.get(name)
        if array is None or array.shape != shape or array.dtype != dtype:
            array = backend.xp().empty(shape, dtype=dtype)
            self._arrays[name] = array
        return array


def _half_plus_half(t: Array) -> None:
    """``t = 0.5 t + 0.5`` in place: the sigmoid from ``tanh(x / 2)`` (no overflow for any x)."""
    t *= 0.5
    t += 0.5


def _steps(length: int, reverse: bool) -> tuple[range, int]:
    """Step order and the index of the initial state in the ``(T+1, N, H)`` state buffer.

    Forward: state before step ``t`` is ``S[t]``, after it ``S[t+1]``. Reverse: before
    ``S[t+1]``, after ``S[t]``. So ``S[1:]`` (forward) or ``S[:-1]`` (reverse) are the
    outputs by time and ``S[:-1]`` / ``S[1:]`` the previous states.
    """
    return (range(length - 1, -1, -1), length) if reverse else (range(length), 0)


def prev_states(states: Array, reverse: bool) -> Array:
    """``(T, N, H)``: the state each step started from (a view of the state buffer)."""
    return states[1:] if reverse else states[:-1]


def outputs(states: Array, reverse: bool) -> Array:
    """``(T, N, H)``: the state after each step, by time (a view of the state buffer)."""
    return states[:-1] if reverse else states[1:]


class Cell:
    """One cell type's step maths; subclasses set ``gates`` and implement the two loops."""

    gates = 1

    #: column blocks ``(start, stop)`` in units of ``H`` of the gates that go through a sigmoid
    sigmoid_blocks: tuple[tuple[int, int], ...] = ()

    def input_bias(self, b_ih: Array, b_hh: Array) -> Array:
        """The bias added to the input projection once for all steps (both biases by default)."""
        return b_ih + b_hh

    def forward_weights(self, w_ih: Array, w_hh: Array, b_ih: Array, b_hh: Array) -> tuple[Array, Array, Array]:
        """``(W_ih, W_hh, bias)`` for the forward loop: the rows of the sigmoid gates halved.

        ``sigmoid(x) = 0.5 tanh(x / 2) + 0.5``: with those rows (and their bias) halved, one
        ``tanh`` over the whole gate block gives every gate, and a sigmoid costs two more
        passes instead of four. Backward uses the true weights (the gradients are with
        respect to the true pre-activations).
        """
        bias = self.input_bias(b_ih, b_hh)
        if not self.sigmoid_blocks:
            return w_ih, w_hh, bias
        hidden = w_hh.shape[1]
        w_ih, w_hh, bias = w_ih.copy(), w_hh.copy(), bias.copy()
        for start, stop in self.sigmoid_blocks:
            rows = slice(start * hidden, stop * hidden)
            w_ih[rows] *= 0.5
            w_hh[rows] *= 0.5
            bias[rows] *= 0.5
        return w_ih, w_hh, bias

    def forward(self, gx: Array, w_hh: Array, b_hh: Array, h0: Array, c0: Array | None,
                keep: Array | None, reverse: bool, ws: Workspace) -> dict[str, Array]:
        """Run the loop; ``gx`` (``(T, N, G*H)``, projection plus :meth:`input_bias`) becomes
        the gate activations. Returns the cache: ``"h"`` states ``(T+1, N, H)`` and more."""
        raise NotImplementedError

    def backward(self, cache: dict[str, Array], dy: Array | None, dh: Array, dc: Array | None,
                 w_hh: Array, keep: Array | None, reverse: bool,
                 ws: Workspace) -> tuple[Array, Array, Array, Array | None]:
        """Back through time from output grads ``dy`` (``(T, N, H)``, or ``None``) and final-state
        grads ``dh``/``dc`` (``(N, H)``, overwritten). Returns ``(dgx, dgh, dh0, dc0)``: the
        gradients of the input projection and of the recurrent product (``(T, N, G*H)``;
        the same array except for GRU) and of the initial states."""
        raise NotImplementedError


class RNNCell(Cell):
    """Elman cell with ``tanh`` or ``relu``."""

    gates = 1

    def __init__(self, nonlinearity: str) -> None:
        self.nonlinearity = nonlinearity

    def forward(self, gx, w_hh, b_hh, h0, c0, keep, reverse, ws):
        xp = backend.xp()
        steps, start = _steps(gx.shape[0], reverse)
        states = ws.get("h", (gx.shape[0] + 1, *h0.shape), gx.dtype)
        states[start] = h0
        whh_t = w_hh.T
        for t in steps:
            before, after = (t + 1, t) if reverse else (t, t + 1)
            pre = gx[t]
            pre += states[before] @ whh_t
            if self.nonlinearity == "tanh":
                xp.tanh(pre, out=states[after])
            else:
                xp.maximum(pre, 0.0, out=states[after])
            if keep is not None:
                xp.copyto(states[after], states[before], where=~keep[t])
        return {"h": states}

    def backward(self, cache, dy, dh, dc, w_hh, keep, reverse, ws):
        xp = backend.xp()
        states = cache["h"]
        length = states.shape[0] - 1
        steps, _ = _steps(length, reverse)
        dgates = ws.get("dg", (length, *dh.shape), dh.dtype)
        for t in reversed(steps):
            after = t if reverse else t + 1
            if dy is not None:
                dh += dy[t]
            d = dgates[t]
            h = states[after]
            if self.nonlinearity == "tanh":
                xp.multiply(h, h, out=d)
                xp.subtract(1.0, d, out=d)
                d *= dh
            else:
                xp.multiply(dh, h > 0.0, out=d)
            if keep is not None:
                d *= keep[t]
                carry = dh * ~keep[t]
                dh = d @ w_hh
                dh += carry
            else:
                dh = d @ w_hh
        return dgates, dgates, dh, None


class LSTMCell(Cell):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997), PyTorch's gate order i, f, g, o."""

    gates = 4
    sigmoid_blocks = ((0, 2), (3, 4))

    def forward(self, gx, w_hh, b_hh, h0, c0, keep, reverse, ws):
        xp = backend.xp()
        length, n, width = gx.shape
        hidden = width // 4
        steps, start = _steps(length, reverse)
        states = ws.get("h", (length + 1, n, hidden), gx.dtype)
        cells = ws.get("c", (length + 1, n, hidden), gx.dtype)
        tanh_c = ws.get("tanh_c", (length, n, hidden), gx.dtype)
        rec = ws.get("rec", (n, width), gx.dtype)
        ig = ws.get("ig", (n, hidden), gx.dtype)
        states[start], cells[start] = h0, c0
        whh_t = w_hh.T
        for t in steps:
            before, after = (t + 1, t) if reverse else (t, t + 1)
            g = gx[t]  # (N, 4H): i, f, g, o, the rows of i, f, o halved (forward_weights)
            xp.matmul(states[before], whh_t, out=rec)
            g += rec
            xp.tanh(g, out=g)
            _half_plus_half(g[:, :2 * hidden])  # i, f
            _half_plus_half(g[:, 3 * hidden:])  # o
            c = cells[after]
            xp.multiply(g[:, hidden:2 * hidden], cells[before], out=c)
            xp.multiply(g[:, :hidden], g[:, 2 * hidden:3 * hidden], out=ig)
            c += ig
            xp.tanh(c, out=tanh_c[t])
            xp.multiply(g[:, 3 * hidden:], tanh_c[t], out=states[after])
            if keep is not None:
                skip = ~keep[t]
                xp.copyto(states[after], states[before], where=skip)
                xp.copyto(c, cells[before], where=skip)
        return {"h": states, "c": cells, "tanh_c": tanh_c, "gates": gx}

    def backward(self, cache, dy, dh, dc, w_hh, keep, reverse, ws):
        xp = backend.xp()
        cells, tanh_c, gates = cache["c"], cache["tanh_c"], cache["gates"]
        length, n, width = gates.shape
        hidden = width // 4
        steps, _ = _steps(length, reverse)
        dgates = ws.get("dg", (length, n, width), dh.dtype)
        dct = ws.get("dct", (n, hidden), dh.dtype)
        tmp = ws.get("tmp", (n, hidden), dh.dtype)
        for t in reversed(steps):
            before = t + 1 if reverse else t
            if dy is not None:
                dh += dy[t]
            g, tc, d = gates[t], tanh_c[t], dgates[t]
            i, f, gg, o = g[:, :hidden], g[:, hidden:2 * hidden], g[:, 2 * hidden:3 * hidden], g[:, 3 * hidden:]
            di, df, dg, do = d[:, :hidden], d[:, hidden:2 * hidden], d[:, 2 * hidden:3 * hidden], d[:, 3 * hidden:]
            # dc_t = dc + dh * o * (1 - tanh(c)^2)
            xp.multiply(tc, tc, out=tmp)
            xp.subtract(1.0, tmp, out=tmp)
            tmp *= o
            tmp *= dh
            xp.add(dc, tmp, out=dct)
            # output gate: do = dh * tanh(c) * o (1 - o)
            xp.multiply(dh, tc, out=do)
            xp.subtract(1.0, o, out=tmp)
            tmp *= o
            do *= tmp
            # input gate: di = dc_t * g * i (1 - i)
            xp.multiply(dct, gg, out=di)
            xp.subtract(1.0, i, out=tmp)
            tmp *= i
            di *= tmp
            # forget gate: df = dc_t * c_prev * f (1 - f)
            xp.multiply(dct, cells[before], out=df)
            xp.subtract(1.0, f, out=tmp)
            tmp *= f
            df *= tmp
            # cell candidate: dg = dc_t * i * (1 - g^2)
            xp.multiply(gg, gg, out=tmp)
            xp.subtract(1.0, tmp, out=tmp)
            tmp *= i
            xp.multiply(dct, tmp, out=dg)
            if keep is not None:
                k = keep[t]
                d *= k
                dc_new = xp.where(k, dct * f, dc)
                carry = dh * ~k
                dh = d @ w_hh
                dh += carry
                dc = dc_new
            else:
                dct *= f
                dc, dct = dct, dc  # the new dc; the old array becomes next step's scratch
                dh = d @ w_hh
        return dgates, dgates, dh, dc


class GRUCell(Cell):
    """Gated recurrent unit (Cho et al., 2014), PyTorch's r, z, n with the reset gate applied
    after the recurrent product (Keras's ``reset_after=True``)."""

    gates = 3
    sigmoid_blocks = ((0, 2),)

    def input_bias(self, b_ih: Array, b_hh: Array) -> Array:
        hidden = b_hh.shape[0] // 3
        bias = b_ih.copy()
        bias[:2 * hidden] += b_hh[:2 * hidden]  # b_hn stays inside r * (h W_hn^T + b_hn)
        return bias

    def forward(self, gx, w_hh, b_hh, h0, c0, keep, reverse, ws):
        xp = backend.xp()
        length, n, width = gx.shape
        hidden = width // 3
        steps, start = _steps(length, reverse)
        states = ws.get("h", (length + 1, n, hidden), gx.dtype)
        rec_n = ws.get("rec_n", (length, n, hidden), gx.dtype)  # h W_hn^T + b_hn per step
        rec = ws.get("rec", (n, width), gx.dtype)
        states[start] = h0
        whh_t = w_hh.T
        b_hn = b_hh[2 * hidden:]
        for t in steps:
            before, after = (t + 1, t) if reverse else (t, t + 1)
            g = gx[t]  # (N, 3H): r, z, n
            xp.matmul(states[before], whh_t, out=rec)
            rz = g[:, :2 * hidden]  # halved rows (forward_weights): sigmoid = 0.5 tanh + 0.5
            rz += rec[:, :2 * hidden]
            xp.tanh(rz, out=rz)
            _half_plus_half(rz)
            xp.add(rec[:, 2 * hidden:], b_hn, out=rec_n[t])
            nn = g[:, 2 * hidden:]
            nn += g[:, :hidden] * rec_n[t]
            xp.tanh(nn, out=nn)
            h = states[after]  # h' = n + z (h - n)
            xp.subtract(states[before], nn, out=h)
            h *= g[:, hidden:2 * hidden]
            h += nn
            if keep is not None:
                xp.copyto(h, states[before], where=~keep[t])
        return {"h": states, "rec_n": rec_n, "gates": gx}

    def backward(self, cache, dy, dh, dc, w_hh, keep, reverse, ws):
        xp = backend.xp()
        states, rec_n, gates = cache["h"], cache["rec_n"], cache["gates"]
        length, n, width = gates.shape
        hidden = width // 3
        steps, _ = _steps(length, reverse)
        dgx = ws.get("dgx", (length, n, width), dh.dtype)
        dgh = ws.get("dgh", (length, n, width), dh.dtype)
        tmp = ws.get("tmp", (n, hidden), dh.dtype)
        for t in reversed(steps):
            before = t + 1 if reverse else t
            if dy is not None:
                dh += dy[t]
            g, dx_, dh_ = gates[t], dgx[t], dgh[t]
            r, z, nn = g[:, :hidden], g[:, hidden:2 * hidden], g[:, 2 * hidden:]
            dr, dz, dn = dx_[:, :hidden], dx_[:, hidden:2 * hidden], dx_[:, 2 * hidden:]
            # dn_pre = dh (1 - z) (1 - n^2)
            xp.multiply(nn, nn, out=tmp)
            xp.subtract(1.0, tmp, out=tmp)
            xp.multiply(dh, tmp, out=dn)
            xp.subtract(1.0, z, out=tmp)
            dn *= tmp
            # dz_pre = dh (h_prev - n) z (1 - z)
            xp.subtract(states[before], nn, out=dz)
            dz *= dh
            tmp *= z
            dz *= tmp
            # dr_pre = dn_pre (h W_hn^T + b_hn) r (1 - r)
            xp.multiply(dn, rec_n[t], out=dr)
            xp.subtract(1.0, r, out=tmp)
            tmp *= r
            dr *= tmp
            if keep is not None:
                dx_ *= keep[t]
            dh_[:, :2 * hidden] = dx_[:, :2 * hidden]
            xp.multiply(dn, r, out=dh_[:, 2 * hidden:])
            through = dh * (z if keep is None else xp.where(keep[t], z, 1.0))  # h' depends on h via z h
            dh = dh_ @ w_hh
            dh += through
        return dgx, dgh, dh, None
