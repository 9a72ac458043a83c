"""LeNet on Fashion-MNIST: nnframe against PyTorch CPU, in the same run.

The net (LeNet-5 for 28x28 input): conv 5x5x6 (padding 2) - ReLU - max-pool 2 -
conv 5x5x16 - ReLU - max-pool 2 - dense 120 - ReLU - dense 84 - ReLU - dense 10,
softmax cross-entropy, Adam (lr 1e-3), batches fed in order. Both frameworks start
from the same weights (nnframe's initialisation, copied into PyTorch with the NHWC
<-> NCHW layouts converted) and see the same data, so their losses track each other.

* ``nnframe``: the seed's three calls, ``pred = m.forward(x)``,
  ``l, step = m.backward(pred, y)``, ``m.apply_grad(step)``; NHWC float32.
* ``pytorch``: ``nn.Sequential`` + ``torch.optim.Adam`` + ``F.cross_entropy``, NCHW,
  ``torch.set_num_threads(--torch-threads)`` (default 2); ``pytorch_fused``: the same
  with ``Adam(fused=True)``.

Training and inference are timed with the suite's shared method
(:func:`benchmarks.common.compare`): rounds in alternating order, an idle pause before
every timed call, ratios per round (median and range). A round is a full epoch, or
``--batches`` batches extrapolated to the 60,000 training samples (the report says
which); the CPU seconds of each round (``process_time``, all threads, spinning included)
are reported too: on a loaded machine with one thread per framework they estimate the
unloaded wall time better than the wall clock does.
Inference: samples/s over the 10,000 test images in evaluation mode. Peak memory: the
peak RSS (``VmHWM``) of one child process per framework that loads the data, trains 50
batches and infers, so one framework's buffers do not count against the other (the
PyTorch child also imports nnframe, for the shared initial weights: a few MiB).

    python -m benchmarks lenet                  # 3 rounds of full epochs, 2 threads each
    python -m benchmarks lenet --threads 1      # NumPy's BLAS single-threaded (torch keeps 2)
    python -m benchmarks lenet --threads 1 --torch-threads 1 --batches 100   # a loaded machine
    python -m benchmarks lenet --profile        # + where nnframe's time goes, per layer
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from typing import Any

import numpy as np

from benchmarks import common

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FRAMEWORKS = ("nnframe", "pytorch", "pytorch_fused")
#: (ratio key, goal): issue 11's goals, nnframe's time over PyTorch's (median per-round ratio)
GOALS = (("epoch_nnframe_over_pytorch", 0.9), ("infer_b1_nnframe_over_pytorch", 1.0),
         ("infer_b8_nnframe_over_pytorch", 1.0))


# --------------------------------------------------------------------------- data
def load_data(data_dir: str) -> dict[str, np.ndarray]:
    """Fashion-MNIST as float32 NHWC pixels in [0, 1] and int64 labels."""
    from nnframe.data import load_fashion_mnist  # noqa: PLC0415 - only what the benchmark needs

    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(data_dir, download=False, progress=False)
    return {
        "x_train": x_train.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0,
        "y_train": y_train.astype(np.int64),
        "x_test": x_test.reshape(-1, 28, 28, 1).astype(np.float32) / 255.0,
        "y_test": y_test.astype(np.int64),
    }


# --------------------------------------------------------------------------- nets
def nnframe_layers() -> list[Any]:
    """The LeNet layers in nnframe (NHWC)."""
    from nnframe import layer  # noqa: PLC0415

    return [
        layer.Conv2D(6, 5, padding=2), layer.ReLU(), layer.MaxPool2D(2),
        layer.Conv2D(16, 5), layer.ReLU(), layer.MaxPool2D(2),
        layer.Flatten(), layer.Dense(120), layer.ReLU(), layer.Dense(84), layer.ReLU(), layer.Dense(10),
    ]


class NnframeTrainer:
    """nnframe's Model driven by the seed's three calls."""

    name = "nnframe"

    def __init__(self, seed: int, lr: float) -> None:
        import nnframe  # noqa: PLC0415
        from nnframe import loss, model, net, optimizer  # noqa: PLC0415

        nnframe.set_seed(seed)
        self.net = net.Net(nnframe_layers())
        self.net.build((1, 28, 28, 1))
        self.model = model.Model(self.net, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=lr))

    def weights(self) -> list[np.ndarray]:
        """Kernels and biases in layer order (for :class:`TorchTrainer`)."""
        return [lyr.params[k].copy() for lyr in self.net.layers for k in ("w", "b") if k in lyr.params]

    def train(self, x: np.ndarray, y: np.ndarray, batch: int, batches: int) -> float:
        self.net.train()
        total = 0.0
        for i in range(batches):
            xb, yb = x[i * batch : (i + 1) * batch], y[i * batch : (i + 1) * batch]
            pred = self.model.forward(xb)
            loss, step = self.model.backward(pred, yb)
            self.model.apply_grad(step)
            total += loss
        return total / batches

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        self.net.eval()
        return np.concatenate([self.model.forward(x[i : i + batch]).argmax(axis=1)
                               for i in range(0, len(x), batch)])


class TorchTrainer:
    """The same net in PyTorch (NCHW), from the same initial weights."""

    name = "pytorch"

    def __init__(self, weights: list[np.ndarray], lr: float, threads: int, fused: bool = False) -> None:
        import torch  # noqa: PLC0415

        self.name = "pytorch_fused" if fused else "pytorch"
        torch.set_num_threads(threads)
        self.torch = torch
        nn = torch.nn
        self.net = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        )
        c1w, c1b, c2w, c2b, d1w, d1b, d2w, d2b, d3w, d3b = weights
        d1w = d1w.reshape(5, 5, 16, 120).transpose(2, 0, 1, 3).reshape(400, 120)  # NHWC -> NCHW flatten order
        values = [c1w.transpose(3, 2, 0, 1), c1b, c2w.transpose(3, 2, 0, 1), c2b,
                  d1w.T, d1b, d2w.T, d2b, d3w.T, d3b]
        with torch.no_grad():
            for param, value in zip(self.net.parameters(), values, strict=True):
                param.copy_(torch.from_numpy(np.ascontiguousarray(value)))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, fused=fused)
        self._tensors: dict[int, Any] = {}

    def _nchw(self, x: np.ndarray) -> Any:
        key = id(x)
        if key not in self._tensors:  # converted once, outside the clock of later rounds
            self._tensors[key] = self.torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return self._tensors[key]

    def train(self, x: np.ndarray, y: np.ndarray, batch: int, batches: int) -> float:
        torch = self.torch
        xt, yt = self._nchw(x), torch.from_numpy(y)
        self.net.train()
        total = 0.0
        for i in range(batches):
            xb, yb = xt[i * batch : (i + 1) * batch], yt[i * batch : (i + 1) * batch]
            self.optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(self.net(xb), yb)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        return total / batches

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        torch = self.torch
        xt = self._nchw(x)
        self.net.eval()
        with torch.inference_mode():
            return torch.cat([self.net(xt[i : i + batch]).argmax(dim=1) for i in range(0, len(x), batch)]).numpy()


# ---------------------------------------------------------------------- measuring
def make_trainers(args: argparse.Namespace) -> list[Any]:
    nn_trainer = NnframeTrainer(args.seed, args.lr)
    trainers = {"nnframe": nn_trainer}
    for name in ("pytorch", "pytorch_fused"):
        if name in args.frameworks:
            trainers[name] = TorchTrainer(nn_trainer.weights(), args.lr, args.torch_threads, fused=name != "pytorch")
    return [trainers[name] for name in args.frameworks]


def measure(args: argparse.Namespace, data: dict[str, np.ndarray], log) -> dict[str, dict[str, Any]]:
    """Alternate the frameworks round by round; return raw timings per framework."""
    x, y = data["x_train"], data["y_train"]
    steps = len(x) // args.batch
    batches = min(args.batches or steps, steps)
    trainers = make_trainers(args)
    raw: dict[str, dict[str, Any]] = {t.name: {"loss": []} for t in trainers}
    for t in trainers:  # lazy set-up and first-call allocations, outside the clock
        t.train(x, y, args.batch, args.warmup_batches)
        t.predict(data["x_test"][: args.inference_batch], args.inference_batch)

    def train_call(t: Any) -> Any:
        return lambda: raw[t.name]["loss"].append(t.train(x, y, args.batch, batches))

    train = common.compare({t.name: train_call(t) for t in trainers}, args.rounds, args.gap, warmup=0, log=log)
    infer = common.compare({t.name: (lambda t=t: t.predict(data["x_test"], args.inference_batch)) for t in trainers},
                           args.inference_passes, args.gap, warmup=0)
    small = data["x_test"][: args.small_samples]
    for size in args.small_batches:  # latency-bound inference: seconds per pass over `small`
        timed = common.compare({t.name: (lambda t=t, size=size: t.predict(small, size)) for t in trainers},
                               args.inference_passes, args.gap, warmup=1)
        for t in trainers:
            raw[t.name][f"infer_b{size}_s"] = timed.wall[t.name]
    for t in trainers:
        raw[t.name].update(train_s=train.wall[t.name], train_cpu_s=train.cpu[t.name], infer_s=infer.wall[t.name],
                           test_accuracy=float((infer.results[t.name] == data["y_test"]).mean()))
    samples = batches * args.batch
    for r in raw.values():
        r["epoch_s"] = [s / samples * len(x) for s in r["train_s"]]  # seconds per 60,000 samples
        r["median_epoch_s"] = common.median(r["epoch_s"])
        r["best_epoch_s"] = min(r["epoch_s"])  # the round least disturbed by other processes
        r["cpu_epoch_s"] = [s / samples * len(x) for s in r["train_cpu_s"]]  # CPU seconds, all threads
        r["median_cpu_epoch_s"] = common.median(r["cpu_epoch_s"])
        r["median_infer_s"] = common.median(r["infer_s"])
        r["inference_samples_per_s"] = len(data["x_test"]) / r["median_infer_s"]
    return raw


def ratio_ranges(raw: dict[str, dict[str, Any]], small_batches: list[int]) -> dict[str, dict[str, Any]]:
    """nnframe's time over each PyTorch variant's, per round (median and range), for training and inference."""
    per_round = common.per_round_ratio
    nn, out = raw["nnframe"], {}
    for other in ("pytorch", "pytorch_fused"):
        out[f"epoch_nnframe_over_{other}"] = per_round(nn["train_s"], raw[other]["train_s"])
    out["infer_b1000_nnframe_over_pytorch"] = per_round(nn["infer_s"], raw["pytorch"]["infer_s"])
    for size in small_batches:
        key = f"infer_b{size}_s"
        out[f"infer_b{size}_nnframe_over_pytorch"] = per_round(nn[key], raw["pytorch"][key])
    return out


def layer_times(args: argparse.Namespace, data: dict[str, np.ndarray], batches: int = 60) -> list[list[Any]]:
    """Per-layer forward/backward milliseconds per batch of nnframe (median over batches)."""
    trainer = NnframeTrainer(args.seed, args.lr)
    forward_ms: dict[str, list[float]] = defaultdict(list)
    backward_ms: dict[str, list[float]] = defaultdict(list)
    for index, lyr in enumerate(trainer.net.layers):
        key = f"{index}.{type(lyr).__name__}"

        def timed_forward(x, f=lyr.forward, key=key):
            start = time.perf_counter()
            out = f(x)
            forward_ms[key].append(1e3 * (time.perf_counter() - start))
            return out

        def timed_backward(g, f=lyr.backward, key=key):
            start = time.perf_counter()
            out = f(g)
            backward_ms[key].append(1e3 * (time.perf_counter() - start))
            return out

        lyr.forward, lyr.backward = timed_forward, timed_backward
    trainer.train(data["x_train"], data["y_train"], args.batch, 5)
    for values in (*forward_ms.values(), *backward_ms.values()):
        values.clear()
    start = time.perf_counter()
    trainer.train(data["x_train"], data["y_train"], args.batch, batches)
    step_ms = 1e3 * (time.perf_counter() - start) / batches
    rows = [[k, common.median(forward_ms[k]), common.median(backward_ms[k])] for k in forward_ms]
    layers_ms = sum(r[1] + r[2] for r in rows)
    rows.append(["loss + optimizer + net glue", None, step_ms - layers_ms])
    rows.append(["whole step", None, step_ms])
    return rows


def profile_text(args: argparse.Namespace, data: dict[str, np.ndarray], batches: int = 60) -> str:
    """pyinstrument's call tree of ``batches`` nnframe training steps (if installed)."""
    try:
        from pyinstrument import Profiler  # noqa: PLC0415
    except ImportError:
        return "(pyinstrument is not installed)"
    trainer = NnframeTrainer(args.seed, args.lr)
    trainer.train(data["x_train"], data["y_train"], args.batch, 5)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    trainer.train(data["x_train"], data["y_train"], args.batch, batches)
    profiler.stop()
    return profiler.output_text(unicode=False, color=False, show_all=False)


def child_rss(args: argparse.Namespace, framework: str) -> float:
    """Peak RSS (MiB) of a fresh process that loads the data, trains 50 batches and infers."""
    child = ["lenet", "--only", framework, "--rounds", "1", "--batches", "50", "--inference-passes", "1",
             "--threads", str(args.threads), "--torch-threads", str(args.torch_threads),
             "--batch", str(args.batch), "--data-dir", args.data_dir, "--quiet"]
    return common.run_json_child(child)["peak_rss_mb"]


# ------------------------------------------------------------------------- report
def format_report(report: dict[str, Any]) -> str:
    cfg, fw = report["config"], report["frameworks"]
    blas = report["blas"]
    how = ("full epochs" if not report["extrapolated"] else
           f"{report['batches']} batches per round, extrapolated to {report['train_samples']} samples")
    lines = [
        f"LeNet (conv5x5x6-pool-conv5x5x16-pool-120-84-10, ReLU) on Fashion-MNIST, batch {cfg['batch']}, "
        f"Adam lr {cfg['lr']}",
        f"{cfg['rounds']} training rounds per framework, interleaved ({how}); inference batch "
        f"{cfg['inference_batch']}, median of {cfg['inference_passes']} passes over {report['test_samples']} images",
        report.get("blas_line", f"NumPy BLAS: {blas.get('name')} core={blas.get('corename')}"),
        f"{cfg['gap']} s idle before every timed call, order alternating per round; CPU: "
        f"{report['machine']['cpu']} x{report['machine']['cpu_count']}; load average at start "
        f"{report['load_average_start']}, at end {report['load_average_end']}",
        "",
    ]
    headers = ["framework", "s/epoch (median)", "s/epoch (best)", "CPU s/epoch", "train samples/s",
               "infer samples/s", "peak RSS MiB", "last loss", "test acc"]
    rows = [[name, r["median_epoch_s"], r["best_epoch_s"], r["median_cpu_epoch_s"],
             report["train_samples"] / r["median_epoch_s"],
             r["inference_samples_per_s"], r.get("peak_rss_mb"), r["loss"][-1], r["test_accuracy"]]
            for name, r in fw.items()]
    lines.append(common.format_table(headers, rows))
    lines.append("")
    for name, r in fw.items():
        lines.append(f"{name:8s} s/epoch per round: {' '.join(f'{s:.2f}' for s in r['epoch_s'])}   "
                     f"CPU s/epoch: {' '.join(f'{s:.2f}' for s in r['cpu_epoch_s'])}   "
                     f"inference passes [s]: {' '.join(f'{s:.3f}' for s in r['infer_s'])}")
    for size in cfg["small_batches"]:
        per_image = [f"{name} {1e3 * common.median(r[f'infer_b{size}_s']) / cfg['small_samples']:.3f}"
                     for name, r in fw.items()]
        lines.append(f"inference at batch {size}, ms per image (median): " + ", ".join(per_image))
    ranges = report.get("ratio_ranges", {})
    if ranges:
        lines += ["", "nnframe time / PyTorch time, median of the per-round ratios (range):"]
        goals = dict(GOALS)
        for key, value in ranges.items():
            lines.append(common.format_ratio(key, value, goals.get(key)))
    for key, value in report.get("ratios", {}).items():
        lines.append(f"{key:40s} {value:6.3f}")
    if report.get("layer_times"):
        lines += ["", "nnframe per layer, ms per batch (median):",
                  common.format_table(["layer", "forward", "backward"], report["layer_times"])]
    if report.get("profile"):
        lines += ["", report["profile"]]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks lenet", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=common.cpu_count(),
                   help="NumPy BLAS threads, read before NumPy loads (default: all cores)")
    p.add_argument("--torch-threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--rounds", type=int, default=3, help="timed training rounds per framework (default 3)")
    p.add_argument("--batches", type=int, default=None,
                   help="batches per round, extrapolated to an epoch (default: a full epoch)")
    p.add_argument("--warmup-batches", type=int, default=5)
    p.add_argument("--inference-batch", type=int, default=1000)
    p.add_argument("--inference-passes", type=int, default=3)
    p.add_argument("--small-batches", type=int, nargs="*", default=[1, 8],
                   help="also time inference at these batch sizes (default 1 8)")
    p.add_argument("--small-samples", type=int, default=200, help="images per small-batch inference pass")
    p.add_argument("--gap", type=float, default=common.IDLE_GAP_S,
                   help=f"idle seconds before every timed call (default {common.IDLE_GAP_S})")
    p.add_argument("--only", choices=FRAMEWORKS, help="measure one framework (what the RSS children do)")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    p.add_argument("--profile", action="store_true", help="add nnframe's per-layer times and a pyinstrument tree")
    p.add_argument("--data-dir", default=FASHION_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    p.add_argument("--quiet", action="store_true", help="print only the report as one JSON line")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks lenet``."""
    args = build_parser().parse_args(argv)
    args.frameworks = (args.only,) if args.only else FRAMEWORKS
    log = (lambda *a, **k: None) if args.quiet else (lambda *a, **k: print(*a, **k, file=sys.stderr))
    load_start = common.load_average()
    data = load_data(args.data_dir)
    steps = len(data["x_train"]) // args.batch
    batches = min(args.batches or steps, steps)
    raw = measure(args, data, log)
    report: dict[str, Any] = {
        "benchmark": "lenet",
        "config": {k: v for k, v in vars(args).items() if k != "frameworks"},
        "train_samples": len(data["x_train"]), "test_samples": len(data["x_test"]),
        "batches": batches, "extrapolated": batches < steps,
        "machine": common.machine_info(), "blas": common.blas_info(), "blas_line": common.blas_line(),
        "frameworks": raw, "peak_rss_mb": common.peak_rss_mb(),
        "load_average_start": load_start,
    }
    if not args.only and not args.no_rss:
        for name in ("nnframe", "pytorch"):  # pytorch_fused: the same memory as pytorch
            log(f"peak RSS: child process for {name} ...")
            raw[name]["peak_rss_mb"] = child_rss(args, name)
    if set(FRAMEWORKS) <= set(raw):
        nn, pt = raw["nnframe"], raw["pytorch"]
        report["ratio_ranges"] = ratio_ranges(raw, args.small_batches)
        report["ratios"] = {
            "best_epoch_nnframe_over_pytorch": nn["best_epoch_s"] / pt["best_epoch_s"],
            "cpu_epoch_nnframe_over_pytorch": nn["median_cpu_epoch_s"] / pt["median_cpu_epoch_s"],
        }
        if "peak_rss_mb" in nn and "peak_rss_mb" in pt:
            report["ratios"]["peak_rss_nnframe_over_pytorch"] = nn["peak_rss_mb"] / pt["peak_rss_mb"]
    if args.profile:
        log("profiling nnframe ...")
        report["layer_times"] = layer_times(args, data)
        report["profile"] = profile_text(args, data)
    report["load_average_end"] = common.load_average()
    if args.json:
        common.write_json(args.json, report)
    print(json.dumps(report) if args.quiet else format_report(report))
    return 0


if __name__ == "__main__":  # python -m benchmarks.lenet (or: python -m benchmarks lenet)
    sys.exit(main())
