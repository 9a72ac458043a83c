"""A tiny trained image classifier checkpoint for the ``nnframe serve`` tests (no real data needed).

Class ``k`` of the synthetic set is a bright horizontal band at rows ``2k + 4 .. 2k + 6`` on black,
so a picture of a band drawn at the right height is recognisable after fitting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnframe import data, layer, loss, model, net, optimizer
from nnframe import random as nn_random
from nnframe.data import CLASS_NAMES


def band_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``(N, 28, 28, 1)``: image ``i`` has a bright band at the rows of class ``labels[i]``."""
    images = rng.integers(0, 40, size=(len(labels), 28, 28, 1)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 4: 2 * k + 7, 3:25] = 230
    return images


def make_checkpoint(path: Path, seed: int = 0) -> Path:
    """Train the tiny classifier for three epochs, record test figures as ``nnframe train`` does, save."""
    nn_random.set_seed(seed)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=600)
    pixels = band_images(labels, rng)
    x, mean, std = data.standardize(pixels, dtype="float32")
    m = model.Model(net.Net([layer.Flatten(), layer.Dense(32), layer.ReLU(), layer.Dense(10)]),
                    loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=3e-3))
    m.fit(x[:500], labels[:500], epochs=3, batch_size=50, validation_data=(x[500:], labels[500:]), verbose=0, rng=seed)
    results = m.evaluate(x[500:], labels[500:])
    m.metadata = {"dataset": "fashion-mnist", "class_names": list(CLASS_NAMES["fashion-mnist"]),
                  "preprocessing": {"standardize": {"mean": mean.tolist(), "std": std.tolist()}},
                  "test": {**{k: float(v) for k, v in results.items()}, "samples": 100}}
    m.save(path)
    return path
