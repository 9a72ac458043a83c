"""Model: weighted-mean losses over batches, predict_proba, the integer-input warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nnframe import layer, loss, net, optimizer
from nnframe.model import Model

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 5)).astype(np.float32)
Y = RNG.integers(0, 3, size=64)
WEIGHTED_LOSSES = [loss.SoftmaxCrossEntropy(weight=[0.2, 1.0, 5.0]),
                   loss.SoftmaxCrossEntropy(weight=[0.2, 1.0, 5.0], label_smoothing=0.1),
                   loss.NLLLoss(weight=[0.2, 1.0, 5.0])]


def _model(loss_fn, lr=0.0):
    layers = [layer.Dense(8, w_init={"class": "Normal", "std": 0.5, "rng": 1}), layer.Tanh(),
              layer.Dense(3, w_init={"class": "Normal", "std": 0.5, "rng": 2})]
    if isinstance(loss_fn, loss.NLLLoss):
        layers.append(LogSoftmax())
    return Model(net.Net(layers), loss_fn, optimizer.SGD(lr=lr))


class LogSoftmax(layer.Layer):
    """log_softmax over the last axis, for NLLLoss (outputs are log-probabilities)."""

    def forward(self, inputs):
        from nnframe import functional as F

        out = F.log_softmax(inputs, axis=-1)
        self.ctx = {"p": np.exp(out)}
        return out

    def backward(self, grad):
        return grad - self.ctx["p"] * grad.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("loss_fn", WEIGHTED_LOSSES, ids=["sce", "sce-smooth", "nll"])
def test_evaluate_with_class_weights_equals_one_full_batch_for_every_batch_size(loss_fn):
    # before: batch sizes 64, 16 and 1 gave 1.738, 1.750 and 1.466 (means averaged by sample count)
    m = _model(loss_fn)
    full = loss_fn.loss(m.predict(X), Y)
    for batch_size in (64, 16, 5, 1):
        assert m.evaluate(X, Y, batch_size=batch_size)["loss"] == pytest.approx(full, rel=1e-5), batch_size


@pytest.mark.parametrize("loss_fn", WEIGHTED_LOSSES, ids=["sce", "sce-smooth", "nll"])
def test_the_epoch_training_loss_is_the_weighted_mean_too(loss_fn):
    m = _model(loss_fn, lr=0.0)  # lr 0: the parameters stay, so the epoch loss is one full-batch loss
    full = loss_fn.loss(m.predict(X), Y)
    history = m.fit(X, Y, epochs=1, batch_size=7, verbose=0, shuffle=False)
    assert history.history["loss"][0] == pytest.approx(full, rel=1e-5)
    assert history.history["accuracy"][0] == pytest.approx(m.evaluate(X, Y, batch_size=64)["accuracy"])


def test_metrics_stay_weighted_by_samples():
    m = _model(loss.SoftmaxCrossEntropy(weight=[0.0, 0.0, 1.0]))
    preds = m.predict(X)
    expected = float((preds.argmax(1) == Y).mean())
    assert m.evaluate(X, Y, batch_size=8)["accuracy"] == pytest.approx(expected)


def test_a_batch_of_zero_total_weight_has_no_say_in_evaluate():
    loss_fn = loss.SoftmaxCrossEntropy(weight=[0.0, 0.0, 1.0])
    m = _model(loss_fn)
    order = np.argsort(Y == 2, kind="stable")  # classes 0 and 1 first: the first batches weigh 0
    x, y = X[order], Y[order]
    full = loss_fn.loss(m.predict(x), y)
    assert m.evaluate(x, y, batch_size=4)["loss"] == pytest.approx(full, rel=1e-5)
    assert np.isnan(m.eval_step(x[:4], y[:4])["loss"]) and m.last_loss_weight == 0.0


def test_predict_returns_logits_and_predict_proba_probabilities():
    m = _model(loss.SoftmaxCrossEntropy())
    logits = m.predict(X)
    proba = m.predict_proba(X, batch_size=10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(proba, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-5)
    assert proba.dtype == np.float32 and not np.allclose(logits.sum(axis=1), 1.0)


@pytest.mark.parametrize("loss_fn, link", [
    (loss.SigmoidCrossEntropy(), lambda z: 1 / (1 + np.exp(-z))),
    (loss.NLLLoss(), np.exp),
    (loss.KLDivergence(), lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True)),
    (loss.KLDivergence(from_logits=False), np.exp),
])
def test_predict_proba_follows_the_loss(loss_fn, link):
    m = _model(loss_fn)
    np.testing.assert_allclose(m.predict_proba(X), link(m.predict(X)), rtol=1e-5)


def test_predict_proba_refuses_a_regression_loss():
    m = _model(loss.MSE())
    with pytest.raises(TypeError, match="predict_proba: the model's loss MSE does not define class probabilities"):
        m.predict_proba(X)


def test_fit_on_integer_pixels_warns_once():
    pixels = RNG.integers(0, 256, size=(32, 5)).astype(np.uint8)
    m = _model(loss.SoftmaxCrossEntropy(), lr=0.01)
    with pytest.warns(UserWarning, match=r"fit: x has integer dtype uint8, so the net trains on the raw values "
                                         r"\(0..255 for pixels\).*nnframe.data.standardize\(x\)"):
        m.fit(pixels, Y[:32], epochs=1, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.fit(pixels, Y[:32], epochs=2, initial_epoch=1, verbose=0)  # once per model
        _model(loss.SoftmaxCrossEntropy()).fit(X, Y, epochs=1, verbose=0)  # float data: no warning


def test_a_checkpoint_naming_an_unknown_metric_is_a_checkpoint_error(tmp_path):
    # found by tests/test_checkpoint_fuzz.py: metrics [""] in the config raised a bare ValueError
    import json

    import nnframe
    from nnframe.io import CheckpointError, read_checkpoint

    m = _model(loss.SoftmaxCrossEntropy())
    m.metrics = ["accuracy"]
    m.predict(X[:2])
    m.save(tmp_path / "m.safetensors")
    ckpt = read_checkpoint(tmp_path / "m.safetensors")
    from safetensors.numpy import save_file

    with open(tmp_path / "m.safetensors", "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    metadata = header["__metadata__"]
    config = json.loads(metadata["config"])
    config["metrics"] = [""]
    metadata["config"] = json.dumps(config)
    arrays = {**{f"net/{k}": v for k, v in ckpt.net_arrays.items()},
              **{f"optimizer/{k}": v for k, v in ckpt.optimizer_arrays.items()}}
    save_file(arrays, tmp_path / "bad.safetensors", metadata=metadata)
    with pytest.raises(CheckpointError, match="bad metrics config: unknown metric ''"):
        nnframe.load(tmp_path / "bad.safetensors")
