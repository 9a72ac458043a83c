"""Checkpoints: round trips, bit-identical resume, atomic writes, and files that must be refused."""

from __future__ import annotations

import builtins
import json
import os
import pickle

import numpy as np
import pytest
from training_cases import blobs, mlp

import nnframe
from nnframe import callbacks, io, layer, loss, net, optimizer, schedule
from nnframe.io import CheckpointError
from nnframe.model import Model


@pytest.fixture
def trained(tmp_path):
    """A model trained for 2 epochs with a scheduler, and its checkpoint path."""
    x, y = blobs(n=60)
    model = mlp()
    sched = schedule.StepLR(model.optimizer, step_size=1, gamma=0.5)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[callbacks.LRSchedulerCallback(sched)])
    path = tmp_path / "model.safetensors"
    model.save(path)
    return model, path


def _rewrite(path, mutate=None, raw_header=None, data=None):
    """Rewrite a checkpoint with a changed header (``mutate(dict)``) or raw header bytes."""
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    body = blob[8 + n:] if data is None else data
    if raw_header is None:
        mutate(header)
        raw_header = json.dumps(header).encode()
    path.write_bytes(len(raw_header).to_bytes(8, "little") + raw_header + body)


def _set_meta(key, value):
    def mutate(header):
        header["__metadata__"][key] = value
    return mutate


# ------------------------------------------------------------------ round trip
def test_save_and_load_round_trip_everything(trained):
    model, path = trained
    x, _ = blobs(n=20, seed=1)
    loaded = nnframe.load(path)
    assert loaded.net.get_config() == model.net.get_config()
    assert type(loaded.loss) is type(model.loss) and type(loaded.optimizer) is type(model.optimizer)
    for name, value in model.net.state_dict().items():
        np.testing.assert_array_equal(loaded.net.state_dict()[name], value)
        assert loaded.net.state_dict()[name].dtype == value.dtype
    saved_opt, loaded_opt = model.optimizer.state_dict(), loaded.optimizer.state_dict()
    assert loaded_opt["iterations"] == saved_opt["iterations"] == 8
    assert loaded_opt["lr"] == saved_opt["lr"] == 0.0025
    for key, value in saved_opt["arrays"].items():
        np.testing.assert_array_equal(loaded_opt["arrays"][key], value)
    assert isinstance(loaded.scheduler, schedule.StepLR)
    assert loaded.scheduler.state_dict() == model.scheduler.state_dict()
    assert (loaded.epoch, loaded.global_step, loaded.input_shape) == (2, 8, (6,))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.shuffle_rng.bit_generator.state == model.shuffle_rng.bit_generator.state
    assert loaded.net.layers[2].rng.bit_generator.state == model.net.layers[2].rng.bit_generator.state


def test_round_trip_float64_sgd_momentum_and_one_cycle(tmp_path):
    with nnframe.backend.default_dtype("float64"):
        x, y = blobs(n=30)
        model = mlp(opt="SGD", lr=0.1)
        model.optimizer.momentum = 0.9  # the momentum buffer exists while the momentum is non-zero
        sched = schedule.OneCycleLR(model.optimizer, max_lr=0.5, total_steps=20, div_factor=10.0)
        model.fit(x, y, epochs=1, batch_size=10, verbose=0,
                  callbacks=[callbacks.LRSchedulerCallback(sched, per="batch")])
        model.save(tmp_path / "m.safetensors")
        loaded = nnframe.load(tmp_path / "m.safetensors")
        assert loaded.net.params.flat.dtype == np.float64
        np.testing.assert_array_equal(loaded.net.params.flat, model.net.params.flat)
        assert loaded.scheduler.div_factor == 10.0 and loaded.optimizer.lr == model.optimizer.lr
        assert [loaded.scheduler.lr_at(k) for k in range(20)] == [sched.lr_at(k) for k in range(20)]
        assert loaded.optimizer.momentum == model.optimizer.momentum != 0.9  # cycled, and restored


def test_a_loaded_model_summarises_without_its_code(trained, capsys):
    _, path = trained
    text = nnframe.load(path).summary_text()
    assert "Dense" in text and "(None, 3)" in text and "Total params: 163" in text


def test_unbuilt_model_cannot_be_saved(tmp_path):
    model = Model(net.Net([layer.Dense(3)]), loss.MSE(), optimizer.SGD(0.1))
    with pytest.raises(CheckpointError, match="not built"):
        model.save(tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()


def test_a_model_saved_before_any_step_loads(tmp_path):
    model = mlp()
    model.save(tmp_path / "fresh.safetensors")
    loaded = nnframe.load(tmp_path / "fresh.safetensors")
    np.testing.assert_array_equal(loaded.net.params.flat, model.net.params.flat)
    assert loaded.optimizer.iterations == 0 and loaded.epoch == 0


# ------------------------------------------------------------------------ resume
def _resume_setup(tmp_path, epochs):
    x, y = blobs(n=90)
    model = mlp(dropout=0.3)
    sched = schedule.StepLR(model.optimizer, step_size=2, gamma=0.5)
    return x, y, model, [callbacks.LRSchedulerCallback(sched)]


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path):
    total, stop_after = 5, 2
    path = tmp_path / "last.safetensors"
    fit_args = dict(batch_size=16, validation_split=0.2, shuffle=True, verbose=0)

    x, y, model, cbs = _resume_setup(tmp_path, total)
    nnframe.set_seed(99)
    model.fit(x, y, epochs=total, callbacks=cbs, **fit_args)
    uninterrupted = model.net.state_dict()
    adam_state = model.optimizer.state_dict()

    x, y, model, cbs = _resume_setup(tmp_path, stop_after)
    nnframe.set_seed(99)
    model.fit(x, y, epochs=stop_after, callbacks=[*cbs, callbacks.ModelCheckpoint(path)], **fit_args)
    del model
    nnframe.set_seed(12345)  # a "fresh process": global state differs from the first run

    resumed = nnframe.load(path)
    assert resumed.epoch == stop_after
    history = resumed.fit(x, y, epochs=total, resume_from=path,
                          callbacks=[callbacks.LRSchedulerCallback()], **fit_args)
    assert history.epoch == list(range(total))  # the checkpoint's epochs, then the resumed ones
    for name, value in uninterrupted.items():
        np.testing.assert_array_equal(resumed.net.state_dict()[name], value, err_msg=name)
    for key, value in adam_state["arrays"].items():
        np.testing.assert_array_equal(resumed.optimizer.state_dict()["arrays"][key], value)
    assert resumed.optimizer.lr == 0.01 * 0.5**2
    assert resumed.global_step == total * 5  # 72 training samples / 16 -> 5 batches


def _stateful_callbacks():
    # min_delta=10: only the first epoch counts as an improvement, so the counters run
    return [callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=10.0, cooldown=1),
            callbacks.EarlyStopping(patience=3, min_delta=10.0, restore_best_weights=True)]


FIT_ARGS = dict(batch_size=16, validation_split=0.2, verbose=0)


def test_resume_gives_callbacks_their_state_back(tmp_path):
    path = tmp_path / "last.safetensors"
    x, y = blobs(n=90)
    first = mlp()
    first.fit(x, y, epochs=1, **FIT_ARGS)
    after_first_epoch = first.net.params.flat.copy()  # early stopping's best epoch, below

    full = mlp()
    full_history = full.fit(x, y, epochs=8, callbacks=_stateful_callbacks(), **FIT_ARGS)
    assert full_history.epoch == [0, 1, 2, 3]  # early stopping ended the run after 4 of 8 epochs
    assert full.optimizer.lr == 0.01 * 0.5**2  # reduced after epochs 2 and 4 (cooldown 1)
    np.testing.assert_array_equal(full.net.params.flat, after_first_epoch)  # best weights restored

    interrupted = mlp()
    interrupted.fit(x, y, epochs=2, callbacks=[*_stateful_callbacks(), callbacks.ModelCheckpoint(path)],
                    **FIT_ARGS)
    resumed = nnframe.load(path)
    history = resumed.fit(x, y, epochs=8, resume_from=path, callbacks=_stateful_callbacks(), **FIT_ARGS)

    assert history.epoch == full_history.epoch
    assert history.history == full_history.history  # losses, validation figures, lr: bit for bit
    assert resumed.optimizer.lr == full.optimizer.lr
    np.testing.assert_array_equal(resumed.net.params.flat, full.net.params.flat)


def test_a_loaded_model_has_the_history_of_every_epoch_so_far(tmp_path):
    path = tmp_path / "last.safetensors"
    x, y = blobs(n=60)
    model = mlp()
    history = model.fit(x, y, epochs=3, callbacks=[callbacks.ModelCheckpoint(path)], **FIT_ARGS)
    loaded = nnframe.load(path)
    assert loaded.history.epoch == [0, 1, 2]
    assert loaded.history.history == history.history


def test_resume_warns_about_callbacks_the_checkpoint_has_no_state_for(tmp_path):
    path = tmp_path / "last.safetensors"
    x, y = blobs(n=60)
    model = mlp()
    model.fit(x, y, epochs=1, callbacks=[callbacks.ModelCheckpoint(path)], **FIT_ARGS)
    with pytest.warns(RuntimeWarning, match=r"no saved state for callbacks \['EarlyStopping#0'\]"):
        model.fit(x, y, epochs=2, resume_from=path, callbacks=[callbacks.EarlyStopping(patience=5)], **FIT_ARGS)


def test_a_bad_callback_state_is_refused_naming_the_callback(tmp_path):
    path = tmp_path / "last.safetensors"
    x, y = blobs(n=60)
    model = mlp()
    model.fit(x, y, epochs=1, callbacks=[callbacks.EarlyStopping(patience=5), callbacks.ModelCheckpoint(path)],
              **FIT_ARGS)

    def negative_wait(header):
        state = json.loads(header["__metadata__"]["state"])
        state["callbacks"]["EarlyStopping#0"]["wait"] = -1
        header["__metadata__"]["state"] = json.dumps(state)

    _rewrite(path, negative_wait)
    with pytest.raises(CheckpointError, match=r"callback EarlyStopping#0: .*wait must be a non-negative integer"):
        mlp().fit(x, y, epochs=2, resume_from=path, callbacks=[callbacks.EarlyStopping(patience=5)], **FIT_ARGS)


RESUME_SCRIPT = """
import sys
import numpy as np
import nnframe
from nnframe import callbacks
sys.path.insert(0, sys.argv[3])
from training_cases import blobs

x, y = blobs(n=90)
model = nnframe.load(sys.argv[1])
model.fit(x, y, epochs=4, batch_size=16, validation_split=0.2, verbose=0, resume_from=sys.argv[1],
          callbacks=[callbacks.LRSchedulerCallback()])
model.save(sys.argv[2])
"""


def test_resume_in_a_fresh_process_is_bit_identical(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    fit_args = dict(batch_size=16, validation_split=0.2, verbose=0)
    x, y, model, cbs = _resume_setup(tmp_path, 4)
    model.fit(x, y, epochs=4, callbacks=cbs, **fit_args)
    x, y, other, cbs = _resume_setup(tmp_path, 1)
    other.fit(x, y, epochs=1, callbacks=[*cbs, callbacks.ModelCheckpoint(tmp_path / "ep1.safetensors")],
              **fit_args)
    script = tmp_path / "resume.py"
    script.write_text(RESUME_SCRIPT)
    # The child imports the nnframe under test, installed or not.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(nnframe.__file__).parents[1]),
                                                                     os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, str(script), str(tmp_path / "ep1.safetensors"),
                    str(tmp_path / "ep4.safetensors"), str(Path(__file__).parent)], check=True, env=env)
    resumed = nnframe.load(tmp_path / "ep4.safetensors")
    assert resumed.epoch == 4
    np.testing.assert_array_equal(resumed.net.params.flat, model.net.params.flat)


def test_load_leaves_the_global_generator_alone_unless_asked(trained):
    _, path = trained
    nnframe.set_seed(3)
    expected = nnframe.random.get_state()
    nnframe.load(path)
    assert nnframe.random.get_state() == expected
    saved = json.loads(_header(path)["__metadata__"]["state"])["rng"]["global"]
    nnframe.load(path, restore_global_rng=True)
    assert nnframe.random.get_state() == saved


def test_resume_into_a_model_built_by_code(tmp_path):
    x, y = blobs(n=40)
    path = tmp_path / "ckpt.safetensors"
    a = mlp()
    a.fit(x, y, epochs=3, batch_size=8, verbose=0, rng=4)
    b = mlp()
    b.fit(x, y, epochs=1, batch_size=8, verbose=0, rng=4, callbacks=[callbacks.ModelCheckpoint(path)])
    c = mlp(seed=1)  # different initial weights and generators, same architecture
    c.fit(x, y, epochs=3, batch_size=8, verbose=0, resume_from=path)
    np.testing.assert_array_equal(c.net.params.flat, a.net.params.flat)


def test_resume_reports_every_mismatch_at_once(trained):
    _, path = trained
    x, y = blobs(n=20)
    other = Model(net.Net([layer.Dense(5), layer.ReLU(), layer.Dropout(0.1), layer.Dense(4)]),
                  loss.SoftmaxCrossEntropy(), optimizer.Adam())
    other.forward(x)
    with pytest.raises(CheckpointError) as info:
        other.fit(x, np.zeros(20, dtype=int), epochs=3, resume_from=path, verbose=0)
    message = str(info.value)
    for name in ("0.w", "0.b", "3.w", "3.b", "m.0.w", "v.3.b"):
        assert name in message
    assert "expected (6, 5) float32, got (6, 16) float32" in message


def test_dtype_mismatch_is_reported(trained, tmp_path):
    _, path = trained
    with nnframe.backend.default_dtype("float64"):
        model = mlp()
    with pytest.raises(CheckpointError, match="expected .* float64, got .* float32"):
        model.fit(*blobs(n=10), epochs=3, resume_from=path, verbose=0)


# ------------------------------------------------------------------ atomic save
def test_a_crash_mid_write_leaves_the_previous_checkpoint(trained, monkeypatch):
    model, path = trained
    before = path.read_bytes()
    model.fit(*blobs(n=60), epochs=3, initial_epoch=2, verbose=0)  # weights change

    def crash(file, data):
        file.write(data[: len(data) // 2])
        raise OSError("disk on fire")

    monkeypatch.setattr(io, "_write_all", crash)
    with pytest.raises(OSError, match="disk on fire"):
        model.save(path)
    assert path.read_bytes() == before
    assert nnframe.load(path).epoch == 2
    assert sorted(os.listdir(path.parent)) == [path.name]  # the temporary file is gone


def test_a_crash_before_the_rename_leaves_the_previous_checkpoint(trained, monkeypatch):
    model, path = trained
    before = path.read_bytes()

    def failing_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(io.os, "replace", failing_replace)
    with pytest.raises(KeyboardInterrupt):
        model.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(path.parent)) == [path.name]


# -------------------------------------------------------------- hostile files
class _Boom:
    def __reduce__(self):
        return (exec, ("import builtins; builtins._nnframe_pwned = True",))


def _load_error(path) -> str:
    with pytest.raises(CheckpointError) as info:
        nnframe.load(path)
    assert not hasattr(builtins, "_nnframe_pwned")
    return str(info.value)


def test_a_pickle_is_refused_without_running_it(tmp_path):
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(_Boom()))
    assert "pickle" in _load_error(path)


def test_an_npz_with_a_pickle_inside_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.array([_Boom()], dtype=object))
    assert "zip archive" in _load_error(path)


def test_a_lying_header_length_is_refused(trained):
    _, path = trained
    blob = path.read_bytes()
    path.write_bytes((len(blob) * 10).to_bytes(8, "little") + blob[8:])
    assert _load_error(path).startswith(f"checkpoint {str(path)!r}: truncated: {len(blob)} of at least ")
    path.write_bytes((2**64 - 1).to_bytes(8, "little") + blob[8:])
    assert _load_error(path).startswith(f"checkpoint {str(path)!r}: not a safetensors file")


def test_a_truncated_file_is_refused(trained):
    _, path = trained
    blob = path.read_bytes()
    path.write_bytes(blob[:-100])
    assert "truncated" in _load_error(path)
    path.write_bytes(blob[:5])
    assert "truncated" in _load_error(path)
    path.write_bytes(b"")
    assert "truncated" in _load_error(path)


def test_absurd_shapes_are_refused_before_allocating(trained):
    _, path = trained

    def huge(header):
        header["net/0.w"]["shape"] = [2**40, 2**40]

    _rewrite(path, huge)
    assert "needs" in _load_error(path) and "net/0.w" in _load_error(path)

    def negative(header):
        header["net/0.b"]["shape"] = [-16]

    _rewrite(path, negative)
    assert "non-negative" in _load_error(path)


def test_overlapping_offsets_and_bad_dtypes_are_refused(trained):
    _, path = trained
    good = path.read_bytes()

    def overlap(header):
        names = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"])
        header[names[1]]["data_offsets"] = header[names[0]]["data_offsets"]
        header[names[1]]["shape"] = header[names[0]]["shape"]
        header[names[1]]["dtype"] = header[names[0]]["dtype"]

    _rewrite(path, overlap)
    assert "overlapping" in _load_error(path) or "cover" in _load_error(path)
    path.write_bytes(good)

    def object_dtype(header):
        header["net/0.b"]["dtype"] = "O"

    _rewrite(path, object_dtype)
    assert "unsupported dtype 'O'" in _load_error(path)


def test_non_json_header_and_metadata_are_refused(trained):
    _, path = trained
    good = path.read_bytes()
    _rewrite(path, raw_header=b"{not json at all")
    assert "not valid JSON" in _load_error(path)
    path.write_bytes(good)
    _rewrite(path, raw_header=b"\xff\xfe" * 8)
    assert "not a safetensors file" in _load_error(path)
    path.write_bytes(good)
    _rewrite(path, _set_meta("config", "{'net': pickle}"))
    assert "metadata 'config' is not valid JSON" in _load_error(path)
    path.write_bytes(good)
    _rewrite(path, _set_meta("state", "[1, 2]"))
    assert "'state' must be a JSON object" in _load_error(path)
    path.write_bytes(good)

    def no_metadata(header):
        del header["__metadata__"]

    _rewrite(path, no_metadata)
    assert "__metadata__" in _load_error(path)


def test_duplicate_header_keys_are_refused(trained):
    _, path = trained
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    text = blob[8:8 + n].decode()
    doubled = text.replace('"__metadata__":', '"__metadata__":{},"__metadata__":', 1).encode()
    path.write_bytes(len(doubled).to_bytes(8, "little") + doubled + blob[8 + n:])
    assert "duplicate key" in _load_error(path)


def test_wrong_format_or_version_is_refused(trained):
    _, path = trained
    good = path.read_bytes()
    _rewrite(path, _set_meta("format_version", "2"))
    assert "format version '2' is not supported" in _load_error(path)
    path.write_bytes(good)
    _rewrite(path, _set_meta("format", "pt"))
    assert "expected 'nnframe-checkpoint'" in _load_error(path)


def test_config_cannot_name_arbitrary_classes(trained):
    _, path = trained
    good = path.read_bytes()
    config = json.loads(json.loads(json.dumps(_header(path)["__metadata__"]["config"])))
    config["net"]["layers"][0] = {"class": "os.system", "config": {"command": "touch pwned"}}
    _rewrite(path, _set_meta("config", json.dumps(config)))
    assert "unknown layer class 'os.system'" in _load_error(path)
    path.write_bytes(good)
    config = json.loads(_header(path)["__metadata__"]["config"])
    config["scheduler"] = {"class": "LRScheduler.__subclasses__", "x": 1}
    _rewrite(path, _set_meta("config", json.dumps(config)))
    assert "unknown scheduler" in _load_error(path)
    path.write_bytes(good)
    config = json.loads(_header(path)["__metadata__"]["config"])
    config["net"]["layers"][3]["config"]["num_out"] = 10**6  # would allocate GBs if built
    _rewrite(path, _set_meta("config", json.dumps(config)))
    assert "does not match its own config" in _load_error(path)
    path.write_bytes(good)
    config = json.loads(_header(path)["__metadata__"]["config"])
    config["input_shape"] = [10**6, 10**6]
    _rewrite(path, _set_meta("config", json.dumps(config)))
    assert "input_shape" in _load_error(path)


def test_bad_generator_state_is_refused(trained):
    _, path = trained
    state = json.loads(_header(path)["__metadata__"]["state"])
    state["shuffle_rng"] = {"bit_generator": "builtins.eval", "state": {}}
    _rewrite(path, _set_meta("state", json.dumps(state)))
    assert "bad generator state for shuffling" in _load_error(path)


def test_validation_fails_before_anything_changes(trained):
    _, path = trained
    state = json.loads(_header(path)["__metadata__"]["state"])
    state["rng"]["layers"]["2.rng"] = {"bit_generator": "PCG64", "state": "garbage"}
    _rewrite(path, _set_meta("state", json.dumps(state)))
    model = mlp(seed=3)
    before = model.net.state_dict()
    with pytest.raises(CheckpointError, match="bad generator state for layer 2.rng"):
        model.fit(*blobs(n=10), epochs=3, resume_from=path, verbose=0)
    for name, value in before.items():
        np.testing.assert_array_equal(model.net.state_dict()[name], value)
    assert model.optimizer.iterations == 0 and model.epoch == 0


def test_huge_numbers_in_the_header_are_refused(trained):
    _, path = trained
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    text = blob[8:8 + n].decode()
    key = '"shape":['
    bad = text.replace(key, key + "9" * 5000 + ",", 1).encode()
    path.write_bytes(len(bad).to_bytes(8, "little") + bad + blob[8 + n:])
    assert "not valid JSON" in _load_error(path)


def test_a_missing_file_is_a_checkpoint_error(tmp_path):
    assert "cannot read checkpoint" in _load_error(tmp_path / "nope.safetensors")


def _header(path):
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8:8 + n])
