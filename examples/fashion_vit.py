"""A tiny Vision Transformer on Fashion-MNIST (target: >= 0.88 test accuracy).

The model (also in ``examples/fashion_vit.json``, so ``nnframe train --model
examples/fashion_vit.json`` trains the same architecture with the CLI's constant learning rate)::

    Conv2D(E, 7, stride=7)            28x28x1 -> 4x4xE: one token per 7x7 patch
    Reshape((16, E)) + PositionalEmbedding(16)        -> 16 tokens of width E
    TransformerEncoderBlock x depth   pre-norm, heads, MLP of width ff, ReLU
    LayerNorm, Reshape((4, 4, E)), GlobalAvgPool2D    mean pooling over the 16 tokens
    Dense(10)

Training: Adam with a one-cycle learning rate, batches of 128, label smoothing 0.1,
random horizontal flips, and the seed's three calls. Pixels are standardized with the
training set's mean and standard deviation. The test accuracy is printed after every
epoch for information only (nothing is selected on it).

    python examples/fashion_vit.py                 # the defaults below
    python examples/fashion_vit.py --epochs 1      # a quick look
    python examples/fashion_vit.py --write-spec    # rewrite examples/fashion_vit.json from build_layers()
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from nnframe import layer, loss, model, net, optimizer, schedule, set_seed
from nnframe.atomic import atomic_write
from nnframe.data import load_fashion_mnist

SPEC = Path(__file__).with_suffix(".json")


def build_layers(embed_dim: int = 64, depth: int = 4, heads: int = 4, ff_dim: int = 128, patch: int = 7,
                 dropout: float = 0.0) -> list[layer.Layer]:
    """The ViT's layers (NHWC input ``(N, 28, 28, 1)``, 10 logits out)."""
    grid = 28 // patch
    tokens = grid * grid
    return [
        layer.Conv2D(embed_dim, patch, stride=patch),  # (N, grid, grid, E): patch embeddings
        layer.Reshape((tokens, embed_dim)),  # (N, T, E)
        layer.PositionalEmbedding(tokens),
        *(layer.TransformerEncoderBlock(embed_dim, heads, ff_dim=ff_dim, dropout=dropout) for _ in range(depth)),
        layer.LayerNorm(),
        layer.Reshape((grid, grid, embed_dim)),  # back to the patch grid, for the mean over tokens
        layer.GlobalAvgPool2D(),  # (N, E)
        layer.Dense(10),
    ]


def spec() -> dict:
    """The model as ``{"layers": [{"class": ..., "config": {...}}, ...]}``."""
    return {"layers": net.Net(build_layers()).get_config()["layers"]}


def write_spec(path: Path) -> None:
    """Write :func:`spec` as JSON, atomically."""
    with atomic_write(path) as f:
        f.write((json.dumps(spec(), indent=2) + "\n").encode())


def flip_half(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror a random half of an NHWC batch left-right."""
    flip = rng.random(len(x)) < 0.5
    out = x.copy()
    out[flip] = x[flip, :, ::-1, :]
    return out


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--max-lr", type=float, default=2e-3)
    p.add_argument("--embed-dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ff-dim", type=int, default=128)
    p.add_argument("--patch", type=int, default=7, choices=(4, 7, 14))
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="directory with the Fashion-MNIST IDX .gz files")
    p.add_argument("--write-spec", action="store_true", help=f"write {SPEC.name} and exit")
    args = p.parse_args(argv)
    if args.write_spec:
        write_spec(SPEC)
        print(f"wrote {SPEC}")
        return 0.0

    start, cpu_start = time.perf_counter(), time.process_time()
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.data_dir)
    x_train = x_train.astype(np.float32) / 255.0  # (60000, 28, 28, 1)
    x_test = x_test.astype(np.float32) / 255.0
    mean, std = float(x_train.mean()), float(x_train.std())
    x_train = (x_train - mean) / std
    x_test = (x_test - mean) / std

    set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    layers = build_layers(args.embed_dim, args.depth, args.heads, args.ff_dim, args.patch, args.dropout)
    m = model.Model(net.Net(layers), loss.SoftmaxCrossEntropy(label_smoothing=args.label_smoothing),
                    optimizer.Adam(lr=args.max_lr))
    steps = len(x_train) // args.batch
    lr_schedule = schedule.OneCycleLR(m.optimizer, max_lr=args.max_lr, total_steps=args.epochs * steps)
    m.net.build((1, 28, 28, 1))
    print(f"ViT: {m.net.num_params} parameters; {vars(args)}")
    print(f"{len(x_train)} training / {len(x_test)} test images; {args.epochs} epochs of {steps} batches "
          f"of {args.batch}", flush=True)
    accuracy = 0.0
    for epoch in range(args.epochs):
        order = rng.permutation(len(x_train))
        total = 0.0
        for i in range(steps):
            idx = order[i * args.batch : (i + 1) * args.batch]
            pred = m.forward(flip_half(x_train[idx], rng))
            batch_loss, step = m.backward(pred, y_train[idx])
            m.apply_grad(step)
            lr_schedule.step()
            total += batch_loss
        accuracy = m.evaluate(x_test, y_test, batch_size=1000)["accuracy"]
        print(f"epoch {epoch + 1:2d}/{args.epochs}  train loss {total / steps:.4f}  test accuracy {accuracy:.4f}  "
              f"wall {time.perf_counter() - start:6.0f} s  cpu {time.process_time() - cpu_start:6.0f} s",
              flush=True)
    print(f"final test accuracy {accuracy:.4f} after {time.perf_counter() - start:.0f} s wall "
          f"({time.process_time() - cpu_start:.0f} s CPU)", flush=True)
    return accuracy


if __name__ == "__main__":
    sys.exit(0 if main() >= 0.0 else 1)
