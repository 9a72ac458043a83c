"""``python -m benchmarks distributed``: data-parallel training on MPI vs one process.

For the seed MLP (784-200-100-70-30-10) and LeNet (``--models`` adds ``cnn``, the fashion
CNN of examples/fashion_cnn.json), a global batch of 128 trained with the seed's three calls:

* **1x2**: one process, BLAS with 2 threads, batch 128;
* **2x1**: ``mpirun -n 2``, BLAS with 1 thread each, batch 64 per rank, the gradient
  averaged by :class:`nnframe.distributed.DistributedOptimizer` (one in-place
  ``Allreduce`` on the flat buffer per step);
* **2x1 overlap**: the same with ``overlap=True`` (0.25 MiB buckets, each ``Iallreduce``
  started during backward).

Each configuration runs in fresh processes, after an idle pause, in
:func:`benchmarks.common.alternating_order` (``--rounds`` rounds); the table gives median
samples/s, wall and CPU ms per step, the per-round ratio to 1x2 (median and range), and
for the MPI runs the time per step inside the gradient reduction (transfer plus waiting
for the slower rank) and its share of the step. A bare ``Allreduce`` of the same buffer
after a barrier gives the transfer alone, as one message and in 1 MiB buckets
(``Iallreduce`` + ``Waitall``). The children inherit the environment ``python -m
benchmarks`` cleared of the BLAS overrides; the BLAS line is printed, and so is the
scaling model of docs/distributed.md, from this run's compute figures.

The workers use synthetic data of Fashion-MNIST's shape (the timing does not
depend on the pixel values).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

from benchmarks import common

MODELS = ("mlp", "lenet", "cnn")  # cnn: examples/fashion_cnn.json, nnframe's largest example
DEFAULT_MODELS = ("mlp", "lenet")
LINKS = {"10 Gbit/s": (10e9 / 8, 20e-6), "100 Gbit/s": (100e9 / 8, 3e-6)}  # bytes/s, latency per ring step
WORKERS = (8, 16, 32, 64, 128, 256)
GLOBAL_BATCH = 128
OVERLAP_BUCKET_MB = 0.25
#: configuration -> (processes, overlap)
CONFIGS = {"1x2": (1, False), "2x1": (2, False), "2x1 overlap": (2, True)}


# ------------------------------------------------------------------------ worker (one rank)
def build(name: str) -> Any:
    """The model (Adam, softmax cross-entropy), built, and its input shape."""
    import nnframe  # noqa: PLC0415 - after the thread settings
    from nnframe import layer, loss, model, net, optimizer  # noqa: PLC0415

    nnframe.set_seed(0)
    if name == "cnn":
        from nnframe.cli import net_from_spec  # noqa: PLC0415

        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        layers, shape = net_from_spec(os.path.join(root, "examples", "fashion_cnn.json")).layers, (28, 28, 1)
    elif name == "mlp":
        layers = []
        for width in (200, 100, 70, 30, 10):
            layers += [layer.Dense(width), layer.ReLU()]
        layers, shape = layers[:-1], (784,)
    else:
        from benchmarks.lenet import nnframe_layers  # noqa: PLC0415

        layers, shape = nnframe_layers(), (28, 28, 1)
    the_net = net.Net(layers)
    the_net.build((1, *shape))
    return model.Model(the_net, loss.SoftmaxCrossEntropy(), optimizer.Adam(1e-3)), shape


def worker(name: str, steps: int, warmup: int, distributed: bool, overlap: bool = False) -> dict[str, Any]:
    """Train ``steps`` steps (after ``warmup``) and return the timings (rank 0's in MPI)."""
    import numpy as np  # noqa: PLC0415

    model, shape = build(name)
    rank, size = 0, 1
    if distributed:
        from nnframe import distributed as dist  # noqa: PLC0415

        model.optimizer = dist.DistributedOptimizer(model.optimizer, overlap=overlap, bucket_mb=OVERLAP_BUCKET_MB)
        dist.broadcast_model(model)
        model.optimizer.attach(model.net)
        rank, size, comm = model.optimizer.rank, model.optimizer.size, model.optimizer.comm
    rng = np.random.default_rng(1)
    x = rng.random((GLOBAL_BATCH * 4, *shape), dtype=np.float32)
    y = rng.integers(0, 10, len(x))
    batches = [(x[i:i + GLOBAL_BATCH][rank::size], y[i:i + GLOBAL_BATCH][rank::size])
               for i in range(0, len(x), GLOBAL_BATCH)]
    model.net.train()

    def step(i: int) -> None:
        xb, yb = batches[i % len(batches)]
        pred = model.forward(xb)  # the seed's three calls
        _, grad_step = model.backward(pred, yb)
        model.apply_grad(grad_step)

    for i in range(warmup):
        step(i)
    comm_before = (model.optimizer.comm_seconds, model.optimizer.comm_cpu_seconds) \
        if distributed else (0.0, 0.0)
    cpu0, start = time.process_time(), time.perf_counter()
    for i in range(steps):
        step(i)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu0
    result: dict[str, Any] = {
        "model": name, "ranks": size, "steps": steps, "step_ms": 1e3 * seconds / steps,
        "samples_per_s": GLOBAL_BATCH * steps / seconds, "cpu_s": cpu, "params": model.net.num_params,
        "buffer_bytes": int(model.net.params.flat.nbytes),
    }
    if distributed:
        comm_s = model.optimizer.comm_seconds - comm_before[0]
        comm_cpu = model.optimizer.comm_cpu_seconds - comm_before[1]
        result.update({"comm_ms": 1e3 * comm_s / steps, "comm_share": comm_s / seconds,
                       "compute_cpu_ms": 1e3 * (cpu - comm_cpu) / steps})
        result.update(bare_allreduce(model.net.grads.flat.copy(), comm))
        if rank != 0:
            return {}
    return result


def bare_allreduce(buffer: Any, comm: Any, repeats: int = 50) -> dict[str, float]:
    """Median ms of an in-place ``Allreduce`` of ``buffer`` after a barrier: one message and 1 MiB buckets."""
    from nnframe.distributed import mpi  # noqa: PLC0415

    MPI = mpi()
    chunk = max(1, 2**20 // buffer.itemsize)
    out = {}
    for label, bucketed in (("bare_allreduce_ms", False), ("bucketed_1mib_ms", True)):
        times = []
        for _ in range(repeats):
            comm.Barrier()
            start = time.perf_counter()
            if bucketed:
                MPI.Request.Waitall([comm.Iallreduce(MPI.IN_PLACE, buffer[i:i + chunk])
                                     for i in range(0, buffer.size, chunk)])
            else:
                comm.Allreduce(MPI.IN_PLACE, buffer)
            times.append(time.perf_counter() - start)
        out[label] = 1e3 * common.median(times)
    return out


# ------------------------------------------------------------------------ parent
def _child_env(threads: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in common.BLAS_OVERRIDE_VARS}
    for name in common.THREAD_ENV_VARS:
        env[name] = str(threads)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_child(name: str, ranks: int, steps: int, warmup: int, overlap: bool = False,
              timeout: float = 900) -> dict[str, Any]:
    """One fresh run: ``ranks`` == 1 is one process with 2 threads, else ``mpirun -n ranks`` with 1 thread each."""
    threads = 2 if ranks == 1 else 1
    # --threads: python -m benchmarks sets the BLAS thread count from it (default: every core)
    args = [sys.executable, "-m", "benchmarks", "distributed", "--worker", name, "--steps", str(steps),
            "--warmup", str(warmup), "--threads", str(threads)]
    if ranks > 1:
        args = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), "--bind-to", "none",
                *args, "--mpi", *(["--overlap"] if overlap else [])]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=_child_env(threads))
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {done.returncode}:\n{done.stderr[-2000:]}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"{' '.join(args)} printed no JSON:\n{done.stdout[-2000:]}")


def measure(models: list[str], rounds: int, steps: int, warmup: int, pause: float, log=print) -> dict[str, Any]:
    """``{model: {config: [runs]}}`` for :data:`CONFIGS`, rotating the order every round."""
    results: dict[str, Any] = {}
    names = list(CONFIGS)
    for name in models:
        runs: dict[str, list] = {config: [] for config in names}
        for r in range(rounds):
            for config in common.alternating_order(names, r):
                ranks, overlap = CONFIGS[config]
                common.idle(pause)  # idle pause before each timed run
                run = run_child(name, ranks, steps, warmup, overlap)
                runs[config].append(run)
                log(f"  {name} round {r + 1}: {config}: {run['samples_per_s']:.0f} samples/s")
        results[name] = runs
    return results


def table(results: dict[str, Any]) -> str:
    """The report table: samples/s, ratio, communication per step and its share."""
    rows = []
    for name, runs in results.items():
        one = runs["1x2"]
        for config, these in runs.items():
            ratio = common.per_round_ratio([b["samples_per_s"] for b in these], [a["samples_per_s"] for a in one])
            distributed = CONFIGS[config][0] > 1

            def med(key: str, scale: float = 1.0, fmt: str = ".2f", runs_: list = these, on: bool = distributed) -> str:
                return format(scale * common.median([r[key] for r in runs_]), fmt) if on else "-"

            rows.append([
                name, config, f"{these[0]['params']:,}", f"{these[0]['buffer_bytes'] / 2**20:.2f}",
                med("samples_per_s", fmt=".0f", on=True),
                f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f})",
                med("step_ms", on=True), med("cpu_s", 1e3 / these[0]["steps"], on=True),
                med("comm_ms", fmt=".3f"), med("comm_share", 100, ".1f"),
                med("bare_allreduce_ms", fmt=".3f"), med("bucketed_1mib_ms", fmt=".3f"),
            ])
    headers = ["model", "config", "params", "MiB", "samples/s", "vs 1x2 (range)", "ms/step", "CPU ms/step",
               "reduce ms/step", "reduce %", "bare Allreduce ms", "1 MiB buckets ms"]
    return common.format_table(headers, rows)


def ring_allreduce_seconds(nbytes: float, workers: int, bandwidth: float, latency: float) -> float:
    """Ring allreduce time: ``2 (p - 1) / p * nbytes / bandwidth + 2 (p - 1) * latency``."""
    return 2 * (workers - 1) / workers * nbytes / bandwidth + 2 * (workers - 1) * latency


def scaling_table(results: dict[str, Any]) -> str:
    """The paper model: per-worker batch 64; compute per step as measured on one rank of the
    2 x 1 runs (CPU seconds outside the reduction, so a shared machine's waiting does not
    count); communication from :func:`ring_allreduce_seconds` for each link. 'overlap'
    hides the reduction behind backward (taken as 2/3 of the compute)."""
    rows = []
    for name, runs in results.items():
        two = runs["2x1"]
        compute = common.median([r["compute_cpu_ms"] for r in two]) / 1e3
        nbytes = two[0]["buffer_bytes"]
        for link, (bandwidth, latency) in LINKS.items():
            comm = [ring_allreduce_seconds(nbytes, p, bandwidth, latency) for p in WORKERS]
            dominated = next((p for p, c in zip(WORKERS, comm, strict=True) if c > compute), None)
            efficiency = [compute / (compute + c) for c in comm]
            hidden = [compute / (compute / 3 + max(2 * compute / 3, c)) for c in comm]
            rows.append([name, f"{nbytes / 1e6:.2f}", f"{1e3 * compute:.2f}", link,
                         " ".join(f"{1e3 * c:.2f}" for c in comm), ">256" if dominated is None else str(dominated),
                         " ".join(f"{e:.2f}" for e in efficiency), " ".join(f"{e:.2f}" for e in hidden)])
    headers = ["model", "MB", "compute ms", "link", f"allreduce ms at p={','.join(map(str, WORKERS))}",
               "comm > compute from p", "efficiency", "efficiency with overlap"]
    return common.format_table(headers, rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks distributed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS),
                        help="comma-separated: mlp, lenet, cnn (default mlp,lenet)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per configuration (default 3)")
    parser.add_argument("--steps", type=int, default=0, help="timed steps per run (default: 200 mlp, 30 lenet)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    parser.add_argument("--pause", type=float, default=1.0, help="idle seconds before each run (default 1)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)  # read by __main__
    parser.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--mpi", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--overlap", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print the table (or, with ``--worker``, one run's JSON)."""
    args = build_parser().parse_args(argv)
    if args.worker:
        result = worker(args.worker, args.steps or 50, args.warmup, args.mpi, args.overlap)
        if result:
            print(json.dumps(result), flush=True)
        return 0
    if shutil.which("mpirun") is None:
        print("python -m benchmarks distributed needs mpirun (apt-get install openmpi-bin libopenmpi-dev) and "
              "mpi4py (pip install 'nnframe[mpi]')", file=sys.stderr)
        return 2
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        print(f"--models: unknown {unknown}; choose from {list(MODELS)}", file=sys.stderr)
        return 2
    print(f"machine: {common.machine_info()['cpu']}, {common.cpu_count()} cores; load average "
          + " ".join(f"{v:.1f}" for v in os.getloadavg()))
    print(common.blas_line() + "; the children inherit this environment, BLAS threads set per configuration")
    print(f"global batch {GLOBAL_BATCH}; {args.rounds} alternating rounds; idle pause {args.pause} s before each run")
    results = {}
    for name in models:
        steps = args.steps or {"mlp": 200, "lenet": 30, "cnn": 10}[name]
        results.update(measure([name], args.rounds, steps, args.warmup, args.pause))
    print(table(results))
    print("\nScaling model (ring allreduce, per-worker batch 64; latency per ring step "
          + ", ".join(f"{1e6 * lat:.0f} us at {link}" for link, (_, lat) in LINKS.items()) + "):")
    print(scaling_table(results))
    if args.json:
        common.write_json(args.json, results)
    return 0
