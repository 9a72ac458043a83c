"""Peak memory of ``nnframe summary`` on hostile and large checkpoints (issue 10, items 1-2).

Each case is written to a temporary folder by a child process (big files are sparse, so
they cost no disk), then ``python -m nnframe summary FILE`` runs in a child process; its peak resident set
(``ru_maxrss`` from ``os.wait4``), CPU seconds, wall time, exit status and the first line
of its error are printed. A case that runs past ``--timeout`` seconds is killed (the FIFO
case hung forever before the fix).

    python -m benchmarks checkpoint_memory [--cases NAME,...] [--timeout S]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

_MLP = [{"class": "Dense", "config": {"num_out": n}} for n in (200, 100, 70, 30)]


def _layers(*specs: tuple[str, dict]) -> list[dict]:
    return [{"class": name, "config": config} for name, config in specs]


def _metadata(layers: list[dict], input_shape: list[int]) -> dict[str, str]:
    config = {"net": {"dtype": "float32", "layers": layers},
              "loss": {"class": "SoftmaxCrossEntropy"}, "optimizer": {"class": "SGD", "lr": 0.1},
              "scheduler": None, "input_shape": input_shape, "metrics": None, "metadata": {}}
    state = {"optimizer": {"iterations": 0, "lr": 0.1}, "scheduler": None,
             "rng": {"global": np.random.default_rng(0).bit_generator.state, "layers": {}},
             "epoch": 0, "step": 0, "shuffle_rng": None, "split_seed": None, "callbacks": {}}
    return {"format": "nnframe-checkpoint", "format_version": "1", "nnframe_version": "0",
            "config": json.dumps(config), "state": json.dumps(state)}


def _write(path: str, metadata: dict[str, str], tensors: dict[str, tuple[str, list[int], int]] | None = None,
           data_bytes: int = 0) -> None:
    """A safetensors file whose data section is ``data_bytes`` zeros (a sparse hole)."""
    header: dict = {"__metadata__": metadata}
    offset = 0
    for name, (dtype, shape, nbytes) in (tensors or {}).items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    with open(path, "wb") as file:
        file.write(len(raw).to_bytes(8, "little") + raw)
        file.truncate(8 + len(raw) + data_bytes)


def _dense_400000(path: str) -> None:
    _write(path, _metadata(_layers(("Flatten", {}), ("Dense", {"num_out": 400000})), [784]))


def _mlp_2_21(path: str) -> None:
    _write(path, _metadata(_MLP + [{"class": "Dense", "config": {"num_out": 10}}], [2**21]))


def _zeropad(path: str) -> None:
    _write(path, _metadata(_layers(("ZeroPad2D", {"padding": 12000}), ("Flatten", {}),
                                   ("Dense", {"num_out": 10})), [28, 28, 1]))


def _relu_millions(path: str) -> None:
    _write(path, _metadata([{"class": "ReLU"}] * 2_500_000, [10]))


def _sparse_zeros(path: str) -> None:
    with open(path, "wb") as file:
        file.truncate(2 << 30)


def _valid_2gib(path: str) -> None:
    n = 23170  # 23170 x 23170 float32 = 2.0 GiB
    tensors = {"net/0.b": ("F32", [n], 4 * n), "net/0.w": ("F32", [n, n], 4 * n * n)}
    _write(path, _metadata(_layers(("Dense", {"num_out": n})), [n]), tensors, 4 * n + 4 * n * n)


def _fifo(path: str) -> None:
    os.mkfifo(path)


CASES: dict[str, tuple[str, Callable[[str], None] | None]] = {
    "dense400000": ("3 KB header: [Flatten, Dense(400000)], no tensors", _dense_400000),
    "mlp-input-2**21": ("stock MLP config, input_shape [2**21], no tensors", _mlp_2_21),
    "zeropad12000": ("[ZeroPad2D(12000), Flatten, Dense(10)] on 28x28x1, no tensors", _zeropad),
    "relu2.5M": ("2.5 million ReLU layers (a ~45 MB header)", _relu_millions),
    "zeros2GiB": ("2 GiB sparse file of zeros", _sparse_zeros),
    "valid2GiB": ("valid 2 GiB checkpoint: Dense(23170) on 23170 features (zeros)", _valid_2gib),
    "devzero": ("/dev/zero", None),
    "fifo": ("a FIFO nobody writes to", _fifo),
}


def _run(path: str, timeout: float) -> tuple[float, float, float, int | str, str]:
    """Peak RSS (MiB), CPU s, wall s, exit status (or 'killed'), first error line of ``nnframe summary``."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "nnframe", "summary", path],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    status: int | str
    deadline = start + timeout
    while True:
        pid, raw, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            status = os.waitstatus_to_exitcode(raw)
            break
        if time.perf_counter() > deadline:
            child.send_signal(signal.SIGKILL)
            _, raw, usage = os.wait4(child.pid, 0)
            status = "killed"
            break
        time.sleep(0.05)
    child.returncode = 0  # reaped above
    wall = time.perf_counter() - start
    err = child.stderr.read().decode(errors="replace").strip().splitlines() if child.stderr else []
    first = err[-1] if err else ""
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, wall, status, first


def main(argv: list[str] | None = None) -> int:
    """Write the cases and print one line per case."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks checkpoint_memory", description=__doc__)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated case names")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a case is killed")
    parser.add_argument("--make", nargs=2, metavar=("CASE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make:
        CASES[args.make[0]][1](args.make[1])
        return 0
    print(f"{'case':16s} {'peak RSS':>10s} {'CPU s':>7s} {'wall s':>7s} {'exit':>6s}  message")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.cases.split(","):
            text, make = CASES[name]
            path = "/dev/zero" if make is None else os.path.join(folder, f"{name}.safetensors")
            if make is not None:  # in a child, so this process stays small (a child's ru_maxrss counts
                # the pages it shared with this process when it was forked)
                subprocess.run([sys.executable, "-m", "benchmarks.checkpoint_memory", "--make", name, path],
                               check=True)
            rss, cpu, wall, status, message = _run(path, args.timeout)
            print(f"{name:16s} {rss:8.0f} MiB {cpu:7.2f} {wall:7.2f} {status!s:>6s}  {message[:150]}", flush=True)
            if make is not None:
                os.unlink(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
