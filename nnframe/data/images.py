"""From a picture to a model's input: the one place where images are fitted to a classifier.

``nnframe predict`` (PNG files) and ``nnframe serve`` (a drawn canvas, an uploaded
PNG/JPEG) both call :func:`fit_image`, so the same pixels always give the same input.
The steps, in order, on uint8 pixels:

1. **Alpha**: an image with an alpha channel is composited over white (a transparent
   background reads as paper, not as black).
2. **Channels**: RGB to grayscale with the ITU-R BT.601 luma weights
   ``0.299 R + 0.587 G + 0.114 B`` (rounded) for a one-channel model; gray to RGB by
   repetition for a three-channel one.
3. **Polarity** (one-channel models only): MNIST and Fashion-MNIST show light objects
   on black. A picture whose border is light (median of the outermost pixels >= 128:
   dark strokes on white paper) is inverted, ``255 - x``. ``invert=True/False`` forces it.
4. **Geometry**, only when the picture's height and width differ from the model's:
   a one-channel picture is cropped to the bounding box of its "ink" (pixels above
   a quarter of the brightest one), padded to a square with the object centred, and
   scaled so the object spans :data:`OBJECT_FRACTION` of the input; a colour picture
   is centre-cropped to a square. Then it is resampled to the input's height and
   width with area weights (each output pixel averages the input area it covers:
   no aliasing when shrinking; linear interpolation when enlarging).

A picture that already has the model's height and width (a Fashion-MNIST test image
saved as PNG) keeps every pixel (steps 1-3 only). The checkpoint's normalisation
(``(x - mean) / std``) is applied afterwards, by
:func:`nnframe.data.preprocessing.apply_stored_preprocessing`.
"""

from __future__ import annotations

import io as _io
from typing import Any

import numpy as np

from nnframe.data.png import PNGFormatError, read_png

#: the share of the input's side that a cropped, centred object spans (MNIST: 20 of 28 with
#: margins; Fashion-MNIST items fill the frame: 24 of 28 sits between the two)
OBJECT_FRACTION = 24 / 28
#: ink is anything brighter than this share of the brightest pixel (after polarity)
INK_THRESHOLD = 0.25
_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601
MAX_PIXELS = 1 << 24  # 16 Mpixel: decoded pictures beyond this are refused


class ImageError(ValueError):
    """A picture that cannot be turned into a model input; the message says why."""


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode PNG or JPEG bytes into uint8 pixels ``(H, W, C)``.

    PNG uses nnframe's own reader (no dependency); JPEG needs Pillow (the ``serve`` extra).

    Raises:
        ImageError: for bytes that are neither, a damaged file, or a picture over
            :data:`MAX_PIXELS`.
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        try:
            return read_png(data)
        except PNGFormatError as exc:
            raise ImageError(str(exc).replace("PNG data", name, 1)) from None
    if data.startswith(b"\xff\xd8\xff"):
        return _decode_jpeg(data, name)
    raise ImageError(f"{name}: not a PNG or JPEG image (first bytes {bytes(data[:8])!r})")


def _decode_jpeg(data: bytes, name: str) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise ImageError(f"{name}: reading JPEG needs Pillow: pip install 'nnframe[serve]'") from None
    try:
        with Image.open(_io.BytesIO(data)) as picture:
            if picture.width * picture.height > MAX_PIXELS:
                raise ImageError(f"{name}: {picture.width}x{picture.height} pixels is over the limit of "
                                 f"{MAX_PIXELS} pixels")
            picture = picture.convert("L" if picture.mode in ("L", "1", "I", "F") else "RGB")
            pixels = np.asarray(picture, dtype=np.uint8)
    except ImageError:
        raise
    except Exception as exc:  # Pillow raises many types for damaged files
        raise ImageError(f"{name}: cannot decode the JPEG image ({type(exc).__name__}: {exc})") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels  # (H, W) -> (H, W, 1)


def fit_image(pixels: Any, input_shape: tuple[int, ...], invert: bool | None = None) -> np.ndarray:
    """Turn one picture into uint8 pixels of the model's per-sample input shape (H, W, C).

    The steps are listed in the module docstring.

    Args:
        pixels: uint8 array ``(H, W)`` or ``(H, W, C)`` with ``C`` in 1-4 (gray, gray+alpha,
            RGB, RGBA).
        input_shape: the model's per-sample input shape ``(H, W, C)``, ``C`` 1 or 3.
        invert: force (``True``) or forbid (``False``) the polarity inversion of
            one-channel pictures; ``None`` decides from the border.

    Returns:
        uint8 array of shape ``input_shape``.

    Raises:
        ImageError: for a non-uint8 or empty picture, an unsupported channel count, or a
            model input that is not an image.
    """
    image = np.asarray(pixels)
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ImageError(f"the model's input {tuple(input_shape)} is not an image: expected (H, W, 1) or (H, W, 3)")
    if image.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels 0..255, got dtype {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]  # (H, W) -> (H, W, 1)
    if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4) or 0 in image.shape:
        raise ImageError(f"expected a picture of shape (H, W) or (H, W, C) with C in 1..4, got {image.shape}")
    height, width, channels = (int(s) for s in input_shape)
    image = _match_channels(_composite_over_white(image), channels)
    if channels == 1 and (invert if invert is not None else _light_border(image)):
        image = 255 - image
    if image.shape[:2] != (height, width):
        image = _crop_to_object(image) if channels == 1 else _centre_square(image)
        image = resize(image, (height, width), fill=OBJECT_FRACTION if channels == 1 else 1.0)
    return image


def _composite_over_white(image: np.ndarray) -> np.ndarray:
    if image.shape[-1] not in (2, 4):
        return image
    colour = image[..., :-1].astype(np.float64)
    alpha = image[..., -1:].astype(np.float64) / 255.0
    return np.round(colour * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)


def _match_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if image.shape[-1] == channels:
        return image
    if channels == 1:  # RGB -> gray (H, W, 3) -> (H, W, 1)
        return np.clip(np.round(image.astype(np.float64) @ _LUMA), 0, 255).astype(np.uint8)[..., None]
    return np.repeat(image, 3, axis=-1)  # gray -> (H, W, 3)


def _light_border(image: np.ndarray) -> bool:
    border = np.concatenate([image[0].ravel(), image[-1].ravel(), image[:, 0].ravel(), image[:, -1].ravel()])
    return float(np.median(border)) >= 128


def _crop_to_object(image: np.ndarray) -> np.ndarray:
    """The bounding box of the ink, padded with black to a square around its centre."""
    plane = image[..., 0]
    peak = int(plane.max())
    if peak == 0:
        return image  # a blank picture: nothing to crop
    rows = np.flatnonzero((plane > INK_THRESHOLD * peak).any(axis=1))
    cols = np.flatnonzero((plane > INK_THRESHOLD * peak).any(axis=0))
    box = image[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    side = max(box.shape[:2])
    top, left = (side - box.shape[0]) // 2, (side - box.shape[1]) // 2
    square = np.zeros((side, side, 1), dtype=np.uint8)
    square[top: top + box.shape[0], left: left + box.shape[1]] = box
    return square


def _centre_square(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return image[top: top + side, left: left + side]


def resize(image: np.ndarray, size: tuple[int, int], fill: float = 1.0) -> np.ndarray:
    """Resample uint8 ``(H, W, C)`` to ``size`` = (height, width) with area weights.

    Args:
        image: uint8 pixels ``(H, W, C)``.
        size: the output's ``(height, width)``.
        fill: the share of the output the picture spans, centred on a black border
            (``1.0``: all of it).

    Returns:
        uint8 pixels ``(height, width, C)``.
    """
    out = np.zeros((*size, image.shape[-1]), dtype=np.float64)
    inner = [max(1, int(round(s * fill))) for s in size]
    rows = _area_weights(image.shape[0], inner[0])  # (h, H)
    cols = _area_weights(image.shape[1], inner[1])  # (w, W)
    top, left = (size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2
    # (h, H) @ (H, W, C) -> (h, W, C); then contract W with (w, W) -> (h, w, C)
    scaled = np.einsum("wx,hxc->hwc", cols, np.tensordot(rows, image.astype(np.float64), axes=1))
    out[top: top + inner[0], left: left + inner[1]] = scaled
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights: each row averages the input interval its output pixel covers."""
    if n_out >= n_in:  # enlarging: linear interpolation between pixel centres
        centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        centres = np.clip(centres, 0, n_in - 1)
        low = np.floor(centres).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        frac = centres - low
        weights = np.zeros((n_out, n_in))
        np.add.at(weights, (np.arange(n_out), low), 1 - frac)
        np.add.at(weights, (np.arange(n_out), high), frac)
        return weights
    edges = np.arange(n_out + 1) * n_in / n_out  # output pixel k covers [edges[k], edges[k+1])
    starts, ends = edges[:-1, None], edges[1:, None]
    pixel = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(ends, pixel + 1) - np.maximum(starts, pixel), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)
