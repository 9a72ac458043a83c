"""Intra-op threads: one operation run on slices of the batch, one slice per core.

NumPy releases the GIL inside its copies, its ufunc loops and its BLAS calls, so Python
threads that run the same NumPy code on different slices of a batch use different cores.
Layers whose work is large and splits by sample (convolutions, batch normalization,
pooling, element-wise activations) do that through :func:`map_slices`; everything else
keeps NumPy's own behaviour (single-threaded ufuncs, a multi-threaded BLAS).

While slices run, the BLAS is held to one thread: each slice's products are
single-threaded and the cores are shared out by slices instead. OpenBLAS's own threads
scale poorly on the tall, thin products of a convolution and would otherwise compete
with the slice threads for the same cores.

The number of threads is :func:`get_num_threads`: the ``NNFRAME_NUM_THREADS`` environment
variable if set, else the cores this process may run on; :func:`set_num_threads` changes
it (1 runs everything in the calling thread, exactly as plain NumPy would).

    >>> from nnframe import threads
    >>> threads.batch_slices(10, elements_per_item=1 << 20, num_threads=3)
    [slice(0, 3, None), slice(3, 6, None), slice(6, 10, None)]
    >>> threads.batch_slices(10, elements_per_item=8, num_threads=3)  # too little work to split
    [slice(0, 10, None)]
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from nnframe import backend

T = TypeVar("T")

#: a slice gets at least this many array elements of work: below it the hand-off to another
#: thread costs more than the slice's share of the work saves. On this project's 2-core VM a
#: thread pool's submit + result of a no-op measured ~100 us (median of 201; waking an idle
#: vCPU), about one element-wise pass over 400k floats; doubling or quadrupling this value
#: did not speed the ResNet step up (147-162 vs 148-168 ms per step).
MIN_ELEMENTS_PER_SLICE = 1 << 17

_ENV = "NNFRAME_NUM_THREADS"
_num_threads: int | None = None
_default_threads: int | None = None  # from the environment, read on first use
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_lock = threading.Lock()
_local = threading.local()  # .inside: True in a slice (nested calls run in the calling thread)


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _parse_count(value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{source} must be a positive integer, got {value!r}")
    return value


def get_num_threads() -> int:
    """The number of threads :func:`map_slices` shares work between.

    ``set_num_threads``'s value if it was called, else ``NNFRAME_NUM_THREADS`` if set, else
    the number of cores this process may run on (both read on the first call, and again
    after ``set_num_threads(None)``).

    Raises:
        ValueError: when ``NNFRAME_NUM_THREADS`` is not a positive integer.
    """
    global _default_threads
    if _num_threads is not None:
        return _num_threads
    if _default_threads is None:  # read once: layers ask on every call
        value = os.environ.get(_ENV)
        if value is None:
            _default_threads = _available_cores()
        else:
            source = f"environment variable {_ENV}"
            try:
                count = int(value.strip())
            except ValueError:
                raise ValueError(f"{source} must be a positive integer, got {value!r}") from None
            _default_threads = _parse_count(count, source)
    return _default_threads


def set_num_threads(count: int | None) -> None:
    """Share layer work between ``count`` threads (1: all in the calling thread; ``None``: the default).

    Raises:
        ValueError: when ``count`` is not a positive integer or ``None``.
    """
    global _num_threads, _default_threads
    _num_threads = None if count is None else _parse_count(count, "set_num_threads: count")
    _default_threads = None  # None: the environment is read again on the next call


class Slices(list):
    """The slices of :func:`batch_slices` (a ``list``), and whether the work is large.

    ``large``: at least :data:`MIN_ELEMENTS_PER_SLICE` elements of work in all. A BLAS
    call that small runs on one thread anyway, so :func:`map_slices` leaves the BLAS
    alone for small work in one slice.
    """

    large: bool = True


def batch_slices(n: int, elements_per_item: int, num_threads: int | None = None) -> Slices:
    """Split ``range(n)`` into contiguous slices, one per thread, for work of ``elements_per_item`` per item.

    Fewer slices (down to one, ``[slice(0, n)]``) when a slice would get less than
    :data:`MIN_ELEMENTS_PER_SLICE` elements of work, when ``n`` is smaller than the number
    of threads, on a backend other than NumPy, or inside a slice already running.
    Sizes differ by at most one item, the larger ones last.

    Args:
        n: items along the axis to split (e.g. the batch size), >= 0.
        elements_per_item: a measure of the work per item (e.g. the array elements one
            sample touches), >= 0.
        num_threads: the threads to plan for (default :func:`get_num_threads`).
    """
    if num_threads is not None:
        _parse_count(num_threads, "batch_slices: num_threads")
    work = n * max(elements_per_item, 0)
    slices = Slices()
    slices.large = work >= MIN_ELEMENTS_PER_SLICE
    parts = work // MIN_ELEMENTS_PER_SLICE
    if parts > 1:  # (small work, e.g. one image for inference, returns early: called on every layer)
        threads = get_num_threads() if num_threads is None else num_threads
        if getattr(_local, "inside", False) or backend.xp() is not np:
            threads = 1
        parts = min(parts, threads, n)
    if parts <= 1:
        slices.append(slice(0, n))
        return slices
    slices.extend(slice(n * k // parts, n * (k + 1) // parts) for k in range(parts))
    return slices


def rows_of(part: slice, rows_per_item: int) -> slice:
    """The rows of a ``(n * rows_per_item, ...)`` matrix that belong to items ``part``.

    E.g. the im2col rows of some images: ``rows_of(slice(2, 4), 9) == slice(18, 36)``.
    """
    return slice(part.start * rows_per_item, part.stop * rows_per_item)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nnframe")
            _pool_size = workers
        return _pool


#: (get, set) function names of each BLAS's thread count, with the prefixes and suffixes of
#: OpenBLAS's builds (``scipy_openblas``'s 64-bit-integer build is NumPy's wheel)
_THREAD_FUNCTIONS = {
    "openblas": [(f"{p}openblas_get_num_threads{x}", f"{p}openblas_set_num_threads{x}")
                 for p in ("", "scipy_") for x in ("", "64_")],
    "mkl": [("MKL_Get_Max_Threads", "MKL_Set_Num_Threads")],
    "blis": [("bli_thread_get_num_threads", "bli_thread_set_num_threads")],
}


def _thread_functions(controller: Any) -> tuple[Callable[[], int], Callable[[int], Any]]:
    """The BLAS's own get/set thread-count functions (a C call each), else threadpoolctl's methods."""
    for get_name, set_name in _THREAD_FUNCTIONS.get(controller.internal_api, []):
        try:
            return getattr(controller.dynlib, get_name), getattr(controller.dynlib, set_name)
        except AttributeError:
            continue
    return controller.get_num_threads, controller.set_num_threads


class _BlasOneThread:
    """Hold every loaded BLAS to one thread inside ``with``, restoring each one's count after.

    Calls the libraries' own thread-count functions (found once through threadpoolctl):
    about a microsecond, against ~13 us for ``threadpoolctl.threadpool_limits``.
    """

    _functions: list | None = None

    def __enter__(self) -> None:
        if _BlasOneThread._functions is None:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415 - scans the loaded libraries

            controllers = ThreadpoolController().select(user_api="blas").lib_controllers
            _BlasOneThread._functions = [_thread_functions(c) for c in controllers]
        self._saved = [(set_count, get_count()) for get_count, set_count in _BlasOneThread._functions]
        for set_count, count in self._saved:
            if count != 1:
                set_count(1)

    def __exit__(self, *exc: object) -> None:
        for set_count, count in self._saved:
            if count != 1:
                set_count(count)


def _run_slice(fn: Callable[[slice], T], part: slice) -> T:
    _local.inside = True
    try:
        return fn(part)
    finally:
        _local.inside = False


def map_slices(fn: Callable[[slice], T], slices: Sequence[slice]) -> list[T]:
    """``[fn(s) for s in slices]``, the slices run at the same time on different threads.

    The calling thread runs the first slice itself; the BLAS is held to one thread until
    every slice has finished. ``fn`` must write only to what belongs to its slice.
    Exceptions are raised after all slices have finished (the first one's, in slice order).

    One slice runs in the calling thread, also with the BLAS held to one thread unless
    :func:`get_num_threads` is 1 or the work is small (``slices.large`` is false, see
    :class:`Slices`): a multi-threaded BLAS call leaves OpenBLAS's workers
    spinning for ~0.1 s on the cores that the next layer's slices need (measured: a 64 -> 64
    channel convolution's backward took 101 instead of 59 ms after a 2-thread product).
    """
    if len(slices) <= 1:
        if not getattr(slices, "large", True) or get_num_threads() == 1 or getattr(_local, "inside", False):
            return [fn(part) for part in slices]
        with _BlasOneThread():  # no BLAS worker left spinning on a core the next slices need
            return [fn(part) for part in slices]
    pool = _executor(len(slices) - 1)
    with _BlasOneThread():
        futures: list[Future] = [pool.submit(_run_slice, fn, part) for part in slices[1:]]
        try:
            first = _run_slice(fn, slices[0])
        finally:
            for future in futures:  # never leave a slice running on return or on an error
                future.exception()
        return [first, *(future.result() for future in futures)]


def sum_parts(parts: Sequence[Any]) -> Any:
    """The sum of the slices' partial results, added in slice order (the same result for the same slices).

    The first part is not modified: ``sum_parts([a, b])`` is a new array ``a + b``.
    """
    if not parts:
        raise ValueError("sum_parts: no parts to add")
    total = parts[0] + 0 if len(parts) > 1 else parts[0]
    for part in parts[1:]:
        total += part
    return total


def _reset_after_fork() -> None:
    """A forked child has none of its parent's threads: make a new pool on first use."""
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
