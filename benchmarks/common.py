"""Shared benchmark plumbing: thread settings, timing, peak RSS, BLAS facts, output.

NumPy is imported inside the functions that need it, so that :func:`set_thread_env`
can still take effect when it is called first (the BLAS reads its thread count once,
when NumPy loads it).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

#: Environment variables that fix the thread count of OpenBLAS, OpenMP and MKL.
THREAD_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cpu_count() -> int:
    """Number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_thread_env(threads: int) -> bool:
    """Ask OpenBLAS, OpenMP and MKL for ``threads`` threads via the environment.

    Returns:
        ``True`` if NumPy was not loaded yet (so its BLAS will honour the setting),
        ``False`` if it was (the setting then only reaches child processes).
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)
    return "numpy" not in sys.modules


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (which must not be empty)."""
    return float(statistics.median(values))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn()`` and return ``(seconds, result)``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB.

    On Linux this is ``VmHWM`` from ``/proc/self/status``: unlike ``ru_maxrss``,
    which a child started by fork + exec inherits from its parent, it counts only
    this program's memory. Elsewhere ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0  # bytes / KiB


#: Where :func:`import_seconds` keeps compiled bytecode (kept between runs).
PYCACHE_DIR = os.path.join(tempfile.gettempdir(), "nnframe-bench-pycache")


def import_seconds(module: str, repeats: int = 5, bytecode_cache: bool = True) -> list[float]:
    """Seconds that ``import module`` takes in fresh interpreters, one per repeat.

    The clock runs inside the child around the import statement only, so the
    interpreter's own start-up is not counted.

    Args:
        bytecode_cache: measure as an installed package is imported, with compiled
            bytecode at hand: the children write and read ``.pyc`` files under
            :data:`PYCACHE_DIR` (``PYTHONPYCACHEPREFIX``, so the source tree stays
            clean) even if ``PYTHONDONTWRITEBYTECODE`` is set, after one unmeasured
            warm-up import. ``False``: the environment as it is (where
            ``PYTHONDONTWRITEBYTECODE`` is set, a module without ``.pyc`` files is
            compiled on every import).
    """
    code = (
        "import time; t = time.perf_counter(); import " + module
        + "; print(time.perf_counter() - t)"
    )
    env = dict(os.environ)
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE_DIR
    times = []
    for i in range(repeats + int(bytecode_cache)):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600, env=env,
        )
        if bytecode_cache and i == 0:
            continue  # the warm-up that writes the bytecode
        times.append(float(done.stdout.strip().splitlines()[-1]))
    return times


def sgemm_gflops(
    shapes: Sequence[tuple[int, int, int, bool]] = (
        (128, 784, 200, False), (784, 128, 200, True), (2048, 2048, 2048, False),
    ),
    samples: int = 7,
    sample_seconds: float = 0.05,
) -> list[dict[str, Any]]:
    """Measure float32 ``np.matmul`` speed on ``(m, k, n, a_transposed)`` shapes.

    ``a_transposed`` multiplies a transposed view ``a.T`` (as a weight gradient
    ``x.T @ grad`` does). Each sample repeats the product for about
    ``sample_seconds``; the result gives the median and best GFLOP/s of the samples.
    """
    import numpy as np  # noqa: PLC0415 - after set_thread_env

    rng = np.random.default_rng(0)
    results = []
    for m, k, n, a_transposed in shapes:
        a = rng.standard_normal((k, m) if a_transposed else (m, k), dtype=np.float32)
        a = a.T if a_transposed else a
        b = rng.standard_normal((k, n), dtype=np.float32)
        out = np.empty((m, n), dtype=np.float32)
        np.matmul(a, b, out=out)  # warm up
        seconds, _ = timed(lambda a=a, b=b, out=out: np.matmul(a, b, out=out))
        reps = max(1, int(sample_seconds / max(seconds, 1e-6)))
        rates = []
        for _ in range(samples):
            start = time.perf_counter()
            for _ in range(reps):
                np.matmul(a, b, out=out)
            rates.append(2.0 * m * k * n * reps / (time.perf_counter() - start) / 1e9)
        results.append({
            "m": m, "k": k, "n": n, "a_transposed": a_transposed,
            "median_gflops": median(rates), "best_gflops": max(rates),
        })
    return results


def _openblas_runtime() -> dict[str, Any]:
    """Core type and thread count reported by the loaded OpenBLAS, if it is one."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower()})
    except OSError:
        return {}
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        info: dict[str, Any] = {"library": path}
        for prefix in ("scipy_openblas_", "openblas_"):
            for suffix in ("64_", ""):
                corename = getattr(lib, f"{prefix}get_corename{suffix}", None)
                threads = getattr(lib, f"{prefix}get_num_threads{suffix}", None)
                if corename is None or threads is None:
                    continue
                corename.restype = ctypes.c_char_p
                info["corename"] = corename().decode()
                info["num_threads"] = int(threads())
                return info
        return info
    return {}


def blas_info() -> dict[str, Any]:
    """Which BLAS NumPy uses (from ``numpy.show_config``) and what it reports at run time."""
    import numpy as np  # noqa: PLC0415 - after set_thread_env

    info: dict[str, Any] = {"numpy": np.__version__}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info.update({
            "name": blas.get("name"), "version": blas.get("version"),
            "configuration": blas.get("openblas configuration"),
        })
    except Exception as exc:  # older NumPy: no mode="dicts"
        info["error"] = f"numpy.show_config(mode='dicts') failed: {exc}"
    info.update(_openblas_runtime())
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE")
    return info


def machine_info() -> dict[str, Any]:
    """Python, platform and CPU facts for the report."""
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "python": platform.python_version(), "platform": platform.platform(), "cpu": cpu,
        "cpu_count": cpu_count(),
        "thread_env": {name: os.environ.get(name) for name in THREAD_ENV_VARS},
    }


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An aligned text table: text columns left-aligned, numbers right-aligned."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in text)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(row[i], (int, float)) or row[i] is None for row in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in text)])


def write_json(path: str, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (:func:`nnframe.atomic.atomic_write`)."""
    from nnframe.atomic import atomic_write  # noqa: PLC0415 - nnframe loads NumPy: after set_thread_env

    with atomic_write(path) as f:
        f.write((json.dumps(data, indent=2) + "\n").encode())


def run_json_child(args: Sequence[str], timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m benchmarks ARGS`` in a fresh process and parse the JSON it prints last.

    Raises:
        RuntimeError: if the child fails or prints no JSON line.
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args], capture_output=True, text=True,
        timeout=timeout, env=env, cwd=root,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"child 'python -m benchmarks {' '.join(args)}' exited with {done.returncode}:\n{done.stderr[-2000:]}"
        )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"child 'python -m benchmarks {' '.join(args)}' printed no JSON line:\n{done.stdout[-2000:]}")
