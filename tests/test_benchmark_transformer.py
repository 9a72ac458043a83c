"""benchmarks/transformer.py: both models get equal weights and every timed call runs."""

from __future__ import annotations

import argparse

import pytest


def test_transformer_benchmark_models_agree_and_calls_run():
    pytest.importorskip("torch")
    from benchmarks import transformer

    args = argparse.Namespace(threads=1, batch=2, seq_len=5, embed_dim=8, heads=2, depth=2, vocab=7, steps=1)
    calls = transformer.build(args)
    assert transformer.check_outputs(calls["check"]) < 1e-4  # same weights, same outputs
    for kind in ("train", "inference"):
        assert set(calls[kind]) == {"nnframe", "pytorch", transformer.FLOOR}
        for name in calls[kind]:
            calls[kind][name]()
    loss_nn, loss_torch = calls["train"]["nnframe"](), calls["train"]["pytorch"]()
    assert loss_nn == pytest.approx(loss_torch, rel=1e-4)  # the same Adam steps on the same batch


def test_transformer_product_floor_counts_every_matrix_product():
    from benchmarks import transformer

    args = argparse.Namespace(batch=2, seq_len=5, embed_dim=8, heads=2, depth=3, vocab=7)
    plan = transformer.product_floor(args)
    # per block: 4 Dense products and 2 per-head ones forward; the head's Dense at the end
    assert len(plan["forward"]) == 3 * 6 + 1
    # backward: 2 per Dense and 4 per-head, less the first projection's input gradient
    assert len(plan["backward"]) == 3 * (2 * 4 + 4) + 2 - 1
    assert plan["forward"][-1].n == 7 and plan["forward"][0].m == 2 * 5
