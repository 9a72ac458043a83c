"""A bidirectional GRU reading Fashion-MNIST images row by row (target: >= 0.89 test accuracy).

Each 28x28 image is a sequence of 28 steps of 28 pixels (the published GRU+SVM figure
on this task is 0.888). The model (also in ``examples/fashion_gru.json``, which
``nnframe train --model examples/fashion_gru.json`` trains)::

    reshape (28, 28, 1) -> (28, 28)              28 steps of 28 pixels
    GRU 128, bidirectional                       -> (256,): both directions' final states
    dropout 0.2 - dense 10

Training: Adam with a one-cycle learning rate (peak 3e-3), gradient clipping at global
norm 5, batches of 128, and the seed's three calls. Pixels are standardized with the
training set's mean and standard deviation. The test accuracy is printed after every
epoch for information only (nothing is selected on it).

    python examples/fashion_gru.py                 # 12 epochs
    python examples/fashion_gru.py --epochs 1      # a quick look
    python examples/fashion_gru.py --write-spec    # rewrite examples/fashion_gru.json from build_layers()
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from fashion_common import Clock, layers_spec, load_standardized, train_epochs, training_parser, write_spec

from nnframe import layer, loss, model, net, optimizer, schedule, set_seed

SPEC = Path(__file__).with_suffix(".json")


def build_layers() -> list[layer.Layer]:
    """The row-by-row GRU's layers (NHWC input ``(N, 28, 28, 1)``, 10 logits out)."""
    return [
        layer.Reshape((28, 28)),  # (N, T=28 rows, C=28 pixels)
        layer.GRU(128, bidirectional=True),  # (N, 2*128): final state of each direction
        layer.Dropout(0.2),
        layer.Dense(10),
    ]


def spec() -> dict:
    """The model as ``{"layers": [{"class": ..., "config": {...}}, ...]}``."""
    return layers_spec(build_layers())


def main(argv: list[str] | None = None) -> float:
    p = training_parser(__doc__.split("\n\n")[0], SPEC, epochs=12, max_lr=3e-3, label_smoothing=0.0)
    p.add_argument("--clip-norm", type=float, default=5.0)
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
                    optimizer.Adam(lr=args.max_lr, clip_norm=args.clip_norm))
    steps = len(x_train) // args.batch
    lr_schedule = schedule.OneCycleLR(m.optimizer, max_lr=args.max_lr, total_steps=args.epochs * steps,
                                      cycle_momentum=False)
    print(f"{len(x_train)} training / {len(x_test)} test images; {args.epochs} epochs of {steps} batches "
          f"of {args.batch}", flush=True)
    return train_epochs(m, lr_schedule, (x_train, y_train), (x_test, y_test), args.epochs, args.batch, rng, clock)


if __name__ == "__main__":
    sys.exit(0 if main() >= 0.0 else 1)
