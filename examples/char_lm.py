"""A character-level LSTM language model on Debian's fortunes, and the same model in PyTorch.

The model::

    Embedding(V, 64) - LSTM(256, return_sequences=True) - Dense(V)     ids (N, T) -> logits (N, T, V)

Data: every text file under ``/usr/share/games/fortunes`` (``apt-get install fortunes``;
:func:`nnframe.data.text.load_text`), the last 10% of the characters held out for
validation, the vocabulary built from the training 90% (saved in the checkpoint's
metadata, which ``nnframe generate`` reads). Training: ``--steps`` steps of Adam
(lr 2e-3, gradient clipping at global norm 5) on batches of 32 windows of 64 characters at
random offsets, cross-entropy at every position, the seed's three calls.

``--torch`` trains the same model with PyTorch on the same footing: the same initial
weights (copied from nnframe's), the same batches in the same order, the same optimizer
settings and number of steps. Validation bits per character (mean cross-entropy over
every non-overlapping 64-character window of the validation text, in bits) is reported
for both.

    python examples/char_lm.py                         # nnframe only; writes char_lm.safetensors
    python examples/char_lm.py --torch --steps 3000    # both, side by side
    nnframe generate char_lm.safetensors --prompt "The " --length 200 --temperature 0.8 --seed 0
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

from nnframe import layer, loss, model, net, optimizer, set_seed
from nnframe.data import text
from nnframe.generation import sample_text

FORTUNES = "/usr/share/games/fortunes"


def build_layers(vocab_size: int, embed: int = 64, hidden: int = 256) -> list[layer.Layer]:
    """Embedding - LSTM (every step) - Dense: ids ``(N, T)`` to logits ``(N, T, V)``."""
    return [layer.Embedding(vocab_size, embed), layer.LSTM(hidden, return_sequences=True), layer.Dense(vocab_size)]


def bits_per_char(forward, x: np.ndarray, y: np.ndarray, batch: int = 256) -> float:
    """Mean cross-entropy in bits of ``forward(x) -> logits (N, T, V)`` against ``y`` (N, T)."""
    total, count = 0.0, 0
    for i in range(0, len(x), batch):
        logits = np.asarray(forward(x[i:i + batch]), dtype=np.float64)  # (B, T, V)
        shift = logits.max(axis=-1, keepdims=True)
        log_z = np.log(np.exp(logits - shift).sum(axis=-1)) + shift[..., 0]
        picked = np.take_along_axis(logits, y[i:i + batch, :, None], axis=-1)[..., 0]
        total += float((log_z - picked).sum())
        count += y[i:i + batch].size
    return total / count / math.log(2.0)


def train_nnframe(args, vocab, lm: net.Net, val_xy, batches) -> tuple[model.Model, float, list[str]]:
    """Train ``lm`` (built) with nnframe; returns the model, validation bits per character and log lines."""
    m = model.Model(lm, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=args.lr, clip_norm=args.clip_norm))
    m.metadata["vocabulary"] = vocab.to_config()
    m.metadata["data"] = f"{args.data} (last 10% held out)"
    start, cpu = time.perf_counter(), time.process_time()
    lines = []
    running = 0.0
    for step, (x, y) in enumerate(batches, 1):
        pred = m.forward(x)
        batch_loss, update = m.backward(pred, y)
        m.apply_grad(update)
        running += batch_loss
        if step % args.log_every == 0:
            lines.append(f"nnframe step {step:5d}  train bpc {running / args.log_every / math.log(2):.4f}  "
                         f"wall {time.perf_counter() - start:6.0f} s  cpu {time.process_time() - cpu:6.0f} s")
            print(lines[-1], flush=True)
            running = 0.0
    m.net.eval()
    bpc = bits_per_char(m.predict, *val_xy)
    lines.append(f"nnframe: validation {bpc:.4f} bits/char after {len(batches)} steps, "
                 f"{time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU")
    print(lines[-1], flush=True)
    return m, bpc, lines


def train_torch(args, initial: dict[str, np.ndarray], val_xy, batches) -> tuple[float, list[str]]:
    """The same model, initial weights, batches and optimizer settings in PyTorch."""
    import torch

    torch.manual_seed(args.seed)
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} thread(s)", flush=True)

    class CharLSTM(torch.nn.Module):
        def __init__(self, vocab_size: int) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(vocab_size, args.embed)
            self.lstm = torch.nn.LSTM(args.embed, args.hidden, batch_first=True)
            self.out = torch.nn.Linear(args.hidden, vocab_size)

        def forward(self, ids):
            return self.out(self.lstm(self.embed(ids))[0])

    vocab_size = initial["0.weight"].shape[0]
    tm = CharLSTM(vocab_size)
    with torch.no_grad():  # nnframe's initial weights (Dense keeps w as (in, out): Linear's transpose)
        tm.embed.weight.copy_(torch.tensor(initial["0.weight"]))
        for name, value in tm.lstm.named_parameters():
            value.copy_(torch.tensor(initial[f"1.{name}"]))
        tm.out.weight.copy_(torch.tensor(initial["2.w"].T))
        tm.out.bias.copy_(torch.tensor(initial["2.b"]))
    opt = torch.optim.Adam(tm.parameters(), lr=args.lr)
    start, cpu = time.perf_counter(), time.process_time()
    lines, running = [], 0.0
    for step, (x, y) in enumerate(batches, 1):
        logits = tm(torch.from_numpy(x.astype(np.int64)))
        batch_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab_size),
                                                       torch.from_numpy(y.astype(np.int64)).reshape(-1))
        opt.zero_grad()
        batch_loss.backward()
        torch.nn.utils.clip_grad_norm_(tm.parameters(), args.clip_norm)
        opt.step()
        running += batch_loss.item()
        if step % args.log_every == 0:
            lines.append(f"pytorch step {step:5d}  train bpc {running / args.log_every / math.log(2):.4f}  "
                         f"wall {time.perf_counter() - start:6.0f} s  cpu {time.process_time() - cpu:6.0f} s")
            print(lines[-1], flush=True)
            running = 0.0
    tm.eval()
    with torch.no_grad():
        bpc = bits_per_char(lambda ids: tm(torch.from_numpy(ids.astype(np.int64))).numpy(), *val_xy)
    lines.append(f"pytorch: validation {bpc:.4f} bits/char after {len(batches)} steps, "
                 f"{time.perf_counter() - start:.0f} s wall, {time.process_time() - cpu:.0f} s CPU")
    print(lines[-1], flush=True)
    return bpc, lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=FORTUNES, help="a text file or a directory of them")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--clip-norm", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=250)
    p.add_argument("--out", default="char_lm.safetensors", help="the nnframe checkpoint to write")
    p.add_argument("--torch", action="store_true", help="also train the same model with PyTorch")
    p.add_argument("--torch-only", action="store_true",
                   help="train only the PyTorch model (the same weights and batches as a run without it: "
                        "run both halves as two processes side by side)")
    args = p.parse_args(argv)

    corpus = text.load_text(args.data)
    train_text, val_text = text.split_text(corpus, 0.1)
    vocab = text.CharVocabulary.from_text(train_text)
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)
    val_xy = text.sequential_windows(val_ids, args.seq_len)
    rng = np.random.default_rng(args.seed)
    batches = [text.random_windows(train_ids, args.seq_len, args.batch, rng) for _ in range(args.steps)]
    print(f"{args.data}: {len(train_text):,} training / {len(val_text):,} validation characters, vocabulary "
          f"{vocab.size}; {args.steps} steps of {args.batch} x {args.seq_len}", flush=True)

    set_seed(args.seed)
    lm = net.Net(build_layers(vocab.size, args.embed, args.hidden))
    lm.forward(batches[0][0])  # build
    initial_state = lm.state_dict()  # copies: PyTorch starts from these weights
    if args.torch_only:
        train_torch(args, initial_state, val_xy, batches)
        return 0
    m, bpc, _ = train_nnframe(args, vocab, lm, val_xy, batches)
    m.save(args.out)
    print(f"checkpoint: {args.out}", flush=True)
    print("sample (temperature 0.8, seed 0):", repr(sample_text(m, "The ", 200, temperature=0.8, seed=0)), flush=True)
    if args.torch:
        torch_bpc, _ = train_torch(args, initial_state, val_xy, batches)
        print(f"validation bits/char: nnframe {bpc:.4f}  pytorch {torch_bpc:.4f}  "
              f"ratio {bpc / torch_bpc:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
