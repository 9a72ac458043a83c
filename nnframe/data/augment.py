"""Random augmentation of image batches (host-side, NHWC), drawn from a generator you pass in.

::

    rng = np.random.default_rng(0)
    for xb, yb in data.batches(x_train, y_train, batch_size=128, shuffle=True, rng=rng):
        pred = model.forward(data.random_horizontal_flip(xb, rng))   # a random half mirrored
        xb = data.random_crop(xb, 2, rng, fill=0.0)   # each image shifted by up to 2 pixels
        xb = data.random_erasing(xb, rng, p=0.5)      # a random rectangle of half of them blanked

Flips and crops are the standard augmentations of small-image classifiers (He et al., 2015,
section 4.2: "4 pixels are padded on each side, and a 32x32 crop is randomly sampled from the
padded image or its horizontal flip"); random erasing is Zhong et al., "Random Erasing Data
Augmentation" (AAAI 2020), with the defaults of their paper and of ``torchvision``'s
``RandomErasing``.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def random_horizontal_flip(images: Any, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """A copy of an NHWC batch with each image mirrored left-right with probability ``p``.

    One uniform number is drawn per image (``rng.random(N) < p`` picks the mirrored ones),
    so the same generator state gives the same flips; ``images`` itself is not changed and
    the dtype is kept.

    Args:
        images: a batch of shape ``(N, H, W, C)``.
        rng: the ``numpy.random.Generator`` to draw from (one generator for the whole run;
            a fresh one per batch would flip the same images every time).
        p: the probability of mirroring each image, in ``[0, 1]``.

    Returns:
        An array like ``images``: ``out[i] = images[i, :, ::-1, :]`` for the chosen ``i``.

    Shapes:
        ``images``: ``(N, H, W, C)`` -> the same.
    """
    _check_rng("random_horizontal_flip", rng)
    _check_probability("random_horizontal_flip", p)
    images = _nhwc("random_horizontal_flip", images)
    flip = rng.random(len(images)) < p  # (N,)
    out = images.copy()
    out[flip] = images[flip, :, ::-1, :]  # W reversed
    return out


def random_crop(images: Any, padding: int, rng: np.random.Generator, fill: float = 0.0) -> np.ndarray:
    """Pad each image by ``padding`` pixels of ``fill`` on every side, then cut out a window of the
    original size at a random place: a random shift of up to ``padding`` pixels in each direction,
    drawn independently per image (the uncovered border reads ``fill``).

    Two integer draws per image, rows then columns (``rng.integers(0, 2 * padding + 1, N)`` each),
    so the same generator state gives the same crops; ``images`` is not changed, the dtype is kept.

    Args:
        images: a batch of shape ``(N, H, W, C)``.
        padding: the largest shift in pixels, an integer >= 0 (0 returns a copy, drawing nothing).
        rng: the ``numpy.random.Generator`` to draw from (one for the whole run).
        fill: the value of the padding: the background (0 for raw pixels; for standardized
            pixels, ``-mean / std``, a black pixel standardized).

    Returns:
        ``out[i, r, c] = padded[i, r + dy_i, c + dx_i]`` with ``dy, dx`` in ``0 .. 2 * padding``,
        where ``padded`` is ``images`` with ``padding`` rows and columns of ``fill`` around it.

    Shapes:
        ``images``: ``(N, H, W, C)`` -> the same.
    """
    _check_rng("random_crop", rng)
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"random_crop: padding must be an integer >= 0, got {padding!r}")
    images = _nhwc("random_crop", images)
    if padding == 0:
        return images.copy()
    n, h, w, c = images.shape
    padded = np.full((n, h + 2 * padding, w + 2 * padding, c), fill, dtype=images.dtype)  # (N, H+2p, W+2p, C)
    padded[:, padding : padding + h, padding : padding + w] = images
    dy = rng.integers(0, 2 * padding + 1, size=n)  # (N,)
    dx = rng.integers(0, 2 * padding + 1, size=n)
    rows = dy[:, None, None] + np.arange(h)[None, :, None]  # (N, H, 1)
    cols = dx[:, None, None] + np.arange(w)[None, None, :]  # (N, 1, W)
    return padded[np.arange(n)[:, None, None], rows, cols]  # (N, H, W, C)


def random_erasing(images: Any, rng: np.random.Generator, p: float = 0.5, scale: tuple[float, float] = (0.02, 0.4),
                   ratio: tuple[float, float] = (0.3, 10 / 3), fill: float | str = 0.0,
                   attempts: int = 10) -> np.ndarray:
    """A copy of an NHWC batch in which each image, with probability ``p``, has one random rectangle
    overwritten (Zhong et al., "Random Erasing Data Augmentation", AAAI 2020).

    For a chosen image the rectangle's area is a uniform fraction ``scale`` of the image and its
    height/width ratio is log-uniform in ``ratio``; height and width are ``round(sqrt(area *
    ratio))`` and ``round(sqrt(area / ratio))``. A draw that does not fit inside the image is drawn
    again, up to ``attempts`` times, after which the image is left as it is (as ``torchvision``'s
    ``RandomErasing`` does); the top-left corner is then uniform over the places the rectangle fits.
    All draws are made for the whole batch at once, in a fixed order (the choice per image, the
    areas, the ratios, the corners, then any noise), so the same generator state gives the same
    result; ``images`` is not changed and the dtype is kept.

    Args:
        images: a batch of shape ``(N, H, W, C)``.
        rng: the ``numpy.random.Generator`` to draw from (one for the whole run).
        p: the probability of erasing in each image, in ``[0, 1]``.
        scale: ``(low, high)``, the erased fraction of the image's area, ``0 < low <= high <= 1``.
        ratio: ``(low, high)``, the rectangle's height / width, ``0 < low <= high``.
        fill: what the rectangle is filled with: a number (0, the mean of standardized pixels, by
            default), or ``"normal"`` for standard-normal noise drawn per value (the paper's
            random-value variant, for standardized inputs; floating dtypes only).
        attempts: how many draws may be made for an image before it is left unerased, >= 1.

    Returns:
        An array like ``images`` with ``out[i, top:top + h, left:left + w, :]`` filled for the chosen ``i``.

    Shapes:
        ``images``: ``(N, H, W, C)`` -> the same.
    """
    _check_rng("random_erasing", rng)
    _check_probability("random_erasing", p)
    _check_range("scale", scale, upper=1.0)
    _check_range("ratio", ratio, upper=None)
    if isinstance(attempts, bool) or not isinstance(attempts, (int, np.integer)) or attempts < 1:
        raise ValueError(f"random_erasing: attempts must be an integer >= 1, got {attempts!r}")
    images = _nhwc("random_erasing", images)
    if isinstance(fill, str):
        if fill != "normal":
            raise ValueError(f"random_erasing: fill must be a number or 'normal', got {fill!r}")
        if not np.issubdtype(images.dtype, np.floating):
            raise TypeError(f"random_erasing: fill='normal' needs floating-point images, got dtype {images.dtype}")
    elif isinstance(fill, bool) or not isinstance(fill, (int, float, np.number)):
        raise ValueError(f"random_erasing: fill must be a number or 'normal', got {fill!r}")
    n, h, w, c = images.shape
    chosen = rng.random(n) < p  # (N,)
    area = h * w * rng.uniform(scale[0], scale[1], size=(n, attempts))  # (N, A) pixels
    aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]), size=(n, attempts)))  # (N, A) height / width
    heights = np.rint(np.sqrt(area * aspect)).astype(np.int64)
    widths = np.rint(np.sqrt(area / aspect)).astype(np.int64)
    fits = (heights >= 1) & (heights <= h) & (widths >= 1) & (widths <= w)  # (N, A)
    first = fits.argmax(axis=1)  # (N,) the first draw that fits (0 when none does)
    erase = chosen & fits[np.arange(n), first]
    eh, ew = heights[np.arange(n), first], widths[np.arange(n), first]  # (N,)
    top = rng.integers(0, np.where(erase, h - eh, 0) + 1)  # (N,) uniform over the places it fits
    left = rng.integers(0, np.where(erase, w - ew, 0) + 1)
    rows = np.arange(h)[None, :]  # (1, H)
    cols = np.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])  # (N, H)
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])  # (N, W)
    mask = erase[:, None, None] & in_rows[:, :, None] & in_cols[:, None, :]  # (N, H, W)
    out = images.copy()
    if isinstance(fill, str):
        out[mask] = rng.standard_normal((int(mask.sum()), c)).astype(images.dtype)  # (erased pixels, C)
    else:
        out[mask] = fill
    return out


def _check_rng(owner: str, rng: Any) -> None:
    """Refuse anything but a ``numpy.random.Generator``."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{owner}: rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed), made once "
                        f"per run), got {type(rng).__name__}")


def _check_probability(owner: str, p: Any) -> None:
    """Refuse a ``p`` that is not a number in ``[0, 1]``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{owner}: p must be a probability in [0, 1], got {p!r}")


def _nhwc(owner: str, images: Any) -> np.ndarray:
    """``images`` as an array, refused unless it is a 4-D (NHWC) batch."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"{owner}: expected an NHWC batch (N, H, W, C), got shape {images.shape}")
    return images


def _check_range(name: str, bounds: Any, upper: float | None) -> None:
    """Refuse a ``(low, high)`` pair that is not ``0 < low <= high`` (``<= upper`` when given)."""
    ok = (isinstance(bounds, (tuple, list)) and len(bounds) == 2
          and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
          and 0 < bounds[0] <= bounds[1] and (upper is None or bounds[1] <= upper))
    if not ok:
        limit = f" <= {upper:g}" if upper is not None else ""
        raise ValueError(f"random_erasing: {name} must be a pair (low, high) with 0 < low <= high{limit}, "
                         f"got {bounds!r}")
