"""nnframe.data.random_horizontal_flip and random_crop: which images are changed, how, and what they refuse."""

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


def test_random_crop_matches_a_per_image_shift():
    images = np.arange(6 * 5 * 4 * 2, dtype=np.float32).reshape(6, 5, 4, 2)  # (N, H, W, C), all distinct
    before = images.copy()
    padding, fill = 2, -1.5
    out = data.random_crop(images, padding, np.random.default_rng(3), fill=fill)
    assert out.shape == images.shape and out.dtype == np.float32
    np.testing.assert_array_equal(images, before)
    rng = np.random.default_rng(3)  # the same draws in the same order: rows, then columns
    dy, dx = rng.integers(0, 2 * padding + 1, size=6), rng.integers(0, 2 * padding + 1, size=6)
    for i in range(len(images)):  # the oracle: pad one image, slice one window
        padded = np.full((5 + 2 * padding, 4 + 2 * padding, 2), fill, dtype=np.float32)
        padded[padding:-padding, padding:-padding] = images[i]
        np.testing.assert_array_equal(out[i], padded[dy[i] : dy[i] + 5, dx[i] : dx[i] + 4])
    assert len({(int(a), int(b)) for a, b in zip(dy, dx, strict=True)}) > 1  # not one shift for the batch


def test_random_crop_reaches_every_shift_and_keeps_the_dtype():
    images = np.zeros((400, 3, 3, 1), dtype=np.uint8)
    images[:, 1, 1, 0] = 9  # one bright pixel in the middle: where it lands is the shift
    out = data.random_crop(images, 1, np.random.default_rng(7))
    assert out.dtype == np.uint8
    landed = {tuple(int(v) for v in np.argwhere(img[..., 0] == 9)[0]) for img in out}
    assert landed == {(r, c) for r in range(3) for c in range(3)}
    np.testing.assert_array_equal(out, data.random_crop(images, 1, np.random.default_rng(7)))
    np.testing.assert_array_equal(data.random_crop(images, 0, np.random.default_rng(7)), images)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"rng": 0}, TypeError, "random_crop: rng must be a numpy.random.Generator .* got int"),
    ({"padding": -1}, ValueError, "padding must be an integer >= 0, got -1"),
    ({"padding": 1.5}, ValueError, "padding must be an integer >= 0, got 1.5"),
    ({"images": np.zeros((2, 28, 28))}, ValueError, r"expected an NHWC batch \(N, H, W, C\), got shape \(2, 28, 28\)"),
])
def test_random_crop_wrong_inputs_are_named(kwargs, error, match):
    args = {"images": np.zeros((2, 4, 4, 1), dtype=np.float32), "padding": 1, "rng": np.random.default_rng(0),
            **kwargs}
    with pytest.raises(error, match=match):
        data.random_crop(**args)
