"""A small ResNet on Fashion-MNIST, built with the functional API (target: >= 0.94 test accuracy).

The model (also in ``examples/fashion_resnet.json``, the graph spec ``nnframe train --model`` reads)::

    conv 3x3x32 - BatchNorm - ReLU - max-pool 2                         28x28x1 -> 14x14x32
    basic block 32:  [conv 3x3 - BN - ReLU - conv 3x3 - BN] + x - ReLU   14x14x32
    basic block 64, stride 2, 1x1 projection shortcut                   -> 7x7x64
    basic block 64                                                      7x7x64
    global average pool - dense 10

A basic block is ``Residual(body, shortcut)`` followed by ``ReLU`` (He et al., 2015). The
stem pools at once: a 3x3 convolution over 28x28 maps with 32 channels costs far more in
backward than the same at 14x14, and the stem's features are cheap. Training: Adam with a
one-cycle learning rate (peak 3e-3), batches of 128, label smoothing 0.1, random
horizontal flips, standardized pixels; the seed's three calls per step. Test accuracy is
printed after every epoch for information only (nothing is selected on it).

    python examples/fashion_resnet.py                 # 12 epochs
    python examples/fashion_resnet.py --epochs 1 --limit 2048   # a quick look
    python examples/fashion_resnet.py --write-spec    # rewrite examples/fashion_resnet.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from nnframe import Graph, Input, layer, loss, model, optimizer, schedule, set_seed
from nnframe.atomic import atomic_write
from nnframe.data import load_fashion_mnist
from nnframe.net import Net

SPEC = Path(__file__).with_suffix(".json")


def basic_block(x, channels: int, stride: int = 1):
    """``ReLU(body(x) + shortcut(x))``; a strided 1x1 conv + BN shortcut when the shape changes."""
    body = Net([layer.Conv2D(channels, 3, stride=stride, padding=1, bias=False), layer.BatchNorm(), layer.ReLU(),
                layer.Conv2D(channels, 3, padding=1, bias=False), layer.BatchNorm()])
    shortcut = None
    if stride != 1 or x.shape[-1] != channels:
        shortcut = Net([layer.Conv2D(channels, 1, stride=stride, bias=False), layer.BatchNorm()])
    return layer.ReLU()(layer.Residual(body, shortcut)(x))


def build_graph() -> Graph:
    """The ResNet as a :class:`~nnframe.graph.Graph` (NHWC input ``(N, 28, 28, 1)``, 10 logits out)."""
    image = Input(shape=(28, 28, 1), name="image")
    x = layer.Conv2D(32, 3, padding=1, bias=False)(image)
    x = layer.MaxPool2D(2)(layer.ReLU()(layer.BatchNorm()(x)))
    x = basic_block(x, 32)
    x = basic_block(x, 64, stride=2)
    x = basic_block(x, 64)
    logits = layer.Dense(10)(layer.GlobalAvgPool2D()(x))
    return Graph(inputs=image, outputs=logits)


def write_spec(path: Path) -> None:
    """Write the graph's config as JSON, atomically."""
    with atomic_write(path) as f:
        f.write((json.dumps(build_graph().get_config(), indent=1) + "\n").encode())


def flip_half(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror a random half of an NHWC batch left-right."""
    flip = rng.random(len(x)) < 0.5
    out = x.copy()
    out[flip] = x[flip, :, ::-1, :]
    return out


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--max-lr", type=float, default=3e-3)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="train on the first N images only (a quick look)")
    p.add_argument("--save", default=None, help="write the trained model's checkpoint here")
    p.add_argument("--data-dir", default=None, help="directory with the Fashion-MNIST IDX .gz files")
    p.add_argument("--write-spec", action="store_true", help=f"write {SPEC.name} and exit")
    args = p.parse_args(argv)
    if args.write_spec:
        write_spec(SPEC)
        print(f"wrote {SPEC}")
        return 0.0

    start, cpu_start = time.perf_counter(), time.process_time()
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(args.data_dir)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    x_train = x_train.astype(np.float32) / 255.0  # (60000, 28, 28, 1)
    x_test = x_test.astype(np.float32) / 255.0
    mean, std = float(x_train.mean()), float(x_train.std())
    x_train = (x_train - mean) / std
    x_test = (x_test - mean) / std

    set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    m = model.Model(build_graph(), loss.SoftmaxCrossEntropy(label_smoothing=args.label_smoothing),
                    optimizer.Adam(lr=args.max_lr))
    steps = len(x_train) // args.batch
    lr_schedule = schedule.OneCycleLR(m.optimizer, max_lr=args.max_lr, total_steps=args.epochs * steps,
                                      cycle_momentum=False)
    states = m.net.state_shapes()  # shapes inferred when the graph was made; nothing allocated yet
    count = sum(int(np.prod(states[name])) for name in m.net.param_names)
    print(f"{len(x_train)} training / {len(x_test)} test images; {args.epochs} epochs of {steps} batches "
          f"of {args.batch}; {count:,} parameters", flush=True)
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
    if args.save:
        m.save(args.save)
    return accuracy


if __name__ == "__main__":
    sys.exit(0 if main() >= 0.0 else 1)
