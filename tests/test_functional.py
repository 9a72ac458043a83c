"""nnframe.functional helpers against naive float64 references, numpy.pad and plain loops."""

import numpy as np
import pytest

from nnframe import functional as F


def naive_logsumexp(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    return np.log(np.exp(x).sum(axis=axis, keepdims=True))


# ---- logsumexp / log_softmax / log_sigmoid ------------------------------------------------


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_logsumexp_matches_naive_float64_and_keeps_dims_and_dtype(dtype, rtol, axis):
    x = np.random.default_rng(0).normal(scale=4.0, size=(3, 5, 4)).astype(dtype)
    out = F.logsumexp(x, axis=axis)
    assert out.dtype == dtype
    assert out.shape == tuple(1 if i == axis % 3 else s for i, s in enumerate(x.shape))
    np.testing.assert_allclose(out, naive_logsumexp(x, axis), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_is_finite_and_exact_where_naive_overflows(dtype):
    x = np.array([[1000.0, 1000.0, 1000.0 - np.log(2.0)],   # naive: exp(1000) = inf
                  [-1000.0, -1000.0, -2000.0]], dtype=dtype)  # naive: log(0) = -inf
    with np.errstate(over="ignore", divide="ignore"):
        assert not np.all(np.isfinite(naive_logsumexp(x)))
    out = F.logsumexp(x)
    assert out.dtype == dtype
    # log(e^a + e^a + e^a / 2) = a + log(2.5); log(2 e^b + e^(2b)) ~= b + log 2
    np.testing.assert_allclose(out[:, 0], [1000.0 + np.log(2.5), -1000.0 + np.log(2.0)], rtol=1e-6)


def test_logsumexp_shift_invariance():
    x = np.random.default_rng(1).normal(size=(4, 6))
    np.testing.assert_allclose(F.logsumexp(x + 123.0), F.logsumexp(x) + 123.0, rtol=1e-13)


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 2e-6), (np.float64, 1e-13)])
def test_log_softmax_matches_naive_and_exponentiates_to_probabilities(dtype, rtol):
    x = np.random.default_rng(2).normal(scale=3.0, size=(6, 10)).astype(dtype)
    out = F.log_softmax(x)
    assert out.dtype == dtype and out.shape == x.shape
    x64 = x.astype(np.float64)
    naive = np.log(np.exp(x64) / np.exp(x64).sum(axis=-1, keepdims=True))
    np.testing.assert_allclose(out, naive, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(np.exp(out.astype(np.float64)).sum(axis=-1), 1.0, rtol=10 * rtol)
    np.testing.assert_allclose(F.log_softmax(x, axis=0).astype(np.float64),
                               x64 - naive_logsumexp(x64, axis=0), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_softmax_large_logits_stay_finite(dtype):
    x = np.array([[1e4, 0.0, -1e4], [-5e3, -5e3, -5e3]], dtype=dtype)
    out = F.log_softmax(x)
    assert out.dtype == dtype and np.all(np.isfinite(out))
    np.testing.assert_allclose(out[0], [0.0, -1e4, -2e4], rtol=1e-6)
    # x - (shift + log 3) rounds shift + log 3 to the dtype's spacing at |x| = 5000 first,
    # so the error is bounded by that spacing (2.4e-4 in float32), not by 1e-6
    np.testing.assert_allclose(out[1], [-np.log(3.0)] * 3, rtol=1e-6, atol=float(np.spacing(dtype(5e3))))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_masked_logits_give_minus_inf_not_nan(dtype):
    x = np.array([[-np.inf, -np.inf, -np.inf],     # every class masked
                  [0.5, -np.inf, 1.5],             # one class masked
                  [np.inf, 0.0, 1.0]], dtype=dtype)
    lse = F.logsumexp(x)
    assert lse[0, 0] == -np.inf and lse[2, 0] == np.inf
    np.testing.assert_allclose(lse[1, 0], np.log(np.exp(0.5) + np.exp(1.5)), rtol=1e-6)
    logp = F.log_softmax(x[1:2])  # (an all-masked row has no distribution: NaN, as in PyTorch)
    assert logp[0, 1] == -np.inf and np.isfinite(logp[0, [0, 2]]).all()
    np.testing.assert_allclose(np.exp(logp).sum(), 1.0, rtol=1e-6)
    assert logp.dtype == dtype


def test_log_softmax_keeps_the_precision_of_the_largest_logit_in_float32():
    x = np.array([[5000.0, 4990.0, -5000.0]], dtype=np.float32)
    expected = np.array([[-np.log1p(np.exp(-10.0)), -10.0 - np.log1p(np.exp(-10.0)), -np.inf]])
    np.testing.assert_allclose(F.log_softmax(x)[0, :2], expected[0, :2].astype(np.float32), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-6), (np.float64, 1e-12)])
def test_log_sigmoid_matches_naive_where_it_does_not_overflow(dtype, rtol):
    x = np.linspace(-30.0, 30.0, 121).astype(dtype)
    out = F.log_sigmoid(x)
    assert out.dtype == dtype and out.shape == x.shape
    x64 = x.astype(np.float64)
    naive = np.log(1.0 / (1.0 + np.exp(-x64)))  # float64 is exact enough on [-30, 30]
    np.testing.assert_allclose(out, naive, rtol=rtol, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_sigmoid_large_magnitudes(dtype):
    x = np.array([-1e4, -800.0, -100.0, 50.0, 80.0, 800.0, 1e4], dtype=dtype)
    with np.errstate(over="ignore", divide="ignore"):
        assert not np.all(np.isfinite(np.log(1.0 / (1.0 + np.exp(-x.astype(np.float64))))))
    out = F.log_sigmoid(x)
    assert out.dtype == dtype and np.all(np.isfinite(out)) and np.all(out <= 0)
    # log sigmoid(x) = x - log1p(e^x) -> x for x << 0;  = -log1p(e^-x) ~= -e^-x for x >> 0
    np.testing.assert_allclose(out[:3], x[:3], rtol=1e-6)
    np.testing.assert_allclose(out[3:], -np.exp(-x[3:].astype(np.float64)), rtol=1e-5, atol=1e-300)


def test_log_sigmoid_is_log_of_sigmoid_and_obeys_the_symmetry():
    x = np.random.default_rng(3).normal(scale=5.0, size=50)
    # log(sigmoid) is the less accurate side near 0 (log of a number close to 1): rtol 1e-8
    np.testing.assert_allclose(F.log_sigmoid(x), np.log(F.sigmoid(x)), rtol=1e-8)
    # sigmoid(x) + sigmoid(-x) = 1
    np.testing.assert_allclose(np.exp(F.log_sigmoid(x)) + np.exp(F.log_sigmoid(-x)), 1.0, rtol=1e-12)


# ---- as_pair ---------------------------------------------------------------------------


@pytest.mark.parametrize("value, minimum, expected", [
    (3, 1, (3, 3)), (np.int64(2), 1, (2, 2)), ((2, 5), 1, (2, 5)), ([4, 1], 1, (4, 1)),
    (np.array([2, 3]), 1, (2, 3)), (0, 0, (0, 0)), ((0, 2), 0, (0, 2)),
])
def test_as_pair_accepts_an_int_or_two_of_them(value, minimum, expected):
    out = F.as_pair(value, "Conv2D", "stride", minimum=minimum)
    assert out == expected
    assert all(type(v) is int for v in out)


@pytest.mark.parametrize("value, minimum", [
    (0, 1), (-1, 0), ((2, 0), 1), ((1, 2, 3), 1), ((2,), 1), ((), 1), (2.0, 1), ((2.0, 2), 1),
    ("22", 1), (None, 1), (True, 1), ((True, 2), 1), ([[1, 2], 3], 1), (np.array(3), 1),
])
def test_as_pair_error_names_owner_argument_minimum_and_value(value, minimum):
    expected = f"MaxPool2D: pool_size must be an int >= {minimum} or a pair of them, got {value!r}"
    with pytest.raises(ValueError) as info:
        F.as_pair(value, "MaxPool2D", "pool_size", minimum=minimum)
    assert str(info.value) == expected


# ---- pad2d -----------------------------------------------------------------------------


@pytest.mark.parametrize("padding", [((1, 1), (1, 1)), ((0, 2), (3, 0)), ((2, 0), (0, 0)), ((0, 0), (0, 1))])
@pytest.mark.parametrize("value", [0.0, -1.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pad2d_matches_numpy_pad(padding, value, dtype):
    x = np.random.default_rng(4).normal(size=(2, 3, 4, 5)).astype(dtype)
    out = F.pad2d(x, padding, value)
    expected = np.pad(x, ((0, 0), *padding, (0, 0)), mode="constant", constant_values=value)
    assert out.dtype == dtype and out.shape == expected.shape
    np.testing.assert_array_equal(out, expected)
    assert not np.shares_memory(out, x)


def test_pad2d_without_padding_returns_the_input_itself():
    x = np.ones((1, 2, 2, 3), dtype=np.float32)
    assert F.pad2d(x, ((0, 0), (0, 0))) is x


# ---- window_offsets --------------------------------------------------------------------


@pytest.mark.parametrize("kernel, stride, dilation", [
    ((3, 3), (1, 1), (1, 1)), ((2, 3), (2, 1), (1, 1)), ((3, 2), (1, 2), (2, 1)), ((2, 2), (3, 2), (2, 3)),
    ((1, 1), (2, 2), (1, 1)),
])
def test_window_offsets_select_what_a_naive_pixel_loop_reads(kernel, stride, dilation):
    hp, wp = 9, 8
    oh = F.conv_output_size(hp, kernel[0], stride[0], dilation[0])
    ow = F.conv_output_size(wp, kernel[1], stride[1], dilation[1])
    x = np.random.default_rng(5).normal(size=(2, hp, wp, 3))
    offsets = list(F.window_offsets(kernel, stride, dilation, (oh, ow)))
    assert [(i, j) for i, j, _, _ in offsets] == [(i, j) for i in range(kernel[0]) for j in range(kernel[1])]
    for i, j, rows, cols in offsets:
        naive = np.empty((2, oh, ow, 3))
        for r in range(oh):
            for c in range(ow):
                naive[:, r, c] = x[:, r * stride[0] + i * dilation[0], c * stride[1] + j * dilation[1]]
        np.testing.assert_array_equal(x[:, rows, cols], naive)
        # the slices end just past the last tap they read, so they never run off a padded image
        assert rows.stop == i * dilation[0] + stride[0] * (oh - 1) + 1 <= hp
        assert cols.stop == j * dilation[1] + stride[1] * (ow - 1) + 1 <= wp


# ---- channel_sums / channel_rows -------------------------------------------------------


@pytest.mark.parametrize("shape", [(7,), (12, 3), (2, 5, 4, 6), (0, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channel_sums_matches_sum_over_all_but_the_last_axis(shape, dtype):
    x = np.random.default_rng(6).normal(size=shape).astype(dtype)
    out = F.channel_sums(x)
    expected = x.astype(np.float64).sum(axis=tuple(range(x.ndim - 1)))
    assert out.shape == (shape[-1],) and out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)


def test_channel_sums_writes_into_out():
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    out = np.full(4, np.nan)
    result = F.channel_sums(x, out=out)
    assert result is out
    np.testing.assert_array_equal(out, x.sum(axis=(0, 1)))


@pytest.mark.parametrize("shape, reps", [((2, 3, 4, 5), 4), ((3, 4, 2), 4), ((6, 3), 1), ((5,), 1)])
def test_channel_rows_is_a_writable_view_matching_reshape(shape, reps):
    x = np.random.default_rng(7).normal(size=shape)
    before = x.copy()
    rows, got_reps = F.channel_rows(x)
    assert got_reps == reps
    np.testing.assert_array_equal(rows, x.reshape(-1, reps * shape[-1]))
    assert np.shares_memory(rows, x)
    v = np.arange(shape[-1], dtype=x.dtype)
    rows += np.tile(v, reps)  # the documented use: a per-channel add, done in place on x
    np.testing.assert_array_equal(x, before + v)


@pytest.mark.parametrize("make", [
    lambda x: x[:, :, ::2],             # strided W
    lambda x: x.transpose(0, 2, 1, 3),  # swapped H and W
    lambda x: np.asfortranarray(x),
])
def test_channel_rows_refuses_non_contiguous_input(make):
    x = make(np.zeros((2, 3, 4, 5)))
    assert not x.flags.c_contiguous
    with pytest.raises(ValueError, match="channel_rows needs a C-contiguous array"):
        F.channel_rows(x)


# ---- relu ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda rng: rng.normal(size=(4, 5, 6, 3)),  # NHWC: compared row by row with zeros
    lambda rng: rng.normal(size=(4, 7)),
    lambda rng: rng.normal(size=(9,)),
    lambda rng: rng.normal(size=(4, 6, 5, 3)).transpose(0, 2, 1, 3),  # not contiguous: plain maximum
    lambda rng: np.array([[np.nan, -np.inf, np.inf, -0.5, 0.0, 2.0]]),
])
def test_relu_is_maximum_with_zero_and_keeps_shape_and_dtype(make, dtype):
    x = make(np.random.default_rng(8)).astype(dtype)
    out = F.relu(x)
    assert out.dtype == dtype and out.shape == x.shape
    np.testing.assert_array_equal(out, np.maximum(x, 0.0))  # NaN stays NaN


@pytest.mark.parametrize("make", [
    lambda rng: rng.normal(size=(4, 6, 5)),  # rows compared with a zero row, written in place
    lambda rng: rng.normal(size=(4, 6, 5, 3)).transpose(0, 2, 1, 3),  # not contiguous: plain maximum
])
def test_relu_into_out_overwrites_the_input_when_asked(make):
    x = make(np.random.default_rng(3)).astype(np.float32)
    expected = np.maximum(x, 0.0)
    out = F.relu(x, out=x)
    assert out is x
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 100.0])  # inside and outside the no-shift range
def test_masked_exp_parts_give_the_softmax_and_zero_rows_for_all_hidden(dtype, scale):
    rng = np.random.default_rng(4)
    x = (rng.normal(size=(2, 3, 5)) * scale).astype(dtype)
    keep = rng.random((2, 3, 5)) > 0.4
    keep[1, 2] = False  # one slice with every entry hidden
    e, inv_total = F.masked_exp(x, keep=keep)
    assert e.dtype == inv_total.dtype == dtype and inv_total.shape == (2, 3, 1)
    expected = np.zeros(x.shape)
    for i, j in np.ndindex(2, 3):  # the softmax of each slice's kept entries, in float64
        kept = x[i, j, keep[i, j]].astype(np.float64)
        if kept.size:
            expected[i, j, keep[i, j]] = np.exp(kept - kept.max()) / np.exp(kept - kept.max()).sum()
    np.testing.assert_allclose(e * inv_total, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-30)
    np.testing.assert_array_equal(e[1, 2], 0.0)
    assert inv_total[1, 2, 0] == 1.0
    before = x.copy()
    F.masked_exp(x, keep=keep)
    np.testing.assert_array_equal(x, before)  # overwrite=False leaves the scores alone
    e2, inv2 = F.masked_exp(x, axis=1, keep=keep, overwrite=True)  # not the last axis: summed by sum()
    assert inv2.shape == (2, 1, 5) and np.shares_memory(e2, x) == (scale == 1.0)  # masked by where() if shifted


def test_masked_exp_and_safe_softmax_take_an_empty_batch():
    e, inv_total = F.masked_exp(np.zeros((0, 2, 3, 3), dtype=np.float32))
    assert e.shape == (0, 2, 3, 3) and inv_total.shape == (0, 2, 3, 1) and e.dtype == np.float32
    assert F.safe_softmax(np.zeros((0, 4))).shape == (0, 4)


def test_erf_float64_matches_math_erf_to_rounding():
    import math

    x = np.concatenate([np.linspace(-7, 7, 20001), np.geomspace(1e-300, 7, 2000), [0.0, -0.0, 1.99999999, 2.0]])
    expected = np.array([math.erf(v) for v in x])
    got = F.erf(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=5e-15, atol=0)
    np.testing.assert_array_equal(F.erf(np.array([np.inf, -np.inf, 40.0])), [1.0, -1.0, 1.0])
    assert np.isnan(F.erf(np.array([np.nan]))).all()
    assert F.erf(np.array(0.5)).shape == () and F.erf(np.array(0.5)) == pytest.approx(math.erf(0.5), rel=1e-15)
    assert F.erf(np.zeros((0, 3))).shape == (0, 3)


def test_erf_float32_keeps_its_dtype_within_its_stated_error():
    import math

    x = np.linspace(-5, 5, 1001).astype(np.float32)
    got = F.erf(x)
    assert got.dtype == np.float32
    expected = np.array([math.erf(float(v)) for v in x])
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-7)  # below 2e-7 absolute, as documented
