"""An OpenBLAS setting that works only from the environment, before NumPy loads: the thread timeout.

After a multi-threaded call, OpenBLAS (the BLAS of NumPy's wheels) keeps its worker
threads spinning for 2^28 CPU cycles (~0.1 s) before they sleep. nnframe's layers split
large work between their own threads (:mod:`nnframe.threads`), so a worker still spinning
from an earlier product (a small ``Dense`` layer's, which keeps the BLAS's threads) takes
a core away from them. ``OPENBLAS_THREAD_TIMEOUT=20`` (2^20 cycles, well under a
millisecond) lets the workers sleep soon after their work. Measured, 2 threads, medians of
21-51 calls, nnframe only (``OPENBLAS_THREAD_TIMEOUT`` unset -> 20), in two windows:

* the decoder-only Transformer of ``python -m benchmarks transformer``, one forward pass in
  evaluation mode: 26-29 -> 15-15.5 ms (its blocks split the batch; the head is a small
  ``Dense``);
* its training step: 55-61 -> 57-62 ms (no change beyond noise);
* the seed's MLP, training step at batch 1024: 5.4-6.3 -> 5.1-5.9 ms; at batch 128, no
  change beyond noise (1.5-1.7 ms either way).

OpenBLAS reads the variable once, when NumPy loads it, and has no call to change it
later. So importing this module (``import nnframe`` does, before it imports NumPy) runs
:func:`set_defaults`: where the variable is unset and NumPy is not loaded yet, it is set to
20 (in ``os.environ``, so child processes inherit it). Where NumPy was imported first, set
it yourself::

    OPENBLAS_THREAD_TIMEOUT=20 python train.py

:func:`applied` says whether the value was in place when NumPy loaded, and
:func:`workers_sleep_soon` whether the timeout in effect is that short. Where it is not, the
Transformer blocks evaluate a batch in one piece instead of on slices in threads: one forward
pass of the benchmark's model (2 blocks, N=32, T=64, E=128; 2 threads; medians of 40 calls)
takes 19.3 ms that way with NumPy imported first, where the slices took 29.6-33.5 ms beside
the spinning workers; with the timeout in place, the slices take 15.8-16.4 ms.
"""

from __future__ import annotations

import os
import sys

#: the environment variable OpenBLAS reads (an exponent: workers spin 2^value cycles, 4 to 30)
THREAD_TIMEOUT_VAR = "OPENBLAS_THREAD_TIMEOUT"
#: the value :func:`set_defaults` puts there
DEFAULT_THREAD_TIMEOUT = "20"

_seen_at_load: str | None = None  # the variable's value when set_defaults ran before NumPy loaded


def set_defaults() -> bool:
    """Set ``OPENBLAS_THREAD_TIMEOUT=20`` if it is unset and NumPy is not loaded yet.

    Returns:
        ``True`` if this call set the variable; ``False`` if it was set already (the
        user's value is kept) or NumPy is loaded (too late: nothing is changed).
    """
    global _seen_at_load
    if "numpy" in sys.modules:
        return False
    if THREAD_TIMEOUT_VAR in os.environ:
        _seen_at_load = os.environ[THREAD_TIMEOUT_VAR]
        return False
    os.environ[THREAD_TIMEOUT_VAR] = _seen_at_load = DEFAULT_THREAD_TIMEOUT
    return True


def applied() -> str | None:
    """The thread timeout OpenBLAS was loaded with, if :func:`set_defaults` ran before NumPy loaded.

    Returns:
        The variable's value at that moment (nnframe's default or the user's), or
        ``None`` when NumPy was loaded before nnframe (OpenBLAS then read whatever the
        environment held at the time, most likely nothing: its default, 28).
    """
    return _seen_at_load


def workers_sleep_soon() -> bool:
    """Whether OpenBLAS's workers stop spinning soon (well under a millisecond) after a call.

    True when the thread timeout in effect is at most nnframe's default (``2^20`` cycles).
    The value in effect is :func:`applied`'s; where NumPy was loaded before nnframe it is
    taken from the environment (OpenBLAS read it there when NumPy loaded; unset, OpenBLAS
    spins ``2^28`` cycles, ~0.1 s). Layers that split work between their own threads right
    after a multi-threaded product ask this first: with spinning workers on the cores the
    split runs slower than no split (the Transformer block's evaluation pass).
    """
    value = _seen_at_load
    if value is None and "numpy" in sys.modules:
        value = os.environ.get(THREAD_TIMEOUT_VAR)
    try:
        return value is not None and int(value) <= int(DEFAULT_THREAD_TIMEOUT)
    except ValueError:  # not a number: OpenBLAS then keeps its default
        return False


set_defaults()
