"""The cases of the layer conformance test (tests/test_conformance.py).

One :class:`Case` per layer configuration; each family of layers adds its cases
to its own list, all collected in :data:`ALL_CASES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nnframe import layer


@dataclass(frozen=True)
class Case:
    """A layer configuration to check.

    Attributes:
        id: test id.
        make: builds a fresh, unbuilt layer (called under the dtype being tested).
        input_shape: batch shape fed to it (a list of shapes: a list of arrays, for merges).
        kinks: input values where the layer is not differentiable (kept away from).
        train_differs: whether output differs between train and eval mode.
        gradcheck: extra keyword arguments for ``nnframe.gradcheck``.
        output_shape: expected output shape, if it is worth pinning.
        ids: for layers that take integer ids (Embedding): the input is drawn from
            ``0 .. ids - 1`` instead of a float normal sample.
    """

    id: str
    make: Callable[[], Any]
    input_shape: tuple[int, ...] | list[tuple[int, ...]]
    kinks: tuple[float, ...] = ()
    train_differs: bool = False
    gradcheck: dict = field(default_factory=dict)
    output_shape: tuple[int, ...] | None = None
    ids: int | None = None


CORE_CASES = [
    Case("Dense", lambda: layer.Dense(3), (4, 5), output_shape=(4, 3)),
    Case("Dense-nobias", lambda: layer.Dense(2, bias=False), (3, 4), output_shape=(3, 2)),
    Case("Dense-batch1", lambda: layer.Dense(3), (1, 2), output_shape=(1, 3)),
    Case("Dense-NTC", lambda: layer.Dense(3), (2, 4, 5), output_shape=(2, 4, 3)),  # any leading axes
    Case("Dense-4d-nobias", lambda: layer.Dense(2, bias=False), (2, 3, 2, 4), output_shape=(2, 3, 2, 2)),
    Case("Identity", layer.Identity, (3, 4), output_shape=(3, 4)),
    Case("ReLU", layer.ReLU, (3, 4), kinks=(0.0,), output_shape=(3, 4)),
    Case("LeakyReLU", lambda: layer.LeakyReLU(0.1), (3, 4), kinks=(0.0,)),
    Case("ELU", lambda: layer.ELU(0.7), (3, 4), kinks=(0.0,)),
    Case("SELU", layer.SELU, (3, 4), kinks=(0.0,)),
    Case("GELU", layer.GELU, (3, 4)),
    Case("GELU-tanh", lambda: layer.GELU("tanh"), (3, 4)),
    Case("SiLU", layer.SiLU, (3, 4)),
    Case("Sigmoid", layer.Sigmoid, (3, 4)),
    Case("Tanh", layer.Tanh, (3, 4)),
    Case("Softplus", lambda: layer.Softplus(2.0), (3, 4)),
    Case("Softmax", layer.Softmax, (3, 4)),
    Case("Softmax-axis0", lambda: layer.Softmax(axis=0), (3, 4)),
    Case("Reshape", lambda: layer.Reshape((2, -1)), (3, 4, 2), output_shape=(3, 2, 4)),
    Case("Flatten", layer.Flatten, (2, 3, 2, 2), output_shape=(2, 12)),
    Case("Dropout", lambda: layer.Dropout(0.4, rng=0), (6, 5), train_differs=True),
    Case("Dropout-NTC", lambda: layer.Dropout(0.3, rng=1), (2, 5, 4), train_differs=True),
    Case("GELU-NTC", layer.GELU, (2, 3, 4)),
    Case("Softmax-NTC", layer.Softmax, (2, 3, 4)),
]

from layer_cases_attention import ATTENTION_CASES, BLOCK_CASES  # noqa: E402 - attention, positions, blocks
from layer_cases_conv import CONV_CASES  # noqa: E402 - convolution, pooling, normalization (its own module)
from layer_cases_graph import GRAPH_CASES  # noqa: E402 - merges and containers (their own module)
from layer_cases_seq import SEQ_CASES  # noqa: E402 - embeddings and recurrent layers

ALL_CASES = CORE_CASES + CONV_CASES + ATTENTION_CASES + BLOCK_CASES + SEQ_CASES + GRAPH_CASES
