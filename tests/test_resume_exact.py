"""Resume is exact with a scheduler and ReduceLROnPlateau (issue 10 item 4), and a diverged run
never replaces a finite checkpoint (item 5)."""

from __future__ import annotations

import numpy as np
import pytest
from training_cases import blobs, mlp

import nnframe
from nnframe import callbacks, io, schedule
from nnframe.io import CheckpointError

FIT = dict(batch_size=16, validation_split=0.25, verbose=0)
TOTAL = 5


def _model():
    model = mlp()
    model.scheduler = schedule.StepLR(model.optimizer, step_size=2, gamma=0.5)
    return model


def _callbacks(path=None):
    # min_delta=10: only the first epoch improves, so the plateau counters and reductions run
    cbs = [callbacks.LRSchedulerCallback(),
           callbacks.ReduceLROnPlateau(factor=0.5, patience=1, min_delta=10.0),
           callbacks.EarlyStopping(patience=10, min_delta=10.0)]
    return cbs + ([callbacks.ModelCheckpoint(path)] if path else [])


def test_a_learning_rate_set_by_hand_survives_save_and_load(tmp_path):
    model = _model()
    model.optimizer.lr = 0.05
    model.save(tmp_path / "m.safetensors")
    assert nnframe.load(tmp_path / "m.safetensors").optimizer.lr == 0.05


def test_resume_at_every_epoch_boundary_is_bit_identical(tmp_path):
    x, y = blobs(n=64)
    full = _model()
    history = full.fit(x, y, epochs=TOTAL, callbacks=_callbacks(str(tmp_path / "e{epoch}.safetensors")), **FIT)
    assert len(set(history.history["lr"])) >= 3  # both the schedule and the plateau changed the rate
    for stop in range(1, TOTAL):
        resumed = nnframe.load(tmp_path / f"e{stop}.safetensors")
        again = resumed.fit(x, y, epochs=TOTAL, resume_from=tmp_path / f"e{stop}.safetensors",
                            callbacks=_callbacks(), **FIT)
        assert again.history == history.history, f"resumed after epoch {stop}"
        np.testing.assert_array_equal(resumed.net.params.flat, full.net.params.flat)
        assert resumed.optimizer.lr == full.optimizer.lr
        for key, value in full.optimizer.state_dict()["arrays"].items():
            np.testing.assert_array_equal(resumed.optimizer.state_dict()["arrays"][key], value)


def test_a_run_stopped_on_nan_keeps_its_last_finite_checkpoint(tmp_path, capsys):
    path = tmp_path / "last.safetensors"
    x, y = blobs(n=64)
    model = mlp(check_finite=False)
    model.fit(x, y, epochs=1, callbacks=[callbacks.ModelCheckpoint(path)], **FIT)
    good = path.read_bytes()
    model.optimizer.lr = 1e30  # diverges within the next epoch
    model.fit(x, y, epochs=3, callbacks=[callbacks.TerminateOnNaN(), callbacks.ModelCheckpoint(path)], **FIT)
    assert not np.isfinite(model.net.params.flat).all()
    assert path.read_bytes() == good
    assert "not saving epoch" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="refusing to replace checkpoint .* NaN or infinity"):
        model.save(path)
    assert path.read_bytes() == good
    model.save(tmp_path / "diverged.safetensors")  # a new name is fine, to inspect it
    assert io.read_checkpoint(tmp_path / "diverged.safetensors").net_arrays
