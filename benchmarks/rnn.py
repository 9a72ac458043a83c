"""LSTM and GRU: nnframe against PyTorch CPU, training and inference, in the same run.

The workload is issue 12's: batches of N=128 sequences of T=28 steps of C=28 features (a
Fashion-MNIST image read row by row), hidden size H=128. The model is the recurrent layer
(its final state) followed by a dense layer to 10 classes, softmax cross-entropy and Adam
(lr 1e-3); both frameworks start from the same weights (nnframe's, copied by name into
``torch.nn.LSTM``/``GRU``, Dense's ``w`` transposed into ``Linear``) and see the same batch.

* training: ``--steps`` steps per timed call (nnframe: the seed's three calls;
  PyTorch: zero_grad, forward, cross_entropy, backward, Adam step);
* inference: ``--steps`` forward passes per timed call (nnframe in evaluation mode,
  PyTorch under ``torch.inference_mode()``).

Timing is the suite's shared method (:func:`benchmarks.common.compare`): rounds in
alternating order, an idle pause before every timed call, the ratio nnframe/PyTorch per
round (median and range). CPU seconds per step (``process_time``, all threads, spinning
included) are reported too: on a loaded machine they estimate the unloaded time better
than the wall clock. Goals (issue 12): training <= 1.0x PyTorch, inference <= 0.8x.

    python -m benchmarks rnn                       # 2 threads each, 7 rounds
    python -m benchmarks rnn --threads 1 --torch-threads 1     # one thread each (a loaded machine)
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from benchmarks import common

KINDS = ("LSTM", "GRU")
#: (phase, goal): nnframe's time over PyTorch's, median of the per-round ratios
GOALS = {"train": 1.0, "infer": 0.8}


class NnframeRunner:
    """The recurrent classifier in nnframe."""

    def __init__(self, kind: str, args: argparse.Namespace) -> None:
        import numpy as np  # noqa: PLC0415 - after the thread settings

        from nnframe import layer, loss, model, net, optimizer, set_seed  # noqa: PLC0415

        set_seed(args.seed)
        recurrent = getattr(layer, kind)(args.hidden)
        self.model = model.Model(net.Net([recurrent, layer.Dense(10)]), loss.SoftmaxCrossEntropy(),
                                 optimizer.Adam(lr=1e-3))
        rng = np.random.default_rng(args.seed)
        self.x = rng.normal(size=(args.batch, args.steps_t, args.features)).astype(np.float32)
        self.y = rng.integers(0, 10, size=args.batch)
        self.model.net.forward(self.x)  # build

    def weights(self) -> dict[str, Any]:
        """``state_dict`` copies, for the PyTorch twin."""
        return self.model.net.state_dict()

    def train(self, steps: int) -> float:
        m = self.model
        m.net.train()
        total = 0.0
        for _ in range(steps):
            pred = m.forward(self.x)
            value, update = m.backward(pred, self.y)
            m.apply_grad(update)
            total += value
        return total / steps

    def infer(self, steps: int) -> Any:
        m = self.model
        m.net.eval()
        out = None
        for _ in range(steps):
            out = m.net.forward(self.x)
        return out


class TorchRunner:
    """The same classifier in PyTorch, from nnframe's initial weights."""

    def __init__(self, kind: str, args: argparse.Namespace, weights: dict[str, Any], x: Any, y: Any) -> None:
        import torch  # noqa: PLC0415

        torch.set_num_threads(args.torch_threads)
        self.torch = torch
        self.rnn = getattr(torch.nn, kind)(args.features, args.hidden, batch_first=True)
        self.head = torch.nn.Linear(args.hidden, 10)
        with torch.no_grad():
            for name, value in self.rnn.named_parameters():
                value.copy_(torch.from_numpy(weights[f"0.{name}"]))
            self.head.weight.copy_(torch.from_numpy(weights["1.w"].T.copy()))
            self.head.bias.copy_(torch.from_numpy(weights["1.b"]))
        self.params = [*self.rnn.parameters(), *self.head.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=1e-3)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)

    def _forward(self) -> Any:
        _, h = self.rnn(self.x)
        h = h[0] if isinstance(h, tuple) else h  # LSTM: (h_n, c_n)
        return self.head(h[-1])

    def train(self, steps: int) -> float:
        total = 0.0
        for _ in range(steps):
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.torch.nn.functional.cross_entropy(self._forward(), self.y)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        return total / steps

    def infer(self, steps: int) -> Any:
        out = None
        with self.torch.inference_mode():
            for _ in range(steps):
                out = self._forward()
        return out


def measure(kind: str, args: argparse.Namespace, log: Any) -> dict[str, Any]:
    """Training and inference timings of one recurrent kind, both frameworks."""
    nn = NnframeRunner(kind, args)
    pt = TorchRunner(kind, args, nn.weights(), nn.x, nn.y)
    first = {"nnframe": nn.train(1), "pytorch": pt.train(1)}  # same weights, same batch: same first loss
    result: dict[str, Any] = {"first_loss": first}
    for phase in ("train", "infer"):
        calls = {"nnframe": (lambda r=nn, p=phase: getattr(r, p)(args.calls)),
                 "pytorch": (lambda r=pt, p=phase: getattr(r, p)(args.calls))}
        timings = common.compare(calls, args.rounds, args.gap, warmup=1, log=log)
        ratio = timings.ratio("nnframe", "pytorch")
        result[phase] = {
            "ms_per_step": {n: timings.median(n) / args.calls * 1e3 for n in timings.names},
            "best_ms_per_step": {n: timings.best(n) / args.calls * 1e3 for n in timings.names},
            "cpu_ms_per_step": {n: timings.median_cpu(n) / args.calls * 1e3 for n in timings.names},
            "ratio": ratio,
            "timings": timings.to_dict(),
        }
    return result


def format_report(report: dict[str, Any]) -> str:
    """The table and ratio lines."""
    c = report["config"]
    lines = [f"RNN benchmark: N={c['batch']} T={c['steps_t']} C={c['features']} H={c['hidden']}, "
             f"{c['calls']} steps per timed call, {c['rounds']} rounds, idle gap {c['gap']} s; "
             f"NumPy BLAS threads {c['threads']}, torch threads {c['torch_threads']}",
             report["blas_line"], f"load average {report['load_average_start']} -> {report['load_average_end']}", ""]
    headers = ["model", "phase", "nnframe ms/step", "pytorch ms/step", "nnframe CPU ms", "pytorch CPU ms",
               "ratio (median)", "range", "goal"]
    rows = []
    for kind, res in report["results"].items():
        for phase in ("train", "infer"):
            r = res[phase]
            ratio = r["ratio"]
            rows.append([kind, phase, r["ms_per_step"]["nnframe"], r["ms_per_step"]["pytorch"],
                         r["cpu_ms_per_step"]["nnframe"], r["cpu_ms_per_step"]["pytorch"], ratio["median"],
                         f"{ratio['min']:.2f}-{ratio['max']:.2f}",
                         f"<= {GOALS[phase]} {'MET' if ratio['median'] <= GOALS[phase] else 'MISSED'}"])
    lines.append(common.format_table(headers, rows))
    first = {k: v["first_loss"] for k, v in report["results"].items()}
    lines.append("")
    lines.append("first training step's loss (same weights and batch): " +
                 ", ".join(f"{k} nnframe {v['nnframe']:.6f} pytorch {v['pytorch']:.6f}" for k, v in first.items()))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks rnn", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=common.cpu_count(),
                   help="NumPy BLAS threads, read before NumPy loads (default: all cores)")
    p.add_argument("--torch-threads", type=int, default=None, help="torch.set_num_threads (default: --threads)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps-t", type=int, default=28, help="time steps T (default 28)")
    p.add_argument("--features", type=int, default=28, help="input features C (default 28)")
    p.add_argument("--hidden", type=int, default=128, help="hidden size H (default 128)")
    p.add_argument("--calls", type=int, default=5, help="steps per timed call (default 5)")
    p.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    p.add_argument("--gap", type=float, default=common.IDLE_GAP_S,
                   help=f"idle seconds before every timed call (default {common.IDLE_GAP_S})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks rnn``."""
    args = build_parser().parse_args(argv)
    if args.torch_threads is None:
        args.torch_threads = args.threads
    log = lambda line: print(line, file=sys.stderr)  # noqa: E731
    start = common.load_average()
    results = {kind: measure(kind, args, log) for kind in args.kinds}
    report = {"benchmark": "rnn", "config": vars(args), "machine": common.machine_info(),
              "blas": common.blas_info(), "blas_line": common.blas_line(), "results": results,
              "load_average_start": start, "load_average_end": common.load_average()}
    if args.json:
        common.write_json(args.json, report)
    print(format_report(report))
    return 0


if __name__ == "__main__":  # python -m benchmarks.rnn (or: python -m benchmarks rnn)
    sys.exit(main())
