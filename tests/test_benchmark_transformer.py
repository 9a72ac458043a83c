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
        for name in ("nnframe", "pytorch"):
            calls[kind][name]()
    loss_nn, loss_torch = calls["train"]["nnframe"](), calls["train"]["pytorch"]()
    assert loss_nn == pytest.approx(loss_torch, rel=1e-4)  # the same Adam steps on the same batch
