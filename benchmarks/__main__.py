"""``python -m benchmarks SUITE [options]``: run one benchmark suite.

Suites: see :data:`SUITES` (``python -m benchmarks`` lists them). Two things happen
here, before any suite imports NumPy: ``--threads N`` is put in the environment so that
the BLAS starts with N threads, and :func:`benchmarks.common.clear_blas_overrides`
unsets ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` (for this process and the children
it starts), so NumPy's BLAS runs the kernels it would pick on a user's machine.
``--keep-blas-env`` (before the suite name) keeps them instead. nnframe is imported
next, before NumPy, so that it sets OpenBLAS's thread timeout as it does for a user who
imports it first (:mod:`nnframe.blas_env`). ``--retain-freed-memory`` (before the suite
name) calls :func:`nnframe.allocator.retain_freed_memory` before the suite starts: glibc's
``malloc`` then keeps freed memory for reuse, for every library in the process alike (it
speeds PyTorch up as well as nnframe). By default ``malloc`` is left as it is, as both
libraries' users have it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

from benchmarks import common

SUITES = {
    "mlp": ("benchmarks.mlp", "the seed's 784-200-100-70-30-10 MLP: nnframe vs PyTorch vs a NumPy loop"),
    "lenet": ("benchmarks.lenet", "LeNet (provided by benchmarks/lenet.py)"),
    "cnn": ("benchmarks.cnn", "CIFAR-size CNN (conv-BN-ReLU x4, 2 max-pools, dense): nnframe vs PyTorch"),
    "checkpoint_memory": ("benchmarks.checkpoint_memory", "peak memory of nnframe summary on hostile checkpoints"),
    "rnn": ("benchmarks.rnn", "LSTM and GRU (N=128, T=28, C=28, H=128), training and inference: nnframe vs PyTorch"),
    "fairness": ("benchmarks.fairness", "how long one library's spinning threads slow the next one (the idle gap)"),
    "transformer": ("benchmarks.transformer", "a decoder-only Transformer (attention, MLP blocks): nnframe vs PyTorch"),
    "serve": ("benchmarks.serve", "a loopback load test of nnframe serve, with and without request batching"),
    "distributed": ("benchmarks.distributed", "MLP and LeNet: mpirun -n 2 x 1 thread vs 1 process x 2 threads"),
}


def _threads_from_argv(argv: list[str]) -> int:
    """The value of ``--threads N`` / ``--threads=N`` in ``argv``, else all usable cores."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return int(argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return common.cpu_count()


def _usage() -> str:
    lines = ["usage: python -m benchmarks [--keep-blas-env] [--retain-freed-memory] SUITE [options]",
             "       (python -m benchmarks SUITE --help: the suite's options)", "", "suites:"]
    for name, (module, text) in SUITES.items():
        available = importlib.util.find_spec(module) is not None
        lines.append(f"  {name:8s} {text}{'' if available else '  [not available]'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the suite named by the first argument."""
    argv = sys.argv[1:] if argv is None else list(argv)
    flags = {"--keep-blas-env": False, "--retain-freed-memory": False}
    while argv and argv[0] in flags:
        flags[argv.pop(0)] = True
    keep_blas_env = flags["--keep-blas-env"]
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    suite, rest = argv[0], argv[1:]
    if suite not in SUITES:
        print(f"unknown suite {suite!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name = SUITES[suite][0]
    if importlib.util.find_spec(module_name) is None:
        print(f"suite {suite!r} needs {module_name.replace('.', '/')}.py, which is not there", file=sys.stderr)
        return 2
    try:
        threads = _threads_from_argv(rest)
    except ValueError:
        print("--threads needs an integer", file=sys.stderr)
        return 2
    common.set_thread_env(threads)  # before the suite imports NumPy
    if not keep_blas_env and "numpy" not in sys.modules:  # imported already only when called from Python
        common.clear_blas_overrides()
    # nnframe before NumPy: its import sets OpenBLAS's thread timeout (nnframe.blas_env) as a user's would
    from nnframe import allocator  # noqa: PLC0415 - loads NumPy: after the BLAS environment is set

    if flags["--retain-freed-memory"]:
        common.MALLOC_RETAINED = allocator.retain_freed_memory()
    suite_main = importlib.import_module(module_name).main
    result = suite_main(rest)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
