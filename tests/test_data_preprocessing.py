"""one_hot, train_val_split, scale_pixels, standardize."""

import numpy as np
import pytest

from nnframe import backend
from nnframe import data as nndata
from nnframe.data import one_hot, scale_pixels, standardize, train_val_split


def test_one_hot():
    out = one_hot(np.array([2, 0, 1], dtype=np.uint8), 3)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.eye(3, dtype=np.float32)[[2, 0, 1]])
    assert one_hot([1], 2, dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        one_hot([3], 3)
    with pytest.raises(ValueError, match="integers"):
        one_hot([0.5], 3)
    with pytest.raises(ValueError, match="num_classes"):
        one_hot([0], 0)


def test_train_val_split_is_seeded_disjoint_and_complete():
    x = np.arange(100).reshape(100, 1) * 10
    y = np.arange(100)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, 0.2, rng=0)
    assert len(y_val) == 20 and len(y_tr) == 80
    assert sorted(np.concatenate([y_tr, y_val]).tolist()) == list(range(100))
    np.testing.assert_array_equal(x_tr[:, 0], y_tr * 10)  # pairs kept
    np.testing.assert_array_equal(x_val[:, 0], y_val * 10)
    assert np.all(np.diff(y_tr) > 0) and np.all(np.diff(y_val) > 0)  # original order kept
    (_, y_tr2), (_, y_val2) = train_val_split(x, y, 0.2, rng=0)
    np.testing.assert_array_equal(y_val, y_val2)
    (_, _), (_, y_val3) = train_val_split(x, y, 0.2, rng=1)
    assert not np.array_equal(y_val, y_val3)
    (x_tr, y_none), (x_val, _) = train_val_split(x, None, 0.5, rng=0)
    assert y_none is None and len(x_tr) == len(x_val) == 50


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_train_val_split_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(np.zeros((10, 1)), np.zeros(10), fraction)


def test_train_val_split_rejects_empty_parts_and_length_mismatch():
    with pytest.raises(ValueError, match="both need at least one"):
        train_val_split(np.zeros((3, 1)), np.zeros(3), 0.1)
    with pytest.raises(ValueError, match="same length"):
        train_val_split(np.zeros((3, 1)), np.zeros(4), 0.5)


def test_scale_pixels():
    x = np.array([[0, 1, 128, 255]], dtype=np.uint8)
    out = scale_pixels(x)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, (x.astype(np.float64) / 255).astype(np.float32))
    assert out.min() == 0.0 and out.max() == 1.0
    with backend.default_dtype("float64"):
        assert scale_pixels(x).dtype == np.float64
    with pytest.raises(ValueError, match="expected uint8 .* got dtype float32"):
        scale_pixels(out)


def test_standardize_per_channel_and_reuse_on_test():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((50, 4, 4, 3)) * [1.0, 5.0, 0.1] + [10.0, -3.0, 0.5]).astype(np.float32)
    out, mean, std = standardize(x)
    assert out.dtype == mean.dtype == std.dtype == np.float32 and mean.shape == std.shape == (3,)
    np.testing.assert_allclose(mean, x.reshape(-1, 3).mean(axis=0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(std, x.reshape(-1, 3).std(axis=0, dtype=np.float64), rtol=1e-5)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.reshape(-1, 3).std(axis=0), 1.0, rtol=1e-5)
    test_out, m2, s2 = standardize(x[:5], mean, std)
    np.testing.assert_array_equal(test_out, out[:5])
    np.testing.assert_array_equal(m2, mean)


def test_standardize_uint8_constant_channel_and_chunks(monkeypatch):
    import nnframe.data.preprocessing as pre

    monkeypatch.setattr(pre, "_CHUNK_ELEMENTS", 7)  # force many chunks
    x = np.zeros((20, 3, 2), dtype=np.uint8)
    x[..., 0] = np.arange(20, dtype=np.uint8)[:, None]
    out, mean, std = standardize(x)
    assert out.dtype == np.float32
    assert std[1] == 1.0 and np.all(out[..., 1] == 0)  # constant channel -> 0, no division by zero
    np.testing.assert_allclose(mean, [9.5, 0.0])
    np.testing.assert_allclose(std[0], np.arange(20).std(), rtol=1e-6)


def test_standardize_bad_statistics():
    x = np.ones((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        standardize(x, mean=np.zeros(2), std=np.ones(3))
    with pytest.raises(ValueError, match="positive"):
        standardize(x, mean=0.0, std=np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(N, \.\.\., C\)"):
        standardize(np.ones(3))


def test_public_names():
    for name in ("batches", "BatchIterator", "one_hot", "train_val_split", "scale_pixels", "standardize",
                 "read_idx", "write_idx", "load_mnist", "load_fashion_mnist", "load_cifar10",
                 "DatasetNotFoundError"):
        assert hasattr(nndata, name), name
    assert issubclass(nndata.DatasetNotFoundError, FileNotFoundError)
