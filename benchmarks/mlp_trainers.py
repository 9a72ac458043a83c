"""The MLP suite's three implementations of the seed's model and the data they share.

* :class:`NnframeTrainer`: the seed's three calls in nnframe, with float64 one-hot targets;
* :class:`TorchTrainer`: ``nn.Sequential`` + ``torch.optim.Adam`` (optionally fused);
* :class:`NumpyTrainer`: the floor, a float32 loop written by hand.

All start from :func:`initial_weights` and train on :class:`Data` from :func:`load_data`
(Fashion-MNIST's files, or synthetic data of its shape); :mod:`benchmarks.mlp` times them.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

LAYER_SIZES = (784, 200, 100, 70, 30, 10)
NUM_CLASSES = LAYER_SIZES[-1]
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FRAMEWORKS = ("nnframe", "pytorch", "pytorch_fused", "numpy")


# --------------------------------------------------------------------------- data
@dataclass
class Data:
    """Training and test arrays, shared by every framework.

    Shapes:
        x_train ``(N, 784)`` float32 in [0, 1]; labels_train ``(N,)`` int64;
        onehot_train ``(N, 10)`` float64 (the seed's ``np.eye(10)[labels]``);
        x_test ``(M, 784)`` float32; labels_test ``(M,)`` int64.
    """

    x_train: np.ndarray
    labels_train: np.ndarray
    onehot_train: np.ndarray
    x_test: np.ndarray
    labels_test: np.ndarray
    source: str


def read_idx(path: str, limit: int | None = None, scale: bool = False) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format) into an array.

    Args:
        path: the ``.gz`` file.
        limit: read at most this many items (rows).
        scale: return float32 pixels divided by 255 (decoded chunk by chunk, so
            no uint8 copy of the whole file is ever held) instead of uint8.

    Shapes:
        ``(N, *dims)`` as the header says, e.g. ``(60000, 28, 28)`` or ``(60000,)``.

    Raises:
        ValueError: if the header is not an unsigned-byte IDX header.
    """
    with gzip.open(path, "rb") as f:
        zero, dtype_code, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"{path}: expected an unsigned-byte IDX file, got magic {zero:#x} {dtype_code:#x}")
        dims = list(struct.unpack(f">{ndim}I", f.read(4 * ndim)))
        if limit is not None:
            dims[0] = min(dims[0], limit)
        out = np.empty(dims, dtype=np.float32 if scale else np.uint8)
        flat = out.reshape(-1)
        chunk = 1 << 20
        for start in range(0, flat.size, chunk):
            stop = min(start + chunk, flat.size)
            raw = np.frombuffer(f.read(stop - start), dtype=np.uint8)
            if raw.size != stop - start:
                raise ValueError(f"{path}: file ends early, expected {flat.size} values")
            if scale:
                np.multiply(raw, np.float32(1.0 / 255.0), out=flat[start:stop])
            else:
                flat[start:stop] = raw
    return out


def load_data(
    data_dir: str | None = FASHION_DIR,
    synthetic: bool = False,
    train_samples: int | None = None,
    test_samples: int | None = None,
    seed: int = 0,
) -> Data:
    """Fashion-MNIST from ``data_dir`` when its files are there, else synthetic data of its shape.

    Args:
        data_dir: folder with the four ``*-idx?-ubyte.gz`` files.
        synthetic: use random data even when the files exist.
        train_samples, test_samples: keep only this many samples (default: 60000
            and 10000, all of Fashion-MNIST).
        seed: seed of the synthetic data.
    """
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    paths = [os.path.join(data_dir or "", name) for name in names]
    if not synthetic and data_dir and all(os.path.exists(p) for p in paths):
        x_train = read_idx(paths[0], train_samples, scale=True).reshape(-1, LAYER_SIZES[0])
        labels_train = read_idx(paths[1], train_samples).astype(np.int64)
        x_test = read_idx(paths[2], test_samples, scale=True).reshape(-1, LAYER_SIZES[0])
        labels_test = read_idx(paths[3], test_samples).astype(np.int64)
        source = f"Fashion-MNIST ({data_dir})"
    else:
        rng = np.random.default_rng(seed)
        n_train = 60000 if train_samples is None else train_samples
        n_test = 10000 if test_samples is None else test_samples
        x_train = rng.random((n_train, LAYER_SIZES[0]), dtype=np.float32)
        labels_train = rng.integers(0, NUM_CLASSES, n_train)
        x_test = rng.random((n_test, LAYER_SIZES[0]), dtype=np.float32)
        labels_test = rng.integers(0, NUM_CLASSES, n_test)
        source = "synthetic (random pixels and labels, Fashion-MNIST's shape)"
    onehot_train = np.eye(NUM_CLASSES)[labels_train]  # float64, as the seed's get_one_hot
    return Data(x_train, labels_train, onehot_train, x_test, labels_test, source)


# ---------------------------------------------------------------------- model maths
def initial_weights(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Xavier-uniform ``w`` ``(D_in, D_out)`` and zero ``b`` per layer, float32 (shared start)."""
    rng = np.random.default_rng(seed)
    weights = []
    for d_in, d_out in zip(LAYER_SIZES[:-1], LAYER_SIZES[1:], strict=True):
        limit = math.sqrt(6.0 / (d_in + d_out))
        w = rng.uniform(-limit, limit, (d_in, d_out)).astype(np.float32)
        weights.append((w, np.zeros(d_out, dtype=np.float32)))
    return weights


def train_flops_per_step(batch: int) -> int:
    """Floating-point operations of the matrix products in one training step.

    Forward ``x @ w`` and backward ``x.T @ g`` for every layer, ``g @ w.T`` for all
    but the first (2 flops per multiply-add); element-wise work is not counted.
    """
    products = [d_in * d_out for d_in, d_out in zip(LAYER_SIZES[:-1], LAYER_SIZES[1:], strict=True)]
    return 2 * batch * (2 * sum(products) + sum(products[1:]))


def inference_flops(samples: int) -> int:
    """Floating-point operations of the forward matrix products for ``samples`` inputs."""
    return 2 * samples * sum(a * b for a, b in zip(LAYER_SIZES[:-1], LAYER_SIZES[1:], strict=True))


def batch_slices(n: int, batch: int, drop_last: bool) -> list[slice]:
    """Slices of ``batch`` consecutive samples out of ``n``, in order (the last partial one dropped when
    ``drop_last``, as the seed's script does)."""
    stop = n - n % batch if drop_last else n
    return [slice(s, min(s + batch, n)) for s in range(0, stop, batch)]


# ------------------------------------------------------------------------- trainers
class NnframeTrainer:
    """The seed's model in nnframe, trained with the seed's three calls."""

    name = "nnframe"

    def __init__(self, weights: list[tuple[np.ndarray, np.ndarray]], lr: float) -> None:
        from nnframe import layer, loss, model, net, optimizer  # noqa: PLC0415 - measured per framework

        layers: list[Any] = []
        for _, b in weights:
            layers += [layer.Dense(b.shape[0]), layer.ReLU()]
        mlp = net.Net(layers[:-1])
        mlp.build((1, LAYER_SIZES[0]))
        mlp.load_state_dict({f"{2 * i}.{k}": v for i, (w, b) in enumerate(weights)
                             for k, v in (("w", w), ("b", b))})
        self.model = model.Model(mlp, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=lr))

    def train_epoch(self, data: Data, batch: int, limit: int | None = None) -> float:
        m = self.model
        m.net.train()
        x, y = data.x_train, data.onehot_train
        loss_value = float("nan")
        for rows in batch_slices(limit or len(x), batch, drop_last=True):
            pred = m.forward(x[rows])
            loss_value, step = m.backward(pred, y[rows])
            m.apply_grad(step)
        return loss_value

    def predict(self, x: np.ndarray, batch: int) -> list[np.ndarray]:
        self.model.net.eval()
        return [self.model.forward(x[rows]) for rows in batch_slices(len(x), batch, drop_last=False)]


class TorchTrainer:
    """The same MLP as PyTorch users write it: ``nn.Sequential``, ``optim.Adam``, ``cross_entropy``."""

    name = "pytorch"

    def __init__(self, weights: list[tuple[np.ndarray, np.ndarray]], lr: float, threads: int,
                 fused: bool = False) -> None:
        import torch  # noqa: PLC0415 - measured per framework

        self.name = "pytorch_fused" if fused else "pytorch"
        torch.set_num_threads(threads)
        self.torch = torch
        modules: list[Any] = []
        for w, b in weights:
            linear = torch.nn.Linear(w.shape[0], w.shape[1])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w.T))
                linear.bias.copy_(torch.from_numpy(b))
            modules += [linear, torch.nn.ReLU()]
        self.net = torch.nn.Sequential(*modules[:-1])
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, fused=fused)
        self._data: tuple[Any, Any, Any] | None = None

    def _tensors(self, data: Data) -> tuple[Any, Any]:
        if self._data is None or self._data[0] is not data:
            torch = self.torch
            self._data = (data, torch.from_numpy(data.x_train), torch.from_numpy(data.labels_train))
        return self._data[1], self._data[2]

    def train_epoch(self, data: Data, batch: int, limit: int | None = None) -> float:
        cross_entropy = self.torch.nn.functional.cross_entropy
        x, y = self._tensors(data)
        net, opt = self.net.train(), self.optimizer
        loss_value = float("nan")
        for rows in batch_slices(limit or len(x), batch, drop_last=True):
            opt.zero_grad(set_to_none=True)
            loss = cross_entropy(net(x[rows]), y[rows])
            loss.backward()
            opt.step()
            loss_value = loss.item()
        return loss_value

    def predict(self, x: np.ndarray, batch: int) -> list[np.ndarray]:
        torch = self.torch
        net = self.net.eval()
        xt = torch.from_numpy(x)
        with torch.inference_mode():
            return [net(xt[rows]).numpy() for rows in batch_slices(len(x), batch, drop_last=False)]


class NumpyTrainer:
    """The floor: the MLP, its softmax cross-entropy and Adam by hand in float32 NumPy.

    Parameters, gradients and Adam moments are flat vectors (each layer's ``w``/``b``
    are views); activations and gradients live in buffers allocated once per batch
    size; the first layer computes no input gradient.
    """

    name = "numpy"

    def __init__(self, weights: list[tuple[np.ndarray, np.ndarray]], lr: float,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        shapes = [s for w, b in weights for s in (w.shape, b.shape)]
        sizes = [math.prod(s) for s in shapes]
        total = sum(sizes)
        self.params = np.empty(total, dtype=np.float32)
        self.grads = np.zeros(total, dtype=np.float32)
        self.m = np.zeros(total, dtype=np.float32)
        self.v = np.zeros(total, dtype=np.float32)
        self.tmp = np.empty(total, dtype=np.float32)
        params, grads, start = [], [], 0
        for shape, size in zip(shapes, sizes, strict=True):
            params.append(self.params[start:start + size].reshape(shape))
            grads.append(self.grads[start:start + size].reshape(shape))
            start += size
        self.w, self.b = params[0::2], params[1::2]
        self.dw, self.db = grads[0::2], grads[1::2]
        for (w, b), w_view, b_view in zip(weights, self.w, self.b, strict=True):
            w_view[...] = w
            b_view[...] = b
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self._buffers: dict[int, dict[str, list[np.ndarray]]] = {}

    def _buffers_for(self, n: int) -> dict[str, list[np.ndarray]]:
        if n not in self._buffers:
            outs = [np.empty((n, d), dtype=np.float32) for d in LAYER_SIZES[1:]]
            self._buffers[n] = {
                "out": outs,  # out[i]: layer i's output (after ReLU but for the last)
                "grad": [np.empty((n, d), dtype=np.float32) for d in LAYER_SIZES[1:-1]],
                "mask": [np.empty((n, d), dtype=bool) for d in LAYER_SIZES[1:-1]],
                "row": [np.empty((n, 1), dtype=np.float32)],
            }
        return self._buffers[n]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits for ``x`` ``(N, 784)``; keeps every layer's output in the buffers."""
        outs = self._buffers_for(len(x))["out"]
        h = x
        last = len(self.w) - 1
        for i, (w, b, out) in enumerate(zip(self.w, self.b, outs, strict=True)):
            np.matmul(h, w, out=out)
            out += b
            if i < last:
                np.maximum(out, 0.0, out=out)
            h = out
        return h

    def train_step(self, x: np.ndarray, labels: np.ndarray) -> float:
        """One step: forward, softmax cross-entropy, backward, Adam; returns the loss."""
        z = self.forward(x)
        loss = self.loss_and_grad(z, labels)
        self.backward(x, z)
        self.adam()
        return loss

    def loss_and_grad(self, z: np.ndarray, labels: np.ndarray) -> float:
        """Mean softmax cross-entropy of logits ``z`` ``(N, K)``; ``z`` becomes its gradient, in place."""
        n = len(z)
        row = self._buffers_for(n)["row"][0]
        rows = np.arange(n)
        np.max(z, axis=1, keepdims=True, out=row)
        z -= row
        picked = z[rows, labels]  # shifted logit of the true class, (N,)
        np.exp(z, out=z)
        np.sum(z, axis=1, keepdims=True, out=row)
        loss = float(np.log(row).sum() - picked.sum()) / n
        row *= n  # softmax / N in one division
        z /= row
        z[rows, labels] -= 1.0 / n  # dloss/dlogits = (p - onehot) / N
        return loss

    def backward(self, x: np.ndarray, g: np.ndarray) -> None:
        """Fill the flat gradient from ``g`` = dloss/dlogits; no input gradient for layer 0."""
        bufs = self._buffers_for(len(x))
        outs = bufs["out"]
        for i in range(len(self.w) - 1, -1, -1):
            h = outs[i - 1] if i else x
            np.matmul(h.T, g, out=self.dw[i])
            np.sum(g, axis=0, out=self.db[i])
            if i:
                gin, mask = bufs["grad"][i - 1], bufs["mask"][i - 1]
                np.matmul(g, self.w[i].T, out=gin)
                np.greater(h, 0.0, out=mask)
                np.multiply(gin, mask, out=gin)
                g = gin

    def adam(self) -> None:
        """One Adam update of the flat parameters (PyTorch's formula, 12 passes over the buffers)."""
        self.t += 1
        b1, b2, g, m, v, tmp = self.beta1, self.beta2, self.grads, self.m, self.v, self.tmp
        bc1, bc2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        m *= b1
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        np.sqrt(v, out=tmp)
        tmp += self.eps * math.sqrt(bc2)
        np.divide(m, tmp, out=tmp)
        tmp *= -self.lr * math.sqrt(bc2) / bc1
        self.params += tmp

    def train_epoch(self, data: Data, batch: int, limit: int | None = None) -> float:
        x, labels = data.x_train, data.labels_train
        loss_value = float("nan")
        for rows in batch_slices(limit or len(x), batch, drop_last=True):
            loss_value = self.train_step(x[rows], labels[rows])
        return loss_value

    def predict(self, x: np.ndarray, batch: int) -> list[np.ndarray]:
        # copies: the output buffer is reused by the next batch of the same size
        return [self.forward(x[rows]).copy() for rows in batch_slices(len(x), batch, drop_last=False)]


def make_trainer(name: str, weights: list[tuple[np.ndarray, np.ndarray]], lr: float, threads: int):
    """Build the trainer called ``name`` (one of :data:`FRAMEWORKS`)."""
    if name == "nnframe":
        return NnframeTrainer(weights, lr)
    if name in ("pytorch", "pytorch_fused"):
        return TorchTrainer(weights, lr, threads, fused=name == "pytorch_fused")
    if name == "numpy":
        return NumpyTrainer(weights, lr)
    raise ValueError(f"unknown framework {name!r}; expected one of {FRAMEWORKS}")


def accuracy(outputs: list[np.ndarray], labels: np.ndarray) -> float:
    """Fraction of rows whose arg-max matches ``labels``."""
    preds = np.concatenate([np.asarray(o).argmax(axis=1) for o in outputs])
    return float((preds == labels).mean())
