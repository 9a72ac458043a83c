"""Losses: gradients against finite differences, values against closed forms and PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnframe import loss as L
from nnframe.errors import ShapeError
from nnframe.gradcheck import gradcheck_loss

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(5, 4)) * 2
LABELS = np.array([0, 3, 1, 1, 2])
ONE_HOT = np.eye(4)[LABELS]
SOFT = RNG.dirichlet(np.ones(4), size=5)
REG_PRED = RNG.normal(size=(6, 3))
REG_TARGET = REG_PRED + RNG.choice([-1, 1], size=(6, 3)) * RNG.uniform(0.1, 2.5, size=(6, 3))
BINARY = RNG.integers(0, 2, size=(5, 4)).astype(float)
SOFT_ZEROS = SOFT.copy()
SOFT_ZEROS[0, 1] = 0.0  # 0 log 0 = 0
SOFT_ZEROS[0] /= SOFT_ZEROS[0].sum()

LOSS_CASES = [
    ("sce-labels", L.SoftmaxCrossEntropy(), LOGITS, LABELS),
    ("sce-onehot", L.SoftmaxCrossEntropy(), LOGITS, ONE_HOT),
    ("sce-soft", L.SoftmaxCrossEntropy(), LOGITS, SOFT),
    ("sce-smooth", L.SoftmaxCrossEntropy(label_smoothing=0.2), LOGITS, LABELS),
    ("sce-weight", L.SoftmaxCrossEntropy(weight=[1.0, 2.0, 0.5, 3.0]), LOGITS, LABELS),
    ("sce-weight-smooth", L.SoftmaxCrossEntropy(0.1, weight=[1.0, 2.0, 0.5, 3.0]), LOGITS, ONE_HOT),
    ("crossentropy-alias", L.CrossEntropyLoss(), LOGITS, ONE_HOT),
    ("nll", L.NLLLoss(), LOGITS - np.log(np.exp(LOGITS).sum(1, keepdims=True)), LABELS),
    ("nll-weight", L.NLLLoss(weight=[1, 2, 3, 4]), np.log(SOFT), ONE_HOT),
    ("sigmoid-ce", L.SigmoidCrossEntropy(), LOGITS, BINARY),
    ("mse", L.MSE(), REG_PRED, REG_TARGET),
    ("mae", L.MAE(), REG_PRED, REG_TARGET),
    ("huber", L.Huber(1.0), REG_PRED, REG_TARGET),
    ("kl-logits", L.KLDivergence(), LOGITS, SOFT_ZEROS),
    ("kl-logprobs", L.KLDivergence(from_logits=False), np.log(SOFT), SOFT_ZEROS),
    ("kl-log-target", L.KLDivergence(log_target=True), LOGITS, np.log(SOFT)),
    ("kl-3d", L.KLDivergence(), RNG.normal(size=(2, 3, 4)), RNG.dirichlet(np.ones(4), size=(2, 3))),
]


def test_every_public_loss_has_a_gradient_case():
    public = {name for name, obj in vars(L).items()
              if isinstance(obj, type) and issubclass(obj, L.BaseLoss) and obj is not L.BaseLoss}
    assert {"SoftmaxCrossEntropy", "MSE", "Huber"} <= public  # the scan sees the losses
    public -= {"MultiLoss"}  # takes lists of predictions: test_multi_loss_gradient_is_each_weighted_part
    assert public - {type(case[1]).__name__ for case in LOSS_CASES} == set(), "losses without a gradient check"


def test_multi_loss_gradient_is_each_weighted_part():
    multi = L.MultiLoss([L.SoftmaxCrossEntropy(), "MSE"], weights=[0.5, 2.0])
    preds, targets = [LOGITS.copy(), REG_PRED.copy()], [LABELS, REG_TARGET]
    value, grads = multi.loss_and_grad(preds, targets)
    assert value == pytest.approx(0.5 * L.SoftmaxCrossEntropy().loss(LOGITS, LABELS) + 2.0 * L.MSE().loss(
        REG_PRED, REG_TARGET), rel=1e-12)
    assert multi.last_parts == [pytest.approx(L.SoftmaxCrossEntropy().loss(LOGITS, LABELS)),
                                pytest.approx(L.MSE().loss(REG_PRED, REG_TARGET))]
    eps = 1e-6
    for k in range(2):
        numeric = np.zeros_like(preds[k])
        for i in np.ndindex(preds[k].shape):
            old = preds[k][i]
            preds[k][i] = old + eps
            up = multi.loss(preds, targets)
            preds[k][i] = old - eps
            down = multi.loss(preds, targets)
            preds[k][i] = old
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[k], numeric, rtol=1e-5, atol=1e-8)
    assert grads[0].dtype == np.float64
    again = L.get({"class": "MultiLoss", **multi.get_config()})
    assert again.weights == [0.5, 2.0] and [type(p).__name__ for p in again.losses] == ["SoftmaxCrossEntropy", "MSE"]
    with pytest.raises(ShapeError, match="expected predictions as a list of 2"):
        multi.loss(LOGITS, targets)
    with pytest.raises(ValueError, match="non-negative"):
        L.MultiLoss(["MSE"], weights=[-1.0])


@pytest.mark.parametrize("name,loss,pred,target", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_gradient_matches_finite_differences(name, loss, pred, target):
    gradcheck_loss(loss, pred, target)


@pytest.mark.parametrize("name,loss,pred,target", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_float32_in_float32_out(name, loss, pred, target):
    value, grad = loss.loss_and_grad(pred.astype(np.float32), target)
    assert isinstance(value, float) and math.isfinite(value)
    assert grad.dtype == np.float32 and grad.shape == pred.shape


def test_softmax_cross_entropy_gradient_is_softmax_minus_target():
    # the seed's gradient forgot the softmax: make sure ours is (p - t) / N
    _, grad = L.SoftmaxCrossEntropy().loss_and_grad(LOGITS, ONE_HOT)
    p = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    np.testing.assert_allclose(grad, (p - ONE_HOT) / 5, rtol=1e-12)


def test_one_hot_and_labels_agree_with_weights_and_smoothing():
    loss = L.SoftmaxCrossEntropy(0.1, weight=[1.0, 2.0, 0.5, 3.0])
    a, ga = loss.loss_and_grad(LOGITS, LABELS)
    b, gb = loss.loss_and_grad(LOGITS, ONE_HOT)
    assert a == pytest.approx(b, rel=1e-12)
    np.testing.assert_allclose(ga, gb, rtol=1e-12)


def test_sigmoid_cross_entropy_finite_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0]], dtype=np.float32)
    value, grad = L.SigmoidCrossEntropy().loss_and_grad(logits, np.array([[0.0, 1.0, 1.0]]))
    assert math.isfinite(value) and np.isfinite(grad).all()
    assert value == pytest.approx((1e4 + 1e4 + math.log(2)) / 3, rel=1e-6)


def test_softmax_cross_entropy_finite_for_huge_logits():
    logits = np.array([[1e4, -1e4], [0.0, 5e3]], dtype=np.float32)
    value, grad = L.SoftmaxCrossEntropy().loss_and_grad(logits, np.array([1, 0]))
    assert math.isfinite(value) and np.isfinite(grad).all()


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(ShapeError, match=r"predictions \(6, 3\) and targets \(6, 2\)"):
        L.MSE().loss(REG_PRED, np.zeros((6, 2)))
    with pytest.raises(ShapeError, match=r"shape \(5, 3\)"):
        L.SoftmaxCrossEntropy().loss(LOGITS, np.zeros((5, 3)))


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError, match=r"\[0, 4\), got range \[0, 7\]"):
        L.SoftmaxCrossEntropy().loss(LOGITS, np.array([0, 1, 2, 3, 7]))
    with pytest.raises(ValueError, match="range"):
        L.SoftmaxCrossEntropy().loss(LOGITS, np.array([0, -1, 2, 3, 1]))


def test_bad_hyperparameters_are_rejected():
    with pytest.raises(ValueError, match="label_smoothing"):
        L.SoftmaxCrossEntropy(label_smoothing=1.0)
    with pytest.raises(ValueError, match="weight"):
        L.SoftmaxCrossEntropy(weight=[1.0, -1.0])
    with pytest.raises(ValueError, match="delta"):
        L.Huber(0.0)


def test_get_resolves_names_and_configs():
    assert isinstance(L.get("MSE"), L.MSE)
    loss = L.get({"class": "SoftmaxCrossEntropy", **L.SoftmaxCrossEntropy(0.1, [1, 2]).get_config()})
    assert loss.label_smoothing == 0.1 and list(loss.weight) == [1.0, 2.0]
    with pytest.raises(ValueError, match="unknown loss"):
        L.get("Nope")


# ----------------------------------------------------------------- PyTorch oracle
def _torch_loss(name):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    t = torch.tensor
    w = t([1.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    kl = torch.nn.KLDivLoss(reduction="batchmean")
    return {
        "sce-labels": lambda z: F.cross_entropy(z, t(LABELS)),
        "sce-onehot": lambda z: F.cross_entropy(z, t(ONE_HOT)),
        "sce-soft": lambda z: F.cross_entropy(z, t(SOFT)),
        "sce-smooth": lambda z: F.cross_entropy(z, t(LABELS), label_smoothing=0.2),
        "sce-weight": lambda z: F.cross_entropy(z, t(LABELS), weight=w),
        "sce-weight-smooth": lambda z: F.cross_entropy(z, t(LABELS), weight=w, label_smoothing=0.1),
        "crossentropy-alias": lambda z: F.cross_entropy(z, t(ONE_HOT)),
        "nll": lambda z: F.nll_loss(z, t(LABELS)),
        "nll-weight": lambda z: F.nll_loss(z, t(ONE_HOT.argmax(1)), weight=t([1.0, 2, 3, 4], dtype=torch.float64)),
        "sigmoid-ce": lambda z: F.binary_cross_entropy_with_logits(z, t(BINARY)),
        "mse": lambda z: F.mse_loss(z, t(REG_TARGET)),
        "mae": lambda z: F.l1_loss(z, t(REG_TARGET)),
        "huber": lambda z: F.huber_loss(z, t(REG_TARGET), delta=1.0),
        "kl-logits": lambda z: kl(F.log_softmax(z, dim=-1), t(SOFT_ZEROS)),
        "kl-logprobs": lambda z: kl(z, t(SOFT_ZEROS)),
        "kl-log-target": lambda z: torch.nn.KLDivLoss(reduction="batchmean", log_target=True)(
            F.log_softmax(z, dim=-1), t(np.log(SOFT))),
        "kl-3d": lambda z: kl(F.log_softmax(z, dim=-1), t(LOSS_CASES[-1][3])),
    }[name]


@pytest.mark.parametrize("name,loss,pred,target", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_value_and_gradient_match_pytorch(name, loss, pred, target):
    torch = pytest.importorskip("torch")
    z = torch.tensor(pred, requires_grad=True)
    expected = _torch_loss(name)(z)
    expected.backward()
    value, grad = loss.loss_and_grad(pred, target)
    assert value == pytest.approx(expected.item(), rel=1e-10)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_kl_divergence_is_zero_for_equal_distributions_and_refuses_bad_targets():
    value, grad = L.KLDivergence(from_logits=False).loss_and_grad(np.log(SOFT), SOFT)
    assert value == pytest.approx(0.0, abs=1e-15)
    value, grad = L.KLDivergence().loss_and_grad(np.log(SOFT) + 3.0, SOFT)  # logits: shift-invariant
    assert value == pytest.approx(0.0, abs=1e-12) and np.abs(grad).max() < 1e-12
    with pytest.raises(ValueError, match=r"KLDivergence: targets must be probabilities \(>= 0\); pass log_target"):
        L.KLDivergence().loss(LOGITS, -SOFT)
    with pytest.raises(ShapeError, match="predictions and targets must have the same shape"):
        L.KLDivergence().loss(LOGITS, SOFT[:3])
    with pytest.raises(TypeError, match="from_logits must be True or False, got 'yes'"):
        L.KLDivergence(from_logits="yes")
    assert isinstance(L.get({"class": "KLDivergence", "from_logits": False}), L.KLDivergence)


@pytest.mark.parametrize("name,loss,pred,target", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_batch_weights_combine_batch_means_into_the_full_mean(name, loss, pred, target):
    # split in two batches: sum_b loss_b * weight_b / sum_b weight_b == the loss of the whole
    cut = 1
    parts = [(pred[:cut], target[:cut]), (pred[cut:], target[cut:])]
    weights = [loss.batch_weight(p, t) for p, t in parts]
    combined = sum(loss.loss(p, t) * w for (p, t), w in zip(parts, weights, strict=True)) / sum(weights)
    assert combined == pytest.approx(loss.loss(pred, target), rel=1e-12)


def test_class_weighted_batch_weight_is_the_total_weight():
    sce = L.SoftmaxCrossEntropy(weight=[1.0, 2.0, 0.5, 3.0])
    assert sce.batch_weight(LOGITS, LABELS) == pytest.approx(1 + 3 + 2 + 2 + 0.5)
    assert sce.batch_weight(LOGITS, ONE_HOT) == pytest.approx(8.5)
    assert L.SoftmaxCrossEntropy().batch_weight(LOGITS, SOFT * 0.5) == pytest.approx(2.5)
    assert L.NLLLoss(weight=[1, 2, 3, 4]).batch_weight(LOGITS, LABELS) == pytest.approx(1 + 4 + 2 + 2 + 3)
    assert L.MSE().batch_weight(REG_PRED, REG_TARGET) == 6.0


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(L, raise_on_error=False)
    assert result.attempted >= 1 and result.failed == 0


def test_softmax_cross_entropy_on_sequences_is_the_mean_over_positions():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(2, 3, 4)), rng.integers(0, 4, size=(2, 3))
    sce = L.SoftmaxCrossEntropy()
    value, grad = sce.loss_and_grad(logits, labels)
    flat_value, flat_grad = sce.loss_and_grad(logits.reshape(6, 4), labels.reshape(6))
    assert value == pytest.approx(flat_value, rel=1e-12) and grad.shape == (2, 3, 4)
    np.testing.assert_allclose(grad.reshape(6, 4), flat_grad)
    assert sce.batch_weight(logits, labels) == 6.0
    gradcheck_loss(L.SoftmaxCrossEntropy(label_smoothing=0.1), logits, labels)
    with pytest.raises(ShapeError, match=r"targets must be labels of shape \(2, 3\) or rows of shape \(2, 3, 4\)"):
        sce.loss(logits, labels[:, :2])
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits).permute(0, 2, 1), torch.tensor(labels))
    assert value == pytest.approx(float(expected), rel=1e-12)
