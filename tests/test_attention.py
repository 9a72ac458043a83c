"""MultiHeadAttention and the positional layers: masks, errors, configs and PyTorch parity."""

from __future__ import annotations

import numpy as np
import pytest

from nnframe import backend, functional, layer
from nnframe.errors import ShapeError
from nnframe.layer.base import layer_from_config, layer_to_config


def _rng(seed=0):
    return np.random.default_rng(seed)


# --------------------------------------------------------------------- behaviour
def test_safe_softmax_gives_zeros_for_fully_masked_rows():
    x = np.array([[1.0, -np.inf, 2.0], [-np.inf, -np.inf, -np.inf]], dtype=np.float32)
    y = functional.safe_softmax(x)
    assert y.dtype == np.float32 and np.isfinite(y).all()
    np.testing.assert_allclose(y[0], [1 / (1 + np.e), 0.0, np.e / (1 + np.e)], rtol=1e-6)
    np.testing.assert_array_equal(y[1], 0.0)


def test_fully_masked_query_rows_are_finite_and_equal_the_output_bias():
    mha = layer.MultiHeadAttention(4, 2, bias=True)
    x = _rng().normal(size=(2, 3, 4)).astype(np.float32)
    pad = np.array([[False, False, True], [True, True, True]])
    mha.forward(x)  # build
    mha.params["b_out"][...] = np.arange(4, dtype=np.float32)
    out, weights = mha.forward(x, key_padding_mask=pad, return_weights=True)
    dx = mha.backward(np.ones_like(out))
    assert np.isfinite(out).all() and np.isfinite(dx).all()
    assert all(np.isfinite(g).all() for g in mha.grads.values())
    np.testing.assert_array_equal(weights[1], 0.0)
    np.testing.assert_allclose(out[1], np.broadcast_to(np.arange(4.0), (3, 4)))
    np.testing.assert_array_equal(weights[0, :, :, 2], 0.0)  # the padded key gets no weight
    np.testing.assert_allclose(weights[0].sum(-1), 1.0, rtol=1e-6)


def test_causal_attention_ignores_future_positions():
    mha = layer.MultiHeadAttention(6, 3, causal=True)
    x = _rng(1).normal(size=(2, 5, 6)).astype(np.float32)
    out, weights = mha.forward(x, return_weights=True)
    assert weights.shape == (2, 3, 5, 5)
    assert (np.triu(np.ones((5, 5)), k=1)[None, None] * weights == 0).all()
    x2 = x.copy()
    x2[:, 3:] += 10.0  # change the future of steps 0..2
    np.testing.assert_allclose(mha.forward(x2)[:, :3], out[:, :3], rtol=1e-5, atol=1e-6)


def test_dropout_on_weights_is_seeded_and_off_in_eval():
    x = _rng().normal(size=(2, 4, 4)).astype(np.float32)
    a, b = (layer.MultiHeadAttention(4, 2, dropout=0.5, rng=3) for _ in range(2))
    a.forward(x)
    b.forward(x)
    b.params.update({k: v.copy() for k, v in a.params.items()})
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    a.is_training = False
    _, w = a.forward(x, return_weights=True)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(embed_dim=6, num_heads=4), "divisible"),
    (dict(embed_dim=0, num_heads=1), "embed_dim must be a positive integer, got 0"),
    (dict(embed_dim=4, num_heads=2.0), "num_heads must be a positive integer, got 2.0"),
    (dict(embed_dim=4, num_heads=2, dropout=1.0), "dropout must be in"),
])
def test_constructor_errors_quote_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        layer.MultiHeadAttention(**kwargs)


def test_input_errors_name_what_was_expected():
    mha = layer.MultiHeadAttention(4, 2)
    with pytest.raises(ShapeError, match=r"expects query of shape \(N, T, D\), got \(2, 4\)"):
        mha.forward(np.zeros((2, 4), np.float32))
    mha.forward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ShapeError, match="built for 4 features, got key of shape"):
        mha.forward([np.zeros((2, 3, 4), np.float32), np.zeros((2, 5, 3), np.float32)])
    with pytest.raises(ShapeError, match=r"key_padding_mask must be a bool array of shape \(2, 3\)"):
        mha.forward(np.zeros((2, 3, 4), np.float32), key_padding_mask=np.zeros((2, 3)))
    with pytest.raises(ShapeError, match="a list of 4"):
        mha.forward([np.zeros((2, 3, 4), np.float32)] * 4)
    with pytest.raises(ShapeError, match="expected input of dtype float32, got float64"):
        mha.forward(np.zeros((2, 3, 4)))


def test_positional_layers_check_length_and_rebuild_from_config():
    pos = layer.PositionalEmbedding(3)
    with pytest.raises(ShapeError, match="max_len=3, got input of shape"):
        pos.forward(np.zeros((1, 4, 2), np.float32))
    with pytest.raises(ValueError, match="max_len must be a positive integer, got 0"):
        layer.PositionalEmbedding(0)
    for lyr in (pos, layer.SinusoidalPositionalEncoding(base=100.0, max_len=8),
                layer.MultiHeadAttention(8, 2, dropout=0.1, bias=False, causal=True)):
        clone = layer_from_config(layer_to_config(lyr))
        assert type(clone) is type(lyr) and clone.get_config() == lyr.get_config()


def test_sinusoid_table_matches_the_formula():
    from nnframe.layer.position import sinusoid_table

    table = sinusoid_table(50, 7)
    t, i = 13, 2
    assert table[t, 2 * i] == pytest.approx(np.sin(t / 10000 ** (2 * i / 7)))
    assert table[t, 2 * i + 1] == pytest.approx(np.cos(t / 10000 ** (2 * i / 7)))
    y = layer.SinusoidalPositionalEncoding().forward(np.zeros((2, 50, 7), np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y[1], table, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------ PyTorch parity
def _torch_mha(torch, mha, bias, dtype):
    ref = torch.nn.MultiheadAttention(mha.embed_dim, mha.num_heads, bias=bias, batch_first=True, dtype=dtype)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.tensor(mha.params["w_qkv"].T))
        ref.out_proj.weight.copy_(torch.tensor(mha.params["w_out"].T))
        if bias:
            ref.in_proj_bias.copy_(torch.tensor(mha.params["b_qkv"]))
            ref.out_proj.bias.copy_(torch.tensor(mha.params["b_out"]))
    return ref


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("mode", ["self", "self-causal", "self-padding", "cross-kv-padding",
                                  "cross-qkv-causal", "self-nobias"])
def test_multi_head_attention_matches_pytorch(mode, dtype, tol):
    torch = pytest.importorskip("torch")
    tdtype = getattr(torch, dtype)
    rng = _rng(5)
    n, t, s, e, h = 3, 5, 6, 8, 2
    bias = mode != "self-nobias"
    causal = "causal" in mode
    cross = mode.startswith("cross")
    parts = 3 if "qkv" in mode else 2
    query = rng.normal(size=(n, t, e)).astype(dtype)
    keys = [rng.normal(size=(n, s if cross else t, e)).astype(dtype) for _ in range(parts - 1)]
    pad = None
    if "padding" in mode:
        pad = np.zeros((n, s if cross else t), dtype=bool)
        pad[1, -2:] = True
        pad[2, 1] = True
    g = rng.normal(size=(n, t, e)).astype(dtype)
    with backend.default_dtype(dtype):
        mha = layer.MultiHeadAttention(e, h, bias=bias, causal=causal)
        inputs = [query, *keys] if cross else query
        out, weights = mha.forward(inputs, key_padding_mask=pad, return_weights=True)
        grads = mha.backward(g)
    ref = _torch_mha(torch, mha, bias, tdtype)
    tq = torch.tensor(query, requires_grad=True)
    tkeys = [torch.tensor(k, requires_grad=True) for k in keys]
    tk = tkeys[0] if cross else tq
    tv = tkeys[-1] if cross else tq
    attn_mask = None
    if causal:
        attn_mask = torch.triu(torch.ones(t, tk.shape[1], dtype=torch.bool), diagonal=1)
    tout, tweights = ref(tq, tk, tv, key_padding_mask=None if pad is None else torch.tensor(pad),
                         attn_mask=attn_mask, need_weights=True, average_attn_weights=False)
    tout.backward(torch.tensor(g))

    def close(ours, theirs):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=tol, atol=tol)

    assert out.dtype == np.dtype(dtype)
    close(out, tout)
    close(weights, tweights)
    if cross:
        for ours, theirs in zip(grads, [tq, *tkeys], strict=True):
            close(ours, theirs.grad)
    else:
        close(grads, tq.grad)
    close(mha.grads["w_qkv"], ref.in_proj_weight.grad.T)
    close(mha.grads["w_out"], ref.out_proj.weight.grad.T)
    if bias:
        close(mha.grads["b_qkv"], ref.in_proj_bias.grad)
        close(mha.grads["b_out"], ref.out_proj.bias.grad)


def test_mask_route_from_embedding_hides_padded_keys():
    from nnframe.net import Net

    ids = np.array([[3, 1, 2, 0, 0], [4, 4, 1, 2, 3]])
    model = Net([layer.Embedding(5, 4, padding_idx=0, mask_padding=True), layer.PositionalEmbedding(5),
                 layer.MultiHeadAttention(4, 2), layer.LayerNorm()])
    y = model.forward(ids)
    emb, pos, mha, norm = model.layers
    direct = mha.forward(pos.forward(emb.forward(ids)), key_padding_mask=ids == 0)
    np.testing.assert_allclose(y, norm.forward(direct), rtol=1e-6)
    _, weights = mha.forward(pos.forward(emb.forward(ids)), mask=ids != 0, return_weights=True)
    np.testing.assert_array_equal(weights[0, :, :, 3:], 0.0)  # padded keys get no attention
    assert mha.compute_mask(None, ids != 0) is not None


@pytest.mark.parametrize("scale", [1.0, 200.0], ids=["no-shift-path", "shifted-path"])
def test_safe_softmax_with_keep_mask_matches_the_masked_formula(scale):
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(2, 3, 4, 5)) * scale).astype(np.float32)  # scale 200 leaves the ±60 window
    keep = rng.random((1, 1, 4, 5)) < 0.6
    keep[0, 0, 1] = False  # a fully hidden row
    y = functional.safe_softmax(x, keep=keep)
    masked = np.where(keep, x.astype(np.float64), -np.inf)
    shift = np.where(np.isfinite(masked.max(-1, keepdims=True)), masked.max(-1, keepdims=True), 0.0)
    e = np.exp(masked - shift)
    expected = e / np.where(e.sum(-1, keepdims=True) == 0, 1.0, e.sum(-1, keepdims=True))
    assert y.dtype == np.float32 and np.isfinite(y).all()
    np.testing.assert_allclose(y, expected, rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(y[:, :, 1], 0.0)


@pytest.mark.parametrize("causal,padded", [(True, False), (False, True)])
def test_eval_forward_matches_training_and_backward_after_it_gives_the_same_gradients(causal, padded):
    # evaluation mode leaves exp(scores) unnormalised and scales the (N, h, T, d) product
    # instead; backward after such a forward normalises the weights itself
    x = _rng(2).normal(size=(2, 5, 8))
    pad = np.array([[False] * 5, [False, False, True, True, True]]) if padded else None
    g = _rng(3).normal(size=(2, 5, 8))
    results = []
    with backend.default_dtype("float64"):
        mha = layer.MultiHeadAttention(8, 2, causal=causal)
        mha.forward(x)
        for training in (True, False):
            mha.is_training = training
            out = mha.forward(x, key_padding_mask=pad)
            dx = mha.backward(g)
            results.append((out, dx, {k: v.copy() for k, v in mha.grads.items()}))
    (out_t, dx_t, grads_t), (out_e, dx_e, grads_e) = results
    np.testing.assert_allclose(out_e, out_t, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx_e, dx_t, rtol=1e-12, atol=1e-12)
    for name, grad in grads_t.items():
        np.testing.assert_allclose(grads_e[name], grad, rtol=1e-12, atol=1e-12, err_msg=name)
