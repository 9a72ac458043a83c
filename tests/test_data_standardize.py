"""The loaders' ``standardize=True``: float32 images standardised with the training set's statistics."""

from __future__ import annotations

import numpy as np
import pytest

import nnframe
from nnframe.data import load_dataset, load_fashion_mnist, load_mnist, write_idx


def _tiny_idx(directory, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    train = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (6, 28, 28), dtype=np.uint8)
    for name, array in (("train-images-idx3-ubyte.gz", train), ("t10k-images-idx3-ubyte.gz", test),
                        ("train-labels-idx1-ubyte.gz", rng.integers(0, 10, 20, dtype=np.uint8)),
                        ("t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 6, dtype=np.uint8))):
        write_idx(directory / name, array)
    return train, test


@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist])
def test_standardize_returns_float32_standardised_with_the_training_statistics(tmp_path, loader):
    train, test = _tiny_idx(tmp_path / "d")
    (x, y), (xt, yt) = loader(tmp_path / "d", download=False, standardize=True)
    assert x.dtype == xt.dtype == np.float32 and x.shape == (20, 28, 28, 1) and y.dtype == np.int64
    mean, std = train.mean(dtype=np.float64), train.std(dtype=np.float64)
    np.testing.assert_allclose(x[..., 0], (train - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xt[..., 0], (test - mean) / std, rtol=1e-5, atol=1e-5)  # the train statistics
    assert abs(float(x.mean())) < 1e-5 and float(x.std()) == pytest.approx(1.0, rel=1e-4)


def test_the_default_stays_uint8_pixels_and_float64_follows_the_framework_dtype(tmp_path):
    train, _ = _tiny_idx(tmp_path / "d")
    (x, _), _ = load_mnist(tmp_path / "d", download=False)
    assert x.dtype == np.uint8 and np.array_equal(x[..., 0], train)
    with nnframe.backend.default_dtype("float64"):
        (x, _), _ = load_dataset("mnist", tmp_path / "d", download=False, standardize=True)
    assert x.dtype == np.float64


def test_standardize_must_be_a_bool(tmp_path):
    _tiny_idx(tmp_path / "d")
    with pytest.raises(TypeError, match="standardize must be True or False, got 'yes'"):
        load_mnist(tmp_path / "d", download=False, standardize="yes")
