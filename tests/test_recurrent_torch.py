"""RNN, LSTM and GRU against ``torch.nn.RNN/LSTM/GRU`` with the weights copied 1:1 by name.

Outputs, final states and every gradient (input, initial state, each parameter) agree to
1e-10 in float64 and 1e-5 in float32, for one and two layers, one and two directions,
given initial states, and right-padded batches run through ``pack_padded_sequence``.
"""

from __future__ import annotations

import numpy as np
import pytest

from nnframe import backend, layer

torch = pytest.importorskip("torch")

KINDS = {"RNN": (layer.RNN, torch.nn.RNN), "LSTM": (layer.LSTM, torch.nn.LSTM), "GRU": (layer.GRU, torch.nn.GRU)}
CONFIGS = [
    # (num_layers, bidirectional, lengths, initial state, return_sequences, extra)
    (1, False, None, False, True, {}),
    (2, True, None, True, True, {}),
    (2, True, [5, 2, 4], False, True, {}),
    (1, False, [3, 5, 1], True, False, {}),
    (2, True, [5, 2, 4], True, False, {}),
    (1, True, [4, 5, 2], True, True, {"nonlinearity": "relu"}),
]
TOL = {"float64": 1e-10, "float32": 1e-5}


def _ids(config):
    layers, bi, lengths, state, seqs, extra = config
    return f"L{layers}-{'bi' if bi else 'uni'}-{'packed' if lengths else 'full'}-{'h0' if state else 'zero'}-" \
           f"{'seq' if seqs else 'last'}{'-relu' if extra else ''}"


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", CONFIGS, ids=[_ids(c) for c in CONFIGS])
@pytest.mark.parametrize("kind", KINDS)
def test_matches_pytorch_outputs_states_and_all_gradients(kind, config, dtype):
    num_layers, bidirectional, lengths, with_state, return_sequences, extra = config
    if extra and kind != "RNN":
        pytest.skip("nonlinearity is RNN's option")
    n, steps, features, hidden = 3, 5, 4, 6
    ours_cls, torch_cls = KINDS[kind]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, steps, features)).astype(dtype)
    num_states = 2 if kind == "LSTM" else 1
    state_shape = (num_layers * (2 if bidirectional else 1), n, hidden)
    states = [rng.normal(size=state_shape).astype(dtype) for _ in range(num_states)] if with_state else None
    with backend.default_dtype(dtype):
        ours = ours_cls(hidden, num_layers=num_layers, bidirectional=bidirectional, return_sequences=return_sequences,
                        return_state=True, **extra)
        out = ours.forward(x, lengths=None if lengths is None else np.array(lengths), initial_state=states)
    tdtype = getattr(torch, dtype)
    ref = torch_cls(features, hidden, num_layers=num_layers, bidirectional=bidirectional, batch_first=True,
                    dtype=tdtype, **extra)
    with torch.no_grad():
        for name, value in ref.named_parameters():  # same names, same layouts
            value.copy_(torch.tensor(ours.params[name]))
    tx = torch.tensor(x, requires_grad=True)
    tstates = None if states is None else [torch.tensor(s, requires_grad=True) for s in states]
    t_init = None if tstates is None else (tuple(tstates) if num_states == 2 else tstates[0])
    if lengths is None:
        ty, t_final = ref(tx, t_init)
    else:
        packed = torch.nn.utils.rnn.pack_padded_sequence(tx, torch.tensor(lengths), batch_first=True,
                                                         enforce_sorted=False)
        ty, t_final = ref(packed, t_init)
        ty, _ = torch.nn.utils.rnn.pad_packed_sequence(ty, batch_first=True, total_length=steps)
    t_final = list(t_final) if num_states == 2 else [t_final]
    if not return_sequences:  # the last layer's final state, directions concatenated
        ty = torch.cat([t_final[0][-d] for d in reversed(range(1, 3 if bidirectional else 2))], dim=1)
    tol = TOL[dtype]
    y, *final = out
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol, atol=tol)
    for a, b in zip(final, t_final, strict=True):
        np.testing.assert_allclose(a, b.detach().numpy(), rtol=tol, atol=tol)
    gy = rng.normal(size=y.shape).astype(dtype)
    g_final = [rng.normal(size=state_shape).astype(dtype) for _ in range(num_states)]
    objective = (ty * torch.tensor(gy)).sum() + sum((s * torch.tensor(g)).sum()
                                                    for s, g in zip(t_final, g_final, strict=True))
    objective.backward()
    dx = ours.backward([gy, *g_final])
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)
    for name, value in ref.named_parameters():
        np.testing.assert_allclose(ours.grads[name], value.grad.numpy(), rtol=tol, atol=tol, err_msg=name)
    if with_state:
        for a, b in zip(ours.initial_state_grads, tstates, strict=True):
            np.testing.assert_allclose(a, b.grad.numpy(), rtol=tol, atol=tol)


def test_pytorch_state_dict_loads_by_name_into_a_net():
    from nnframe.net import Net

    ref = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    net = Net([layer.LSTM(4, num_layers=2, bidirectional=True, return_sequences=True)])
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    net.forward(x)
    net.load_state_dict({f"0.{k}": v.detach().numpy() for k, v in ref.state_dict().items()})
    expected, _ = ref(torch.tensor(x))
    np.testing.assert_allclose(net.forward(x), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
