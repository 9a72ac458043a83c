"""RNN, LSTM, GRU: finite differences for states and masks, states, masks, errors, checkpoints.

The layer conformance cases (tests/layer_cases_seq.py) check input and parameter gradients
of plain calls; here a wrapper makes the initial state a parameter and fixes a mask, so
``gradcheck`` covers those too. PyTorch comparisons are in tests/test_recurrent_torch.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nnframe
from nnframe import backend, layer, loss, model, optimizer
from nnframe.errors import ShapeError
from nnframe.gradcheck import gradcheck, smooth_input
from nnframe.layer.base import Layer, layer_from_config, layer_to_config
from nnframe.net import Net

KINDS = {"RNN": layer.RNN, "LSTM": layer.LSTM, "GRU": layer.GRU}


class _WithState(Layer):
    """Test helper: ``inner(x, initial_state=..., lengths=...)`` with the initial state as parameters."""

    def __init__(self, inner, lengths=None, state_shape=None) -> None:
        super().__init__()
        self.inner, self.lengths = inner, lengths
        rng = np.random.default_rng(5)
        self.states = [rng.normal(size=state_shape) for _ in range(inner.num_states)]
        self.rng = inner.rng

    @property
    def param_names(self):
        return ()

    def forward(self, inputs):
        out = self.inner.forward(inputs, lengths=self.lengths, initial_state=list(self.states))
        self.params = {**self.inner.params, **{f"state{i}": s for i, s in enumerate(self.states)}}
        return out

    def backward(self, grad):
        dx = self.inner.backward(grad)
        self.grads = {**self.inner.grads,
                      **{f"state{i}": g for i, g in enumerate(self.inner.initial_state_grads)}}
        return dx


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bidirectional, num_layers, lengths", [
    (False, 1, None), (True, 2, [3, 1, 4]), (False, 2, [4, 0, 2]),
])
def test_gradients_of_initial_state_and_masked_steps_match_finite_differences(kind, bidirectional, num_layers,
                                                                              lengths):
    with backend.default_dtype("float64"):
        inner = KINDS[kind](2, num_layers=num_layers, bidirectional=bidirectional, return_sequences=True)
        wrapped = _WithState(inner, None if lengths is None else np.array(lengths),
                             (num_layers * (2 if bidirectional else 1), 3, 2))
        report = gradcheck(wrapped, smooth_input((3, 4, 2), seed=1))
    assert {"input", "0.state0"} <= set(report)
    assert ("0.state1" in report) == (kind == "LSTM")


@pytest.mark.parametrize("kind", KINDS)
def test_padded_steps_change_nothing_and_get_no_gradient(kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    lstm = KINDS[kind](4, bidirectional=True, return_sequences=True, return_state=True, rng=0)
    y, *states = lstm.forward(x, lengths=np.array([5, 3]))
    junk = x.copy()
    junk[1, 3:] = 100.0  # whatever sits in the padding must not matter
    y2, *states2 = lstm.forward(junk, lengths=np.array([5, 3]))
    np.testing.assert_array_equal(y, y2)
    for s, s2 in zip(states, states2, strict=True):
        np.testing.assert_array_equal(s, s2)
    assert np.all(y[1, 3:] == 0.0)  # padded outputs are zero, as pad_packed_sequence's
    short = lstm.forward(x[1:, :3])  # the same sequence cut to its length
    np.testing.assert_allclose(short[0][0], y[1, :3], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(short[1][:, 0], states[0][:, 1], rtol=1e-6, atol=1e-7)
    lstm.forward(x, mask=np.arange(5)[None, :] < np.array([[5], [3]]))  # the same as a mask
    grads = lstm.backward([np.ones_like(y), None] + [None] * (lstm.num_states - 1))
    assert np.all(grads[1, 3:] == 0.0)


def test_mask_from_embedding_reaches_the_recurrent_layer_in_a_net():
    ids = np.array([[4, 2, 3, 0, 0], [1, 1, 0, 0, 0]])
    net = Net([layer.Embedding(5, 3, padding_idx=0, mask_padding=True), layer.GRU(4, return_sequences=True),
               layer.LSTM(3), layer.Dense(2)])
    out = net.forward(ids)
    alone = Net(net.layers).forward(ids[1:, :2])  # the second sequence without its padding
    np.testing.assert_allclose(out[1], alone[0], rtol=1e-5, atol=1e-6)
    unmasked = Net([layer.Embedding(5, 3, padding_idx=0), *net.layers[1:]])
    unmasked.layers[0].params["weight"] = net.layers[0].params["weight"]
    assert not np.allclose(unmasked.forward(ids)[1], out[1])  # the mask made the difference


@pytest.mark.parametrize("kind", KINDS)
def test_stateful_calls_continue_the_sequence_until_reset(kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 3)).astype(np.float32)
    whole = KINDS[kind](4, num_layers=2, return_sequences=True, rng=0)
    y = whole.forward(x)
    stepper = KINDS[kind](4, num_layers=2, return_sequences=True, stateful=True, rng=0)
    stepper.forward(x[:, :1])
    for name in whole.param_names:
        stepper.params[name][...] = whole.params[name]
    stepper.reset_states()
    parts = [stepper.forward(x[:, t:t + 2]) for t in range(0, 6, 2)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), y, rtol=1e-5, atol=1e-6)
    with pytest.raises(ShapeError, match=r"carries a state for batch size 2, got a batch of 1; call reset_states"):
        stepper.forward(x[:1, :2])
    stepper.reset_states()
    np.testing.assert_allclose(stepper.forward(x[:, :2]), y[:, :2], rtol=1e-5, atol=1e-6)


def test_return_state_and_list_input_in_keras_form():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 4, 2))
    with backend.default_dtype("float64"):
        lstm = layer.LSTM(5, return_state=True)
        h0, c0 = rng.normal(size=(1, 3, 5)), rng.normal(size=(1, 3, 5))
        y, h, c = lstm.forward([x, h0[0], c0[0]])  # (N, H) accepted for one layer
        assert y.shape == (3, 5) and h.shape == c.shape == (1, 3, 5)
        np.testing.assert_array_equal(y, h[0])
        dx, dh0, dc0 = lstm.backward([np.ones_like(y), None, np.ones_like(c)])
        assert dx.shape == x.shape and dh0.shape == dc0.shape == (1, 3, 5)
        y2, _, _ = lstm.forward(x, initial_state=(h0, c0))
        np.testing.assert_array_equal(y, y2)
        assert lstm.backward([np.ones_like(y), None, np.ones_like(c)]).shape == x.shape
        np.testing.assert_allclose(lstm.initial_state_grads[1], dc0)


@pytest.mark.parametrize("call, fragment", [
    (lambda g: g.forward(np.zeros((2, 3))), r"expects sequences of shape \(N, T, C\), got shape \(2, 3\)"),
    (lambda g: g.forward(np.zeros((2, 3, 4), np.int64)), "expects float input, got dtype int64"),
    (lambda g: g.forward(np.zeros((2, 0, 4), np.float32)), "at least one time step"),
    (lambda g: g.forward(np.zeros((2, 3, 4), np.float32), lengths=np.array([3, 4])),
     r"lengths must be in \[0, 3\] \(the number of steps\), got values from 3 to 4"),
    (lambda g: g.forward(np.zeros((2, 3, 4), np.float32), lengths=np.array([3.0, 1.0])),
     "lengths must be 2 integers"),
    (lambda g: g.forward(np.zeros((2, 3, 4), np.float32), mask=np.ones((3, 2), bool)),
     r"mask must have shape \(N, T\) = \(2, 3\), got \(3, 2\)"),
    (lambda g: g.forward(np.zeros((2, 3, 4), np.float32), mask=np.full((2, 3), 0.5)), "mask must be boolean"),
    (lambda g: g.forward(np.zeros((2, 3, 4), np.float32), initial_state=np.zeros((2, 2, 5), np.float32)),
     r"h0 must have shape \(num_layers \* directions, N, H\) = \(1, 2, 5\), got \(2, 2, 5\)"),
    (lambda g: g.forward(np.zeros((2, 3, 4), np.float32), initial_state=np.zeros((1, 2, 5))),
     "h0 must have dtype float32, got float64"),
    (lambda g: g.forward([np.zeros((2, 3, 4), np.float32)]), r"a list input must be \[x, h0\], got a list of 1"),
])
def test_bad_inputs_say_what_was_expected(call, fragment):
    with pytest.raises(ShapeError, match=fragment):
        call(layer.GRU(5))


@pytest.mark.parametrize("kwargs, fragment", [
    ({"hidden_size": 0}, "hidden_size must be a positive integer, got 0"),
    ({"hidden_size": 3, "num_layers": 1.5}, "num_layers must be a positive integer, got 1.5"),
    ({"hidden_size": 3, "dropout": 1.0}, r"dropout must be in \[0.0, 1.0\), got 1.0"),
])
def test_bad_hyperparameters(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        layer.LSTM(**kwargs)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        layer.RNN(3, nonlinearity="sigmoid")


def test_parameter_names_and_shapes_are_pytorchs():
    gru = layer.GRU(4, num_layers=2, bidirectional=True)
    gru.forward(np.zeros((1, 2, 3), np.float32))
    assert gru.param_names[:5] == ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
                                   "weight_ih_l0_reverse")
    assert gru.params["weight_ih_l0"].shape == (12, 3) and gru.params["weight_ih_l1_reverse"].shape == (12, 8)
    assert gru.params["weight_hh_l1"].shape == (12, 4) and gru.params["bias_hh_l1_reverse"].shape == (12,)
    assert gru.num_params == 2 * (12 * 3 + 12 * 4 + 24) + 2 * (12 * 8 + 12 * 4 + 24)


def test_config_round_trip_keeps_every_option():
    lstm = layer.LSTM(7, num_layers=2, bidirectional=True, dropout=0.2, return_sequences=True, return_state=True,
                      stateful=True, u_init="Orthogonal", name="enc")
    again = layer_from_config(layer_to_config(lstm))
    assert again.get_config() == lstm.get_config()
    assert isinstance(again.initializers["weight_hh_l1"], nnframe.initializer.Orthogonal)
    rnn = layer_from_config(layer_to_config(layer.RNN(3, nonlinearity="relu")))
    assert rnn.nonlinearity == "relu"


def test_checkpoint_round_trip_and_summary(tmp_path):
    rng = np.random.default_rng(3)
    x, labels = rng.normal(size=(16, 5, 3)).astype(np.float32), rng.integers(0, 2, 16)
    net = Net([layer.LSTM(4, return_sequences=True, bidirectional=True), layer.Dense(3), layer.GRU(3),
               layer.Dense(2)])
    m = model.Model(net, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=0.01))
    m.fit(x, labels, epochs=1, batch_size=8, verbose=0)
    text = m.summary_text()
    assert "(None, 5, 8)" in text and "(None, 5, 3)" in text and "(None, 3)" in text
    m.save(tmp_path / "rnn.safetensors")
    loaded = nnframe.load(tmp_path / "rnn.safetensors")
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
    assert loaded.net.layers[0].bidirectional and loaded.net.layers[2].hidden_size == 3


def test_float32_stays_float32_through_time():
    gru = layer.GRU(3, num_layers=2, return_sequences=True, return_state=True)
    y, h = gru.forward(np.ones((2, 3, 4), np.float32))
    assert y.dtype == h.dtype == np.float32
    dx = gru.backward([np.ones_like(y), np.ones_like(h)])
    assert dx.dtype == np.float32 and all(g.dtype == np.float32 for g in gru.grads.values())


def test_outputs_of_successive_calls_are_not_overwritten():
    gru = layer.GRU(3, return_sequences=True)
    first = gru.forward(np.ones((2, 3, 4), np.float32))
    kept = first.copy()
    gru.forward(np.full((2, 3, 4), 2.0, np.float32))  # reuses the internal buffers, never the outputs
    np.testing.assert_array_equal(first, kept)


def test_a_loaded_stateful_language_model_starts_from_zero_state(tmp_path):
    ids = np.random.default_rng(4).integers(0, 6, size=(8, 5))
    net = Net([layer.Embedding(6, 3), layer.LSTM(4, return_sequences=True, stateful=True), layer.Dense(6)])
    m = model.Model(net, loss.SoftmaxCrossEntropy(), optimizer.Adam())
    net.forward(ids)
    m.save(tmp_path / "lm.safetensors")
    loaded = nnframe.load(tmp_path / "lm.safetensors")  # built from an integer zero batch
    assert loaded.net.layers[1].states is None  # building did not leave a carried state behind
    net.reset_states()
    assert net.layers[1].states is None
    np.testing.assert_allclose(loaded.net.forward(ids[:2]), net.forward(ids[:2]), rtol=1e-6)


def test_shape_inference_without_allocating():
    lstm = layer.LSTM(4, num_layers=2, bidirectional=True, return_state=True)
    assert lstm.compute_output_shape([(3, 7, 5), (4, 3, 4), (4, 3, 4)]) == [(3, 8), (4, 3, 4), (4, 3, 4)]
    lstm.build((3, 7, 5))
    assert lstm.state_shapes()["weight_ih_l0_reverse"] == (16, 5) and lstm.params["weight_ih_l0"] is None
    assert layer.GRU(2, return_sequences=True).compute_output_shape((1, 9, 3)) == (1, 9, 2)
    with pytest.raises(ShapeError, match=r"expects sequences of shape \(N, T, C\), got shape \(3, 7\)"):
        lstm.compute_output_shape((3, 7))
    with pytest.raises(ShapeError, match="built for 5 input features"):
        lstm.compute_output_shape((3, 7, 6))


def test_the_row_gru_spec_trains_from_the_command_line(tmp_path, monkeypatch):
    from test_cli import _isolate, make_dataset, run

    _isolate(monkeypatch, tmp_path / "home")
    make_dataset(tmp_path / "data", n_train=40, n_test=10)
    status, out, err = run(["train", "--data-dir", tmp_path / "data", "--no-download", "--epochs", 1,
                            "--batch-size", 20, "--model", Path(__file__).parent.parent / "examples/fashion_gru.json",
                            "--out", tmp_path / "gru.safetensors"])
    assert status == 0, err
    assert "GRU" in out and "(None, 256)" in out and "test: loss" in out
