"""How long one library's worker threads slow the next library down: the case for the idle gap.

After a multi-threaded call, OpenBLAS's workers (NumPy) and OpenMP's (PyTorch) keep
spinning for a while before they sleep. On a machine with as many cores as threads,
whatever runs next shares the cores with them. This suite runs a PyTorch training step
and an nnframe training step of a small CNN (each a few tens of milliseconds), and times
each one right after the other library's call, after a sleep of each gap in turn:

    python -m benchmarks fairness                # gaps 0, 0.05, 0.1, 0.3 (IDLE_GAP_S), 1 s
    python -m benchmarks fairness --repeats 21   # more repeats on a busy machine

A gap is long enough when the time after it matches the time after the longest gap.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks import common


def _workloads(batch: int, threads: int) -> dict[str, Any]:
    """One training step of the same conv-BN-ReLU-pool-dense net in nnframe and in PyTorch."""
    import numpy as np  # noqa: PLC0415 - after set_thread_env
    import torch  # noqa: PLC0415

    import nnframe  # noqa: PLC0415
    from nnframe import layer, loss, model, net, optimizer  # noqa: PLC0415

    torch.set_num_threads(threads)
    nnframe.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 32, 32, 16), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    onehot = np.eye(10, dtype=np.float32)[y]
    m = model.Model(net.Net([layer.Conv2D(32, 3, padding=1), layer.BatchNorm(), layer.ReLU(), layer.MaxPool2D(2),
                             layer.Flatten(), layer.Dense(10)]),
                    loss.SoftmaxCrossEntropy(), optimizer.Adam())

    def nnframe_step() -> float:
        value, step = m.backward(m.forward(x), onehot)
        m.apply_grad(step)
        return value

    t_net = torch.nn.Sequential(torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32 * 16 * 16, 10))
    opt = torch.optim.Adam(t_net.parameters())
    xt, yt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y)

    def torch_step() -> float:
        opt.zero_grad(set_to_none=True)
        out = torch.nn.functional.cross_entropy(t_net(xt), yt)
        out.backward()
        opt.step()
        return out.item()

    return {"nnframe": nnframe_step, "pytorch": torch_step}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks fairness``."""
    p = argparse.ArgumentParser(prog="python -m benchmarks fairness", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=common.cpu_count())
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=11)
    p.add_argument("--gaps", type=float, nargs="+", default=[0.0, 0.05, 0.1, common.IDLE_GAP_S, 1.0])
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH")
    args = p.parse_args(argv)
    steps = _workloads(args.batch, args.threads)
    for step in steps.values():  # warm up
        step()
        step()
    report: dict[str, Any] = {"blas": common.blas_info(), "gaps": args.gaps, "repeats": args.repeats}
    lines = [common.blas_line(), f"median ms of a step run GAP seconds after the other library's step "
             f"({args.repeats} repeats, batch {args.batch}):", ""]
    rows = []
    for first, second in (("pytorch", "nnframe"), ("nnframe", "pytorch")):
        result = common.interference(steps[first], steps[second], args.gaps, args.repeats)
        report[f"{second}_after_{first}"] = {str(g): v for g, v in result.items()}
        base = result[max(args.gaps)]["median_s"]
        for gap, r in result.items():
            rows.append([f"{second} after {first}", gap, 1e3 * r["median_s"], 1e3 * r["best_s"],
                         r["median_s"] / base])
    lines.append(common.format_table(["timed step", "gap s", "median ms", "best ms", "/ longest gap"], rows))
    if args.json:
        common.write_json(args.json, report)
    print("\n".join(lines))
    return 0
