"""nnframe.data.random_horizontal_flip: which images are mirrored, how, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from nnframe import data


def test_flips_the_images_the_generator_picks_and_nothing_else():
    images = np.arange(6 * 2 * 3 * 2, dtype=np.float32).reshape(6, 2, 3, 2)  # (N, H, W, C)
    before = images.copy()
    out = data.random_horizontal_flip(images, np.random.default_rng(4))
    picked = np.random.default_rng(4).random(6) < 0.5  # one draw per image
    assert 0 < picked.sum() < 6  # this seed mirrors some, not all
    np.testing.assert_array_equal(out[picked], images[picked][:, :, ::-1, :])
    np.testing.assert_array_equal(out[~picked], images[~picked])
    np.testing.assert_array_equal(images, before)  # a copy: the input is untouched
    assert out.dtype == np.float32 and out.shape == images.shape


def test_probability_zero_and_one_and_dtype_kept():
    images = np.random.default_rng(0).integers(0, 255, (4, 3, 5, 1)).astype(np.uint8)
    np.testing.assert_array_equal(data.random_horizontal_flip(images, np.random.default_rng(0), p=0.0), images)
    flipped = data.random_horizontal_flip(images, np.random.default_rng(0), p=1)
    np.testing.assert_array_equal(flipped, images[:, :, ::-1, :])
    assert flipped.dtype == np.uint8
    x64 = np.ones((2, 2, 2, 1))
    assert data.random_horizontal_flip(x64, np.random.default_rng(0)).dtype == np.float64


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"rng": 0}, TypeError, "rng must be a numpy.random.Generator .* got int"),
    ({"p": 1.5}, ValueError, r"p must be a probability in \[0, 1\], got 1.5"),
    ({"p": True}, ValueError, "got True"),
    ({"images": np.zeros((2, 28, 28))}, ValueError, r"expected an NHWC batch \(N, H, W, C\), got shape \(2, 28, 28\)"),
])
def test_wrong_inputs_are_named(kwargs, error, match):
    args = {"images": np.zeros((2, 4, 4, 1), dtype=np.float32), "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(error, match=match):
        data.random_horizontal_flip(**args)
