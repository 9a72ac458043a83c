"""nnframe.data.images: the one pipeline from a picture to a classifier's input (predict and serve)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from test_cli import encode_png

from nnframe.data import (
    ImageError,
    apply_stored_preprocessing,
    check_pixel_values,
    decode_image,
    fit_image,
    stored_pixel_range,
    stored_standardization,
    value_range,
)
from nnframe.data.images import OBJECT_FRACTION, resize


def _dark_picture(shape=(28, 28, 1), seed=0):
    picture = np.random.default_rng(seed).integers(0, 30, size=shape).astype(np.uint8)
    picture[8:20, 6:22] = 200
    return picture


def test_a_picture_of_the_input_size_keeps_every_pixel():
    picture = _dark_picture()
    np.testing.assert_array_equal(fit_image(picture, (28, 28, 1)), picture)
    np.testing.assert_array_equal(fit_image(picture[..., 0], (28, 28, 1)), picture)  # (H, W) too


def test_light_background_is_inverted_unless_forbidden():
    picture = 255 - _dark_picture()
    np.testing.assert_array_equal(fit_image(picture, (28, 28, 1)), 255 - picture)
    np.testing.assert_array_equal(fit_image(picture, (28, 28, 1), invert=False), picture)
    dark = _dark_picture()
    np.testing.assert_array_equal(fit_image(dark, (28, 28, 1), invert=True), 255 - dark)


def test_colour_to_gray_uses_bt601_luma_and_alpha_composites_over_white():
    rgb = np.zeros((28, 28, 3), np.uint8)
    rgb[...] = (10, 20, 30)
    gray = fit_image(rgb, (28, 28, 1))
    assert gray.shape == (28, 28, 1) and np.all(gray == round(0.299 * 10 + 0.587 * 20 + 0.114 * 30))
    rgba = np.zeros((28, 28, 4), np.uint8)  # fully transparent black: paper, so white, then inverted
    rgba[10:12, 10:12] = (0, 0, 0, 255)  # an opaque black dot
    out = fit_image(rgba, (28, 28, 1))
    assert out[0, 0, 0] == 0 and out[10, 10, 0] == 255
    np.testing.assert_array_equal(fit_image(gray, (28, 28, 3)), np.repeat(gray, 3, axis=-1))


def test_area_resampling_averages_exactly_and_keeps_constants():
    image = np.arange(16, dtype=np.uint8).reshape(4, 4, 1) * 10
    out = resize(image, (2, 2))
    expected = image[..., 0].reshape(2, 2, 2, 2).mean(axis=(1, 3))  # 2x2 block means
    np.testing.assert_array_equal(out[..., 0], np.round(expected))
    np.testing.assert_array_equal(resize(np.full((30, 17, 3), 77, np.uint8), (7, 9)), 77)
    np.testing.assert_array_equal(resize(np.full((3, 3, 1), 200, np.uint8), (8, 8)), 200)  # enlarging


def test_a_large_drawing_is_cropped_centred_and_scaled():
    canvas = np.full((280, 280), 255, np.uint8)  # white paper
    canvas[20:60, 200:260] = 0  # a dark blot in a corner: 40 high, 60 wide
    out = fit_image(canvas, (28, 28, 1))[..., 0]
    rows, cols = np.flatnonzero(out.max(axis=1) > 60), np.flatnonzero(out.max(axis=0) > 60)
    span = round(28 * OBJECT_FRACTION)
    assert cols[-1] - cols[0] + 1 == pytest.approx(span, abs=1)  # the longer side spans the fraction
    assert abs((rows[0] + rows[-1]) / 2 - 13.5) <= 1 and abs((cols[0] + cols[-1]) / 2 - 13.5) <= 1  # centred
    assert out[0, 0] == 0  # background black after inversion


def test_colour_pictures_are_centre_cropped_not_inverted():
    picture = np.full((40, 60, 3), 250, np.uint8)
    out = fit_image(picture, (32, 32, 3))
    assert out.shape == (32, 32, 3) and np.all(out == 250)


@pytest.mark.parametrize("bad, shape, match", [
    (np.zeros((28, 28), np.float32), (28, 28, 1), "uint8"),
    (np.zeros((28, 28, 5), np.uint8), (28, 28, 1), "C in 1..4"),
    (np.zeros((0, 28), np.uint8), (28, 28, 1), "shape"),
    (np.zeros((28, 28), np.uint8), (784,), "not an image"),
    (np.zeros((28, 28), np.uint8), (28, 28, 2), "not an image"),
])
def test_fit_image_refuses_what_it_cannot_fit(bad, shape, match):
    with pytest.raises(ImageError, match=match):
        fit_image(bad, shape)


def test_decode_png_and_jpeg_and_refuse_other_bytes():
    picture = _dark_picture((5, 7, 3))
    np.testing.assert_array_equal(decode_image(encode_png(picture)), picture)
    with pytest.raises(ImageError, match="not a PNG or JPEG"):
        decode_image(b"GIF89a......")
    with pytest.raises(ImageError, match="upload.png"):
        decode_image(encode_png(picture)[:40], "upload.png")
    pil = pytest.importorskip("PIL.Image")
    buffer = io.BytesIO()
    pil.fromarray(np.full((6, 6), 128, np.uint8)).save(buffer, format="JPEG", quality=100)
    decoded = decode_image(buffer.getvalue())
    assert decoded.shape == (6, 6, 1) and np.all(np.abs(decoded.astype(int) - 128) <= 1)
    with pytest.raises(ImageError, match="cannot decode the JPEG"):
        decode_image(b"\xff\xd8\xff" + b"\x00" * 20)


def test_stored_preprocessing_is_read_and_checked():
    meta = {"preprocessing": {"standardize": {"mean": [10.0], "std": [2.0]}}}
    mean, std = stored_standardization(meta)
    assert mean.tolist() == [10.0] and std.tolist() == [2.0]
    out = apply_stored_preprocessing(np.full((1, 2, 2, 1), 14, np.uint8), meta, np.float32)
    assert out.dtype == np.float32 and np.all(out == 2.0)
    assert stored_standardization({}) is None
    assert apply_stored_preprocessing(np.ones((1, 2), np.uint8), {}, np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="2 channel"):
        apply_stored_preprocessing(np.ones((1, 2, 2, 1), np.uint8),
                                   {"preprocessing": {"standardize": {"mean": [1, 2], "std": [1, 1]}}}, np.float32)
    for bad in ({"standardize": {"mean": [1.0]}}, {"standardize": {"mean": [1.0], "std": [0.0]}},
                {"standardize": {"mean": [float("nan")], "std": [1.0]}}, "x"):
        with pytest.raises(ValueError, match="metadata|standardisation"):
            stored_standardization({"preprocessing": bad}, "ckpt")


def test_the_trained_pixel_range_and_the_check_of_raw_pixels():
    assert value_range(np.zeros(3, np.uint8)) == [0, 255] and value_range(np.array([0.5, 2.0])) == [0.5, 2.0]
    assert stored_pixel_range({"pixel_range": [0, 1023]}) == (0.0, 1023.0)
    assert stored_pixel_range({"dataset": "mnist"}) == (0.0, 255.0)  # written before the range was stored
    assert stored_pixel_range({}) is None
    for bad in ([0], [5, 1], ["0", 255], [0, float("inf")], [True, 255]):
        with pytest.raises(ValueError, match="pixel_range"):
            stored_pixel_range({"pixel_range": bad}, "ckpt")
    pixels, rescaled = check_pixel_values(np.full((2, 2), 0.5), (0.0, 255.0))
    assert rescaled and np.all(pixels == 127.5)
    pixels, rescaled = check_pixel_values(np.full((2, 2), 1, np.uint8), (0.0, 255.0))
    assert not rescaled and pixels.dtype == np.uint8  # integers are never rescaled
    with pytest.raises(ValueError, match=r"0\.\.255.*got values in -1\.\.3"):
        check_pixel_values(np.array([-1.0, 3.0]), (0.0, 255.0))
    with pytest.raises(ValueError, match="NaN or infinite"):
        check_pixel_values(np.array([np.nan]), None)
    assert check_pixel_values(np.array([1e6]), None)[0][0] == 1e6  # no range known: no check
