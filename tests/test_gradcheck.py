"""The public gradient checker catches wrong gradients and explains where."""

from __future__ import annotations

import numpy as np
import pytest

from nnframe import backend, layer, loss
from nnframe.gradcheck import GradcheckError, gradcheck, gradcheck_loss, smooth_input


class WrongDense(layer.Dense):
    """Dense whose bias gradient is off by a factor of two."""

    def backward(self, grad):
        dx = super().backward(grad)
        self.grads["b"] *= 2.0
        return dx


class WrongInputGrad(layer.Tanh):
    def backward(self, grad):
        return grad * (1.0 - self.ctx["Y"])  # forgot the square


def test_detects_a_wrong_parameter_gradient():
    with backend.default_dtype("float64"):
        with pytest.raises(GradcheckError, match=r"0\.b: 3/3 entries differ"):
            gradcheck(WrongDense(3), smooth_input((4, 2)))


def test_detects_a_wrong_input_gradient():
    with pytest.raises(GradcheckError, match="input"):
        gradcheck(WrongInputGrad(), smooth_input((3, 3), seed=1))


def test_large_tensors_use_random_directions_and_still_detect_errors():
    with backend.default_dtype("float64"):
        report = gradcheck(layer.Dense(40), smooth_input((30, 25)), max_full=100)
        assert set(report) == {"input", "0.w", "0.b"}
        with pytest.raises(GradcheckError, match=r"0\.b"):
            gradcheck(WrongDense(200), smooth_input((3, 25)), max_full=100)


def test_rejects_float32_parameters():
    dense = layer.Dense(2)
    dense.forward(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="float64"):
        gradcheck(dense, np.zeros((1, 3)))


def test_loss_check_detects_the_seeds_cross_entropy_gradient():
    class SeedCrossEntropy(loss.SoftmaxCrossEntropy):
        def loss_and_grad(self, predicted, actual):
            value, _ = super().loss_and_grad(predicted, actual)
            return value, (predicted - actual) / predicted.shape[0]  # the seed's bug: no softmax

    pred = np.random.default_rng(0).normal(size=(4, 3))
    gradcheck_loss(loss.SoftmaxCrossEntropy(), pred, np.eye(3)[[0, 1, 2, 0]])
    with pytest.raises(GradcheckError, match="predictions"):
        gradcheck_loss(SeedCrossEntropy(), pred, np.eye(3)[[0, 1, 2, 0]])


def test_smooth_input_stays_away_from_kinks():
    x = smooth_input((1000,), kinks=(0.0, 1.0), margin=0.1)
    assert np.abs(x).min() >= 0.1 and np.abs(x - 1.0).min() >= 0.1


def test_dropout_masks_are_replayed_so_train_mode_can_be_checked():
    with backend.default_dtype("float64"):
        report = gradcheck(layer.Dropout(0.5, rng=1), smooth_input((5, 4)))
    assert report["input"] < 1e-8
