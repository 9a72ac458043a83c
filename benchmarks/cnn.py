"""A CIFAR-size CNN: nnframe against PyTorch CPU, timed with the suite's fair method.

The net (issue 11): conv3x3(32)-BN-ReLU, conv3x3(32)-BN-ReLU, max-pool 2,
conv3x3(64)-BN-ReLU, conv3x3(64)-BN-ReLU, max-pool 2, dense 10 (convolutions with
padding 1), softmax cross-entropy, Adam (lr 1e-3), batches of 128 images 32x32x3.
Data: CIFAR-10's binary files (``cifar-10-batches-bin``) from ``--data-dir`` if they are
there, else random images and labels of that shape (the speed is the same).

* ``nnframe``: the seed's three calls, NHWC float32.
* ``pytorch``: ``nn.Sequential`` + ``torch.optim.Adam`` + ``F.cross_entropy``, NCHW,
  ``torch.set_num_threads(--threads)``; ``pytorch_fused``: ``Adam(fused=True)``.
* ``numpy_products``: only the net's matrix products (each convolution as im2col), run by
  NumPy on preallocated operands (:mod:`benchmarks.gemm_floor`): the floor under any
  framework on NumPy's BLAS. ``numpy_products_over_pytorch`` above 1 means NumPy's BLAS
  alone is slower than PyTorch's whole step.

Each timed call is ``--steps`` training steps (or a pass of inference); the contenders
run in rounds with the order alternating and an idle pause before every call
(:func:`benchmarks.common.compare`); ratios are per round (median and range).

    python -m benchmarks cnn                    # 7 rounds of 5 steps, 2 threads each
    python -m benchmarks cnn --profile          # + per-layer forward/backward ms, both frameworks
    python -m benchmarks cnn --rss              # + peak RSS of one child process per framework
    python -m benchmarks cnn --threads 1        # one thread each (a loaded machine)
    python -m benchmarks cnn --net resnet-block # a ResNet basic block, 64 channels on 16x16

``--net resnet-block``: x (128 images 16x16x64) -> [conv3x3(64)-BN-ReLU-conv3x3(64)-BN] + x
-> ReLU -> global average pool -> dense 10 (issue 11's "ResNet basic block"), random data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections import defaultdict
from typing import Any

import numpy as np

from benchmarks import common, gemm_floor

FRAMEWORKS = ("nnframe", "pytorch", "pytorch_fused", "numpy_products")
GOAL_RATIO = 1.2  # issue 11: a training step <= 1.2x PyTorch's
INFER_GOAL_RATIO = 1.0  # issue 13 (the ResNet block): inference <= PyTorch
CIFAR_DIR = "/usr/share/datasets/cifar-10"
WIDTHS = (32, 32, 64, 64)  # output channels of the four 3x3 convolutions; a max-pool after the 2nd and 4th
#: input shape (H, W, C) of each net
INPUT_SHAPES = {"cifar": (32, 32, 3), "resnet-block": (16, 16, 64)}


# --------------------------------------------------------------------------- data
def random_data(shape: tuple[int, int, int], samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Random NHWC float32 images of ``shape`` and int64 labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    return rng.random((samples, *shape), dtype=np.float32), rng.integers(0, 10, samples), f"random {shape} images"


def load_data(data_dir: str | None, samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``samples`` CIFAR-10 training images (NHWC float32 in [0, 1]) and int64 labels, or random ones.

    Reads the binary version (``data_batch_1.bin``: records of 1 label byte and 3072
    channel-planar pixel bytes) when ``data_dir/cifar-10-batches-bin`` or ``data_dir`` holds it.
    """
    for folder in (os.path.join(data_dir or "", "cifar-10-batches-bin"), data_dir or ""):
        path = os.path.join(folder, "data_batch_1.bin")
        if data_dir and os.path.exists(path):
            raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 3073)[:samples]
            x = raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype(np.float32) / 255.0  # NCHW -> NHWC
            return np.ascontiguousarray(x), raw[:, 0].astype(np.int64), f"CIFAR-10 ({path})"
    rng = np.random.default_rng(seed)
    x = rng.random((samples, 32, 32, 3), dtype=np.float32)
    return x, rng.integers(0, 10, samples), "random images of CIFAR-10's shape (CIFAR-10 not found)"


# --------------------------------------------------------------------------- nets
def nnframe_layers(net_name: str = "cifar") -> list[Any]:
    """The net in nnframe (NHWC)."""
    from nnframe import layer, net  # noqa: PLC0415

    if net_name == "resnet-block":
        body = net.Net([layer.Conv2D(64, 3, padding=1), layer.BatchNorm(), layer.ReLU(),
                        layer.Conv2D(64, 3, padding=1), layer.BatchNorm()])
        return [layer.Residual(body), layer.ReLU(), layer.GlobalAvgPool2D(), layer.Dense(10)]
    layers: list[Any] = []
    for i, width in enumerate(WIDTHS):
        layers += [layer.Conv2D(width, 3, padding=1), layer.BatchNorm(), layer.ReLU()]
        if i % 2:
            layers.append(layer.MaxPool2D(2))
    return [*layers, layer.Flatten(), layer.Dense(10)]


def torch_net(net_name: str = "cifar") -> Any:
    """The same net in PyTorch (NCHW)."""
    import torch  # noqa: PLC0415

    nn, modules, cin = torch.nn, [], 3
    if net_name == "resnet-block":
        class Residual(nn.Module):
            def __init__(self, body: Any) -> None:
                super().__init__()
                self.body = body

            def forward(self, x: Any) -> Any:
                return self.body(x) + x

        class GlobalAvgPool(nn.Module):  # one module, as nnframe's GlobalAvgPool2D (the profile pairs them)
            def forward(self, x: Any) -> Any:
                return x.mean(dim=(2, 3))

        body = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
                             nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64))
        return nn.Sequential(Residual(body), nn.ReLU(), GlobalAvgPool(), nn.Linear(64, 10))
    for i, width in enumerate(WIDTHS):
        modules += [nn.Conv2d(cin, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        cin = width
        if i % 2:
            modules.append(nn.MaxPool2d(2))
    return nn.Sequential(*modules, nn.Flatten(), nn.Linear(64 * 8 * 8, 10))


class NnframeTrainer:
    """nnframe's Model driven by the seed's three calls."""

    name = "nnframe"

    def __init__(self, seed: int, lr: float, net_name: str = "cifar") -> None:
        import nnframe  # noqa: PLC0415
        from nnframe import loss, model, net, optimizer  # noqa: PLC0415

        nnframe.set_seed(seed)
        self.net = net.Net(nnframe_layers(net_name))
        self.net.build((1, *INPUT_SHAPES[net_name]))
        self.model = model.Model(self.net, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=lr))
        self.eye = np.eye(10, dtype=np.float32)

    def train(self, x: np.ndarray, y: np.ndarray, batch: int, steps: int) -> float:
        self.net.train()
        total = 0.0
        for i in range(steps):
            rows = slice((i * batch) % len(x), (i * batch) % len(x) + batch)
            pred = self.model.forward(x[rows])
            loss, step = self.model.backward(pred, self.eye[y[rows]])
            self.model.apply_grad(step)
            total += loss
        return total / steps

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        self.net.eval()
        return np.concatenate([self.model.forward(x[i : i + batch]).argmax(axis=1) for i in range(0, len(x), batch)])


class TorchTrainer:
    """The same net in PyTorch, NCHW, default or fused Adam."""

    def __init__(self, seed: int, lr: float, threads: int, fused: bool, net_name: str = "cifar") -> None:
        import torch  # noqa: PLC0415

        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.torch, self.name = torch, "pytorch_fused" if fused else "pytorch"
        self.net = torch_net(net_name)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, fused=fused)
        self._tensors: dict[int, Any] = {}

    def _nchw(self, x: np.ndarray) -> Any:
        if id(x) not in self._tensors:  # converted once, outside the clock of later rounds
            self._tensors[id(x)] = self.torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        return self._tensors[id(x)]

    def train(self, x: np.ndarray, y: np.ndarray, batch: int, steps: int) -> float:
        torch = self.torch
        xt, yt = self._nchw(x), torch.from_numpy(y)
        self.net.train()
        total = 0.0
        for i in range(steps):
            rows = slice((i * batch) % len(x), (i * batch) % len(x) + batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(self.net(xt[rows]), yt[rows])
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        return total / steps

    def predict(self, x: np.ndarray, batch: int) -> np.ndarray:
        torch = self.torch
        xt = self._nchw(x)
        self.net.eval()
        with torch.inference_mode():
            return torch.cat([self.net(xt[i : i + batch]).argmax(dim=1) for i in range(0, len(x), batch)]).numpy()


def net_products(net_name: str, batch: int) -> dict[str, list[gemm_floor.Product]]:
    """The net's matrix products (:mod:`benchmarks.gemm_floor`): each convolution as im2col, the dense head."""
    g = gemm_floor
    if net_name == "resnet-block":  # the first convolution reads the net's input: no input gradient
        return g.merge(g.conv_products(batch, 16, 16, 64, 64, input_grad=False),
                       g.conv_products(batch, 16, 16, 64, 64), g.dense_products(batch, 64, 10))
    convs, c_in, side = [], INPUT_SHAPES[net_name][2], INPUT_SHAPES[net_name][0]
    for i, width in enumerate(WIDTHS):
        convs.append(g.conv_products(batch, side, side, c_in, width, input_grad=i > 0))
        c_in, side = width, side // 2 if i % 2 else side
    return g.merge(*convs, g.dense_products(batch, side * side * c_in, 10))


class ProductsTrainer:
    """The net's matrix products alone, run by NumPy: the floor under any NumPy framework."""

    name = "numpy_products"

    def __init__(self, net_name: str, batch: int, threads: int) -> None:
        plan = net_products(net_name, batch)
        self.step = gemm_floor.Products(plan["forward"] + plan["backward"], threads=threads)
        self.forward = gemm_floor.Products(plan["forward"], threads=threads)

    def train(self, x: np.ndarray, y: np.ndarray, batch: int, steps: int) -> float:
        self.step.run(steps)
        return 0.0

    def predict(self, x: np.ndarray, batch: int) -> None:
        self.forward.run(-(-len(x) // batch))


def make_trainer(name: str, args: argparse.Namespace) -> Any:
    """The trainer called ``name`` (one of :data:`FRAMEWORKS`)."""
    if name == "nnframe":
        return NnframeTrainer(args.seed, args.lr, args.net)
    if name in ("pytorch", "pytorch_fused"):
        return TorchTrainer(args.seed, args.lr, args.threads, fused=name == "pytorch_fused", net_name=args.net)
    if name == "numpy_products":
        return ProductsTrainer(args.net, args.batch, args.threads)
    raise ValueError(f"unknown framework {name!r}; expected one of {FRAMEWORKS}")


# ------------------------------------------------------------------------ profiles
def nnframe_layer_ms(trainer: NnframeTrainer, x: np.ndarray, y: np.ndarray, batch: int,
                     steps: int, clock: Any = time.perf_counter) -> dict[str, list[float]]:
    """``{layer: [forward ms, backward ms]}`` per step of nnframe (median over ``steps``), plus the whole step.

    ``clock``: ``time.perf_counter`` (wall) or ``time.process_time`` (CPU seconds of this
    process: with one thread, robust to other load on the machine).
    """
    times: dict[str, list[list[float]]] = defaultdict(lambda: [[], []])
    originals = []
    for index, lyr in enumerate(trainer.net.layers):
        key = f"{index}.{type(lyr).__name__}"
        originals.append((lyr, lyr.forward, lyr.backward))

        def wrap(f: Any, slot: int, key: str = key) -> Any:
            def timed(*a: Any, **k: Any) -> Any:
                start = clock()
                out = f(*a, **k)
                times[key][slot].append(1e3 * (clock() - start))
                return out
            return timed

        lyr.forward, lyr.backward = wrap(lyr.forward, 0), wrap(lyr.backward, 1)
    try:
        trainer.train(x, y, batch, 2)
        times.clear()
        start = clock()
        trainer.train(x, y, batch, steps)
        step_ms = 1e3 * (clock() - start) / steps
    finally:
        for lyr, forward, backward in originals:
            lyr.forward, lyr.backward = forward, backward
    out = {k: [common.median(f), common.median(b)] for k, (f, b) in times.items()}
    out["whole step"] = [step_ms, 0.0]
    return out


def torch_layer_ms(trainer: TorchTrainer, x: np.ndarray, y: np.ndarray, batch: int,
                   steps: int, clock: Any = time.perf_counter) -> dict[str, list[float]]:
    """``{layer: [forward ms, backward ms]}`` per step of PyTorch from module hooks (median over ``steps``).

    Backward time of a module: from its backward pre-hook to its backward hook; ``clock`` as
    for :func:`nnframe_layer_ms`.
    """
    times: dict[str, list[list[float]]] = defaultdict(lambda: [[], []])
    started: dict[str, float] = {}
    handles = []
    for index, module in enumerate(trainer.net):
        key = f"{index}.{type(module).__name__}"

        def pre(key: str, slot: int) -> Any:
            def hook(*_: Any) -> None:
                started[f"{key}/{slot}"] = clock()
            return hook

        def post(key: str, slot: int) -> Any:
            def hook(*_: Any) -> None:
                times[key][slot].append(1e3 * (clock() - started[f"{key}/{slot}"]))
            return hook

        handles += [module.register_forward_pre_hook(pre(key, 0)), module.register_forward_hook(post(key, 0)),
                    module.register_full_backward_pre_hook(pre(key, 1)),
                    module.register_full_backward_hook(post(key, 1))]
    try:
        with warnings.catch_warnings():  # the first conv's input needs no gradient: its hook fires anyway
            warnings.simplefilter("ignore", UserWarning)
            trainer.train(x, y, batch, 2)
            times.clear()
            start = clock()
            trainer.train(x, y, batch, steps)
            step_ms = 1e3 * (clock() - start) / steps
    finally:
        for handle in handles:
            handle.remove()
    out = {k: [common.median(f), common.median(b) if b else 0.0] for k, (f, b) in times.items()}
    out["whole step"] = [step_ms, 0.0]
    return out


def profile_rows(ours: dict[str, list[float]], theirs: dict[str, list[float]] | None) -> list[list[Any]]:
    """Table rows: per layer nnframe's forward/backward ms, PyTorch's, and the ratio of the sums."""
    rows = []
    for (key, (f, b)), other in zip(ours.items(), (theirs or {}).values() if theirs else [None] * len(ours),
                                     strict=False):
        row: list[Any] = [key, f, b]
        if other is not None:
            row += [other[0], other[1], (f + b) / (other[0] + other[1]) if other[0] + other[1] else None]
        rows.append(row)
    if ours and theirs:
        layer_sum = sum(f + b for k, (f, b) in ours.items() if k != "whole step")
        rows.insert(-1, ["layers total", layer_sum, None, sum(f + b for k, (f, b) in theirs.items()
                                                              if k != "whole step"), None, None])
    return rows


# ------------------------------------------------------------------------- report
def format_report(report: dict[str, Any]) -> str:
    """The report as text."""
    cfg = report["config"]
    title = {"cifar": "CIFAR-size CNN (conv3x3 32-32-pool-64-64-pool, BN+ReLU, dense 10)",
             "resnet-block": "ResNet basic block (64 channels, 16x16: conv-BN-ReLU-conv-BN + x, ReLU, pool, dense 10)"}
    lines = [
        f"{title[cfg['net']]}, batch {cfg['batch']}, Adam lr {cfg['lr']}; data: {report['data']}",
        f"{cfg['rounds']} rounds of {cfg['steps']} training steps per contender, order alternating, "
        f"{cfg['gap']} s idle before every timed call; load average {report['load_start']} -> {report['load_end']}",
        report["blas_line"], "",
        common.format_table(*report["train_table"]), "",
    ]
    for key, ratio in report["ratio_ranges"].items():
        goal = GOAL_RATIO if key == "train_nnframe_over_pytorch" else None
        lines.append(common.format_ratio(key, ratio, goal))
    if report.get("infer_table"):
        lines += ["", f"inference (evaluation-mode forward, batches of {cfg['batch']} over {cfg['samples']} images):",
                  common.format_table(*report["infer_table"]), ""]
        for key, ratio in report.get("infer_ratio_ranges", {}).items():
            lines.append(common.format_ratio(key, ratio, INFER_GOAL_RATIO if key == "infer_nnframe_over_pytorch"
                                             else None))
    for name, mib in report.get("peak_rss_mb", {}).items():
        lines.append(f"peak RSS of a training child process, {name}: {mib:.0f} MiB")
    if "profile" in report:
        headers = ["layer (nnframe index)", "nnframe fwd ms", "nnframe bwd ms", "torch fwd ms", "torch bwd ms",
                   "nnframe/torch"]
        lines += ["", f"per layer, {cfg['profile_clock']} ms per step (median; hooks/wrappers add a little; "
                  "PyTorch's first module computes no input gradient, so its hooks see no backward time):",
                  common.format_table(headers, report["profile"])]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m benchmarks cnn``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks cnn", description=__doc__.split("\n\n")[0])
    p.add_argument("--net", choices=tuple(INPUT_SHAPES), default="cifar",
                   help="cifar (the default) or resnet-block")
    p.add_argument("--threads", type=int, default=common.cpu_count(),
                   help="NumPy BLAS and torch threads (default: all cores)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=5, help="training steps per timed call (default 5)")
    p.add_argument("--samples", type=int, default=1280, help="images cycled through (default 1280)")
    p.add_argument("--gap", type=float, default=common.IDLE_GAP_S)
    p.add_argument("--only", choices=FRAMEWORKS, action="append", help="run only this framework (repeatable)")
    p.add_argument("--profile", action="store_true", help="per-layer forward/backward times of both frameworks")
    p.add_argument("--profile-steps", type=int, default=10)
    p.add_argument("--profile-clock", choices=("wall", "cpu"), default="wall",
                   help="per-layer times in wall or CPU ms (cpu: with --threads 1, robust to other load)")
    p.add_argument("--rss", action="store_true", help="peak RSS of one child process per framework")
    p.add_argument("--data-dir", default=CIFAR_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    p.add_argument("--quiet", action="store_true", help="print only the report as one JSON line")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks cnn``."""
    args = build_parser().parse_args(argv)
    names = tuple(args.only) if args.only else FRAMEWORKS
    log = (lambda *a, **k: None) if args.quiet else (lambda *a, **k: print(*a, **k, file=sys.stderr))
    load_start = common.load_average()
    x, y, source = (load_data(args.data_dir, args.samples, args.seed) if args.net == "cifar"
                    else random_data(INPUT_SHAPES[args.net], args.samples, args.seed))
    trainers = {name: make_trainer(name, args) for name in names}
    for t in trainers.values():  # lazy building, first-call allocations
        t.train(x, y, args.batch, 2)
    losses: dict[str, float] = {}

    def call(t: Any) -> Any:
        def run() -> float:
            losses[t.name] = t.train(x, y, args.batch, args.steps)
            return losses[t.name]
        return run

    timings = common.compare({n: call(t) for n, t in trainers.items()}, args.rounds, args.gap, warmup=0, log=log)
    inferring = {n: t for n, t in trainers.items() if n != "pytorch_fused"}  # fused Adam: same forward
    infer = common.compare({n: (lambda t=t: t.predict(x, args.batch)) for n, t in inferring.items()},
                           args.rounds, args.gap, warmup=1, log=log)
    report: dict[str, Any] = {
        "benchmark": "cnn", "config": vars(args), "data": source, "load_start": load_start,
        "blas": common.blas_info(), "blas_line": common.blas_line(), "machine": common.machine_info(),
        "timings": timings.to_dict(), "last_loss": losses,
        "train_table": timings.table(unit=args.steps / 1e3, unit_name="ms/step"),
        "ratio_ranges": {f"train_{mine}_over_{other}": timings.ratio(mine, other) for mine, other in
                         [("nnframe", o) for o in names if o != "nnframe"] + [("numpy_products", "pytorch")]
                         if mine in names and other in names},
        "infer_table": infer.table(unit=-(-len(x) // args.batch) / 1e3, unit_name="ms/batch"),
        "infer_ratio_ranges": {f"infer_{mine}_over_{other}": infer.ratio(mine, other) for mine, other in
                               [("nnframe", o) for o in inferring if o != "nnframe"]
                               + [("numpy_products", "pytorch")] if mine in inferring and other in inferring},
        "peak_rss_mb_this_process": common.peak_rss_mb(),
    }
    if args.rss and not args.only:
        report["peak_rss_mb"] = {}
        for name in ("nnframe", "pytorch"):
            log(f"peak RSS: child process for {name} ...")
            child = common.run_json_child(["cnn", "--net", args.net, "--only", name, "--rounds", "1",
                                           "--steps", str(args.steps),
                                           "--threads", str(args.threads), "--batch", str(args.batch),
                                           "--gap", "0", "--quiet"])
            report["peak_rss_mb"][name] = child["peak_rss_mb_this_process"]
    if args.profile and "nnframe" in trainers:
        log("per-layer profile ...")
        clock = time.process_time if args.profile_clock == "cpu" else time.perf_counter
        ours = nnframe_layer_ms(trainers["nnframe"], x, y, args.batch, args.profile_steps, clock)
        theirs = (torch_layer_ms(trainers["pytorch"], x, y, args.batch, args.profile_steps, clock)
                  if "pytorch" in trainers else None)
        report["profile"] = profile_rows(ours, theirs)
    report["load_end"] = common.load_average()
    if args.json:
        common.write_json(args.json, report)
    print(json.dumps(report) if args.quiet else format_report(report))
    return 0


if __name__ == "__main__":  # python -m benchmarks.cnn (or: python -m benchmarks cnn)
    sys.exit(main())
