"""nnframe.blas_env: OpenBLAS's thread timeout goes in the environment before NumPy loads, never over a user's."""

import os
import subprocess
import sys

import pytest

from nnframe import blas_env

_REPORT = "import os, nnframe; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), nnframe.blas_env.applied())"


def _run(code: str, timeout_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != blas_env.THREAD_TIMEOUT_VAR}
    if timeout_value is not None:
        env[blas_env.THREAD_TIMEOUT_VAR] = timeout_value
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.parametrize("code, user_value, expected", [
    (_REPORT, None, "20 20"),  # unset, nnframe first: nnframe's default, in place when NumPy loaded
    (_REPORT, "25", "25 25"),  # the user's value is kept
    ("import numpy; " + _REPORT, None, "None None"),  # NumPy first: too late, nothing is set
])
def test_thread_timeout_is_set_only_before_numpy_and_only_if_unset(code, user_value, expected):
    assert _run(code, user_value) == expected


def test_set_defaults_once_numpy_is_loaded_changes_nothing(monkeypatch):
    monkeypatch.delenv(blas_env.THREAD_TIMEOUT_VAR, raising=False)
    assert "numpy" in sys.modules  # this test process has NumPy
    assert blas_env.set_defaults() is False
    assert blas_env.THREAD_TIMEOUT_VAR not in os.environ


_SLEEP = "import nnframe; print(nnframe.blas_env.workers_sleep_soon())"


@pytest.mark.parametrize("code, user_value, expected", [
    (_SLEEP, None, "True"),  # nnframe first: its timeout of 2^20 cycles is in place
    (_SLEEP, "16", "True"),  # a shorter one of the user's
    (_SLEEP, "25", "False"),  # a longer one: the workers spin ~3 ms
    ("import numpy; " + _SLEEP, None, "False"),  # NumPy first, nothing set: OpenBLAS spins 2^28 cycles
    ("import numpy; " + _SLEEP, "20", "True"),  # NumPy first, but the environment had it when NumPy loaded
    (_SLEEP, "soon", "False"),  # not a number: OpenBLAS keeps its default
])
def test_workers_sleep_soon_reads_the_timeout_in_effect(code, user_value, expected):
    assert _run(code, user_value) == expected
