"""A small CNN with convolution, pooling and BatchNorm on Fashion-MNIST (target: >= 0.93 test accuracy).

The model (also in ``examples/fashion_cnn.json``, the spec ``Net.from_config`` reads)::

    conv 3x3x32 (same) - max-pool 2 - BatchNorm - ReLU       28x28x1 -> 14x14x32
    conv 3x3x64 (valid) - max-pool 2 - BatchNorm - ReLU      -> 12x12x64 -> 6x6x64
    flatten - dropout 0.25 - dense 128 - ReLU - dropout 0.25 - dense 10

Pooling comes right after each convolution, so BatchNorm and ReLU see a quarter of the values:
max-pooling commutes with ReLU and with BatchNorm's per-channel scaling (for gamma > 0); only
the batch statistics are taken after pooling. Training: Adam with a one-cycle learning rate
(peak 3e-3), batches of 128, label smoothing 0.1, random horizontal flips, and the seed's
three calls ``pred = m.forward(x); l, step = m.backward(pred, y); m.apply_grad(step)``. Pixels are
standardized with the training set's mean and standard deviation. The test accuracy is
printed after every epoch for information only (nothing is selected on it).

    python examples/fashion_cnn.py                 # 15 epochs
    python examples/fashion_cnn.py --epochs 2      # a quick look
    python examples/fashion_cnn.py --write-spec    # rewrite examples/fashion_cnn.json from build_layers()
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from fashion_common import Clock, layers_spec, load_standardized, train_epochs, training_parser, write_spec

from nnframe import data, layer, loss, model, net, optimizer, schedule, set_seed

SPEC = Path(__file__).with_suffix(".json")


def build_layers() -> list[layer.Layer]:
    """The CNN's layers (NHWC input ``(N, 28, 28, 1)``, 10 logits out)."""
    return [
        layer.Conv2D(32, 3, padding="same", bias=False),  # BatchNorm's beta is the bias
        layer.MaxPool2D(2),
        layer.BatchNorm(),
        layer.ReLU(),
        layer.Conv2D(64, 3, padding="valid", bias=False),
        layer.MaxPool2D(2),
        layer.BatchNorm(),
        layer.ReLU(),
        layer.Flatten(),
        layer.Dropout(0.25),
        layer.Dense(128),
        layer.ReLU(),
        layer.Dropout(0.25),
        layer.Dense(10),
    ]


def spec() -> dict:
    """The model as ``{"layers": [{"class": ..., "config": {...}}, ...]}``."""
    return layers_spec(build_layers())


def main(argv: list[str] | None = None) -> float:
    p = training_parser(__doc__.split("\n\n")[0], SPEC, epochs=15, max_lr=3e-3, label_smoothing=0.1)
    args = p.parse_args(argv)
    if args.write_spec:
        write_spec(SPEC, spec())
        print(f"wrote {SPEC}")
        return 0.0

    clock = Clock()
    (x_train, y_train), (x_test, y_test) = load_standardized(args.data_dir)  # float32 (N, 28, 28, 1), standardized

    set_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    m = model.Model(net.Net(build_layers()), loss.SoftmaxCrossEntropy(label_smoothing=args.label_smoothing),
                    optimizer.Adam(lr=args.max_lr))
    steps = len(x_train) // args.batch
    lr_schedule = schedule.OneCycleLR(m.optimizer, max_lr=args.max_lr, total_steps=args.epochs * steps,
                                      cycle_momentum=False)  # the published run kept Adam's beta1 at 0.9
    print(f"{len(x_train)} training / {len(x_test)} test images; {args.epochs} epochs of {steps} batches "
          f"of {args.batch}", flush=True)
    return train_epochs(m, lr_schedule, (x_train, y_train), (x_test, y_test), args.epochs, args.batch, rng, clock,
                        augment=data.random_horizontal_flip)


if __name__ == "__main__":
    sys.exit(0 if main() >= 0.0 else 1)
