"""Embedding and Masking: against PyTorch, errors, padding, the mask route, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from nnframe import backend, layer, loss, model, optimizer
from nnframe.errors import ShapeError
from nnframe.layer.base import forward_with_mask, layer_from_config, layer_to_config
from nnframe.net import Net


def test_embedding_matches_pytorch_with_repeated_ids_and_padding():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    ids = np.array([[1, 2, 1, 0], [3, 3, 3, 1]])  # repeats accumulate; 0 is padding
    g = rng.normal(size=(2, 4, 5))
    with backend.default_dtype("float64"):
        emb = layer.Embedding(6, 5, padding_idx=0)
        y = emb.forward(ids)
        assert emb.backward(g) is None
    ref = torch.nn.Embedding(6, 5, padding_idx=0, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(emb.params["weight"]))
    ty = ref(torch.tensor(ids))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(emb.grads["weight"], ref.weight.grad.numpy(), rtol=1e-12, atol=1e-15)
    assert np.all(emb.params["weight"][0] == 0.0)  # the padding row starts at zero ...
    assert np.all(emb.grads["weight"][0] == 0.0)  # ... and gets no gradient though used
    np.testing.assert_allclose(emb.grads["weight"][3], g[1, :3].sum(axis=0))


def test_embedding_keeps_float32_and_any_leading_axes():
    emb = layer.Embedding(10, 4)
    ids = np.arange(24).reshape(2, 3, 4) % 10
    y = emb.forward(ids.astype(np.uint8))
    assert y.shape == (2, 3, 4, 4) and y.dtype == np.float32
    emb.backward(np.ones_like(y))
    assert emb.grads["weight"].dtype == np.float32
    assert emb.grads["weight"].sum() == pytest.approx(24 * 4)


@pytest.mark.parametrize("ids, fragment", [
    (np.array([[0, 5, 1]]), r"id 5 at position \(0, 1\) is out of range; valid ids are 0 \.\. 4"),
    (np.array([[0, -1]]), r"id -1 at position \(0, 1\) is out of range"),
    (np.array([[0.0, 1.0]]), r"expects integer ids in \[0, 5\), got input of dtype float64"),
    (np.array(3), "scalar"),
])
def test_embedding_bad_ids_name_value_and_range(ids, fragment):
    with pytest.raises(ShapeError, match=fragment):
        layer.Embedding(5, 2).forward(ids)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"num_embeddings": 0, "dim": 2}, "num_embeddings must be a positive integer, got 0"),
    ({"num_embeddings": 3, "dim": 2.5}, "dim must be a positive integer, got 2.5"),
    ({"num_embeddings": 3, "dim": 2, "padding_idx": 3}, r"padding_idx must be an integer in \[-3, 3\)"),
    ({"num_embeddings": 3, "dim": 2, "mask_padding": True}, "mask_padding=True needs a padding_idx"),
])
def test_embedding_bad_hyperparameters(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        layer.Embedding(**kwargs)


def test_embedding_config_round_trip():
    emb = layer.Embedding(9, 3, padding_idx=-2, mask_padding=True, name="tok")
    again = layer_from_config(layer_to_config(emb))
    assert (again.num_embeddings, again.dim, again.padding_idx, again.mask_padding, again.name) == \
        (9, 3, 7, True, "tok")


def test_mask_route_passes_elementwise_layers_and_stops_at_others():
    ids = np.array([[3, 1, 0, 0], [2, 0, 0, 0]])
    emb = layer.Embedding(4, 2, padding_idx=0, mask_padding=True)
    x, mask = forward_with_mask(emb, ids, None)
    np.testing.assert_array_equal(mask, ids != 0)
    for follower in (layer.Dense(3), layer.ReLU(), layer.Dropout(0.1, rng=0), layer.LayerNorm()):
        x, passed = forward_with_mask(follower, x, mask)
        assert passed is mask
    with pytest.raises(ShapeError, match="Flatten cannot take the mask of padded steps"):
        forward_with_mask(layer.Flatten(), x, mask)
    assert forward_with_mask(layer.Flatten(), x, None)[1] is None  # no mask, no complaint
    with pytest.raises(ShapeError, match=r"layer 1 \(Flatten\): Flatten cannot take the mask"):
        Net([layer.Embedding(4, 2, padding_idx=0, mask_padding=True), layer.Flatten()]).forward(ids)


def test_masking_zeroes_padded_steps_and_makes_the_mask():
    x = np.ones((2, 3, 2), dtype=np.float32)
    x[0, 2] = 0.0
    x[1, 1:] = -1.0
    masking = layer.Masking(mask_value=-1.0)
    y, mask = forward_with_mask(masking, x, None)
    np.testing.assert_array_equal(mask, [[True, True, True], [True, False, False]])
    assert np.all(y[1, 1:] == 0.0) and np.all(y[0] == x[0]) and y.dtype == np.float32
    np.testing.assert_array_equal(masking.backward(np.ones_like(x)), np.broadcast_to(mask[..., None], x.shape))
    with pytest.raises(ShapeError, match=r"Masking expects sequences \(N, T, C\), got shape \(2, 3\)"):
        masking.forward(np.ones((2, 3)))


def test_embedding_first_in_a_model_trains_on_integer_ids():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, size=(64, 1))
    labels = ids[:, 0] % 2  # learnable from the id alone
    net = Net([layer.Embedding(5, 4), layer.Flatten(), layer.Dense(2)])
    m = model.Model(net, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=0.05))
    m.fit(ids, labels, epochs=30, batch_size=16, verbose=0)
    assert m.evaluate(ids, labels)["accuracy"] == 1.0
    with pytest.raises(ShapeError, match="expects integer ids"):
        net.forward(ids.astype(np.float32))  # float input is cast to the net dtype, then refused


def test_first_mask_read_follows_the_mask_route():
    from nnframe.layer.embedding import first_mask_read

    assert first_mask_read([layer.Masking(), layer.Dense(3), layer.LSTM(4)]) == (0, 2)  # Dense passes it on
    assert first_mask_read([layer.Embedding(9, 4, padding_idx=0, mask_padding=True), layer.GRU(3)]) == (0, 1)
    assert first_mask_read([layer.Masking(), layer.Flatten(), layer.Dense(3)]) is None  # Flatten stops it
    assert first_mask_read([layer.Embedding(9, 4), layer.LSTM(4)]) is None  # no mask made
