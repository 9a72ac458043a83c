"""Initializers: dtype, statistics, seeding, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import nnframe
from nnframe import initializer as I

ALL = [I.Zeros(), I.Ones(), I.Constant(0.5), I.Normal(0.0, 0.1), I.TruncatedNormal(0.0, 0.1),
       I.Uniform(-0.1, 0.1), I.XavierUniform(), I.XavierNormal(), I.HeUniform(), I.HeNormal(), I.Orthogonal()]


@pytest.mark.parametrize("init", ALL, ids=lambda i: type(i).__name__)
@pytest.mark.parametrize("dtype", [None, "float64"])
def test_shape_and_dtype(init, dtype):
    out = init((20, 30), dtype)
    assert out.shape == (20, 30)
    assert out.dtype == (np.float32 if dtype is None else np.float64)


def test_default_dtype_is_followed():
    nnframe.set_default_dtype("float64")
    assert I.HeNormal()((3, 3)).dtype == np.float64


@pytest.mark.parametrize(
    "init,std",
    [
        (I.XavierUniform(rng=0), math.sqrt(2 / (400 + 300))),
        (I.XavierNormal(rng=0), math.sqrt(2 / (400 + 300))),
        (I.HeUniform(rng=0), math.sqrt(2 / 400)),
        (I.HeNormal(rng=0), math.sqrt(2 / 400)),
        (I.Normal(0.0, 0.3, rng=0), 0.3),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, I.Initializer) else "",
)
def test_standard_deviation_follows_the_papers(init, std):
    assert init((400, 300)).std() == pytest.approx(std, rel=0.02)


def test_conv_kernel_fans_include_the_receptive_field():
    assert I.compute_fans((3, 3, 16, 32)) == (144, 288)
    assert I.compute_fans((5,)) == (5, 5)


def test_xavier_uniform_bound():
    w = I.XavierUniform(rng=1)((50, 70))
    assert np.abs(w).max() <= math.sqrt(6 / 120)


def test_truncated_normal_within_two_std():
    w = I.TruncatedNormal(1.0, 0.5, rng=0)((1000,))
    assert w.min() >= 0.0 and w.max() <= 2.0


@pytest.mark.parametrize("shape", [(8, 8), (10, 4), (4, 10), (3, 3, 2, 6)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    w = I.Orthogonal(gain=2.0, rng=0)(shape, "float64").reshape(-1, shape[-1])
    small = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    np.testing.assert_allclose(small, 4.0 * np.eye(small.shape[0]), atol=1e-10)


def test_same_seed_same_values_and_dtypes_share_values():
    a = I.HeNormal(rng=5)((4, 4))
    b = I.HeNormal(rng=5)((4, 4))
    c = I.HeNormal(rng=5)((4, 4), "float64")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c.astype(np.float32))


def test_global_seed_controls_unseeded_initializers():
    nnframe.set_seed(3)
    a = I.Normal()((5,))
    nnframe.set_seed(3)
    b = I.Normal()((5,))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "make,match",
    [(lambda: I.Normal(std=0), "std must be > 0"), (lambda: I.Uniform(1, 1), "low must be < high"),
     (lambda: I.HeNormal(gain=-1), "gain"), (lambda: I.Orthogonal()((5,)), "at least 2 dimensions")],
)
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_get_and_to_config_round_trip():
    init = I.get(I.to_config(I.Uniform(-0.2, 0.3)))
    assert isinstance(init, I.Uniform) and (init.low, init.high) == (-0.2, 0.3)
    assert isinstance(I.get("HeNormal"), I.HeNormal)
    with pytest.raises(ValueError, match="unknown initializer"):
        I.get("Glorot")
