"""A small decoder-only Transformer language model on Debian's fortunes, characters in and out.

The model (GPT-style, pre-norm)::

    Embedding(V, E) + PositionalEmbedding(T)
    TransformerDecoderBlock(E, heads, ff=4E) x depth     causal self-attention + ReLU MLP
    LayerNorm, Dense(V)                                  next-character logits at every step

Data: every fortune of ``/usr/share/games/fortunes/*`` (``apt-get install fortunes``; the
offensive ``off/`` set is left out), split by fortune into 90% training and 10% validation
with a fixed shuffle; the vocabulary is the training split's characters (id 0 stands for a
character never seen in training). Training: Adam, a linear warm-up then cosine decay,
random windows of ``T + 1`` characters. Validation: mean cross-entropy in bits per
character over consecutive windows of the validation text.

``--framework torch`` trains the same model in PyTorch (``nn.TransformerEncoderLayer``,
``norm_first=True``, causal mask) from the *same initial weights* (copied from the
nnframe model built with the same seed), on the same batches in the same order, with the
same learning-rate schedule, so the two validation figures can be compared directly::

    python examples/transformer_lm.py --out lm.safetensors          # nnframe
    python examples/transformer_lm.py --framework torch              # PyTorch, same everything
    python examples/transformer_lm.py --generate lm.safetensors --prompt "The " --length 200 --seed 0
    nnframe generate lm.safetensors --prompt "The " --length 200 --seed 0   # the shared sampler, same text
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import sys
import time
from typing import Any

import numpy as np

from nnframe import layer, loss, model, net, optimizer, set_seed
from nnframe.data.text import CharVocabulary
from nnframe.generation import generate

FORTUNES = "/usr/share/games/fortunes"


# ---------------------------------------------------------------------------- data
def load_fortunes(directory: str = FORTUNES, seed: int = 0, val_fraction: float = 0.1) -> tuple[str, str]:
    """Training and validation text: the fortunes of every file in ``directory`` (not ``off/``),
    split by fortune with a fixed shuffle. Raises FileNotFoundError naming the directory."""
    paths = sorted(p for p in glob.glob(os.path.join(directory, "*"))
                   if os.path.isfile(p) and not p.endswith((".dat", ".u8")))
    if not paths:
        raise FileNotFoundError(f"no fortune files in {directory!r}; install them with "
                                "'apt-get install -y fortunes'")
    fortunes = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            fortunes += [text.strip("\n") + "\n" for text in f.read().split("\n%\n") if text.strip()]
    order = np.random.default_rng(seed).permutation(len(fortunes))
    n_val = int(len(fortunes) * val_fraction)
    val = "".join(fortunes[i] for i in order[:n_val])
    train = "".join(fortunes[i] for i in order[n_val:])
    return train, val


def vocabulary(train: str) -> CharVocabulary:
    """The training text's characters; ``"\\0"`` (id 0) stands for any character not among them."""
    return CharVocabulary(sorted(set(train) - {"\0"}), unknown="\0")


def batches(ids: np.ndarray, steps: int, batch: int, seq_len: int, seed: int):
    """``steps`` batches ``(x, y)`` of random windows: ``x = ids[s:s+T]``, ``y = ids[s+1:s+T+1]``."""
    rng = np.random.default_rng(seed)
    offsets = np.arange(seq_len)
    for _ in range(steps):
        starts = rng.integers(0, len(ids) - seq_len - 1, size=batch)
        window = ids[starts[:, None] + offsets]  # (N, T)
        yield window, ids[starts[:, None] + offsets + 1]


def val_windows(ids: np.ndarray, seq_len: int, max_chars: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive, non-overlapping validation windows ``(x, y)``, each ``(W, T)``."""
    usable = min(len(ids) - 1, max_chars) // seq_len * seq_len
    return ids[:usable].reshape(-1, seq_len), ids[1 : usable + 1].reshape(-1, seq_len)


def learning_rate(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to ``peak / 10``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


# --------------------------------------------------------------------------- model
def build_net(vocab_size: int, args: argparse.Namespace) -> net.Net:
    """The nnframe model: ``(N, T)`` ids -> ``(N, T, V)`` logits."""
    return net.Net([
        layer.Embedding(vocab_size, args.embed_dim),
        layer.PositionalEmbedding(args.seq_len),
        *(layer.TransformerDecoderBlock(args.embed_dim, args.heads, dropout=args.dropout)
          for _ in range(args.depth)),
        layer.LayerNorm(),
        layer.Dense(vocab_size),
    ])


def build(lm: net.Net, seq_len: int) -> None:
    """Create the parameters with one pass over a batch of id 0 (``Net.build`` feeds floats)."""
    lm.eval()
    lm.forward(np.zeros((1, seq_len), dtype=np.int64))
    lm.train()


def bits_per_char(forward, x_val: np.ndarray, y_val: np.ndarray, batch: int) -> float:
    """Mean cross-entropy of ``forward``'s logits against ``y_val``, in bits per character."""
    total = 0.0
    for i in range(0, len(x_val), batch):
        logits = np.asarray(forward(x_val[i : i + batch]), dtype=np.float64)  # (W, T, V)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        total -= np.take_along_axis(log_probs, y_val[i : i + batch, :, None], axis=-1).sum()
    return total / y_val.size / math.log(2.0)


def sample(m: model.Model, vocab: CharVocabulary, prompt: str, length: int, seq_len: int,
           temperature: float = 0.8, seed: int = 0) -> str:
    """Continue ``prompt`` by ``length`` characters with :func:`nnframe.generation.generate`
    (the last ``seq_len`` characters as context, seeded: same seed, same text)."""
    ids = generate(m, vocab.encode(prompt).astype(np.int64), length, temperature=temperature, seed=seed,
                   max_context=seq_len)
    return vocab.decode(ids)


# ------------------------------------------------------------------------ training
def train_nnframe(args: argparse.Namespace, vocab: CharVocabulary, train_ids: np.ndarray,
                  val: tuple[np.ndarray, np.ndarray]) -> tuple[model.Model, float]:
    """Train the nnframe model; returns it and its validation bits per character."""
    set_seed(args.seed)
    m = model.Model(build_net(len(vocab), args), loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=args.lr))
    build(m.net, args.seq_len)
    # the vocabulary and context length let `nnframe generate CKPT` sample from this model too
    m.metadata = {"vocabulary": vocab.to_config(), "seq_len": args.seq_len, "max_context": args.seq_len}
    print(f"nnframe: {m.net.num_params:,} parameters", flush=True)
    v = len(vocab)

    def step(i: int, x: np.ndarray, y: np.ndarray) -> float:
        m.optimizer.lr = learning_rate(i, args.steps, args.lr, args.warmup)
        pred = m.forward(x)  # (N, T, V)
        value, update = m.backward(pred.reshape(-1, v), y.reshape(-1))  # loss over the N*T positions
        m.apply_grad(update)
        return value

    def evaluate() -> float:
        m.net.eval()
        try:
            return bits_per_char(m.forward, *val, args.batch)
        finally:
            m.net.train()

    return m, run(args, train_ids, step, evaluate)


def train_torch(args: argparse.Namespace, vocab: CharVocabulary, train_ids: np.ndarray,
                val: tuple[np.ndarray, np.ndarray]) -> float:
    """Train the same model in PyTorch from the nnframe model's initial weights."""
    import torch  # noqa: PLC0415 - optional, only for the comparison

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    set_seed(args.seed)
    reference = build_net(len(vocab), args)
    build(reference, args.seq_len)
    emb, pos, *blocks, norm, head = reference.layers
    e, v, t = args.embed_dim, len(vocab), args.seq_len

    class TorchLM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(v, e)
            self.pos = torch.nn.Parameter(torch.zeros(t, e))
            self.blocks = torch.nn.ModuleList(
                torch.nn.TransformerEncoderLayer(e, args.heads, dim_feedforward=4 * e, dropout=args.dropout,
                                                 batch_first=True, norm_first=True) for _ in range(args.depth))
            self.norm, self.head = torch.nn.LayerNorm(e), torch.nn.Linear(e, v)

        def forward(self, ids: Any) -> Any:
            steps = ids.shape[1]
            h = self.emb(ids) + self.pos[:steps]
            mask = torch.nn.Transformer.generate_square_subsequent_mask(steps)
            for block in self.blocks:
                h = block(h, src_mask=mask, is_causal=True)
            return self.head(self.norm(h))

    lm = TorchLM()
    with torch.no_grad():
        def put(target: Any, value: np.ndarray) -> None:
            target.copy_(torch.from_numpy(np.ascontiguousarray(value)))

        put(lm.emb.weight, emb.params["weight"])
        put(lm.pos, pos.params["table"])
        for block, ref in zip(blocks, lm.blocks, strict=True):
            att = block.attention.params
            put(ref.self_attn.in_proj_weight, att["w_qkv"].T)
            put(ref.self_attn.in_proj_bias, att["b_qkv"])
            put(ref.self_attn.out_proj.weight, att["w_out"].T)
            put(ref.self_attn.out_proj.bias, att["b_out"])
            put(ref.linear1.weight, block.ff1.params["w"].T)
            put(ref.linear1.bias, block.ff1.params["b"])
            put(ref.linear2.weight, block.ff2.params["w"].T)
            put(ref.linear2.bias, block.ff2.params["b"])
            for name in ("norm1", "norm2"):
                put(getattr(ref, name).weight, getattr(block, name).params["gamma"])
                put(getattr(ref, name).bias, getattr(block, name).params["beta"])
        put(lm.norm.weight, norm.params["gamma"])
        put(lm.norm.bias, norm.params["beta"])
        put(lm.head.weight, head.params["w"].T)
        put(lm.head.bias, head.params["b"])
    print(f"pytorch: {sum(p.numel() for p in lm.parameters()):,} parameters", flush=True)
    opt = torch.optim.Adam(lm.parameters(), lr=args.lr)

    def step(i: int, x: np.ndarray, y: np.ndarray) -> float:
        for group in opt.param_groups:
            group["lr"] = learning_rate(i, args.steps, args.lr, args.warmup)
        opt.zero_grad(set_to_none=True)
        out = torch.nn.functional.cross_entropy(lm(torch.from_numpy(x)).reshape(-1, v), torch.from_numpy(y).reshape(-1))
        out.backward()
        opt.step()
        return out.item()

    def evaluate() -> float:
        lm.eval()
        try:
            with torch.no_grad():
                return bits_per_char(lambda ids: lm(torch.from_numpy(ids)).numpy(), *val, args.batch)
        finally:
            lm.train()

    return run(args, train_ids, step, evaluate)


def run(args: argparse.Namespace, train_ids: np.ndarray, step, evaluate) -> float:
    """The shared loop: the same batches and schedule for both frameworks; returns the final bits/char."""
    start, cpu = time.perf_counter(), time.process_time()
    total = 0.0
    for i, (x, y) in enumerate(batches(train_ids, args.steps, args.batch, args.seq_len, args.seed)):
        total += step(i, x, y)
        if (i + 1) % args.log_every == 0 or i + 1 == args.steps:
            bpc = evaluate() if (i + 1) % args.eval_every == 0 or i + 1 == args.steps else float("nan")
            print(f"step {i + 1:5d}/{args.steps}  train loss {total / args.log_every / math.log(2):.4f} bits/char  "
                  f"val {bpc:.4f} bits/char  wall {time.perf_counter() - start:5.0f} s  "
                  f"cpu {time.process_time() - cpu:5.0f} s", flush=True)
            total = 0.0
    final = evaluate()
    print(f"{args.framework}: validation {final:.4f} bits/char after {args.steps} steps, "
          f"{time.perf_counter() - start:.0f} s wall ({time.process_time() - cpu:.0f} s CPU)", flush=True)
    return final


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--framework", choices=("nnframe", "torch"), default="nnframe")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--depth", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--val-chars", type=int, default=65536, help="validation characters scored")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--data-dir", default=FORTUNES)
    p.add_argument("--out", default=None, help="save the nnframe model here (a .safetensors checkpoint)")
    p.add_argument("--generate", metavar="CKPT", help="load CKPT and print a sample instead of training")
    p.add_argument("--prompt", default="The ")
    p.add_argument("--length", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    args = p.parse_args(argv)
    if args.generate:
        import nnframe  # noqa: PLC0415

        m = nnframe.load(args.generate)
        vocab = CharVocabulary.from_config(m.metadata["vocabulary"])
        print(sample(m, vocab, args.prompt, args.length, int(m.metadata["seq_len"]), args.temperature, args.seed))
        return 0

    train, val = load_fortunes(args.data_dir, seed=args.seed)
    vocab = vocabulary(train)
    train_ids, val_ids = vocab.encode(train).astype(np.int64), vocab.encode(val).astype(np.int64)
    x_val, y_val = val_windows(val_ids, args.seq_len, args.val_chars)
    print(f"fortunes: {len(train):,} training / {len(val):,} validation characters ({y_val.size:,} scored), "
          f"vocabulary {len(vocab)}; {vars(args)}", flush=True)
    if args.framework == "torch":
        train_torch(args, vocab, train_ids, (x_val, y_val))
        return 0
    m, _ = train_nnframe(args, vocab, train_ids, (x_val, y_val))
    if args.out:
        m.save(args.out)
        print(f"checkpoint: {args.out}")
    print("sample:", repr(sample(m, vocab, args.prompt, args.length, args.seq_len, args.temperature, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
