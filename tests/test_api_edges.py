"""API edge cases (issue 10 item 10): empty batches and data sets, NaN inputs, and one rule
for integer input everywhere."""

from __future__ import annotations

import numpy as np
import pytest
from training_cases import blobs, mlp


def test_train_step_on_an_empty_batch_is_a_clear_error():
    model = mlp()
    with pytest.raises(ValueError, match=r"train_step: the batch is empty \(0 samples\)"):
        model.train_step(np.zeros((0, 6), np.float32), np.zeros(0, np.int64))


def test_fit_on_no_samples_is_a_clear_error():
    with pytest.raises(ValueError, match="fit: no training samples"):
        mlp().fit(np.zeros((0, 6), np.float32), np.zeros(0, np.int64), epochs=1, verbose=0)


def test_evaluate_refuses_nan_inputs():
    x, y = blobs(n=20)
    x[13, 2] = np.nan
    with pytest.raises(ValueError, match=r"evaluate: x holds NaN or infinity \(in the batch of samples from 10\)"):
        mlp().evaluate(x, y, batch_size=10)


@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint8, np.bool_])
def test_forward_casts_integer_input_like_predict_and_fit(dtype):
    model = mlp()
    model.net.eval()  # dropout off: the same input gives the same output
    x = blobs(n=8)[0].round().clip(0, 1).astype(dtype)
    out = model.net.forward(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, model.net.forward(x.astype(np.float32)))
    np.testing.assert_array_equal(model.predict(x), out)
