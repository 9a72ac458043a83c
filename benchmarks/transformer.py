"""``python -m benchmarks transformer``: a decoder-only Transformer, nnframe vs PyTorch CPU.

The model, the same in both libraries (PyTorch's weights copied from nnframe's)::

    x (N, T, E) -> TransformerDecoderBlock x depth  (pre-norm, causal, ReLU MLP of 4E)
                -> LayerNorm -> Dense(V) -> softmax cross-entropy over the N*T positions

PyTorch runs ``nn.TransformerEncoderLayer(norm_first=True, batch_first=True)`` with a
causal mask. A third contender, ``numpy_products``, runs only the model's matrix products
with NumPy (the same shapes, on preallocated operands; :mod:`benchmarks.gemm_floor`): the
floor under any framework on NumPy's BLAS. Training: one timed call is ``--steps`` Adam steps (forward, backward,
update); inference: ``--steps`` forward passes in evaluation mode (PyTorch under
``torch.inference_mode()``, where it takes its fused "fast path"). Timing follows
:func:`benchmarks.common.compare`: an idle gap before every timed call, alternating
order, the ratio taken per round; the BLAS kernel in use is printed first.

    python -m benchmarks transformer                  # N=32, T=64, E=128, 4 heads, 2 blocks
    python -m benchmarks transformer --rounds 9 --json transformer.json
    python -m benchmarks transformer --profile        # where nnframe's step spends its time
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks import common, gemm_floor

GOALS = {"train": 1.2, "inference": 1.0}  # nnframe / PyTorch, from the issue
FLOOR = "numpy_products"  # the contender running only the model's matrix products (benchmarks.gemm_floor)


def build(args: argparse.Namespace) -> dict[str, Any]:
    """Both models with equal weights, their data, and the timed calls."""
    import numpy as np  # noqa: PLC0415 - after set_thread_env
    import torch  # noqa: PLC0415

    import nnframe  # noqa: PLC0415
    from nnframe import layer, loss, model, net, optimizer  # noqa: PLC0415

    torch.set_num_threads(args.threads)
    nnframe.set_seed(0)
    n, t, e, v = args.batch, args.seq_len, args.embed_dim, args.vocab
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, t, e), dtype=np.float32)
    y = rng.integers(0, v, size=(n, t))
    blocks = [layer.TransformerDecoderBlock(e, args.heads) for _ in range(args.depth)]
    nn_model = model.Model(net.Net([*blocks, layer.LayerNorm(), layer.Dense(v)]), loss.SoftmaxCrossEntropy(),
                           optimizer.Adam(lr=1e-4))
    nn_model.net.build((1, t, e))

    t_blocks = torch.nn.ModuleList(
        torch.nn.TransformerEncoderLayer(e, args.heads, dim_feedforward=4 * e, dropout=0.0, batch_first=True,
                                         norm_first=True) for _ in range(args.depth))
    t_norm, t_head = torch.nn.LayerNorm(e), torch.nn.Linear(e, v)
    copy_weights(torch, nn_model.net, t_blocks, t_norm, t_head)
    t_modules = (*t_blocks, t_norm, t_head)
    t_opt = torch.optim.Adam([p for m in t_modules for p in m.parameters()], lr=1e-4)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(t)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.reshape(-1))
    y_flat = y.reshape(-1)

    def t_forward(inputs: Any) -> Any:
        h = inputs
        for blk in t_blocks:
            h = blk(h, src_mask=mask, is_causal=True)
        return t_head(t_norm(h))

    def nnframe_train() -> float:
        nn_model.net.train()
        for _ in range(args.steps):
            pred = nn_model.forward(x)  # (N, T, V)
            value, step = nn_model.backward(pred.reshape(-1, v), y_flat)  # loss over (N*T, V) rows
            nn_model.apply_grad(step)
        return value

    def torch_train() -> float:
        for module in t_modules:
            module.train()
        for _ in range(args.steps):
            t_opt.zero_grad(set_to_none=True)
            out = torch.nn.functional.cross_entropy(t_forward(xt).reshape(-1, v), yt)
            out.backward()
            t_opt.step()
        return out.item()

    def nnframe_infer() -> Any:
        nn_model.net.eval()
        for _ in range(args.steps):
            out = nn_model.forward(x)
        return out

    def torch_infer() -> Any:
        for module in t_modules:
            module.eval()
        with torch.inference_mode():
            for _ in range(args.steps):
                out = t_forward(xt)
        return out

    floor = product_floor(args)
    train_floor = gemm_floor.Products(floor["forward"] + floor["backward"], threads=args.threads)
    infer_floor = gemm_floor.Products(floor["forward"], threads=args.threads)
    return {"train": {"nnframe": nnframe_train, "pytorch": torch_train,
                      FLOOR: lambda: train_floor.run(args.steps)},
            "inference": {"nnframe": nnframe_infer, "pytorch": torch_infer,
                          FLOOR: lambda: infer_floor.run(args.steps)},
            "check": (nn_model, t_forward, x, xt), "params": nn_model.net.num_params}


def product_floor(args: argparse.Namespace) -> dict[str, list[gemm_floor.Product]]:
    """The model's matrix products (:mod:`benchmarks.gemm_floor`): per block the attention's input and
    output projections and per-head products, the MLP's two Dense layers; then the head."""
    rows, e, d = args.batch * args.seq_len, args.embed_dim, args.embed_dim // args.heads
    parts = []
    for i in range(args.depth):
        parts += [gemm_floor.dense_products(rows, e, 3 * e, input_grad=i > 0),  # the net's input needs no gradient
                  gemm_floor.attention_products(args.batch, args.heads, args.seq_len, d),
                  gemm_floor.dense_products(rows, e, e),
                  gemm_floor.dense_products(rows, e, 4 * e), gemm_floor.dense_products(rows, 4 * e, e)]
    parts.append(gemm_floor.dense_products(rows, e, args.vocab))
    return gemm_floor.merge(*parts)


def copy_weights(torch: Any, nn_net: Any, t_blocks: Any, t_norm: Any, t_head: Any) -> None:
    """Copy nnframe's parameters into the PyTorch modules (Dense and attention weights transposed)."""
    with torch.no_grad():
        for block, ref in zip(nn_net.layers, t_blocks, strict=False):
            att, ff1, ff2 = block.attention.params, block.ff1.params, block.ff2.params
            pairs = [
                (ref.self_attn.in_proj_weight, att["w_qkv"].T), (ref.self_attn.in_proj_bias, att["b_qkv"]),
                (ref.self_attn.out_proj.weight, att["w_out"].T), (ref.self_attn.out_proj.bias, att["b_out"]),
                (ref.linear1.weight, ff1["w"].T), (ref.linear1.bias, ff1["b"]),
                (ref.linear2.weight, ff2["w"].T), (ref.linear2.bias, ff2["b"]),
                (ref.norm1.weight, block.norm1.params["gamma"]), (ref.norm1.bias, block.norm1.params["beta"]),
                (ref.norm2.weight, block.norm2.params["gamma"]), (ref.norm2.bias, block.norm2.params["beta"]),
            ]
            for target, value in pairs:
                target.copy_(torch.from_numpy(value.copy()))
        norm, head = nn_net.layers[-2], nn_net.layers[-1]
        t_norm.weight.copy_(torch.from_numpy(norm.params["gamma"].copy()))
        t_norm.bias.copy_(torch.from_numpy(norm.params["beta"].copy()))
        t_head.weight.copy_(torch.from_numpy(head.params["w"].T.copy()))
        t_head.bias.copy_(torch.from_numpy(head.params["b"].copy()))


def check_outputs(check: Any) -> float:
    """Largest difference between the two models' outputs on the benchmark batch (equal weights)."""
    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    nn_model, t_forward, x, xt = check
    nn_model.net.eval()
    with torch.no_grad():
        theirs = t_forward(xt).numpy()
    return float(np.abs(nn_model.forward(x) - theirs).max())


def profile(calls: dict[str, Any]) -> None:
    """Print the top functions (by own time) of three nnframe training calls."""
    import cProfile  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    calls["train"]["nnframe"]()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        calls["train"]["nnframe"]()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks transformer``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks transformer", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=common.cpu_count())
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--vocab", type=int, default=96)
    p.add_argument("--steps", type=int, default=5, help="training steps / forward passes per timed call")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    p.add_argument("--profile", action="store_true", help="profile nnframe's training step and exit")
    args = p.parse_args(argv)
    calls = build(args)
    if args.profile:
        profile(calls)
        return 0
    print(common.blas_line())
    print(f"decoder-only Transformer: N={args.batch} T={args.seq_len} E={args.embed_dim} heads={args.heads} "
          f"blocks={args.depth} V={args.vocab}, {calls['params']:,} parameters; {args.threads} threads; "
          f"{args.steps} steps per timed call, {args.rounds} rounds")
    print(f"max |output difference| with equal weights: {check_outputs(calls['check']):.2e}")
    report: dict[str, Any] = {"blas": common.blas_info(), "args": vars(args)}
    for kind in ("train", "inference"):
        timings = common.compare(calls[kind], rounds=args.rounds)
        tokens = args.steps * args.batch * args.seq_len
        print(f"\n{kind} ({args.steps} x batch {args.batch}, {tokens:,} tokens per call):")
        print(common.format_table(*timings.table()))
        ratio = timings.ratio("nnframe", "pytorch")
        floor_ratio = timings.ratio(FLOOR, "pytorch")
        print(common.format_ratio(f"{kind}: nnframe / pytorch", ratio, GOALS[kind]))
        print(common.format_ratio(f"{kind}: NumPy's products alone / pytorch (the floor)", floor_ratio))
        print(common.format_ratio(f"{kind}: nnframe / NumPy's products alone", timings.ratio("nnframe", FLOOR)))
        for name in ("nnframe", "pytorch"):
            print(f"  {name}: {tokens / timings.median(name):,.0f} tokens/s (median)")
        report[kind] = {"timings": timings.to_dict(), "ratio": ratio, "floor_ratio": floor_ratio}
    if args.json:
        common.write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
