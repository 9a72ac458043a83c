"""Conformance cases of the merges (``Add``, ``Multiply``, ``Concatenate``) and the containers
(nested ``Net``, ``Residual``; ``Graph`` cases live with the graph tests' helpers).

Collected into ``layer_cases.ALL_CASES``. A case whose ``input_shape`` is a list of shapes
feeds the layer a list of arrays (a merge's several inputs).
"""

from __future__ import annotations

from layer_cases import Case

from nnframe import layer
from nnframe.net import Net

GRAPH_CASES = [
    Case("Add", layer.Add, [(3, 4), (3, 4)], output_shape=(3, 4)),
    Case("Add-three-broadcast", layer.Add, [(2, 3, 4), (2, 1, 4), (2, 3, 1)], output_shape=(2, 3, 4)),
    Case("Multiply", layer.Multiply, [(3, 4), (3, 4)], output_shape=(3, 4)),
    Case("Multiply-broadcast", layer.Multiply, [(2, 3, 4), (2, 1, 4), (2, 3, 4)], output_shape=(2, 3, 4)),
    Case("Concatenate", layer.Concatenate, [(2, 3), (2, 4)], output_shape=(2, 7)),
    Case("Concatenate-axis1", lambda: layer.Concatenate(axis=1), [(2, 3, 4), (2, 1, 4), (2, 2, 4)],
         output_shape=(2, 6, 4)),
    Case("Residual-identity", lambda: layer.Residual(Net([layer.Dense(4), layer.Tanh()])), (3, 4),
         output_shape=(3, 4)),
    Case("Residual-projection",
         lambda: layer.Residual(Net([layer.Dense(5), layer.Tanh(), layer.Dense(5)]), shortcut=layer.Dense(5)),
         (3, 4), output_shape=(3, 5)),
    Case("Residual-conv-dropout",
         lambda: layer.Residual(Net([layer.Conv2D(2, 3, padding="same"), layer.Dropout(0.3, rng=1)]),
                                shortcut=layer.Conv2D(2, 1)),
         (2, 4, 4, 1), train_differs=True, output_shape=(2, 4, 4, 2)),
    Case("Net-nested",
         lambda: Net([layer.Dense(4), Net([layer.Tanh(), Net([layer.Dense(3), layer.Sigmoid()])])]),
         (3, 2), output_shape=(3, 3)),
    Case("Net-repeated-layer", lambda: _repeated(), (3, 4), output_shape=(3, 4)),
]


def _repeated() -> Net:
    shared = layer.Dense(4)
    return Net([shared, layer.Tanh(), shared])
