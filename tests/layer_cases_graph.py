"""Conformance cases of the merges (``Add``, ``Multiply``, ``Concatenate``) and the containers
(nested ``Net``, ``Residual``, functional ``Graph``: a shared layer, several inputs,
several outputs, graphs and nets nested in each other).

Collected into ``layer_cases.ALL_CASES``. A case whose ``input_shape`` is a list of shapes
feeds the layer a list of arrays (a merge's several inputs).
"""

from __future__ import annotations

from layer_cases import Case

from nnframe import layer
from nnframe.graph import Graph, Input
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


def _shared_graph() -> Graph:
    """One Dense called twice (its gradients add up) around a Tanh; a skip joins with Add."""
    x = Input((4,), name="x")
    shared = layer.Dense(4, name="shared")
    h = shared(layer.Tanh()(shared(x)))
    return Graph(x, layer.Add()([h, x]))


def _two_outputs() -> Graph:
    """Two heads on one trunk: a multi-output graph (its output is a list)."""
    x = Input((3,))
    trunk = layer.Tanh()(layer.Dense(5)(x))
    return Graph(x, [layer.Dense(2)(trunk), layer.Sigmoid()(layer.Dense(1)(trunk))])


def _two_inputs() -> Graph:
    """Two inputs merged by Concatenate and Multiply (a list input)."""
    a, b = Input((2, 3), name="a"), Input((2, 3), name="b")
    joined = layer.Concatenate()([layer.Dense(2)(a), b])
    return Graph([a, b], layer.Multiply()([joined, layer.Dense(5)(b)]))


def _nested_graph() -> Net:
    """A graph inside a Net inside a graph: names like "1.2.w" through every kind of container."""
    x = Input((3,))
    inner = _shared_graph_on(3)
    y = Net([inner, layer.Dense(2)])(layer.Dense(3)(x))
    return Net([Graph(x, y), layer.Tanh()])


def _shared_graph_on(width: int) -> Graph:
    x = Input((width,))
    shared = layer.Dense(width)
    return Graph(x, layer.Add()([shared(x), shared(layer.Tanh()(shared(x)))]))


GRAPH_CASES += [
    Case("Graph-shared-layer", _shared_graph, (3, 4), output_shape=(3, 4)),
    Case("Graph-two-outputs", _two_outputs, (4, 3), output_shape=[(4, 2), (4, 1)]),
    Case("Graph-two-inputs", _two_inputs, [(2, 2, 3), (2, 2, 3)], output_shape=(2, 2, 5)),
    Case("Graph-nested", _nested_graph, (3, 3), output_shape=(3, 2)),
]
