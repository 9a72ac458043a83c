"""nnframe.data.random_horizontal_flip, random_crop and random_erasing: which images change, how, what they refuse."""

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


def _erased_boxes(before: np.ndarray, after: np.ndarray) -> list[tuple[int, int, int, int] | None]:
    """Per image, the bounding box (top, left, height, width) of the changed pixels, or None."""
    boxes = []
    for b, a in zip(before, after, strict=True):
        changed = np.argwhere((b != a).any(axis=-1))  # (pixels, 2)
        if len(changed) == 0:
            boxes.append(None)
            continue
        (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0)
        boxes.append((int(top), int(left), int(bottom - top + 1), int(right - left + 1)))
    return boxes


def test_random_erasing_fills_one_rectangle_per_chosen_image_within_the_bounds():
    rng = np.random.default_rng(5)
    images = rng.uniform(1.0, 2.0, (300, 20, 16, 3)).astype(np.float32)  # never 0: every erased value shows
    before = images.copy()
    out = data.random_erasing(images, np.random.default_rng(11), p=1.0, scale=(0.05, 0.3), ratio=(0.5, 2.0))
    np.testing.assert_array_equal(images, before)  # the input is untouched
    assert out.dtype == np.float32 and out.shape == images.shape
    for img, erased, box in zip(images, out, _erased_boxes(images, out), strict=True):
        assert box is not None  # p=1 and these bounds always fit: every image erased
        top, left, h, w = box
        assert np.all(erased[top : top + h, left : left + w] == 0.0)  # a full rectangle, all channels
        outside = np.ones((20, 16), dtype=bool)
        outside[top : top + h, left : left + w] = False
        np.testing.assert_array_equal(erased[outside], img[outside])
        # height and width are rounded from an area in [0.05, 0.3] x 320 pixels and a ratio in [0.5, 2]
        assert 0.05 * 320 - (h + w) <= h * w <= 0.3 * 320 + (h + w) + 1
        assert 0.5 * (w - 1) / (w + 1) <= h / w <= 2.0 * (h + 1) / (h - 1 if h > 1 else 1)
    corners = {box[:2] for box in _erased_boxes(images, out)}
    assert len(corners) > 50  # the corner is drawn per image


def test_random_erasing_probability_reproducibility_and_the_corner_reaches_every_place():
    images = np.ones((2000, 6, 6, 1), dtype=np.float64)
    out = data.random_erasing(images, np.random.default_rng(2), p=0.3, scale=(1 / 36, 1 / 36), ratio=(1.0, 1.0))
    boxes = _erased_boxes(images, out)
    erased = [b for b in boxes if b is not None]
    assert 0.25 < len(erased) / len(images) < 0.35  # p = 0.3
    assert {b[2:] for b in erased} == {(1, 1)}  # one pixel: area 1/36 of 36, ratio 1
    assert {b[:2] for b in erased} == {(r, c) for r in range(6) for c in range(6)}  # uniform over the places
    np.testing.assert_array_equal(out, data.random_erasing(images, np.random.default_rng(2), p=0.3,
                                                           scale=(1 / 36, 1 / 36), ratio=(1.0, 1.0)))
    np.testing.assert_array_equal(data.random_erasing(images, np.random.default_rng(2), p=0.0), images)


def test_random_erasing_leaves_an_image_whose_draws_never_fit():
    images = np.ones((50, 4, 4, 1), dtype=np.float32)
    # the whole area with height / width 4: 8 x 2 pixels, taller than the image, on every attempt
    out = data.random_erasing(images, np.random.default_rng(0), p=1.0, scale=(1.0, 1.0), ratio=(4.0, 4.0))
    np.testing.assert_array_equal(out, images)
    whole = data.random_erasing(images, np.random.default_rng(0), p=1.0, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_array_equal(whole, np.zeros_like(images))  # 4 x 4 fits exactly


def test_random_erasing_fills_with_a_number_or_normal_noise_and_keeps_the_dtype():
    images = np.full((400, 8, 8, 2), 7, dtype=np.uint8)
    out = data.random_erasing(images, np.random.default_rng(3), p=1.0, fill=255)
    assert out.dtype == np.uint8 and set(np.unique(out)) == {7, 255}
    floats = np.full((400, 8, 8, 2), 100.0, dtype=np.float32)
    noisy = data.random_erasing(floats, np.random.default_rng(3), p=1.0, fill="normal")
    assert noisy.dtype == np.float32
    noise = noisy[noisy != 100.0]
    assert noise.size > 1000 and abs(noise.mean()) < 0.1 and 0.9 < noise.std() < 1.1  # standard normal values
    # the same rectangles as a numeric fill: the noise is drawn after the rectangles
    plain = data.random_erasing(floats, np.random.default_rng(3), p=1.0, fill=0.0)
    np.testing.assert_array_equal(noisy != 100.0, plain != 100.0)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"rng": 0}, TypeError, "random_erasing: rng must be a numpy.random.Generator .* got int"),
    ({"p": -0.1}, ValueError, r"p must be a probability in \[0, 1\], got -0.1"),
    ({"scale": (0.5, 0.2)}, ValueError,
     r"scale must be a pair \(low, high\) with 0 < low <= high <= 1, got \(0.5, 0.2\)"),
    ({"scale": (0.1, 1.5)}, ValueError, r"<= 1, got \(0.1, 1.5\)"),
    ({"ratio": (0.0, 2.0)}, ValueError, r"ratio must be a pair \(low, high\) with 0 < low <= high, got \(0.0, 2.0\)"),
    ({"ratio": 2.0}, ValueError, "ratio must be a pair .* got 2.0"),
    ({"attempts": 0}, ValueError, "attempts must be an integer >= 1, got 0"),
    ({"fill": "noise"}, ValueError, "fill must be a number or 'normal', got 'noise'"),
    ({"fill": None}, ValueError, "fill must be a number or 'normal', got None"),
    ({"images": np.zeros((2, 4, 4, 1), dtype=np.uint8), "fill": "normal"}, TypeError,
     "fill='normal' needs floating-point images, got dtype uint8"),
    ({"images": np.zeros((2, 28, 28))}, ValueError, r"expected an NHWC batch \(N, H, W, C\), got shape \(2, 28, 28\)"),
])
def test_random_erasing_wrong_inputs_are_named(kwargs, error, match):
    args = {"images": np.zeros((2, 4, 4, 1), dtype=np.float32), "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(error, match=match):
        data.random_erasing(**args)
