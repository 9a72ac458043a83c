"""Metrics: batch functions against brute force, stateful trackers against whole-set values."""

from __future__ import annotations

import numpy as np
import pytest

from nnframe import metrics
from nnframe.errors import ShapeError


def _scores(n: int = 50, k: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, k)).astype(np.float32), rng.integers(0, k, size=n)


def test_accuracy_counts_argmax_hits_for_labels_and_one_hot():
    preds = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], dtype=np.float32)
    labels = np.array([1, 0, 0, 0])
    assert metrics.accuracy(preds, labels) == 0.75
    assert metrics.accuracy(preds, np.eye(2, dtype=np.float32)[labels]) == 0.75


def test_top_k_accuracy_matches_brute_force_and_reduces_to_accuracy():
    preds, labels = _scores()
    for k in (1, 2, 3, 6):
        ranks = np.argsort(-preds, axis=1)[:, :k]  # a full sort as the oracle
        expected = float(np.mean([labels[i] in ranks[i] for i in range(len(labels))]))
        assert metrics.top_k_accuracy(preds, labels, k) == pytest.approx(expected)
    assert metrics.top_k_accuracy(preds, labels, 1) == metrics.accuracy(preds, labels)
    assert metrics.top_k_accuracy(preds, labels, 7) == 1.0
    assert metrics.top_k_accuracy(preds, np.eye(7)[labels], 3) == metrics.top_k_accuracy(preds, labels, 3)


def test_binary_accuracy_thresholds_logits_and_probabilities():
    logits = np.array([[-2.0], [0.5], [3.0], [-0.1]], dtype=np.float32)
    targets = np.array([0, 1, 0, 0])
    assert metrics.binary_accuracy(logits, targets, threshold=0.0) == 0.75
    probs = 1 / (1 + np.exp(-logits))
    assert metrics.binary_accuracy(probs, targets[:, None], threshold=0.5) == 0.75


def test_stateful_metric_weights_batches_by_size():
    preds, labels = _scores(n=53)
    acc = metrics.Accuracy()
    top3 = metrics.TopKAccuracy(3)
    for start in range(0, 53, 10):  # uneven last batch of 3
        acc.update(preds[start:start + 10], labels[start:start + 10])
        top3.update(preds[start:start + 10], labels[start:start + 10])
    assert acc.result() == pytest.approx(metrics.accuracy(preds, labels))
    assert top3.result() == pytest.approx(metrics.top_k_accuracy(preds, labels, 3))
    assert top3.name == "top3_accuracy"
    acc.reset()
    assert np.isnan(acc.result())


def test_mean_tracks_given_values_with_weights():
    mean = metrics.Mean("loss")
    mean.update_value(1.0, 3)
    mean.update_value(3.0, 1)
    assert mean.result() == 1.5
    with pytest.raises(TypeError, match="update_value"):
        mean.update(np.zeros((2, 2)), np.zeros(2))


def test_get_resolves_names_and_rejects_unknown():
    assert isinstance(metrics.get("accuracy"), metrics.Accuracy)
    assert isinstance(metrics.get("acc", binary=True), metrics.BinaryAccuracy)
    assert metrics.get("top5").k == 5
    assert metrics.get("top2_accuracy").k == 2
    assert metrics.get("top_k_accuracy").k == 5
    custom = metrics.TopKAccuracy(4, name="t4")
    assert metrics.get(custom) is custom
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        metrics.get("f1")
    with pytest.raises(ValueError, match="positive integer"):
        metrics.TopKAccuracy(0)


def test_shape_errors_name_what_was_received():
    with pytest.raises(ShapeError, match=r"predictions must have shape \(N, K\)"):
        metrics.accuracy(np.zeros(4), np.zeros(4, dtype=int))
    with pytest.raises(ShapeError, match="expected 4 integer labels"):
        metrics.accuracy(np.zeros((4, 3)), np.zeros(5, dtype=int))
