"""Masks of padded steps in graphs: made by ``Embedding(mask_padding=True)`` (or given to
``Graph.forward``), they reach every layer downstream as in a ``Net``; merges combine them,
attention on ``[query, key_value]`` uses the key's, and a layer that cannot take one is named."""

from __future__ import annotations

import numpy as np
import pytest

import nnframe
from nnframe import backend, layer
from nnframe.errors import ShapeError
from nnframe.net import Net

IDS = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2], [5, 0, 0, 0, 0]])  # 0 = padding, at the end


def _chain(mask_padding: bool = True) -> list[layer.Layer]:
    return [layer.Embedding(10, 6, padding_idx=0, mask_padding=mask_padding), layer.LSTM(4), layer.Dense(3)]


def _graph(layers: list[layer.Layer]) -> nnframe.Graph:
    ids = nnframe.Input(shape=(5,), dtype="int64", name="ids")
    x = ids
    for lay in layers:
        x = lay(x)
    return nnframe.Graph(inputs=ids, outputs=x)


def test_graph_chain_matches_net_with_the_mask():
    with backend.default_dtype("float64"):
        nnframe.set_seed(0)
        graph, net = _graph(_chain()), Net(_chain())
        out_graph = graph.forward(IDS)
        net.forward(IDS)
        net.load_state_dict(graph.state_dict())
        out_net = net.forward(IDS)
        np.testing.assert_allclose(out_graph, out_net, rtol=1e-13, atol=1e-13)
        g = np.random.default_rng(1).normal(size=out_graph.shape)
        graph.backward(g, input_grad=False)
        net.backward(g, input_grad=False)
        for name, grad in net.grads.items():
            np.testing.assert_allclose(graph.grads[name], grad, rtol=1e-12, atol=1e-13, err_msg=name)
        unmasked = _graph(_chain(mask_padding=False))
        unmasked.forward(IDS)
        unmasked.load_state_dict(graph.state_dict())
        # the padded sequences' outputs change without the mask (the LSTM runs over the padding)
        assert not np.allclose(unmasked.forward(IDS)[[0, 2]], out_graph[[0, 2]])
        np.testing.assert_allclose(unmasked.forward(IDS)[1], out_graph[1], rtol=1e-12)  # no padding: equal


def test_cross_attention_in_a_graph_hides_the_padded_keys():
    with backend.default_dtype("float64"):
        nnframe.set_seed(0)
        query = nnframe.Input(shape=(2, 6), name="query")
        ids = nnframe.Input(shape=(5,), dtype="int64", name="ids")
        embed = layer.Embedding(10, 6, padding_idx=0, mask_padding=True)
        attention = layer.MultiHeadAttention(6, 2)
        graph = nnframe.Graph(inputs=[query, ids], outputs=attention([query, embed(ids)]))
        q = np.random.default_rng(2).normal(size=(3, 2, 6))
        out = graph.forward([q, IDS])
        expected = attention.forward([q, embed.forward(IDS)], key_padding_mask=IDS == 0)
        np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-13)
        assert graph.compute_mask(None, None) is None  # the query had no mask


def test_merges_combine_masks_and_time_concatenation_joins_them():
    ids_a = nnframe.Input(shape=(5,), dtype="int64", name="a")
    ids_b = nnframe.Input(shape=(5,), dtype="int64", name="b")
    embed = layer.Embedding(10, 4, padding_idx=0, mask_padding=True)
    ea, eb = embed(ids_a), embed(ids_b)
    other = np.array([[1, 1, 1, 1, 0], [0, 2, 2, 2, 2], [3, 3, 3, 0, 0]])
    added = nnframe.Graph(inputs=[ids_a, ids_b], outputs=layer.Add()([ea, eb]))
    added.forward([IDS, other])
    np.testing.assert_array_equal(added.compute_mask(None, None), (IDS != 0) & (other != 0))
    joined = nnframe.Graph(inputs=[ids_a, ids_b], outputs=[layer.Concatenate(axis=1)([ea, eb]),
                                                           layer.Concatenate()([ea, eb])])
    out = joined.forward([IDS, other])
    assert out[0].shape == (3, 10, 4) and out[1].shape == (3, 5, 8)
    time_mask, feature_mask = joined.compute_mask(None, None)
    np.testing.assert_array_equal(time_mask, np.concatenate([IDS != 0, other != 0], axis=1))
    np.testing.assert_array_equal(feature_mask, (IDS != 0) & (other != 0))


def test_a_layer_that_cannot_take_the_mask_is_named():
    ids = nnframe.Input(shape=(5,), dtype="int64", name="ids")
    x = layer.Embedding(10, 4, padding_idx=0, mask_padding=True)(ids)
    graph = nnframe.Graph(inputs=ids, outputs=layer.Dense(2)(layer.Flatten(name="flat")(x)))
    with pytest.raises(ShapeError, match=r"node 1 \(flat\): flat cannot take the mask of padded steps"):
        graph.forward(IDS)


def test_a_graph_in_a_net_receives_the_mask_and_passes_it_on():
    with backend.default_dtype("float64"):
        nnframe.set_seed(0)
        seq = nnframe.Input(shape=(5, 6), name="seq")
        inner = nnframe.Graph(inputs=seq, outputs=layer.Dense(6)(seq))  # Dense passes the mask on
        outer = Net([layer.Embedding(10, 6, padding_idx=0, mask_padding=True), inner, layer.LSTM(4)])
        reference = Net([layer.Embedding(10, 6, padding_idx=0, mask_padding=True), layer.Dense(6), layer.LSTM(4)])
        out = outer.forward(IDS)
        reference.forward(IDS)
        reference.load_state_dict({k.replace("1.0.", "1."): v for k, v in outer.state_dict().items()})
        np.testing.assert_allclose(out, reference.forward(IDS), rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(inner.compute_mask(None, None), IDS != 0)


def test_graph_forward_takes_the_inputs_masks():
    with backend.default_dtype("float64"):
        nnframe.set_seed(0)
        seq = nnframe.Input(shape=(5, 6), name="seq")
        lstm = layer.LSTM(4)
        graph = nnframe.Graph(inputs=seq, outputs=lstm(seq))
        x = np.random.default_rng(3).normal(size=(3, 5, 6))
        real = IDS != 0
        out = graph.forward(x, mask=real)
        np.testing.assert_allclose(out, lstm.forward(x, mask=real), rtol=1e-13, atol=1e-13)
        assert not np.allclose(graph.forward(x), out)  # and the mask is not kept for the next call
        other = nnframe.Input(shape=(5, 6), name="other")
        two = nnframe.Graph(inputs=[seq, other], outputs=layer.Add()([seq, other]))
        with pytest.raises(ShapeError, match="expected 2 masks"):
            two.forward([x, x], mask=[real])
