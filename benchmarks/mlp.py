"""The seed's MLP benchmark: nnframe against PyTorch CPU and a hand-written NumPy loop.

The model is the seed's 784-200-100-70-30-10 ReLU MLP trained with Adam (lr 2e-4) on
batches of 128, fed in order as the seed's script does (the last partial batch is
dropped). Three implementations train from the same initial weights on the same data:

* ``nnframe``: the seed's three calls, ``pred = m.forward(x)``,
  ``l, step = m.backward(pred, y)``, ``m.apply_grad(step)``, with the seed's float64
  one-hot targets;
* ``pytorch``: ``nn.Sequential`` + ``torch.optim.Adam`` + ``F.cross_entropy`` with
  integer labels, ``torch.set_num_threads(threads)``; ``pytorch_fused`` the same with
  ``Adam(fused=True)``;
* ``numpy``: the floor, a float32 loop written here: preallocated buffers, flat
  parameter/gradient/moment vectors, no input gradient for the first layer.

Epochs and inference passes are timed with the suite's shared method
(:func:`benchmarks.common.compare`): an idle pause before every timed call, the order
alternating from round to round, and each ratio taken per round (median and range).
Peak RSS is measured in a child process per framework, so that one framework's
imports do not count against another. The three implementations and their data are in
:mod:`benchmarks.mlp_trainers`; this module times them and writes the report.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks import common
from benchmarks.mlp_trainers import (  # re-exported: the suite's tests and scripts use benchmarks.mlp.<name>
    FASHION_DIR,
    FRAMEWORKS,
    LAYER_SIZES,
    NUM_CLASSES,
    Data,
    NnframeTrainer,
    NumpyTrainer,
    TorchTrainer,
    accuracy,
    batch_slices,
    inference_flops,
    initial_weights,
    load_data,
    make_trainer,
    read_idx,
    train_flops_per_step,
)

__all__ = [
    "FASHION_DIR", "FRAMEWORKS", "GOALS", "LAYER_SIZES", "NUM_CLASSES", "PHASES", "Config", "Data", "NnframeTrainer",
    "NumpyTrainer", "TorchTrainer", "accuracy", "batch_slices", "build_parser", "format_report", "inference_flops",
    "initial_weights", "load_data", "main", "make_trainer", "phase_times", "pyinstrument_text", "ratios_and_goals",
    "read_idx", "run_suite", "summarise", "train_and_time", "train_flops_per_step",
]


# ---------------------------------------------------------------------------- suite
@dataclass
class Config:
    """What one run of the suite does (the command-line options)."""

    frameworks: tuple[str, ...] = FRAMEWORKS
    epochs: int = 5
    batch: int = 128
    lr: float = 2e-4
    threads: int = 1
    inference_batch: int = 1024
    inference_passes: int = 5
    warmup_steps: int = 10
    data_dir: str | None = FASHION_DIR
    synthetic: bool = False
    train_samples: int | None = None
    test_samples: int | None = None
    seed: int = 0
    rss: bool = True  # measure peak RSS in one child process per framework
    import_repeats: int = 5  # 0: skip the import-time measurement
    sgemm: bool = True
    gap_s: float = common.IDLE_GAP_S  # idle pause before every timed call
    profile: bool = False  # also time nnframe's step phase by phase against the NumPy loop

    def child_args(self, framework: str) -> list[str]:
        """Command-line arguments of the child that measures ``framework``'s peak RSS."""
        args = ["mlp", "--only", framework, "--epochs", "1", "--inference-passes", "1",
                "--batch", str(self.batch), "--threads", str(self.threads), "--seed", str(self.seed),
                "--inference-batch", str(self.inference_batch), "--quiet"]
        if self.synthetic:
            args.append("--synthetic")
        if self.data_dir:
            args += ["--data-dir", self.data_dir]
        if self.train_samples:
            args += ["--train-samples", str(self.train_samples)]
        if self.test_samples:
            args += ["--test-samples", str(self.test_samples)]
        return args


def _torch_available() -> bool:
    import importlib.util  # noqa: PLC0415

    return importlib.util.find_spec("torch") is not None


def train_and_time(config: Config, data: Data, log=print) -> dict[str, dict[str, Any]]:
    """Time training epochs, then inference passes, of every framework with :func:`common.compare`.

    Returns per framework the epoch and inference seconds (one per round), CPU seconds,
    losses, test accuracy and the rounds' order.
    """
    weights = initial_weights(config.seed)
    trainers = [make_trainer(name, weights, config.lr, config.threads) for name in config.frameworks]
    for trainer in trainers:  # first-call allocations and lazy set-up, outside the clock
        trainer.train_epoch(data, config.batch, limit=min(config.warmup_steps * config.batch, len(data.x_train)))
        trainer.predict(data.x_test[: config.inference_batch], config.inference_batch)
    losses: dict[str, list[float]] = {t.name: [] for t in trainers}

    def epoch_call(t: Any) -> Callable[[], float]:
        def call() -> float:
            losses[t.name].append(t.train_epoch(data, config.batch))
            return losses[t.name][-1]
        return call

    train = common.compare({t.name: epoch_call(t) for t in trainers}, config.epochs, config.gap_s, warmup=0,
                           log=lambda line: log("train " + line))
    infer = common.compare({t.name: (lambda t=t: t.predict(data.x_test, config.inference_batch)) for t in trainers},
                           config.inference_passes, config.gap_s, warmup=0)
    return {t.name: {"epoch_seconds": train.wall[t.name], "epoch_cpu_seconds": train.cpu[t.name],
                     "losses": losses[t.name][-config.epochs:], "inference_seconds": infer.wall[t.name],
                     "test_accuracy": accuracy(infer.results[t.name], data.labels_test),
                     "orders": train.orders}
            for t in trainers}


PHASES = ("forward", "loss", "backward", "optimizer")


def phase_times(config: Config, data: Data, steps: int = 100, rounds: int = 5) -> dict[str, dict[str, float]]:
    """Median microseconds per training step spent in each phase, nnframe vs the NumPy loop.

    Phases: ``forward`` (the net), ``loss`` (value and gradient), ``backward`` (the
    net, no input gradient) and ``optimizer`` (Adam's step and adding it to the
    parameters). nnframe's phases are the public pieces ``Model.backward`` and
    ``apply_grad`` are made of; the frameworks alternate every ``steps`` steps.
    """
    weights = initial_weights(config.seed)
    model = NnframeTrainer(weights, config.lr).model
    floor = NumpyTrainer(weights, config.lr)
    x, onehot, labels = data.x_train, data.onehot_train, data.labels_train
    batches = batch_slices(min(len(x), steps * config.batch), config.batch, drop_last=True)
    clock = time.perf_counter

    def nnframe_step(rows: slice) -> list[float]:
        t0 = clock()
        pred = model.net.forward(x[rows])
        t1 = clock()
        _, grad = model.loss.loss_and_grad(pred, onehot[rows])
        t2 = clock()
        model.net.backward(grad, input_grad=False)
        t3 = clock()
        model.apply_grad(model.optimizer.compute_step(model.net.grads, model.net.params))
        return [t1 - t0, t2 - t1, t3 - t2, clock() - t3]

    def numpy_step(rows: slice) -> list[float]:
        t0 = clock()
        z = floor.forward(x[rows])
        t1 = clock()
        floor.loss_and_grad(z, labels[rows])
        t2 = clock()
        floor.backward(x[rows], z)
        t3 = clock()
        floor.adam()
        return [t1 - t0, t2 - t1, t3 - t2, clock() - t3]

    samples: dict[str, list[list[float]]] = {"nnframe": [], "numpy": []}
    for round_index in range(rounds + 1):  # round 0 warms up
        for name, step in (("nnframe", nnframe_step), ("numpy", numpy_step)):
            times = [step(rows) for rows in batches]
            if round_index:
                samples[name] += times
    return {
        name: {phase: 1e6 * common.median([t[i] for t in times]) for i, phase in enumerate(PHASES)}
        for name, times in samples.items()
    }


def pyinstrument_text(config: Config, data: Data, steps: int = 200) -> str | None:
    """pyinstrument's call tree of ``steps`` nnframe training steps (``None`` if not installed)."""
    try:
        from pyinstrument import Profiler  # noqa: PLC0415 - optional
    except ImportError:
        return None
    trainer = NnframeTrainer(initial_weights(config.seed), config.lr)
    limit = min(len(data.x_train), steps * config.batch)
    trainer.train_epoch(data, config.batch, limit=limit)  # warm up
    profiler = Profiler(interval=0.001, use_timing_thread=True)
    profiler.start()
    trainer.train_epoch(data, config.batch, limit=limit)
    profiler.stop()
    return profiler.output_text(unicode=False, color=False)


def summarise(config: Config, data: Data, timings: dict[str, dict[str, Any]],
              peak_gflops: float | None) -> dict[str, dict[str, Any]]:
    """Medians, rates and GFLOP/s from the raw timings."""
    steps = len(data.x_train) // config.batch
    flops_epoch = steps * train_flops_per_step(config.batch)
    flops_infer = inference_flops(len(data.x_test))
    out = {}
    for name, raw in timings.items():
        epoch_s = common.median(raw["epoch_seconds"])
        infer_s = common.median(raw["inference_seconds"])
        gflops = flops_epoch / epoch_s / 1e9
        out[name] = {
            **raw,
            "median_epoch_s": epoch_s,
            "best_epoch_s": min(raw["epoch_seconds"]),
            "train_samples_per_s": steps * config.batch / epoch_s,
            "train_gflops": gflops,
            "train_fraction_of_peak": gflops / peak_gflops if peak_gflops else None,
            "median_inference_s": infer_s,
            "inference_samples_per_s": len(data.x_test) / infer_s,
            "inference_gflops": flops_infer / infer_s / 1e9,
            "final_loss": raw["losses"][-1],
        }
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _per_round(fw: dict[str, Any], numerator: str, denominator: str, key: str) -> dict[str, Any] | None:
    """Median and range of ``fw[numerator][key][r] / fw[denominator][key][r]`` over the rounds ``r``."""
    if numerator not in fw or denominator not in fw:
        return None
    return common.per_round_ratio(fw[numerator][key], fw[denominator][key])


GOALS = (
    # (key, description, ratio key, "<=" or ">=" or "<", threshold)
    ("train_vs_pytorch", "training epoch <= 0.6x PyTorch", "epoch_nnframe_over_pytorch", "<=", 0.6),
    ("train_vs_numpy", "training epoch <= 1.1x NumPy loop", "epoch_nnframe_over_numpy", "<=", 1.1),
    ("inference_vs_pytorch", "inference >= 1.0x PyTorch (samples/s)",
     "inference_nnframe_over_pytorch", ">=", 1.0),
    ("rss_vs_pytorch", "peak RSS <= 0.6x PyTorch's", "rss_nnframe_over_pytorch", "<=", 0.6),
    ("import_time", "import nnframe < 0.2 s", "import_nnframe_s", "<", 0.2),
)


def ratios_and_goals(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ratios the issue asks for, and whether each goal is met."""
    fw = report["frameworks"]

    def get(name: str, key: str) -> float | None:
        return fw.get(name, {}).get(key)

    imports = report.get("import_seconds", {})
    per_round = {
        "epoch_nnframe_over_pytorch": _per_round(fw, "nnframe", "pytorch", "epoch_seconds"),
        "epoch_nnframe_over_pytorch_fused": _per_round(fw, "nnframe", "pytorch_fused", "epoch_seconds"),
        "epoch_nnframe_over_numpy": _per_round(fw, "nnframe", "numpy", "epoch_seconds"),
        "epoch_pytorch_over_numpy": _per_round(fw, "pytorch", "numpy", "epoch_seconds"),
        # samples/s ratio: the other framework's seconds over nnframe's
        "inference_nnframe_over_pytorch": _per_round(fw, "pytorch", "nnframe", "inference_seconds"),
        "inference_nnframe_over_numpy": _per_round(fw, "numpy", "nnframe", "inference_seconds"),
    }
    report["ratio_ranges"] = {k: v for k, v in per_round.items() if v is not None}
    ratios = {
        **{k: None if v is None else v["median"] for k, v in per_round.items()},
        "best_epoch_nnframe_over_pytorch": _ratio(get("nnframe", "best_epoch_s"), get("pytorch", "best_epoch_s")),
        "best_epoch_nnframe_over_numpy": _ratio(get("nnframe", "best_epoch_s"), get("numpy", "best_epoch_s")),
        "rss_nnframe_over_pytorch": _ratio(get("nnframe", "peak_rss_mb"), get("pytorch", "peak_rss_mb")),
        "import_nnframe_s": imports.get("nnframe", {}).get("median_s"),
        "import_nnframe_minus_numpy_s": (imports["nnframe"]["median_s"] - imports["numpy"]["median_s"]
                                         if "nnframe" in imports and "numpy" in imports else None),
        "import_nnframe_over_torch": _ratio(imports.get("nnframe", {}).get("median_s"),
                                            imports.get("torch", {}).get("median_s")),
    }
    goals = {}
    for key, text, ratio_key, op, threshold in GOALS:
        value = ratios.get(ratio_key)
        met = None if value is None else (
            value <= threshold if op == "<=" else value >= threshold if op == ">=" else value < threshold)
        goals[key] = {"goal": text, "value": value, "threshold": threshold, "met": met}
    return ratios, goals


def run_suite(config: Config, log=print) -> dict[str, Any]:
    """Run the whole suite and return the report (see :func:`format_report`)."""
    if not _torch_available() and any(f.startswith("pytorch") for f in config.frameworks):
        log("torch is not installed: skipping the PyTorch columns")
        config.frameworks = tuple(f for f in config.frameworks if not f.startswith("pytorch"))
    start = time.perf_counter()
    rss_before = common.peak_rss_mb()
    data = load_data(config.data_dir, config.synthetic, config.train_samples, config.test_samples, config.seed)
    report: dict[str, Any] = {
        "benchmark": "mlp",
        "model": "-".join(map(str, LAYER_SIZES)) + " ReLU, softmax cross-entropy, Adam",
        "config": {k: v for k, v in vars(config).items()},
        "data": {"source": data.source, "train_samples": len(data.x_train), "test_samples": len(data.x_test),
                 "steps_per_epoch": len(data.x_train) // config.batch},
        "machine": common.machine_info(),
        "blas": common.blas_info(),
        "flops_per_epoch": (len(data.x_train) // config.batch) * train_flops_per_step(config.batch),
        "flops_per_inference_pass": inference_flops(len(data.x_test)),
    }
    report["versions"] = _versions(config.frameworks)
    peak = None
    if config.sgemm:
        report["sgemm"] = common.sgemm_gflops()
        peak = max(s["best_gflops"] for s in report["sgemm"])
        report["sgemm_peak_gflops"] = peak
        report["floor_epoch_s_at_peak"] = report["flops_per_epoch"] / peak / 1e9
    rss_after_data = common.peak_rss_mb()
    timings = train_and_time(config, data, log)
    report["frameworks"] = summarise(config, data, timings, peak)
    report["rss_mb"] = {"before_data": rss_before, "after_data": rss_after_data, "this_process": common.peak_rss_mb(),
                        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if config.rss:
        for name in (f for f in config.frameworks if f != "pytorch_fused"):  # same memory as pytorch
            log(f"peak RSS: child process for {name} ...")
            child = common.run_json_child(config.child_args(name))
            report["frameworks"][name]["peak_rss_mb"] = child["rss_mb"]["this_process"]
            report["frameworks"][name]["rss_after_data_mb"] = child["rss_mb"]["after_data"]
    if config.import_repeats > 0:
        report["import_seconds"] = {}
        modules = ["numpy", "nnframe"] + (["torch"] if "pytorch" in config.frameworks else [])
        for module in modules:
            times = common.import_seconds(module, config.import_repeats)
            report["import_seconds"][module] = {"median_s": common.median(times), "all_s": times}
        if os.environ.get("PYTHONDONTWRITEBYTECODE"):  # and as this environment imports it
            times = common.import_seconds("nnframe", config.import_repeats, bytecode_cache=False)
            report["import_seconds"]["nnframe"]["no_bytecode_median_s"] = common.median(times)
    if config.profile:
        log("profiling the training step ...")
        report["profile"] = {"phase_us_per_step": phase_times(config, data),
                             "pyinstrument": pyinstrument_text(config, data)}
    report["blas_line"] = common.blas_line()  # after the trainers: PyTorch is loaded now
    report["ratios"], report["goals"] = ratios_and_goals(report)
    report["wall_s"] = time.perf_counter() - start
    return report


def _versions(frameworks: tuple[str, ...]) -> dict[str, str]:
    versions = {"numpy": np.__version__}
    if "nnframe" in frameworks:
        import nnframe  # noqa: PLC0415

        versions["nnframe"] = nnframe.__version__
    if "pytorch" in frameworks:
        import torch  # noqa: PLC0415

        versions["torch"] = torch.__version__
        versions["torch_threads"] = str(torch.get_num_threads())
    return versions


# --------------------------------------------------------------------------- output
def format_report(report: dict[str, Any]) -> str:
    """The report as text: a header, one row per framework, the ratios and the goals."""
    cfg, fw = report["config"], report["frameworks"]
    blas = report["blas"]
    lines = [
        f"MLP {report['model']}, batch {cfg['batch']}, lr {cfg['lr']}; {report['data']['source']}: "
        f"{report['data']['train_samples']} train / {report['data']['test_samples']} test samples",
        f"{cfg['epochs']} epochs per framework, order alternating per round, {cfg['gap_s']} s idle before "
        f"each timed call; inference batch {cfg['inference_batch']}, median of {cfg['inference_passes']} "
        f"passes; threads {cfg['threads']}",
        report.get("blas_line", f"BLAS: {blas.get('name')} core={blas.get('corename')}"),
        f"CPU: {report['machine']['cpu']} x{report['machine']['cpu_count']}; versions {report['versions']}",
    ]
    if "sgemm" in report:
        shapes = ", ".join(
            f"{s['m']}x{s['k']}{'(T)' if s['a_transposed'] else ''}@{s['k']}x{s['n']} "
            f"{s['median_gflops']:.0f} (best {s['best_gflops']:.0f})" for s in report["sgemm"])
        lines.append(f"sgemm GFLOP/s: {shapes}; peak {report['sgemm_peak_gflops']:.0f}")
        lines.append(f"{report['flops_per_epoch'] / 1e9:.1f} GFLOP per epoch -> floor "
                     f"{report['floor_epoch_s_at_peak']:.3f} s/epoch at peak")
    headers = ["framework", "s/epoch", "train samples/s", "GFLOP/s", "% peak", "infer samples/s",
               "peak RSS MiB", "final loss", "test acc"]
    rows = []
    for name, r in fw.items():
        frac = r.get("train_fraction_of_peak")
        rows.append([name, r["median_epoch_s"], r["train_samples_per_s"], r["train_gflops"],
                     None if frac is None else 100.0 * frac, r["inference_samples_per_s"],
                     r.get("peak_rss_mb"), r["final_loss"], r["test_accuracy"]])
    lines += ["", common.format_table(headers, rows), ""]
    for name, r in fw.items():
        epochs = " ".join(f"{s:.3f}" for s in r["epoch_seconds"])
        infer = " ".join(f"{s:.3f}" for s in r["inference_seconds"])
        lines.append(f"{name:8s} epochs [s]: {epochs}   inference passes [s]: {infer}")
    spread = max(max(r["epoch_seconds"]) / min(r["epoch_seconds"]) for r in fw.values())
    if spread > 1.5:
        lines.append(f"WARNING: epoch times of one framework vary {spread:.1f}x: other load on the machine; "
                     "medians may mix loaded and idle epochs (see the best-epoch ratios, or rerun)")
    if "import_seconds" in report:
        imports = ", ".join(f"import {m}: {v['median_s']:.3f} s" for m, v in report["import_seconds"].items())
        lines.append(f"import time (median of {cfg['import_repeats']} fresh interpreters, bytecode cached): {imports}")
        cold = report["import_seconds"]["nnframe"].get("no_bytecode_median_s")
        if cold is not None:
            lines.append(f"  (import nnframe with PYTHONDONTWRITEBYTECODE set, compiling every module: {cold:.3f} s)")
    if "profile" in report:
        phases = report["profile"]["phase_us_per_step"]
        ours, floor = phases["nnframe"], phases["numpy"]
        total_ours, total_floor = sum(ours.values()), sum(floor.values())
        rows = [[p, ours[p], floor[p], ours[p] - floor[p], 100.0 * ours[p] / total_ours] for p in PHASES]
        rows.append(["total", total_ours, total_floor, total_ours - total_floor, 100.0])
        lines += ["", "where a training step's time goes (median us per step, phases timed separately):",
                  common.format_table(["phase", "nnframe us", "numpy us", "difference us", "% of nnframe"], rows)]
    lines.append("")
    ranges = report.get("ratio_ranges", {})
    lines.append("ratios: median of the per-round ratios (range over the rounds)")
    for key, value in report["ratios"].items():
        if key in ranges:
            lines.append(common.format_ratio(key, ranges[key]))
        else:
            lines.append(f"{key:40s} {'-' if value is None else f'{value:6.3f}'}")
    lines.append("")
    for goal in report["goals"].values():
        status = "n/a" if goal["met"] is None else ("MET" if goal["met"] else "MISSED")
        value = "-" if goal["value"] is None else f"{goal['value']:.3f}"
        lines.append(f"{status:6s} {goal['goal']:40s} measured {value}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m benchmarks mlp``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks mlp", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=5, help="timed epochs per framework (default 5)")
    p.add_argument("--threads", type=int, default=common.cpu_count(),
                   help="BLAS / torch threads (default: all cores this process may use)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--inference-batch", type=int, default=1024)
    p.add_argument("--inference-passes", type=int, default=5)
    p.add_argument("--warmup-steps", type=int, default=10)
    p.add_argument("--only", choices=FRAMEWORKS, action="append",
                   help="run only this framework (repeatable); a single --only skips the RSS children, "
                        "import timing and sgemm, as the RSS child does")
    p.add_argument("--data-dir", default=FASHION_DIR)
    p.add_argument("--synthetic", action="store_true", help="random data even if Fashion-MNIST is there")
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--test-samples", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--import-repeats", type=int, default=5)
    p.add_argument("--gap", type=float, default=common.IDLE_GAP_S,
                   help=f"idle seconds before every timed call (default {common.IDLE_GAP_S})")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    p.add_argument("--profile", action="store_true",
                   help="also time nnframe's step phase by phase against the NumPy loop, and print "
                        "pyinstrument's call tree of nnframe's step")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    p.add_argument("--quiet", action="store_true",
                   help="print only the report as one JSON line (what the RSS children do)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks mlp``."""
    args = build_parser().parse_args(argv)
    single = args.only is not None and len(args.only) == 1
    config = Config(
        frameworks=tuple(args.only) if args.only else FRAMEWORKS,
        epochs=args.epochs, batch=args.batch, lr=args.lr, threads=args.threads,
        inference_batch=args.inference_batch, inference_passes=args.inference_passes,
        warmup_steps=args.warmup_steps, data_dir=args.data_dir, synthetic=args.synthetic,
        train_samples=args.train_samples, test_samples=args.test_samples, seed=args.seed,
        rss=not (args.no_rss or single), import_repeats=0 if single else args.import_repeats,
        sgemm=not single, gap_s=args.gap, profile=args.profile,
    )
    log = (lambda *a, **k: None) if args.quiet else (lambda *a, **k: print(*a, **k, file=sys.stderr))
    report = run_suite(config, log)
    if args.json:
        common.write_json(args.json, report)
    if args.quiet:
        import json  # noqa: PLC0415

        print(json.dumps(report))
    else:
        print(format_report(report))
        if report.get("profile", {}).get("pyinstrument"):
            print("\npyinstrument, nnframe's training steps:\n" + report["profile"]["pyinstrument"])
    return 0
