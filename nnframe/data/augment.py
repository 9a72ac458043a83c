"""Random augmentation of image batches (host-side, NHWC), drawn from a generator you pass in.

::

    rng = np.random.default_rng(0)
    for xb, yb in data.batches(x_train, y_train, batch_size=128, shuffle=True, rng=rng):
        pred = model.forward(data.random_horizontal_flip(xb, rng))   # a random half mirrored
        xb = data.random_crop(xb, 2, rng, fill=0.0)   # each image shifted by up to 2 pixels

Both are the standard augmentations of small-image classifiers (He et al., 2015, section
4.2: "4 pixels are padded on each side, and a 32x32 crop is randomly sampled from the
padded image or its horizontal flip").
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
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"random_horizontal_flip: rng must be a numpy.random.Generator (e.g. "
                        f"np.random.default_rng(seed), made once per run), got {type(rng).__name__}")
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"random_horizontal_flip: p must be a probability in [0, 1], got {p!r}")
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"random_horizontal_flip: expected an NHWC batch (N, H, W, C), got shape {images.shape}")
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
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"random_crop: rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed), "
                        f"made once per run), got {type(rng).__name__}")
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError(f"random_crop: padding must be an integer >= 0, got {padding!r}")
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"random_crop: expected an NHWC batch (N, H, W, C), got shape {images.shape}")
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
