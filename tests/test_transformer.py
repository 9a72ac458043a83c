"""Transformer blocks: gradients, nesting, configs, masks and PyTorch parity."""

from __future__ import annotations

import numpy as np
import pytest

import nnframe
from nnframe import backend, blas_env, layer, net
from nnframe.gradcheck import gradcheck, smooth_input
from nnframe.layer.base import layer_from_config, layer_to_config


@pytest.mark.parametrize("make", [
    lambda: layer.TransformerEncoderBlock(4, 2, ff_dim=6),
    lambda: layer.TransformerDecoderBlock(4, 2, ff_dim=5, dropout=0.2, activation="gelu", rng=0),
], ids=["encoder", "decoder-dropout-gelu"])
def test_block_gradients_inside_a_net_match_finite_differences(make):
    with backend.default_dtype("float64"):
        model = net.Net([layer.Dense(4), make(), layer.LayerNorm(), layer.Dense(3)])
        report = gradcheck(model, smooth_input((2, 3, 4), seed=1))
    assert {"1.attention.w_qkv", "1.ff1.w", "1.norm2.gamma", "input"} <= set(report)


def test_block_parameters_are_views_of_the_outer_buffers_with_dotted_names():
    model = net.Net([layer.TransformerDecoderBlock(8, 2), layer.TransformerDecoderBlock(8, 2)])
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype(np.float32)
    y = model.forward(x)
    model.backward(np.ones_like(y))
    assert "1.attention.w_out" in model.params and "0.ff2.b" in model.params
    block = model.layers[1]
    assert np.shares_memory(block.attention.params["w_qkv"], model.params.flat)
    assert np.shares_memory(block.ff1.grads["w"], model.grads.flat)
    assert model.num_params == 2 * (4 * 8 + 8 * 24 + 24 + 8 * 8 + 8 + 8 * 32 + 32 + 32 * 8 + 8)


def test_decoder_block_is_causal_and_rebuilds_from_config():
    block = layer.TransformerDecoderBlock(6, 3, ff_dim=10, name="dec")
    clone = layer_from_config(layer_to_config(block))
    assert type(clone) is layer.TransformerDecoderBlock and clone.get_config() == block.get_config()
    assert clone.attention.causal
    x = np.random.default_rng(2).normal(size=(1, 6, 6)).astype(np.float32)
    y = block.forward(x)
    x[:, 4:] = 5.0
    np.testing.assert_allclose(block.forward(x)[:, :4], y[:, :4], rtol=1e-5, atol=1e-6)


def test_block_validates_its_arguments():
    with pytest.raises(ValueError, match="activation must be one of"):
        layer.TransformerEncoderBlock(4, 2, activation="tanh")
    with pytest.raises(ValueError, match="ff_dim must be a positive integer, got 0"):
        layer.TransformerEncoderBlock(4, 2, ff_dim=0)
    with pytest.raises(ValueError, match="divisible"):
        layer.TransformerEncoderBlock(6, 4)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-10), ("float32", 1e-5)])
@pytest.mark.parametrize("mask", ["none", "padding", "causal"])
def test_encoder_block_matches_pytorch_transformer_encoder_layer(mask, dtype, tol):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    n, t, e, h, f = 3, 5, 8, 2, 12
    x = rng.normal(size=(n, t, e)).astype(dtype)
    g = rng.normal(size=(n, t, e)).astype(dtype)
    pad = None
    if mask == "padding":
        pad = np.zeros((n, t), dtype=bool)
        pad[1, -2:] = True
    with backend.default_dtype(dtype):
        block = layer.TransformerEncoderBlock(e, h, ff_dim=f, causal=mask == "causal")
        y = block.forward(x, key_padding_mask=pad)
        dx = block.backward(g)
    ref = torch.nn.TransformerEncoderLayer(e, h, dim_feedforward=f, dropout=0.0, batch_first=True,
                                           norm_first=True, dtype=getattr(torch, dtype))
    copies = {
        "self_attn.in_proj_weight": block.attention.params["w_qkv"].T,
        "self_attn.in_proj_bias": block.attention.params["b_qkv"],
        "self_attn.out_proj.weight": block.attention.params["w_out"].T,
        "self_attn.out_proj.bias": block.attention.params["b_out"],
        "linear1.weight": block.ff1.params["w"].T, "linear1.bias": block.ff1.params["b"],
        "linear2.weight": block.ff2.params["w"].T, "linear2.bias": block.ff2.params["b"],
        "norm1.weight": block.norm1.params["gamma"], "norm1.bias": block.norm1.params["beta"],
        "norm2.weight": block.norm2.params["gamma"], "norm2.bias": block.norm2.params["beta"],
    }
    named = dict(ref.named_parameters())
    assert set(named) == set(copies)
    with torch.no_grad():
        for key, value in copies.items():
            named[key].copy_(torch.tensor(np.ascontiguousarray(value)))
    tx = torch.tensor(x, requires_grad=True)
    kwargs = {}
    if mask == "causal":
        kwargs = {"src_mask": torch.nn.Transformer.generate_square_subsequent_mask(t, dtype=tx.dtype),
                  "is_causal": True}
    if pad is not None:
        kwargs["src_key_padding_mask"] = torch.tensor(pad)
    ty = ref(tx, **kwargs)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)
    grads = {
        "self_attn.in_proj_weight": block.attention.grads["w_qkv"].T,
        "self_attn.in_proj_bias": block.attention.grads["b_qkv"],
        "self_attn.out_proj.weight": block.attention.grads["w_out"].T,
        "self_attn.out_proj.bias": block.attention.grads["b_out"],
        "linear1.weight": block.ff1.grads["w"].T, "linear1.bias": block.ff1.grads["b"],
        "linear2.weight": block.ff2.grads["w"].T, "linear2.bias": block.ff2.grads["b"],
        "norm1.weight": block.norm1.grads["gamma"], "norm1.bias": block.norm1.grads["beta"],
        "norm2.weight": block.norm2.grads["gamma"], "norm2.bias": block.norm2.grads["beta"],
    }
    for key, ours in grads.items():
        np.testing.assert_allclose(ours, named[key].grad.numpy(), rtol=tol, atol=tol, err_msg=key)


def test_block_takes_the_mask_route_and_infers_shapes_without_allocating():
    from nnframe.errors import ShapeError

    ids = np.array([[3, 1, 2, 0, 0], [4, 4, 1, 2, 3]])
    model = net.Net([layer.Embedding(5, 8, padding_idx=0, mask_padding=True), layer.PositionalEmbedding(5),
                     layer.TransformerEncoderBlock(8, 2, ff_dim=16)])
    y = model.forward(ids)
    emb, pos, block = model.layers
    direct = block.forward(pos.forward(emb.forward(ids)), key_padding_mask=ids == 0)
    np.testing.assert_allclose(y, direct, rtol=1e-6)
    fresh = layer.TransformerDecoderBlock(8, 2, ff_dim=12)
    assert fresh.compute_output_shape((3, 7, 8)) == (3, 7, 8)
    outputs, states = net.Net([fresh]).infer_shapes((3, 7, 8))
    assert outputs == [(3, 7, 8)] and states["0.ff1.w"] == (8, 12) and states["0.attention.w_qkv"] == (8, 24)
    assert fresh.attention.params["w_qkv"] is None  # nothing allocated
    with pytest.raises(ShapeError, match=r"expects input of shape \(N, T, embed_dim=8\)"):
        layer.TransformerEncoderBlock(8, 2).forward(np.zeros((2, 3, 6), np.float32))


def test_block_leaves_its_input_alone_and_its_inplace_relu_matches_relu():
    # the residuals are added in place and the hidden ReLU overwrites ff1's output
    block = layer.TransformerEncoderBlock(8, 2)
    x = np.random.default_rng(0).normal(size=(2, 3, 8)).astype(np.float32)
    before = x.copy()
    for training in (True, False):
        block.is_training = training
        block.forward(x)
        np.testing.assert_array_equal(x, before)
    assert block.activation.inplace and layer_to_config(block)["config"]["activation"] == "relu"
    relu, inplace = layer.ReLU(), layer_from_config(layer_to_config(layer.ReLU(inplace=True)))
    assert inplace.inplace
    h = np.random.default_rng(1).normal(size=(4, 6)).astype(np.float32)
    expected = relu.forward(h)
    assert inplace.forward(h) is h
    np.testing.assert_array_equal(h, expected)
    g = np.random.default_rng(2).normal(size=h.shape).astype(np.float32)
    expected = relu.backward(g)
    assert inplace.backward(g) is g  # the incoming gradient is overwritten too
    np.testing.assert_array_equal(g, expected)


def _block_grads(block):
    return {f"{name}.{key}": g.copy() for name, child in block.sublayers() for key, g in child.grads.items()}


@pytest.mark.parametrize("padded", [False, True])
def test_eval_block_on_batch_slices_in_threads_matches_one_pass(monkeypatch, padded):
    from nnframe import threads

    x = np.random.default_rng(3).normal(size=(5, 4, 8))
    pad = np.zeros((5, 4), dtype=bool)
    pad[1, 2:] = pad[4, 1:] = True
    pad = pad if padded else None
    g = np.random.default_rng(4).normal(size=x.shape)
    with backend.default_dtype("float64"):
        block = layer.TransformerDecoderBlock(8, 2, ff_dim=12).eval()
        whole = block.forward(x, key_padding_mask=pad)  # tiny: one slice
        assert "sets" not in block.ctx
        dx_whole = block.backward(g)
        grads_whole = _block_grads(block)
        monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_SLICE", 1)
        monkeypatch.setattr(blas_env, "workers_sleep_soon", lambda: True)  # as after `import nnframe` first
        threads.set_num_threads(3)
        try:
            sliced = block.forward(x, key_padding_mask=pad)
            assert len(block.ctx["sets"]) == 3  # the children and two slices' twins
            twin = block.ctx["sets"][1]["attention"]
            assert twin is not block.attention and twin.params is block.attention.params
            np.testing.assert_allclose(sliced, whole, rtol=1e-13, atol=1e-13)
            for grad in block.attention.grads.values():
                grad[...] = np.nan  # backward must overwrite every gradient, not add to stale ones
            np.testing.assert_allclose(block.backward(g), dx_whole, rtol=1e-12, atol=1e-12)
            grads = _block_grads(block)
            assert grads.keys() == grads_whole.keys()
            for name, grad in grads_whole.items():
                np.testing.assert_allclose(grads[name], grad, rtol=1e-12, atol=1e-12, err_msg=name)
            block.train()  # training runs in one piece (measured faster)
            block.forward(x, key_padding_mask=pad)
            assert "sets" not in block.ctx
        finally:
            threads.set_num_threads(None)


def test_block_with_dropout_trains_in_one_piece_and_evaluates_on_slices(monkeypatch):
    from nnframe import threads

    x = np.random.default_rng(3).normal(size=(6, 4, 8))
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_SLICE", 1)
    monkeypatch.setattr(blas_env, "workers_sleep_soon", lambda: True)
    threads.set_num_threads(2)
    try:
        with backend.default_dtype("float64"):
            block = layer.TransformerEncoderBlock(8, 2, ff_dim=12, dropout=0.25, rng=0)
            block.forward(x)
            assert "sets" not in block.ctx  # training: one piece
            block.eval().forward(x)
            assert len(block.ctx["sets"]) == 2
    finally:
        threads.set_num_threads(None)


def test_eval_block_runs_in_one_piece_while_openblas_workers_spin(monkeypatch):
    """NumPy loaded before nnframe, no thread timeout: OpenBLAS's workers spin on the cores the slices need."""
    from nnframe import threads

    x = np.random.default_rng(3).normal(size=(6, 4, 8))
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_SLICE", 1)
    threads.set_num_threads(2)
    try:
        block = layer.TransformerDecoderBlock(8, 2, ff_dim=12).eval()
        block.forward(x)  # builds
        monkeypatch.setattr(blas_env, "workers_sleep_soon", lambda: False)
        whole = block.forward(x)
        assert "sets" not in block.ctx
        monkeypatch.setattr(blas_env, "workers_sleep_soon", lambda: True)
        np.testing.assert_allclose(block.forward(x), whole, rtol=1e-5, atol=1e-6)
        assert len(block.ctx["sets"]) == 2
    finally:
        threads.set_num_threads(None)


def test_shared_block_on_slices_sums_both_uses(monkeypatch):
    """A block called twice in a graph keeps each use's slices (its ctx is saved per use)."""
    from nnframe import threads

    x = np.random.default_rng(5).normal(size=(4, 3, 8))
    g = np.random.default_rng(6).normal(size=x.shape)

    def run():
        with backend.default_dtype("float64"):
            nnframe.set_seed(0)
            block = layer.TransformerEncoderBlock(8, 2, ff_dim=12)
            inp = nnframe.Input(shape=(3, 8))
            graph = nnframe.Graph(inputs=inp, outputs=block(block(inp)))
            graph.forward(x)  # builds the parameters (an unbuilt block runs in one piece)
            out = graph.eval().forward(x)  # evaluation mode splits; backward after it runs per slice
            dx = graph.backward(g)
            return out, dx, {k: v.copy() for k, v in graph.grads.items()}, block

    out, dx, grads, _ = run()
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_SLICE", 1)
    monkeypatch.setattr(blas_env, "workers_sleep_soon", lambda: True)
    threads.set_num_threads(2)
    try:
        out_s, dx_s, grads_s, block = run()
        assert len(block.ctx["sets"]) == 2
    finally:
        threads.set_num_threads(None)
    np.testing.assert_allclose(out_s, out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx_s, dx, rtol=1e-12, atol=1e-12)
    for name, grad in grads.items():
        np.testing.assert_allclose(grads_s[name], grad, rtol=1e-12, atol=1e-12, err_msg=name)
