"""Losses: the value and its gradient with respect to the predictions.

Every loss has the seed's ``loss(predicted, actual)`` and ``grad(predicted, actual)``,
plus ``loss_and_grad`` which computes both in one pass (what ``Model`` calls).
Values are Python floats; gradients have the predictions' shape and dtype.
Element-wise losses (MSE, MAE, Huber, SigmoidCrossEntropy) average over every
element, as PyTorch's and Keras' do; class losses average over the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnframe import backend
from nnframe import functional as F
from nnframe.backend import Array
from nnframe.errors import ShapeError


class BaseLoss:
    """Base class: subclasses implement :meth:`loss_and_grad`."""

    def loss(self, predicted: Array, actual: Array) -> float:
        """The mean loss of ``predicted`` against ``actual``."""
        return self.loss_and_grad(predicted, actual)[0]

    def batch_weight(self, predicted: Array, actual: Array) -> float:
        """The denominator of this batch's mean: its weight in a mean over several batches.

        ``sum_b loss_b * weight_b / sum_b weight_b`` over batches equals the loss of
        all of them at once (``Model.evaluate`` and ``fit``'s epoch loss combine batches
        this way). The default is the batch size ``N``, right for losses that average
        over samples (or over elements, with a fixed number per sample); weighted class
        losses return their total weight.
        """
        return float(predicted.shape[0])

    def grad(self, predicted: Array, actual: Array) -> Array:
        """The gradient of :meth:`loss` with respect to ``predicted``."""
        return self.loss_and_grad(predicted, actual)[1]

    def loss_and_grad(self, predicted: Array, actual: Array) -> tuple[float, Array]:
        """Both the loss value and its gradient, sharing the work."""
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _same_shape(owner: str, predicted: Array, actual: Array) -> Array:
    """Return ``actual`` as an array of ``predicted``'s dtype, checking the shapes match."""
    actual = backend.xp().asarray(actual)
    if actual.shape != predicted.shape:
        raise ShapeError(
            f"{owner}: predictions and targets must have the same shape, got predictions "
            f"{tuple(predicted.shape)} and targets {tuple(actual.shape)}"
        )
    return actual.astype(predicted.dtype, copy=False)


def _class_targets(owner: str, predicted: Array, actual: Array) -> tuple[Array | None, Array | None]:
    """Split targets into integer labels ``(N,)`` or a distribution ``(N, K)``.

    Returns ``(labels, None)`` or ``(None, distribution)``.
    """
    xp = backend.xp()
    actual = xp.asarray(actual)
    if predicted.ndim != 2:
        raise ShapeError(f"{owner}: predictions must have shape (N, K), got {tuple(predicted.shape)}")
    n, k = predicted.shape
    if actual.ndim == 1 and actual.dtype.kind in "iu":
        if actual.shape[0] != n:
            raise ShapeError(f"{owner}: expected {n} labels for predictions {(n, k)}, got {actual.shape[0]}")
        if actual.size and (int(actual.min()) < 0 or int(actual.max()) >= k):
            raise ValueError(
                f"{owner}: labels must lie in [0, {k}), got range [{int(actual.min())}, {int(actual.max())}]"
            )
        return actual, None
    if actual.shape != predicted.shape:
        raise ShapeError(
            f"{owner}: targets must be integer labels of shape ({n},) or one-hot/probability rows "
            f"of shape {(n, k)}, got shape {tuple(actual.shape)} dtype {actual.dtype}"
        )
    return None, actual.astype(predicted.dtype, copy=False)


class SoftmaxCrossEntropy(BaseLoss):
    """Cross-entropy of ``softmax(logits)`` against class targets.

    With target rows ``t`` (one-hot from integer labels, or given as one-hot or
    probabilities), label smoothing ``eps`` (``t' = (1 - eps) t + eps / K``) and
    class weights ``w``::

        loss = sum_i sum_k w_k t'_ik (-log p_ik) / sum_i sum_k w_k t_ik
        dloss/dz_ik = (p_ik * sum_j w_j t'_ij - w_k t'_ik) / sum_i sum_k w_k t_ik

    The denominator is the targets' total weight, ``sum_i sum_k w_k t_ik`` (without
    weights, ``w_k = 1``: the sum of all target entries, which is ``N`` for labels,
    one-hot rows and probability rows that sum to 1; a soft row summing to ``s``
    counts ``s``, an all-zero row counts 0 in the numerator and the denominator).
    For integer labels this is PyTorch's ``cross_entropy`` (weighted mean), and one-hot
    rows give the same value as labels. PyTorch's ``cross_entropy`` with probability
    targets divides by ``N`` instead (with or without weights), which differs only
    for rows that do not sum to 1 or, with weights, for soft rows.

    >>> import numpy as np
    >>> logits = np.zeros((2, 2))                      # p = 0.5 everywhere: -log p = log 2
    >>> targets = np.array([[1.0, 0.0], [0.0, 0.0]])  # the second row is all zeros
    >>> round(SoftmaxCrossEntropy().loss(logits, targets), 4)   # log 2 / 1, not log 2 / 2
    0.6931

    Predictions ``(N, T, K)`` (a sequence model's logits, classes last) with labels
    ``(N, T)`` count every position as one row: the mean over all ``N * T`` positions.

    Args:
        label_smoothing: ``eps`` in ``[0, 1)``.
        weight: per-class weights, shape ``(K,)``, non-negative.
    """

    def __init__(self, label_smoothing: float = 0.0, weight: Sequence[float] | Array | None = None) -> None:
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"{type(self).__name__}: label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        self.weight = None
        if weight is not None:
            w = backend.to_host(backend.xp().asarray(weight, dtype=float))
            if w.ndim != 1 or (w < 0).any():
                raise ValueError(f"{type(self).__name__}: weight must be a 1-D non-negative array, got {w}")
            self.weight = w

    def loss_and_grad(self, predicted: Array, actual: Array) -> tuple[float, Array]:
        if predicted.ndim > 2:  # sequences (N, T, K): every position is one row
            rows, targets = _sequence_rows(type(self).__name__, predicted, actual)
            value, grad = self.loss_and_grad(rows, targets)
            return value, grad.reshape(predicted.shape)
        xp = backend.xp()
        owner = type(self).__name__
        labels, dist = _class_targets(owner, predicted, actual)
        n, k = predicted.shape
        dtype = predicted.dtype
        log_p = F.log_softmax(predicted, axis=1)  # (N, K)
        grad = xp.exp(log_p)  # p, becomes the gradient in place
        if self.weight is None and self.label_smoothing == 0.0 and labels is not None:
            rows = xp.arange(n)
            value = -float(log_p[rows, labels].sum()) / n
            grad[rows, labels] -= 1.0
            grad /= dtype.type(n)
            return value, grad
        if dist is None:
            dist = F.one_hot(labels, k, dtype=dtype)
        weight = self._weight_for(k, dtype)
        smoothed = dist * (1.0 - self.label_smoothing) + self.label_smoothing / k if self.label_smoothing else dist
        a = smoothed if weight is None else smoothed * weight  # a_ik = w_k t'_ik
        denom = float(dist.sum()) if weight is None else float((dist * weight).sum())
        if denom <= 0.0:
            raise ValueError(f"{owner}: the targets' total weight is {denom}; it must be > 0")
        value = -float((a * log_p).sum()) / denom
        grad *= a.sum(axis=1, keepdims=True)
        grad -= a
        grad /= dtype.type(denom)
        return value, grad

    def batch_weight(self, predicted: Array, actual: Array) -> float:
        """The targets' total weight ``sum_i sum_k w_k t_ik``, this loss's denominator."""
        if predicted.ndim > 2:
            predicted, actual = _sequence_rows(type(self).__name__, predicted, actual)
        return _total_weight(type(self).__name__, predicted, actual, self.weight)

    def _weight_for(self, k: int, dtype) -> Array | None:
        if self.weight is None:
            return None
        if self.weight.shape[0] != k:
            raise ShapeError(
                f"{type(self).__name__}: weight has {self.weight.shape[0]} classes, predictions have {k}"
            )
        return backend.xp().asarray(self.weight, dtype=dtype)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"label_smoothing": self.label_smoothing}
        if self.weight is not None:
            config["weight"] = [float(w) for w in self.weight]
        return config


class CrossEntropyLoss(SoftmaxCrossEntropy):
    """The seed's name for :class:`SoftmaxCrossEntropy` (same behaviour, correct gradient)."""


class NLLLoss(BaseLoss):
    """Negative log-likelihood of log-probabilities (e.g. from a log-softmax).

    ``loss = -sum_i w_{y_i} logp_{i, y_i} / sum_i w_{y_i}``; targets are integer
    labels ``(N,)`` or one-hot rows ``(N, K)``.
    """

    def __init__(self, weight: Sequence[float] | Array | None = None) -> None:
        self.weight = None if weight is None else backend.to_host(backend.xp().asarray(weight, dtype=float))

    def loss_and_grad(self, predicted: Array, actual: Array) -> tuple[float, Array]:
        xp = backend.xp()
        labels, dist = _class_targets(type(self).__name__, predicted, actual)
        n, k = predicted.shape
        if dist is None:
            dist = F.one_hot(labels, k, dtype=predicted.dtype)
        a = dist if self.weight is None else dist * xp.asarray(self.weight, dtype=predicted.dtype)
        denom = float(a.sum())
        if denom <= 0.0:
            raise ValueError(f"NLLLoss: the targets' total weight is {denom}; it must be > 0")
        value = -float((a * predicted).sum()) / denom
        return value, a * predicted.dtype.type(-1.0 / denom)

    def batch_weight(self, predicted: Array, actual: Array) -> float:
        """The targets' total weight ``sum_i w_{y_i}``, this loss's denominator."""
        return _total_weight("NLLLoss", predicted, actual, self.weight)

    def get_config(self) -> dict[str, Any]:
        return {} if self.weight is None else {"weight": [float(w) for w in self.weight]}


def _sequence_rows(owner: str, predicted: Array, actual: Array) -> tuple[Array, Array]:
    """Predictions ``(N, ..., K)`` as rows ``(M, K)``, with labels ``(N, ...)`` or targets
    ``(N, ..., K)`` as ``(M,)`` / ``(M, K)`` (a language model's logits ``(N, T, V)``)."""
    actual = backend.xp().asarray(actual)
    k = predicted.shape[-1]
    if actual.shape == predicted.shape[:-1]:
        return predicted.reshape(-1, k), actual.reshape(-1)
    if actual.shape == predicted.shape:
        return predicted.reshape(-1, k), actual.reshape(-1, k)
    raise ShapeError(f"{owner}: for predictions {tuple(predicted.shape)} the targets must be labels of shape "
                     f"{tuple(predicted.shape[:-1])} or rows of shape {tuple(predicted.shape)}, got "
                     f"{tuple(actual.shape)}")


def _total_weight(owner: str, predicted: Array, actual: Array, weight: Array | None) -> float:
    """``sum_i sum_k w_k t_ik`` for labels or target rows (``w = 1`` without weights)."""
    xp = backend.xp()
    labels, dist = _class_targets(owner, predicted, actual)
    if weight is not None and weight.shape[0] != predicted.shape[1]:
        raise ShapeError(f"{owner}: weight has {weight.shape[0]} classes, predictions have {predicted.shape[1]}")
    if labels is not None:
        return float(labels.shape[0]) if weight is None else float(xp.asarray(weight)[labels].sum())
    if weight is None:
        return float(dist.sum())
    return float((dist * xp.asarray(weight, dtype=dist.dtype)).sum())


class SigmoidCrossEntropy(BaseLoss):
    """Binary cross-entropy of ``sigmoid(logits)`` against targets in ``[0, 1]``.

    ``loss = mean(softplus(z) - t z)``, finite for every finite logit;
    ``dloss/dz = (sigmoid(z) - t) / size``.
    """

    def loss_and_grad(self, predicted: Array, actual: Array) -> tuple[float, Array]:
        t = _same_shape(type(self).__name__, predicted, actual)
        size = predicted.size
        value = float((F.softplus(predicted) - t * predicted).sum()) / size
        grad = (F.sigmoid(predicted) - t) / predicted.dtype.type(size)
        return value, grad


class MSE(BaseLoss):
    """Mean squared error: ``mean((y - t)^2)``."""

    def loss_and_grad(self, predicted: Array, actual: Array) -> tuple[float, Array]:
        diff = predicted - _same_shape("MSE", predicted, actual)
        return float((diff * diff).sum()) / diff.size, diff * predicted.dtype.type(2.0 / diff.size)


class MAE(BaseLoss):
    """Mean absolute error: ``mean(|y - t|)`` (subgradient 0 where ``y == t``)."""

    def loss_and_grad(self, predicted: Array, actual: Array) -> tuple[float, Array]:
        xp = backend.xp()
        diff = predicted - _same_shape("MAE", predicted, actual)
        return float(xp.abs(diff).sum()) / diff.size, xp.sign(diff) * predicted.dtype.type(1.0 / diff.size)


class Huber(BaseLoss):
    """Huber loss: ``0.5 d^2`` for ``|d| <= delta``, else ``delta (|d| - 0.5 delta)``; mean."""

    def __init__(self, delta: float = 1.0) -> None:
        if not float(delta) > 0:
            raise ValueError(f"Huber: delta must be > 0, got {delta}")
        self.delta = float(delta)

    def loss_and_grad(self, predicted: Array, actual: Array) -> tuple[float, Array]:
        xp = backend.xp()
        diff = predicted - _same_shape("Huber", predicted, actual)
        small = xp.abs(diff) <= self.delta
        values = xp.where(small, 0.5 * diff * diff, self.delta * (xp.abs(diff) - 0.5 * self.delta))
        grad = xp.where(small, diff, self.delta * xp.sign(diff)) * predicted.dtype.type(1.0 / diff.size)
        return float(values.sum()) / diff.size, grad

    def get_config(self) -> dict[str, Any]:
        return {"delta": self.delta}


class KLDivergence(BaseLoss):
    """Kullback-Leibler divergence ``KL(t || q)`` of predicted distributions from target ones.

    ``loss = sum t (log t - log q) / N`` (PyTorch's ``KLDivLoss(reduction="batchmean")``,
    the mean over the batch of each sample's divergence), with ``0 log 0 = 0``. The
    distributions lie along the last axis.

    Args:
        from_logits: predictions are logits and ``log q = log_softmax(predictions)``
            over the last axis (the default, as a net's output is logits); with
            ``False`` they are log-probabilities ``log q`` already (PyTorch's
            ``KLDivLoss`` input, e.g. from a ``log_softmax``).
        log_target: targets are log-probabilities ``log t`` (PyTorch's ``log_target``).

    Shapes:
        predictions and targets ``(N, ..., K)``, the same shape.

    Gradient: ``-t / N`` with respect to ``log q``; ``(q sum_k t_k - t) / N`` with
    respect to logits.
    """

    def __init__(self, from_logits: bool = True, log_target: bool = False) -> None:
        for name, value in (("from_logits", from_logits), ("log_target", log_target)):
            if not isinstance(value, bool):
                raise TypeError(f"KLDivergence: {name} must be True or False, got {value!r}")
        self.from_logits, self.log_target = from_logits, log_target

    def loss_and_grad(self, predicted: Array, actual: Array) -> tuple[float, Array]:
        xp = backend.xp()
        if predicted.ndim < 1 or predicted.shape[0] == 0:
            raise ShapeError(f"KLDivergence: predictions must have shape (N, ..., K), got {tuple(predicted.shape)}")
        t = _same_shape("KLDivergence", predicted, actual)
        n = predicted.shape[0]
        log_q = F.log_softmax(predicted, axis=-1) if self.from_logits else predicted
        if self.log_target:
            log_t, t = t, xp.exp(t)
            pointwise = t * (log_t - log_q)
        else:
            if (t < 0).any():
                raise ValueError("KLDivergence: targets must be probabilities (>= 0); pass log_target=True "
                                 "for log-probabilities")
            safe = xp.where(t > 0, t, predicted.dtype.type(1.0))
            pointwise = xp.where(t > 0, t * (xp.log(safe) - log_q), predicted.dtype.type(0.0))
        value = float(pointwise.sum()) / n
        scale = predicted.dtype.type(1.0 / n)
        if self.from_logits:
            grad = xp.exp(log_q) * t.sum(axis=-1, keepdims=True)
            grad -= t
            grad *= scale
        else:
            grad = t * -scale
        return value, grad

    def get_config(self) -> dict[str, Any]:
        return {"from_logits": self.from_logits, "log_target": self.log_target}


class MultiLoss(BaseLoss):
    """One loss per output of a net with several outputs, weighted and summed:
    ``L = sum_k w_k L_k(pred_k, y_k)`` (Keras's ``loss=[...]`` with ``loss_weights``).

    ``loss_and_grad`` takes and returns lists, one entry per output; the gradient of
    output ``k`` is ``w_k dL_k/dpred_k``. The per-output values of the last call are kept
    in :attr:`last_parts` (``Model`` logs them as ``out<k>_loss``).

    Args:
        losses: a loss (instance, class name or config) per output.
        weights: a non-negative weight per output (default all 1).
    """

    def __init__(self, losses: list[Any], weights: list[float] | None = None) -> None:
        if not isinstance(losses, (list, tuple)) or not losses:
            raise ValueError(f"MultiLoss: losses must be a non-empty list (one per output), got {losses!r}")
        self.losses = [get(spec) for spec in losses]
        if any(isinstance(part, MultiLoss) for part in self.losses):
            raise ValueError("MultiLoss: a loss per output cannot itself be a MultiLoss")
        weights = [1.0] * len(self.losses) if weights is None else list(weights)
        if len(weights) != len(self.losses):
            raise ValueError(f"MultiLoss: {len(self.losses)} losses but {len(weights)} weights")
        for weight in weights:
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
                raise ValueError(f"MultiLoss: weights must be non-negative numbers, got {weights!r}")
        self.weights = [float(w) for w in weights]
        self.last_parts: list[float] = []

    def _check(self, predicted: Any, actual: Any) -> None:
        for what, value in (("predictions", predicted), ("targets", actual)):
            if not isinstance(value, (list, tuple)) or len(value) != len(self.losses):
                got = f"{len(value)} items" if isinstance(value, (list, tuple)) else type(value).__name__
                raise ShapeError(f"MultiLoss: expected {what} as a list of {len(self.losses)} (one per output), "
                                 f"got {got}")

    def loss_and_grad(self, predicted: Any, actual: Any) -> tuple[float, list[Array]]:
        self._check(predicted, actual)
        total, grads, parts = 0.0, [], []
        for loss, weight, pred, target in zip(self.losses, self.weights, predicted, actual, strict=True):
            value, grad = loss.loss_and_grad(pred, target)
            parts.append(value)
            total += weight * value
            grads.append(grad * weight if weight != 1.0 else grad)
        self.last_parts = parts
        return total, grads

    def batch_weight(self, predicted: Any, actual: Any) -> float:
        """The batch size (each output's loss is a mean over the batch)."""
        return float(predicted[0].shape[0])

    def get_config(self) -> dict[str, Any]:
        return {"losses": [{"class": type(p).__name__, **p.get_config()} for p in self.losses],
                "weights": self.weights}


_REGISTRY = {
    cls.__name__: cls
    for cls in (SoftmaxCrossEntropy, CrossEntropyLoss, NLLLoss, SigmoidCrossEntropy, MSE, MAE, Huber,
                KLDivergence, MultiLoss)
}


def get(spec: str | BaseLoss | dict[str, Any]) -> BaseLoss:
    """Resolve a loss from an instance, a class name or ``{"class": ..., **config}``."""
    if isinstance(spec, BaseLoss):
        return spec
    config = {"class": spec} if isinstance(spec, str) else dict(spec)
    name = config.pop("class", None)
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(_REGISTRY)}")
    return _REGISTRY[name](**config)
