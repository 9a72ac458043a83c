"""Small synthetic problems and models shared by the fit, callback and checkpoint tests."""

from __future__ import annotations

import numpy as np

import nnframe
from nnframe import callbacks, layer, loss, net, optimizer
from nnframe.model import Model


def blobs(n: int = 240, features: int = 6, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs, one per class: ``x`` float32 ``(N, D)``, integer labels ``(N,)``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(classes, features))
    labels = rng.integers(0, classes, size=n)
    x = centres[labels] + rng.normal(size=(n, features))
    return x.astype(np.float32), labels.astype(np.int64)


def mlp(seed: int = 7, dropout: float = 0.25, classes: int = 3, lr: float = 0.01,
        opt: str = "Adam", features: int = 6, **model_kwargs) -> Model:
    """A built MLP with Dropout; the same ``seed`` gives the same model (weights, dropout masks)."""
    nnframe.set_seed(seed)
    layers = [layer.Dense(16), layer.ReLU(), layer.Dropout(dropout), layer.Dense(classes)]
    built = net.Net(layers).build((1, features))
    return Model(built, loss.SoftmaxCrossEntropy(), optimizer.get(opt, lr=lr), **model_kwargs)


class Scripted(callbacks.Callback):
    """Writes ``logs[key] = values[epoch]`` and snapshots the weights at every epoch end.

    Put it before the callback under test, which then sees the scripted value.
    """

    def __init__(self, values, key: str = "score") -> None:
        super().__init__()
        self.values, self.key = list(values), key
        self.weights: list[dict[str, np.ndarray]] = []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = float(self.values[epoch])
        self.weights.append(self.model.net.state_dict())


class ModeSpy(layer.Layer):
    """An identity layer that records the mode it ran in, and can be told to fail."""

    def __init__(self, name=None) -> None:
        super().__init__(name)
        self.seen: list[bool] = []
        self.fail = False

    def forward(self, inputs):
        self.seen.append(self.is_training)
        if self.fail:
            raise RuntimeError("ModeSpy told to fail")
        return inputs

    def backward(self, grad):
        return grad
