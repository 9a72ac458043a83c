"""The training loop: train_step is the seed's three calls; fit, evaluate, predict, summary."""

from __future__ import annotations

import numpy as np
import pytest
from training_cases import ModeSpy, blobs, mlp

import nnframe
from nnframe import callbacks, layer, loss, net, optimizer
from nnframe.model import Model


def test_train_step_is_one_step_of_the_seeds_three_calls():
    x, y = blobs(n=32)
    a, b = mlp(dropout=0.0), mlp(dropout=0.0)
    logs = a.train_step(x, y)
    pred = b.forward(x)
    value, step = b.backward(pred, y)
    b.apply_grad(step)
    assert logs["loss"] == value
    assert set(logs) == {"loss", "accuracy"}
    np.testing.assert_array_equal(a.net.params.flat, b.net.params.flat)
    assert a.global_step == 1


def test_eval_step_changes_nothing():
    x, y = blobs(n=32)
    model = mlp()
    model.forward(x)
    before = model.net.params.flat.copy()
    with model.mode(training=False):
        logs = model.eval_step(x, y)
    np.testing.assert_array_equal(model.net.params.flat, before)
    assert logs["loss"] == pytest.approx(model.loss.loss(model.predict(x), y))


def test_fit_learns_and_returns_history():
    x, y = blobs()
    model = mlp()
    history = model.fit(x, y, epochs=8, batch_size=32, validation_data=(x, y), verbose=0)
    assert history is model.history
    assert history.epoch == list(range(8))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.9
    assert model.epoch == 8 and model.global_step == 8 * 8  # 240 samples / 32 -> 8 batches
    assert model.evaluate(x, y)["accuracy"] == pytest.approx(history.history["val_accuracy"][-1])


def test_integer_and_one_hot_labels_train_alike():
    x, y = blobs()
    a, b = mlp(), mlp()
    ha = a.fit(x, y, epochs=2, batch_size=32, verbose=0, rng=3)
    hb = b.fit(x, np.eye(3, dtype=np.float32)[y], epochs=2, batch_size=32, verbose=0, rng=3)
    np.testing.assert_allclose(a.net.params.flat, b.net.params.flat, rtol=1e-5, atol=1e-6)
    assert ha.history["accuracy"] == hb.history["accuracy"]


def test_epoch_means_are_sample_weighted():
    x, y = blobs(n=50)
    model = mlp(dropout=0.0, lr=0.0)  # lr 0: every batch sees the same weights
    history = model.fit(x, y, epochs=1, batch_size=16, shuffle=False, verbose=0)  # 16+16+16+2
    with model.mode(training=True):
        expected = model.loss.loss(model.forward(x), y)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_evaluate_runs_in_eval_mode_and_restores_the_previous_mode():
    x, y = blobs(n=40)
    spy = ModeSpy()
    model = Model(net.Net([layer.Dense(8), spy, layer.Dense(3)]), loss.SoftmaxCrossEntropy(),
                  optimizer.SGD(0.1))
    model.net.train()
    model.evaluate(x, y, batch_size=16)
    assert spy.seen == [False, False, False]
    assert model.net.is_training
    model.net.eval()
    spy.is_training = True  # a mixed state comes back exactly
    model.predict(x, batch_size=16)
    assert [lyr.is_training for lyr in model.net.layers] == [False, True, False]


def test_eval_mode_is_restored_when_evaluation_raises():
    x, y = blobs(n=40)
    spy = ModeSpy()
    model = Model(net.Net([layer.Dense(8), spy, layer.Dense(3)]), loss.SoftmaxCrossEntropy(),
                  optimizer.SGD(0.1))
    model.net.train()
    spy.fail = True
    with pytest.raises(RuntimeError, match="told to fail"):
        model.evaluate(x, y)
    assert model.net.is_training
    with pytest.raises(RuntimeError, match="told to fail"):
        model.predict(x)
    assert model.net.is_training


def test_fit_trains_in_train_mode_validates_in_eval_mode_and_restores_mode():
    x, y = blobs(n=40)
    spy = ModeSpy()
    model = Model(net.Net([layer.Dense(8), spy, layer.Dense(3)]), loss.SoftmaxCrossEntropy(),
                  optimizer.SGD(0.1))
    model.net.eval()
    model.fit(x, y, epochs=1, batch_size=20, validation_data=(x[:10], y[:10]), verbose=0)
    assert spy.seen == [True, True, False]
    assert not model.net.is_training


def test_predict_is_batched_and_matches_one_forward_in_eval_mode():
    x, _ = blobs(n=70)
    model = mlp()
    model.fit(x, _, epochs=1, verbose=0)
    with model.mode(training=False):
        full = model.forward(x)
    np.testing.assert_allclose(model.predict(x, batch_size=16), full, rtol=1e-6, atol=1e-6)
    assert model.predict(x).dtype == np.float32
    assert model.evaluate(x, _, batch_size=7)["loss"] == pytest.approx(model.evaluate(x, _, 1000)["loss"])


def test_validation_split_holds_out_a_seeded_fraction():
    x, y = blobs(n=100)
    model = mlp()
    seen = []

    class Count(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            seen.append(logs["size"])

    history = model.fit(x, y, epochs=1, batch_size=100, validation_split=0.2, verbose=0, callbacks=[Count()])
    assert seen == [80]
    assert "val_loss" in history.history
    with pytest.raises(ValueError, match="not both"):
        model.fit(x, y, validation_split=0.2, validation_data=(x, y), verbose=0)


def test_a_callback_stops_training_after_the_current_batch():
    x, y = blobs(n=100)
    batches = []

    class StopAtThird(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            batches.append(batch)
            if batch == 2:
                self.model.stop_training = True

    history = mlp().fit(x, y, epochs=5, batch_size=10, verbose=0, callbacks=[StopAtThird()])
    assert batches == [0, 1, 2]
    assert history.epoch == [0]


def test_initial_epoch_runs_the_remaining_epochs():
    x, y = blobs(n=40)
    history = mlp().fit(x, y, epochs=5, initial_epoch=3, verbose=0)
    assert history.epoch == [3, 4]


def test_metrics_choice_top_k_binary_and_regression():
    x, y = blobs(n=60, classes=5)
    history = mlp(classes=5).fit(x, y, epochs=1, verbose=0, metrics=("accuracy", "top2"),
                                 validation_data=(x, y))
    assert {"accuracy", "top2_accuracy", "val_top2_accuracy"} <= set(history.history)
    assert history.history["top2_accuracy"][0] >= history.history["accuracy"][0]

    binary = Model(net.Net([layer.Dense(1)]), loss.SigmoidCrossEntropy(), optimizer.SGD(0.1))
    targets = (x[:, :1] > 0).astype(np.float32)
    result = binary.evaluate(x, targets)
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] == pytest.approx(float(((binary.predict(x) > 0) == (targets > 0.5)).mean()))

    regression = Model(net.Net([layer.Dense(1)]), loss.MSE(), optimizer.SGD(0.01))
    assert set(regression.fit(x, targets, epochs=1, verbose=0).history) == {"loss", "lr"}


def test_fit_rejects_bad_arguments():
    x, y = blobs(n=20)
    model = mlp()
    with pytest.raises(ValueError, match="epochs must be an integer"):
        model.fit(x, y, epochs=-1)
    with pytest.raises(ValueError, match="verbose must be 0, 1 or 2"):
        model.fit(x, y, verbose=3)
    with pytest.raises(TypeError, match="callbacks\\[0\\]"):
        model.fit(x, y, callbacks=[object()], verbose=0)
    with pytest.raises(ValueError, match="unknown metric"):
        model.fit(x, y, metrics=["f1"], verbose=0)


def test_summary_prints_layers_shapes_and_parameter_counts(capsys):
    model = Model(net.Net([layer.Flatten(), layer.Dense(32), layer.ReLU(), layer.Dense(10)]),
                  loss.SoftmaxCrossEntropy(), optimizer.SGD(0.1))
    with pytest.raises(ValueError, match="input_shape"):
        model.summary()
    assert model.summary(input_shape=(4, 4, 1)) is None  # prints once, returns nothing (as Keras)
    text = capsys.readouterr().out
    assert text == model.summary_text() + "\n"
    lines = text.splitlines()
    assert any(line.split()[:2] == ["0", "Flatten"] and "(None, 16)" in line for line in lines)
    assert any(line.split()[:2] == ["1", "Dense"] and "(None, 32)" in line and line.endswith("544")
               for line in lines)
    assert any(line.split()[:2] == ["3", "Dense"] and "(None, 10)" in line and line.endswith("330")
               for line in lines)
    assert f"Total params: {16 * 32 + 32 + 32 * 10 + 10:,}" in text
    assert model.summary_text() + "\n" == text  # the input shape is now known
    assert capsys.readouterr().out == ""
    lines_seen = []
    model.summary(print_fn=lines_seen.append)
    assert lines_seen == [text.rstrip("\n")] and capsys.readouterr().out == ""
    with pytest.raises(TypeError, match="print_fn must be callable, got None; use summary_text"):
        model.summary(print_fn=None)


def test_summary_module_draws_the_models_table_and_shape_text_reads_shapes():
    from nnframe import summary

    model = Model(net.Net([layer.Flatten(), layer.Dense(3)]), loss.SoftmaxCrossEntropy(), optimizer.SGD(0.1))
    with pytest.raises(ValueError, match="input shape is unknown"):
        summary.summary_text(model)
    text = summary.summary_text(model, (2, 2, 1))
    assert model.input_shape == (2, 2, 1) and text == model.summary_text()
    assert text.splitlines()[0] == "Model: 2 layers, input (None, 2, 2, 1), float32"
    assert summary.shape_text(None) == "?"
    assert summary.shape_text((28, 28, 1)) == "(None, 28, 28, 1)"
    assert summary.shape_text([(4,), (2, 3)]) == "(None, 4), (None, 2, 3)"


def test_model_takes_its_loop_from_the_trainer_mixin():
    from nnframe.trainer import Trainer

    assert issubclass(Model, Trainer)
    for name in ("fit", "evaluate", "predict", "mode"):
        assert getattr(Model, name) is getattr(Trainer, name), name
    x, y = blobs(n=16)
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0, metrics=["accuracy"])  # fit(metrics=) goes through Model._use_metrics
    assert model.metrics == ["accuracy"] and model.history.epoch == [0]


def test_summary_does_not_disturb_training_state():
    x, y = blobs(n=40)
    a, b = mlp(), mlp()
    a.fit(x, y, epochs=1, verbose=0, rng=1)
    b.fit(x, y, epochs=1, verbose=0, rng=1)
    a.summary_text()
    a.fit(x, y, epochs=2, initial_epoch=1, verbose=0)
    b.fit(x, y, epochs=2, initial_epoch=1, verbose=0)
    np.testing.assert_array_equal(a.net.params.flat, b.net.params.flat)


def test_same_seed_same_fit_bit_for_bit():
    x, y = blobs()
    a, b = mlp(), mlp()
    nnframe.set_seed(5)
    a.fit(x, y, epochs=2, batch_size=32, verbose=0, validation_split=0.1)
    nnframe.set_seed(5)
    b.fit(x, y, epochs=2, batch_size=32, verbose=0, validation_split=0.1)
    np.testing.assert_array_equal(a.net.params.flat, b.net.params.flat)
