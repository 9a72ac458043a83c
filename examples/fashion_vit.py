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

import sys
from pathlib import Path

import numpy as np
from fashion_common import Clock, layers_spec, load_standardized, train_epochs, training_parser, write_spec

from nnframe import data, layer, loss, model, net, optimizer, schedule, set_seed

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
    return layers_spec(build_layers())


def main(argv: list[str] | None = None) -> float:
    p = training_parser(__doc__.split("\n\n")[0], SPEC, epochs=10, max_lr=2e-3, label_smoothing=0.1)
    p.add_argument("--embed-dim", type=int, default=64)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--ff-dim", type=int, default=128)
    p.add_argument("--patch", type=int, default=7, choices=(4, 7, 14))
    p.add_argument("--dropout", type=float, default=0.0)
    args = p.parse_args(argv)
    if args.write_spec:
        write_spec(SPEC, spec())
        print(f"wrote {SPEC}")
        return 0.0

    clock = Clock()
    (x_train, y_train), (x_test, y_test) = load_standardized(args.data_dir)  # float32 (N, 28, 28, 1), standardized

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
    return train_epochs(m, lr_schedule, (x_train, y_train), (x_test, y_test), args.epochs, args.batch, rng, clock,
                        augment=data.random_horizontal_flip)


if __name__ == "__main__":
    sys.exit(0 if main() >= 0.0 else 1)
