"""Property-based checks (hypothesis) of invariants the maths guarantees."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nnframe import functional as F
from nnframe import loss as L
from nnframe import parameter

finite = st.floats(-50, 50, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 5)), elements=finite), st.floats(-100, 100))
def test_cross_entropy_is_shift_invariant_and_gradient_rows_sum_to_zero(logits, shift):
    labels = np.arange(logits.shape[0]) % logits.shape[1]
    value, grad = L.SoftmaxCrossEntropy().loss_and_grad(logits, labels)
    shifted, _ = L.SoftmaxCrossEntropy().loss_and_grad(logits + shift, labels)
    assert value >= 0
    np.testing.assert_allclose(value, shifted, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 6)), elements=st.floats(-1e4, 1e4, width=32)))
def test_softmax_and_sigmoid_stay_finite_and_in_range(x):
    p = F.softmax(x)
    s = F.sigmoid(x)
    assert p.dtype == np.float32 and s.dtype == np.float32
    assert np.isfinite(p).all() and np.isfinite(s).all()
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-5)
    assert (s >= 0).all() and (s <= 1).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=5))
def test_param_buffer_views_tile_the_flat_array_exactly(shapes):
    names = tuple(f"{i}.w" for i in range(len(shapes)))
    layout = parameter.ParamLayout(names, tuple(shapes), np.dtype(np.float32), len(shapes))
    buf = parameter.ParamBuffer(layout)
    for i, name in enumerate(names):
        buf[name][...] = i + 1
    expected = np.concatenate([np.full(r * c, i + 1) for i, (r, c) in enumerate(shapes)])
    np.testing.assert_array_equal(buf.flat, expected)
