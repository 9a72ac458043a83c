"""Shared benchmark plumbing: the fair timing method, thread and BLAS settings, peak RSS, output.

Every suite (``python -m benchmarks NAME``) measures the same way; write a new one on
top of these helpers:

* :func:`compare` times several contenders (nnframe, PyTorch, a NumPy loop, ...) side by
  side in one process: ``rounds`` rounds, each contender called once per round, the
  order alternating from round to round (A B C, C B A, A B C, ...), and an idle pause
  (:func:`idle`, :data:`IDLE_GAP_S`) before *every* timed call. The pause matters on a
  small machine: after a multi-threaded call OpenBLAS's worker threads and PyTorch's
  OpenMP threads keep spinning for up to ~0.1-0.2 s, and whatever runs next on the same
  cores is slowed (``python -m benchmarks fairness`` measures this on the machine at hand).
* :class:`Timings` (what :func:`compare` returns) gives medians, CPU seconds and
  :meth:`Timings.ratio`: the ratio of two contenders *per round* (both timed in the same
  round, under the same load) with its median and range, which is the figure to quote.
* ``python -m benchmarks`` calls :func:`clear_blas_overrides` before NumPy loads, so the
  BLAS picks its kernels as it would on a user's machine (this machine's environment pins
  OpenBLAS to older, slower kernels); :func:`blas_line` says in one line which kernels
  NumPy's BLAS and PyTorch actually use. Print it in every report.

A minimal suite::

    from benchmarks import common

    def main(argv):
        calls = {"nnframe": lambda: nn_step(10), "pytorch": lambda: torch_step(10)}
        timings = common.compare(calls, rounds=7)
        print(common.blas_line())
        print(common.format_table(*timings.table()))
        print(common.format_ratio("nnframe / pytorch", timings.ratio("nnframe", "pytorch")))

Make each timed call long enough (~0.2-2 s: several training steps) that the pause
before it is small beside it. NumPy is imported inside the functions that need it, so
that :func:`set_thread_env` and :func:`clear_blas_overrides` can still take effect when
they are called first (the BLAS reads its settings once, when NumPy loads it).
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Environment variables that fix the thread count of OpenBLAS, OpenMP and MKL.
THREAD_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NNFRAME_NUM_THREADS")

#: Environment variables that override OpenBLAS's own choice of kernels and cache size.
#: Set on this project's machine (``OPENBLAS_CORETYPE=Haswell``), they hold NumPy's sgemm
#: to AVX2 kernels (~250 GFLOP/s instead of ~466 with the SkylakeX kernels OpenBLAS picks
#: itself), while PyTorch's kernels are unaffected; a user's machine has neither.
BLAS_OVERRIDE_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

#: Seconds of idle time before every timed call (:func:`idle`): longer than the ~0.1-0.2 s
#: that OpenBLAS's and OpenMP's worker threads keep spinning after a parallel region.
IDLE_GAP_S = 0.3

#: Values :func:`clear_blas_overrides` removed in this process (reported by :func:`blas_info`).
CLEARED_BLAS_OVERRIDES: dict[str, str] = {}


def cpu_count() -> int:
    """Number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def set_thread_env(threads: int) -> bool:
    """Ask OpenBLAS, OpenMP, MKL and nnframe's layers (:mod:`nnframe.threads`) for ``threads`` threads.

    Sets the environment variables :data:`THREAD_ENV_VARS`.

    Returns:
        ``True`` if NumPy was not loaded yet (so its BLAS will honour the setting),
        ``False`` if it was (the setting then only reaches child processes).
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)
    return "numpy" not in sys.modules


def clear_blas_overrides() -> dict[str, str]:
    """Unset :data:`BLAS_OVERRIDE_VARS` for this process and its children, before NumPy loads.

    ``python -m benchmarks`` calls this first, so every suite (and every child it starts)
    runs NumPy's BLAS with the kernels it picks itself. Tests and CI never call it: they
    keep the environment as it is.

    Returns:
        The variables that were set, with their values (also kept in
        :data:`CLEARED_BLAS_OVERRIDES` for the report).

    Raises:
        RuntimeError: if NumPy is loaded already (its BLAS has read the variables).
    """
    if "numpy" in sys.modules:
        raise RuntimeError(
            "clear_blas_overrides() must run before NumPy is imported: the BLAS has already read "
            f"{', '.join(BLAS_OVERRIDE_VARS)}"
        )
    removed = {name: os.environ.pop(name) for name in BLAS_OVERRIDE_VARS if name in os.environ}
    CLEARED_BLAS_OVERRIDES.update(removed)
    return removed


def idle(seconds: float = IDLE_GAP_S) -> None:
    """Sleep ``seconds``: the pause before a timed call, so no library's threads still spin from the last one."""
    if seconds > 0:
        time.sleep(seconds)


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (which must not be empty)."""
    return float(statistics.median(values))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn()`` and return ``(seconds, result)``."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def alternating_order(names: Sequence[str], round_index: int) -> list[str]:
    """The order of the contenders in round ``round_index``: as given in even rounds, reversed in odd ones.

    Every contender then runs as often first as last (over an even number of rounds), and
    each one follows a different neighbour from round to round.
    """
    return list(names) if round_index % 2 == 0 else list(reversed(names))


@dataclass
class Timings:
    """Seconds per timed call of each contender, round by round (what :func:`compare` returns).

    Attributes:
        names: the contenders, in the order given to :func:`compare`.
        wall: ``wall[name][r]``: wall-clock seconds of ``name``'s call in round ``r``.
        cpu: ``cpu[name][r]``: CPU seconds of this process (all threads, spinning included)
            during that call.
        orders: the order the contenders ran in, per round.
        gap_s: the idle pause before every timed call.
        results: the last value each contender's call returned (a loss, predictions, ...).
    """

    names: list[str]
    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]
    orders: list[list[str]]
    gap_s: float
    results: dict[str, Any] = field(default_factory=dict)

    def median(self, name: str) -> float:
        """Median wall-clock seconds of ``name``'s calls."""
        return median(self.wall[name])

    def best(self, name: str) -> float:
        """Fastest call of ``name`` (the round least disturbed by other processes)."""
        return min(self.wall[name])

    def median_cpu(self, name: str) -> float:
        """Median CPU seconds of ``name``'s calls."""
        return median(self.cpu[name])

    def ratio(self, numerator: str, denominator: str) -> dict[str, Any]:
        """``numerator / denominator`` per round, with its median and range.

        Both calls of a round ran within seconds of each other, so background load hits
        them alike; the median of the per-round ratios is the figure to quote, the range
        says how much it moved.

        Returns:
            ``{"median", "min", "max", "per_round"}`` (``per_round``: one ratio per round).
        """
        for name in (numerator, denominator):
            if name not in self.wall:
                raise KeyError(f"no timings for {name!r}; measured: {self.names}")
        return per_round_ratio(self.wall[numerator], self.wall[denominator])

    def table(self, unit: float = 1.0, unit_name: str = "s") -> tuple[list[str], list[list[Any]]]:
        """Headers and rows (median, best, range, median CPU) for :func:`format_table`.

        Args:
            unit: divide every time by this (e.g. the number of steps per call, to get
                seconds per step); ``unit_name`` labels the columns.
        """
        headers = ["contender", f"median {unit_name}", f"best {unit_name}", f"worst {unit_name}",
                   f"median CPU {unit_name}"]
        rows = [[name, self.median(name) / unit, self.best(name) / unit, max(self.wall[name]) / unit,
                 self.median_cpu(name) / unit] for name in self.names]
        return headers, rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (for ``--json``)."""
        return {"names": self.names, "wall_s": self.wall, "cpu_s": self.cpu, "orders": self.orders,
                "gap_s": self.gap_s}


def per_round_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> dict[str, Any]:
    """``numerators[r] / denominators[r]`` for every round ``r``, with its median and range.

    Returns:
        ``{"median", "min", "max", "per_round"}`` (what :func:`format_ratio` prints).

    Raises:
        ValueError: when the two lists differ in length or are empty.
    """
    if len(numerators) != len(denominators) or not numerators:
        raise ValueError(f"per_round_ratio needs two equally long, non-empty lists of seconds, got "
                         f"{len(numerators)} and {len(denominators)}")
    per_round = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {"median": median(per_round), "min": min(per_round), "max": max(per_round), "per_round": per_round}


def load_average() -> str:
    """The 1, 5 and 15-minute load averages from ``/proc/loadavg`` (``"?"`` where there is none), for reports."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def compare(
    calls: Mapping[str, Callable[[], Any]],
    rounds: int,
    gap_s: float = IDLE_GAP_S,
    warmup: int = 1,
    log: Callable[[str], Any] | None = None,
) -> Timings:
    """Time several contenders fairly, side by side in this process.

    Each round calls every contender once, in :func:`alternating_order`, with an
    :func:`idle` pause of ``gap_s`` before every timed call (warm-up calls too).

    Args:
        calls: name -> a function doing one timed unit of work (e.g. 10 training steps).
            Keep each unit well above ``gap_s`` long; put set-up outside it.
        rounds: timed rounds (odd numbers give an exact median; >= 5 for a range that means something).
        gap_s: the idle pause; 0 only to demonstrate what it prevents.
        warmup: untimed rounds first (lazy building, first-call allocations, caches).
        log: called with a line per timed call (e.g. ``print`` to stderr), or ``None``.

    Returns:
        :class:`Timings`, wall-clock and CPU seconds of every call.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if gap_s < 0:
        raise ValueError(f"gap_s must be >= 0, got {gap_s}")
    names = list(calls)
    if not names:
        raise ValueError("compare() needs at least one contender, got none")
    timings = Timings(names, {n: [] for n in names}, {n: [] for n in names}, [], gap_s)
    for round_index in range(warmup + rounds):
        order = alternating_order(names, round_index)
        for name in order:
            idle(gap_s)
            cpu_start, start = time.process_time(), time.perf_counter()
            result = calls[name]()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            if round_index < warmup:
                continue
            timings.wall[name].append(seconds)
            timings.cpu[name].append(cpu)
            timings.results[name] = result
            if log is not None:
                log(f"round {round_index - warmup + 1}/{rounds} {name:16s} {seconds:8.4f} s (CPU {cpu:.4f} s)")
        if round_index >= warmup:
            timings.orders.append(order)
    return timings


def format_ratio(label: str, ratio: Mapping[str, Any], goal: float | None = None) -> str:
    """One report line: ``label  median (range min-max over R rounds)``, plus MET/MISSED against ``goal``."""
    text = (f"{label:40s} {ratio['median']:6.3f}  (range {ratio['min']:.3f}-{ratio['max']:.3f} over "
            f"{len(ratio['per_round'])} rounds)")
    if goal is not None:
        text += f"  {'MET' if ratio['median'] <= goal else 'MISSED'} (goal <= {goal})"
    return text


def interference(
    first: Callable[[], Any], second: Callable[[], Any], gaps: Sequence[float] = (0.0, 0.05, 0.1, IDLE_GAP_S, 1.0),
    repeats: int = 9,
) -> dict[float, dict[str, float]]:
    """How much ``second`` is slowed when it runs ``gap`` seconds after ``first``.

    For every repeat the gaps are visited in turn (so slow spells of the machine hit
    them alike): run ``first``, sleep ``gap``, time ``second``.

    Returns:
        ``{gap: {"median_s", "best_s"}}`` of ``second``'s time; compare each gap's median
        with the longest gap's to see how long the first library's threads get in the way.
    """
    seconds: dict[float, list[float]] = {g: [] for g in gaps}
    for _ in range(repeats):
        for gap in gaps:
            first()
            if gap > 0:
                time.sleep(gap)
            start = time.perf_counter()
            second()
            seconds[gap].append(time.perf_counter() - start)
    return {g: {"median_s": median(v), "best_s": min(v)} for g, v in seconds.items()}


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
    """Which BLAS NumPy uses and which kernels it runs (threadpoolctl, else OpenBLAS's own query).

    Keys: ``numpy``, ``name``/``version``/``configuration`` (NumPy's build), ``corename``
    and ``num_threads`` (the kernels and threads in use now), ``source`` (how they were
    found), the current values of :data:`BLAS_OVERRIDE_VARS` and ``cleared_overrides``
    (what :func:`clear_blas_overrides` removed).
    """
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
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415 - the bench extra

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas" and "torch" not in p["filepath"]]
    except ImportError:
        pools = []
    if pools:
        info.update({"corename": pools[0].get("architecture"), "num_threads": pools[0].get("num_threads"),
                     "library": pools[0].get("filepath"), "source": "threadpoolctl"})
    else:
        runtime = _openblas_runtime()
        info.update(runtime)
        info["source"] = "openblas_get_corename" if runtime else "unknown"
    for name in BLAS_OVERRIDE_VARS:
        info[name] = os.environ.get(name)
    info["cleared_overrides"] = dict(CLEARED_BLAS_OVERRIDES)
    return info


def torch_info() -> dict[str, Any] | None:
    """PyTorch's version, threads and CPU kernel level (``None`` if PyTorch is not loaded).

    Only reads an already imported ``torch``: never imports it.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    info: dict[str, Any] = {"version": torch.__version__, "num_threads": torch.get_num_threads()}
    try:
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    except Exception as exc:  # older PyTorch
        info["cpu_capability"] = f"unknown ({exc})"
    return info


#: whether ``python -m benchmarks --retain-freed-memory`` made glibc's malloc keep freed memory
#: (:func:`nnframe.allocator.retain_freed_memory`); ``None``: not asked (the default)
MALLOC_RETAINED: bool | None = None


def blas_line() -> str:
    """One line for a report: NumPy's BLAS kernels and threads, the overrides removed, PyTorch's kernels."""
    blas = blas_info()
    cleared = ", ".join(f"{k}={v}" for k, v in blas["cleared_overrides"].items()) or "none set"
    still = ", ".join(f"{k}={blas[k]}" for k in BLAS_OVERRIDE_VARS if blas.get(k))
    line = (f"NumPy {blas['numpy']} BLAS: {blas.get('name')} {blas.get('version')}, kernels "
            f"{blas.get('corename')}, {blas.get('num_threads')} threads ({blas.get('source')}); "
            f"overrides unset for this run: {cleared}")
    if "nnframe" in sys.modules:
        from nnframe import threads  # noqa: PLC0415 - only where nnframe is loaded already

        line += f"; nnframe layers: {threads.get_num_threads()} threads"
    if still:
        line += f"; STILL SET: {still}"
    if "nnframe" in sys.modules:
        from nnframe import blas_env  # noqa: PLC0415 - only where nnframe is loaded already

        timeout = blas_env.applied()
        line += (f"; OpenBLAS thread timeout {timeout}" if timeout is not None
                 else "; OpenBLAS thread timeout: not set by nnframe (NumPy loaded first)")
    line += {True: "; glibc malloc keeps freed memory", False: "; malloc: not glibc, unchanged",
             None: "; malloc: default"}[MALLOC_RETAINED]
    torch = torch_info()
    if torch is not None:
        line += (f"; PyTorch {torch['version']}: {torch['num_threads']} threads, kernels "
                 f"{torch['cpu_capability']}")
    return line


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
