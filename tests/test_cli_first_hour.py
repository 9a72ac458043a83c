"""The CLI's rough edges for a new user: predict's pixel range, a closed stdout, where the data
came from, and evaluating on another data set. Uses test_cli's tiny data set and trained run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli import _parse_predictions, isolated, make_dataset, run, train_args, trained  # noqa: F401

from nnframe import cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("values, fragment", [
    (np.full((28, 28), np.nan, dtype=np.float32), "holds NaN or infinite values; expected pixel values in 0..255"),
    (np.full((28, 28), np.inf), "holds NaN or infinite values"),
    (np.full((28, 28), -3.0, dtype=np.float32), "pixel values must lie in 0..255, the range the model was "
                                                "trained on; got values in -3..-3"),
    (np.arange(784, dtype=np.int64).reshape(28, 28) + 200, "got values in 200..983"),
])
def test_predict_refuses_pixels_outside_the_trained_range(trained, tmp_path, values, fragment):  # noqa: F811
    _, _, ckpt, _, _ = trained
    path = tmp_path / "bad.npy"
    np.save(path, values)
    status, out, err = run(["predict", ckpt, path])
    assert status == 1 and out == ""
    assert err.startswith(f"nnframe: error: {path}: ") and fragment in err and err.count("\n") == 1


def test_predict_takes_floats_in_0_1_as_pixels_with_a_notice(trained, tmp_path):  # noqa: F811
    _, arrays, ckpt, _, _ = trained
    images = arrays["t10k"][0][:4]  # uint8 (4, 28, 28, 1)
    raw, scaled = tmp_path / "raw.npy", tmp_path / "scaled.npy"
    np.save(raw, images)
    np.save(scaled, images.astype(np.float32) / 255)
    status, out_raw, err = run(["predict", ckpt, raw])
    assert status == 0 and err == ""
    status, out_scaled, err = run(["predict", ckpt, scaled])
    assert status == 0
    assert f"nnframe: note: {scaled}: float pixels in 0..1 taken as 0..255 (multiplied by 255)" in err
    same = [(k, round(p, 3)) for _, k, p in _parse_predictions(out_raw)]
    assert [(k, round(p, 3)) for _, k, p in _parse_predictions(out_scaled)] == same


def test_the_pixel_range_is_stored_at_training(trained):  # noqa: F811
    import nnframe

    _, _, ckpt, _, _ = trained
    assert nnframe.load(ckpt).metadata["pixel_range"] == [0, 255]


def test_the_training_header_says_where_the_data_came_from(trained):  # noqa: F811
    root, _, _, out, _ = trained
    assert out.splitlines()[0].startswith(f"nnframe train: fashion-mnist from {root / 'data'}, 216 training")


def test_evaluate_refuses_another_data_set_unless_forced(trained):  # noqa: F811
    root, _, ckpt, _, _ = trained
    make_dataset(root / "mnist-data", seed=5)
    argv = ["evaluate", ckpt, "--dataset", "mnist", "--data-dir", root / "mnist-data", "--no-download"]
    status, out, err = run(argv)
    assert status == 1 and out == ""
    assert (f"nnframe: error: checkpoint {str(ckpt)!r} was trained on fashion-mnist, not mnist; its test "
            "figures on mnist would mean nothing (pass --force to evaluate on mnist anyway)") in err
    status, out, err = run([*argv, "--force"])
    assert status == 0 and "on the mnist test set (60 images)" in out


def test_a_closed_stdout_ends_quietly(trained):  # noqa: F811
    # nnframe summary CKPT | head -1: the reader is gone before nnframe writes
    _, _, ckpt, _, _ = trained
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("NNFRAME_DEBUG", None)
    try:
        done = subprocess.run([sys.executable, "-m", "nnframe", "summary", str(ckpt)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    finally:
        os.close(write_end)
    assert done.stderr == "" and done.returncode == 141


def test_main_returns_141_without_a_message_on_broken_pipe(trained, monkeypatch, capsys):  # noqa: F811
    _, _, ckpt, _, _ = trained

    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["summary", str(ckpt)]) == 141
    assert capsys.readouterr().err == ""
