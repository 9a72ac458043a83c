"""benchmarks/gemm_floor.py: the products a net needs, with the right shapes, transposes and results."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import gemm_floor
from benchmarks.gemm_floor import Product, Products


def test_dense_products_shapes_and_flops():
    plan = gemm_floor.dense_products(64, 8, 5)
    assert plan["forward"] == [Product(64, 8, 5)]
    assert plan["backward"] == [Product(8, 64, 5, a_t=True), Product(64, 5, 8, b_t=True)]  # x.T @ g, g @ w.T
    assert gemm_floor.dense_products(64, 8, 5, input_grad=False)["backward"] == [Product(8, 64, 5, a_t=True)]
    assert Product(64, 8, 5).flops == 2 * 64 * 8 * 5
    assert Product(4, 5, 6, batch=(2, 3)).flops == 2 * 4 * 5 * 6 * 6


def test_conv_products_are_im2col_columns():
    plan = gemm_floor.conv_products(2, 7, 6, 3, 16, kernel=3)
    assert plan["forward"] == [Product(2 * 7 * 6, 27, 16)]
    assert len(plan["backward"]) == 2


def test_attention_products_cover_forward_and_backward():
    plan = gemm_floor.attention_products(batch=2, heads=3, steps=5, head_dim=4)
    assert [p.batch for p in plan["forward"] + plan["backward"]] == [(2, 3)] * 6
    assert plan["forward"][0] == Product(5, 4, 5, (2, 3), b_t=True)  # q @ k.T: (T, d) @ (d, T)
    merged = gemm_floor.merge(plan, gemm_floor.dense_products(10, 4, 4))
    assert len(merged["forward"]) == 3 and len(merged["backward"]) == 6


@pytest.mark.parametrize("threads", [1, 2])
def test_products_compute_the_matmuls_with_transposed_operands(threads):
    products = [Product(6, 4, 5, a_t=True), Product(6, 4, 5, b_t=True), Product(3, 4, 2, batch=(2, 3), a_t=True)]
    runner = Products(products, threads=threads, seed=1)
    try:
        runner.run(2)
        for (a, b, out), p in zip(runner._operands, products, strict=True):
            assert out.shape[-2:] == (p.m, p.n) and a.shape[-2:] == (p.m, p.k) and b.shape[-2:] == (p.k, p.n)
            assert a.flags.c_contiguous != p.a_t  # a transposed operand is a view, not a copy
            np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
        assert runner.flops == sum(p.flops for p in products)
    finally:
        runner.close()


def test_bad_products_are_refused():
    with pytest.raises(ValueError, match="positive int.*m=0"):
        Product(0, 2, 2)
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        Products([Product(2, 2, 2)], threads=0)
    with pytest.raises(ValueError, match="no products"):
        Products([])
