"""Every callback in a real fit: the hooks fire, stopping works, files hold what they should."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from training_cases import Scripted, blobs, mlp

import nnframe
from nnframe import callbacks, schedule


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None):
        self.events.append(("train_begin",))

    def on_train_end(self, logs=None):
        self.events.append(("train_end",))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.events.append(("epoch_end", epoch, sorted(logs)))

    def on_batch_begin(self, batch, logs=None):
        self.events.append(("batch_begin", batch))

    def on_batch_end(self, batch, logs=None):
        self.events.append(("batch_end", batch, sorted(logs)))


def test_hooks_fire_in_order_with_params_and_logs():
    x, y = blobs(n=30)
    rec = Recorder()
    model = mlp()
    model.fit(x, y, epochs=2, batch_size=20, validation_data=(x, y), verbose=0, callbacks=[rec])
    batch_keys = ["accuracy", "batch", "loss", "size"]
    epoch_keys = ["accuracy", "loss", "lr", "val_accuracy", "val_loss"]
    assert rec.events == [
        ("train_begin",),
        ("epoch_begin", 0), ("batch_begin", 0), ("batch_end", 0, batch_keys),
        ("batch_begin", 1), ("batch_end", 1, batch_keys), ("epoch_end", 0, epoch_keys),
        ("epoch_begin", 1), ("batch_begin", 0), ("batch_end", 0, batch_keys),
        ("batch_begin", 1), ("batch_end", 1, batch_keys), ("epoch_end", 1, epoch_keys),
        ("train_end",),
    ]
    assert rec.model is model
    assert rec.params["epochs"] == 2 and rec.params["steps"] == 2 and rec.params["samples"] == 30


def test_history_records_each_epoch():
    x, y = blobs(n=30)
    history = callbacks.History()
    history.set_model(None)
    history.on_epoch_end(0, {"loss": 2.0})
    history.on_epoch_end(1, {"loss": 1.0})
    assert history.epoch == [0, 1] and history.history == {"loss": [2.0, 1.0]}
    fitted = mlp().fit(x, y, epochs=3, verbose=0)
    assert len(fitted.history["loss"]) == 3


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    x, y = blobs(n=40)
    scores = [1.0, 0.5, 0.7, 0.6, 0.55, 0.4, 0.3]  # best at epoch 1, then 3 without improvement
    script = Scripted(scores)
    stop = callbacks.EarlyStopping(monitor="score", patience=3, restore_best_weights=True)
    model = mlp()
    history = model.fit(x, y, epochs=len(scores), verbose=0, callbacks=[script, stop])
    assert history.epoch == [0, 1, 2, 3, 4]
    assert stop.stopped_epoch == 4 and stop.best_epoch == 1 and stop.best == 0.5
    for name, value in model.net.state_dict().items():
        np.testing.assert_array_equal(value, script.weights[1][name])
    assert not np.array_equal(model.net.state_dict()["0.w"], script.weights[4]["0.w"])


def test_early_stopping_mode_max_min_delta_and_no_restore():
    x, y = blobs(n=40)
    script = Scripted([0.50, 0.505, 0.51, 0.9], key="val_accuracy")  # +0.005 steps < min_delta
    stop = callbacks.EarlyStopping(monitor="val_accuracy", patience=2, min_delta=0.01)
    model = mlp()
    history = model.fit(x, y, epochs=4, verbose=0, callbacks=[script, stop])
    assert stop._monitor.mode == "max"
    assert history.epoch == [0, 1, 2]
    for name, value in model.net.state_dict().items():  # no restore: the last weights stay
        np.testing.assert_array_equal(value, script.weights[2][name])


def test_monitoring_a_missing_key_warns_once_and_does_nothing():
    x, y = blobs(n=40)
    stop = callbacks.EarlyStopping(monitor="val_loss", patience=0)
    with pytest.warns(RuntimeWarning, match="'val_loss' is not in the logs") as record:
        history = mlp().fit(x, y, epochs=3, verbose=0, callbacks=[stop])
    assert len(record) == 1
    assert history.epoch == [0, 1, 2]


def test_reduce_lr_on_plateau_lowers_the_learning_rate():
    x, y = blobs(n=40)
    script = Scripted([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5])
    plateau = callbacks.ReduceLROnPlateau(monitor="score", factor=0.5, patience=2, min_lr=0.002)
    model = mlp(lr=0.01)
    history = model.fit(x, y, epochs=8, verbose=0, callbacks=[script, plateau])
    # epochs 1, 2 do not improve -> halve after epoch 2; again after epoch 4; epoch 6 improves
    assert history.history["lr"] == pytest.approx([0.01, 0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025, 0.0025])
    assert model.optimizer.lr == pytest.approx(0.0025)
    plateau2 = callbacks.ReduceLROnPlateau(monitor="score", factor=0.5, patience=1, min_lr=0.004)
    model2 = mlp(lr=0.01)
    model2.fit(x, y, epochs=6, verbose=0, callbacks=[Scripted([1.0] * 6), plateau2])
    assert model2.optimizer.lr == pytest.approx(0.004)  # clamped at min_lr


def test_reduce_lr_on_plateau_cooldown():
    x, y = blobs(n=40)
    plateau = callbacks.ReduceLROnPlateau(monitor="score", factor=0.5, patience=1, cooldown=2)
    history = mlp(lr=0.01).fit(x, y, epochs=6, verbose=0, callbacks=[Scripted([1.0] * 6), plateau])
    assert history.history["lr"] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.005, 0.0025])


def test_lr_scheduler_callback_steps_per_epoch_and_per_batch():
    x, y = blobs(n=40)
    model = mlp(lr=0.1)
    sched = schedule.StepLR(model.optimizer, step_size=2, gamma=0.5)
    history = model.fit(x, y, epochs=5, verbose=0, callbacks=[callbacks.LRSchedulerCallback(sched)])
    assert history.history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    assert model.scheduler is sched and sched.last_step == 5

    model = mlp(lr=0.1)
    sched = schedule.ExponentialLR(model.optimizer, gamma=0.9)
    model.fit(x, y, epochs=2, batch_size=10, verbose=0, callbacks=[callbacks.LRSchedulerCallback(sched, "batch")])
    assert sched.last_step == 8 and model.optimizer.lr == pytest.approx(0.1 * 0.9**8)

    other = mlp()
    with pytest.raises(ValueError, match="another optimizer"):
        other.fit(x, y, verbose=0, callbacks=[callbacks.LRSchedulerCallback(sched)])
    with pytest.raises(ValueError, match="no scheduler"):
        mlp().fit(x, y, verbose=0, callbacks=[callbacks.LRSchedulerCallback()])


def test_csv_logger_writes_header_and_one_row_per_epoch(tmp_path):
    x, y = blobs(n=40)
    path = tmp_path / "log.csv"
    path.write_text("stale content\n")
    model = mlp()
    history = model.fit(x, y, epochs=3, validation_data=(x, y), verbose=0,
                        callbacks=[callbacks.CSVLogger(path)])
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert path.read_text().splitlines()[0] == "epoch,accuracy,loss,lr,val_accuracy,val_loss"
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert [float(r[key]) for r in rows] == history.history[key]  # repr: exact round trip

    model.fit(x, y, epochs=5, initial_epoch=3, validation_data=(x, y), verbose=0,
              callbacks=[callbacks.CSVLogger(path, append=True)])
    lines = path.read_text().splitlines()
    assert len(lines) == 6 and lines.count(lines[0]) == 1
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3", "4", "5"]


def test_terminate_on_nan_stops_training(capsys):
    x, y = blobs(n=40)
    x[25] = np.nan  # the third batch of 10 (no shuffling)
    model = mlp(check_finite=False)
    stop = callbacks.TerminateOnNaN()
    history = model.fit(x, y, epochs=3, batch_size=10, shuffle=False, verbose=0, callbacks=[stop])
    assert stop.terminated_at == (0, 2)
    assert history.epoch == [0] and math.isnan(history.history["loss"][0])
    assert model.global_step == 3
    assert "TerminateOnNaN" in capsys.readouterr().err
    with pytest.raises(ValueError, match="not finite"):  # the default model refuses the step instead
        mlp().fit(x, y, epochs=1, batch_size=10, shuffle=False, verbose=0)


def test_model_checkpoint_best_only_and_last(tmp_path):
    x, y = blobs(n=40)
    scores = [0.9, 0.5, 0.7, 0.4, 0.6]
    best = callbacks.ModelCheckpoint(tmp_path / "best.safetensors", monitor="score", save_best_only=True)
    last = callbacks.ModelCheckpoint(tmp_path / "last.safetensors")
    every = callbacks.ModelCheckpoint(str(tmp_path / "ep{epoch:02d}-{score:.1f}.safetensors"))
    script = Scripted(scores)
    model = mlp()
    model.fit(x, y, epochs=5, verbose=0, callbacks=[best, last, every, script])  # checkpoints run last
    assert best.best == 0.4
    best_model = nnframe.load(tmp_path / "best.safetensors")
    assert best_model.epoch == 4
    for name, value in best_model.net.state_dict().items():
        np.testing.assert_array_equal(value, script.weights[3][name])
    last_model = nnframe.load(last.last_saved)
    assert last_model.epoch == 5
    np.testing.assert_array_equal(last_model.net.params.flat, model.net.params.flat)
    assert sorted(p.name for p in tmp_path.glob("ep*")) == [
        "ep01-0.9.safetensors", "ep02-0.5.safetensors", "ep03-0.7.safetensors", "ep04-0.4.safetensors",
        "ep05-0.6.safetensors"]
    assert not list(tmp_path.glob(".*tmp"))  # no temporary files left behind


def test_progress_bar_shows_epochs_and_metrics_with_verbose_1(capsys):
    x, y = blobs(n=40)
    mlp().fit(x, y, epochs=2, batch_size=10, validation_data=(x, y), verbose=1)
    captured = capsys.readouterr()
    assert "Epoch 1/2" in captured.err and "Epoch 2/2" in captured.err
    assert "4/4" in captured.err
    assert "loss=" in captured.err and "val_accuracy=" in captured.err
    assert captured.out == ""


def test_verbose_2_prints_one_line_per_epoch(capsys):
    x, y = blobs(n=40)
    mlp().fit(x, y, epochs=2, batch_size=10, verbose=2)
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("Epoch 1/2 - loss: ") and "accuracy: " in lines[0]
    assert captured.err == ""


def test_verbose_0_prints_nothing(capsys):
    x, y = blobs(n=40)
    model = mlp()
    model.fit(x, y, epochs=2, batch_size=10, validation_split=0.25, verbose=0)
    model.evaluate(x, y)
    model.predict(x)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_callback_arguments_are_validated():
    with pytest.raises(ValueError, match="mode must be"):
        callbacks.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="patience"):
        callbacks.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="factor"):
        callbacks.ReduceLROnPlateau(factor=1.5)
    with pytest.raises(ValueError, match="per must be"):
        callbacks.LRSchedulerCallback(per="step")
    with pytest.raises(ValueError, match="verbose"):
        callbacks.ProgressBar(verbose=5)


# ------------------------------------------------------------------ state for checkpoints
def test_non_finite_floats_survive_strict_json():
    import json

    for value in (1.5, math.inf, -math.inf):
        text = json.dumps(callbacks.float_to_json(value), allow_nan=False)
        assert callbacks.float_from_json(json.loads(text), "x") == value
    assert math.isnan(callbacks.float_from_json(json.loads(json.dumps(callbacks.float_to_json(math.nan))), "x"))
    with pytest.raises(ValueError, match=r"best must be a number, 'inf', '-inf' or 'nan', got 'big'"):
        callbacks.float_from_json("big", "best")


def _stepped(callback, values, model=None):
    callback.set_model(model or mlp())
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {"val_loss": value, "loss": value})
    return callback


@pytest.mark.parametrize("make", [
    lambda: callbacks.EarlyStopping(patience=5, restore_best_weights=True),
    lambda: callbacks.ReduceLROnPlateau(patience=1, cooldown=2),
    lambda: callbacks.ModelCheckpoint("unused-{epoch}.safetensors", save_best_only=True),
    callbacks.History,
], ids=["EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint", "History"])
def test_state_dict_round_trips_into_a_fresh_callback(make, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ModelCheckpoint writes its files here
    model = mlp()
    trained = _stepped(make(), [0.9, 0.7, 0.8, 0.85], model)
    state = trained.state_dict()
    fresh = make()
    fresh.set_model(model)
    fresh.on_train_begin()
    fresh.load_state_dict(state)
    again = fresh.state_dict()
    arrays, arrays_again = state.pop("arrays", {}), again.pop("arrays", {})
    assert again == state and state  # something was kept, and all of it came back
    assert arrays.keys() == arrays_again.keys()
    for key in arrays:
        np.testing.assert_array_equal(arrays_again[key], arrays[key])


def test_early_stopping_refuses_best_weights_that_do_not_fit_the_net():
    state = _stepped(callbacks.EarlyStopping(restore_best_weights=True), [1.0]).state_dict()
    state["arrays"] = {k: v[..., :1] for k, v in state["arrays"].items()}
    fresh = callbacks.EarlyStopping(restore_best_weights=True)
    fresh.set_model(mlp())
    with pytest.raises(ValueError, match="best weights .* do not fit the net"):
        fresh.load_state_dict(state)
    assert fresh.best_weights is None  # nothing half-loaded


def test_a_stateless_callback_refuses_a_state():
    assert callbacks.TerminateOnNaN().state_dict() == {}
    with pytest.raises(ValueError, match=r"TerminateOnNaN keeps no state, got \['wait'\]"):
        callbacks.TerminateOnNaN().load_state_dict({"wait": 1})
