"""Metrics: functions of (predictions, targets) and small stateful trackers.

The functions return Python floats for one batch; the :class:`Metric` classes
accumulate over many batches (``update`` / ``result`` / ``reset``), weighting each
batch by its number of samples, so an epoch's accuracy is exactly the fraction of
all its samples that were right, whatever the batch sizes.

Targets are integer labels ``(N,)`` or one-hot / probability rows ``(N, K)``
(reduced to labels with ``argmax``). Predictions are scores ``(N, K)`` (logits or
probabilities: the ranking is what counts), or ``(N,)`` / ``(N, 1)`` for binary
outputs compared with a threshold.
"""

from __future__ import annotations

import math
from typing import Any

from nnframe import backend
from nnframe.backend import Array
from nnframe.errors import ShapeError


def _labels(targets: Array, n: int, k: int | None, owner: str) -> Array:
    """Integer labels ``(N,)`` from labels or from rows ``(N, K)``."""
    xp = backend.xp()
    targets = xp.asarray(targets)
    if targets.ndim == 2 and (k is None or targets.shape[1] == k) and targets.shape[1] > 1:
        targets = xp.argmax(targets, axis=1)  # (N, K) -> (N,)
    elif targets.ndim == 2 and targets.shape[1] == 1:
        targets = targets[:, 0]  # (N, 1) -> (N,)
    if targets.ndim != 1 or targets.shape[0] != n:
        raise ShapeError(
            f"{owner}: expected {n} integer labels (N,) or rows (N, {k if k else 'K'}), got targets of "
            f"shape {tuple(targets.shape)}"
        )
    return targets


def _scores(predictions: Array, owner: str) -> Array:
    predictions = backend.xp().asarray(predictions)
    if predictions.ndim != 2:
        raise ShapeError(f"{owner}: predictions must have shape (N, K), got {tuple(predictions.shape)}")
    return predictions


def accuracy(predictions: Array, targets: Array) -> float:
    """Fraction of rows whose highest score is the target class.

    Args:
        predictions: scores ``(N, K)``.
        targets: labels ``(N,)`` or one-hot rows ``(N, K)``.
    """
    preds = _scores(predictions, "accuracy")
    n = preds.shape[0]
    if n == 0:
        return 0.0
    labels = _labels(targets, n, preds.shape[1], "accuracy")
    return float((backend.xp().argmax(preds, axis=1) == labels).mean())


def top_k_accuracy(predictions: Array, targets: Array, k: int = 5) -> float:
    """Fraction of rows whose target class is among the ``k`` highest scores.

    Ties are broken by :func:`argpartition`'s order, so with many equal scores the
    value can depend on the backend. ``k >= K`` gives 1.0.

    Args:
        predictions: scores ``(N, K)``.
        targets: labels ``(N,)`` or one-hot rows ``(N, K)``.
        k: how many top classes count as a hit (>= 1).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k_accuracy: k must be a positive integer, got {k!r}")
    xp = backend.xp()
    preds = _scores(predictions, "top_k_accuracy")
    n, num_classes = preds.shape
    if n == 0:
        return 0.0
    labels = _labels(targets, n, num_classes, "top_k_accuracy")
    if k >= num_classes:
        return 1.0
    top = xp.argpartition(-preds, k - 1, axis=1)[:, :k]  # (N, k) indices of the k largest
    return float((top == labels[:, None]).any(axis=1).mean())


def binary_accuracy(predictions: Array, targets: Array, threshold: float = 0.5) -> float:
    """Fraction of elements where ``predictions > threshold`` equals ``targets > 0.5``.

    Use ``threshold=0.0`` for logits and ``0.5`` for probabilities.

    Args:
        predictions: any shape.
        targets: 0/1 values of the same shape (or ``(N,)`` for ``(N, 1)`` predictions).
    """
    xp = backend.xp()
    preds = xp.asarray(predictions)
    targets = xp.asarray(targets)
    if targets.shape != preds.shape:
        if preds.ndim == 2 and preds.shape[1] == 1 and targets.shape == preds.shape[:1]:
            targets = targets[:, None]  # (N,) -> (N, 1)
        else:
            raise ShapeError(
                f"binary_accuracy: predictions {tuple(preds.shape)} and targets {tuple(targets.shape)} "
                "must have the same shape"
            )
    if preds.size == 0:
        return 0.0
    return float(((preds > threshold) == (targets > 0.5)).mean())


class Metric:
    """A running, sample-weighted mean of a per-batch value.

    Subclasses implement :meth:`compute` (the value for one batch); ``update``
    folds it into the mean. Args: ``name``, the key the value is logged under.
    """

    name = "metric"

    def __init__(self, name: str | None = None) -> None:
        if name is not None:
            self.name = name
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.total = 0.0
        self.count = 0

    def compute(self, predictions: Array, targets: Array) -> float:
        """The metric on one batch."""
        raise NotImplementedError

    def update(self, predictions: Array, targets: Array) -> float:
        """Add one batch; returns that batch's value."""
        value = self.compute(predictions, targets)
        self.update_value(value, int(backend.xp().asarray(predictions).shape[0]))
        return value

    def update_value(self, value: float, weight: float = 1) -> None:
        """Add a value already computed for ``weight`` samples (or a loss's batch weight,
        e.g. a class-weighted batch's total weight: :meth:`nnframe.loss.BaseLoss.batch_weight`)."""
        self.total += float(value) * weight
        self.count += weight

    def result(self) -> float:
        """The weighted mean so far (NaN before any update)."""
        return self.total / self.count if self.count else math.nan

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict."""
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, result={self.result():.6g})"


class Mean(Metric):
    """A running mean of values given to :meth:`update_value` (e.g. the loss)."""

    name = "loss"

    def compute(self, predictions: Array, targets: Array) -> float:
        raise TypeError("Mean tracks given values: call update_value(value, weight)")


class Accuracy(Metric):
    """Running :func:`accuracy`."""

    name = "accuracy"

    def compute(self, predictions: Array, targets: Array) -> float:
        return accuracy(predictions, targets)


class TopKAccuracy(Metric):
    """Running :func:`top_k_accuracy`; logged as ``top{k}_accuracy`` by default.

    Args:
        k: how many top classes count as a hit.
    """

    def __init__(self, k: int = 5, name: str | None = None) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"TopKAccuracy: k must be a positive integer, got {k!r}")
        self.k = k
        super().__init__(name or f"top{k}_accuracy")

    def compute(self, predictions: Array, targets: Array) -> float:
        return top_k_accuracy(predictions, targets, self.k)

    def get_config(self) -> dict[str, Any]:
        return {"k": self.k, "name": self.name}


class BinaryAccuracy(Metric):
    """Running :func:`binary_accuracy`; ``threshold=0.0`` for logits (the default).

    Args:
        threshold: a prediction above it counts as class 1.
    """

    name = "accuracy"

    def __init__(self, threshold: float = 0.0, name: str | None = None) -> None:
        self.threshold = float(threshold)
        super().__init__(name)

    def compute(self, predictions: Array, targets: Array) -> float:
        return binary_accuracy(predictions, targets, self.threshold)

    def get_config(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "name": self.name}


def get(spec: str | Metric, binary: bool = False) -> Metric:
    """A fresh :class:`Metric` from a name or an instance (returned as is).

    Names: ``"accuracy"`` / ``"acc"`` (binary accuracy on logits when ``binary``),
    ``"top_k_accuracy"`` (k=5), ``"top3"``, ``"top5_accuracy"``..., ``"binary_accuracy"``.

    Raises:
        ValueError: for an unknown name.
    """
    if isinstance(spec, Metric):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a metric must be a name or a Metric, got {type(spec).__name__}")
    name = spec.lower()
    if name in ("accuracy", "acc"):
        return BinaryAccuracy(0.0) if binary else Accuracy()
    if name == "binary_accuracy":
        return BinaryAccuracy(0.0, name="binary_accuracy")
    if name == "top_k_accuracy":
        return TopKAccuracy(5)
    if name.startswith("top"):
        digits = name[3:].removesuffix("_accuracy")
        if digits.isdigit() and int(digits) >= 1:
            return TopKAccuracy(int(digits))
    raise ValueError(
        f"unknown metric {spec!r}; expected 'accuracy', 'binary_accuracy', 'top_k_accuracy', "
        "'top<k>' (e.g. 'top5') or a Metric instance"
    )
