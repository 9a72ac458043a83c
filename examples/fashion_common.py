"""What the Fashion-MNIST examples share (not an example itself): their options, the data
standardised as they train on it, the JSON spec file, and the epoch loop of the seed's three calls.

``fashion_cnn.py``, ``fashion_gru.py`` and ``fashion_vit.py`` import it from this folder
(``python examples/fashion_cnn.py`` puts the folder on ``sys.path``; tests that load an
example by its path put it there too).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nnframe import layer, net
from nnframe.atomic import atomic_write
from nnframe.data import load_fashion_mnist


def training_parser(description: str, spec: Path, epochs: int, max_lr: float,
                    label_smoothing: float) -> argparse.ArgumentParser:
    """The options every example takes, with its own defaults; the example adds its own after these.

    ``--epochs``, ``--batch`` (128), ``--max-lr`` (the one-cycle peak), ``--label-smoothing``,
    ``--seed`` (0), ``--data-dir`` and ``--write-spec`` (rewrite ``spec`` and exit).
    """
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--max-lr", type=float, default=max_lr)
    p.add_argument("--label-smoothing", type=float, default=label_smoothing)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="directory with the Fashion-MNIST IDX .gz files")
    p.add_argument("--write-spec", action="store_true", help=f"write {spec.name} and exit")
    return p


def layers_spec(layers: list[layer.Layer]) -> dict[str, Any]:
    """A stack of layers as the spec ``{"layers": [{"class": ..., "config": {...}}, ...]}``
    (what :meth:`nnframe.net.Net.from_config` and ``nnframe train --model`` read)."""
    return {"layers": net.Net(layers).get_config()["layers"]}


def write_spec(path: Path, spec: dict[str, Any], indent: int = 2) -> None:
    """Write a model spec (what ``nnframe train --model`` reads) as JSON, atomically."""
    with atomic_write(path) as f:
        f.write((json.dumps(spec, indent=indent) + "\n").encode())


def standardize_pixels(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels scaled to [0, 1] in float32, then ``(x - mean) / std`` with the training set's one mean
    and standard deviation (over all pixels), for both sets.

    Shapes:
        ``(N, 28, 28, 1)`` uint8 -> the same in float32.
    """
    x_train = x_train.astype(np.float32) / 255.0  # (60000, 28, 28, 1)
    x_test = x_test.astype(np.float32) / 255.0
    mean, std = float(x_train.mean()), float(x_train.std())
    return (x_train - mean) / std, (x_test - mean) / std


def load_standardized(data_dir: str | None) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST (:func:`nnframe.data.load_fashion_mnist`) through :func:`standardize_pixels`."""
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(data_dir)
    x_train, x_test = standardize_pixels(x_train, x_test)
    return (x_train, y_train), (x_test, y_test)


class Clock:
    """Wall-clock and CPU seconds since it was made (the examples start it before loading the data)."""

    def __init__(self) -> None:
        self.start, self.cpu_start = time.perf_counter(), time.process_time()

    def wall(self) -> float:
        """Wall-clock seconds so far."""
        return time.perf_counter() - self.start

    def cpu(self) -> float:
        """CPU seconds of this process so far."""
        return time.process_time() - self.cpu_start


def train_epochs(m: Any, lr_schedule: Any, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                 epochs: int, batch: int, rng: np.random.Generator, clock: Clock,
                 augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None) -> float:
    """Train with the seed's three calls, stepping the learning-rate schedule per batch; return the test accuracy.

    Every epoch shuffles the training set with ``rng``, runs ``len(x) // batch`` full batches
    (``augment(xb, rng)`` applied to each when given), then prints the mean training loss and the
    test accuracy (for information only: nothing is selected on it) with the time so far.
    """
    x_train, y_train = train
    x_test, y_test = test
    steps = len(x_train) // batch
    accuracy = 0.0
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(steps):
            idx = order[i * batch : (i + 1) * batch]
            xb = x_train[idx] if augment is None else augment(x_train[idx], rng)
            pred = m.forward(xb)
            batch_loss, step = m.backward(pred, y_train[idx])
            m.apply_grad(step)
            lr_schedule.step()
            total += batch_loss
        accuracy = m.evaluate(x_test, y_test, batch_size=1000)["accuracy"]
        print(f"epoch {epoch + 1:2d}/{epochs}  train loss {total / steps:.4f}  test accuracy {accuracy:.4f}  "
              f"wall {clock.wall():6.0f} s  cpu {clock.cpu():6.0f} s", flush=True)
    print(f"final test accuracy {accuracy:.4f} after {clock.wall():.0f} s wall ({clock.cpu():.0f} s CPU)", flush=True)
    return accuracy
