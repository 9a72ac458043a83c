"""Random augmentation of image batches (host-side, NHWC), drawn from a generator you pass in.

::

    rng = np.random.default_rng(0)
    for xb, yb in data.batches(x_train, y_train, batch_size=128, shuffle=True, rng=rng):
        pred = model.forward(data.random_horizontal_flip(xb, rng))   # a random half mirrored
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
