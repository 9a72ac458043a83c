"""nnframe.allocator: glibc keeps freed memory for reuse once asked to (checked in a fresh process)."""

import subprocess
import sys
import types

import pytest

from nnframe import allocator

#: allocate and free a 40 MiB array (above glibc's largest automatic mmap threshold, 32 MiB)
#: ten times and print the minor page faults of the last nine
_SCRIPT = """
import ctypes, resource, sys
# PR_SET_THP_DISABLE: NumPy asks for transparent huge pages on large arrays, and when the kernel
# has 2 MiB pages free a fresh 40 MiB array faults 20 times instead of 10240; count 4 KiB pages always
assert ctypes.CDLL(None).prctl(41, 1, 0, 0, 0) == 0
import numpy as np
from nnframe import allocator
retained = allocator.retain_freed_memory() if sys.argv[1] == "retain" else None
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
a = np.ones(10 << 20, np.float32); del a
before = faults()
for _ in range(9):
    a = np.ones(10 << 20, np.float32); del a
print(retained, faults() - before)
"""


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, check=True)
    retained, faults = out.stdout.split()
    return retained, int(faults)


@pytest.mark.skipif(allocator._glibc() is None, reason="glibc only")
def test_retained_memory_is_reused_without_page_faults():
    retained, faults = _faults("retain")
    assert retained == "True"
    assert faults < 100  # the pages of the first array are reused
    assert _faults("default")[1] > 10 * faults + 1000  # glibc's default maps fresh pages each time


def test_without_glibc_nothing_is_set(monkeypatch):
    monkeypatch.setattr(allocator, "_glibc", lambda: None)
    assert allocator.retain_freed_memory() is False


def test_a_refused_setting_is_named(monkeypatch):
    def mallopt(param, value):  # stands in for the C function: refuses the trim threshold
        return 0 if param == allocator.M_TRIM_THRESHOLD else 1

    monkeypatch.setattr(allocator, "_glibc", lambda: types.SimpleNamespace(mallopt=mallopt))
    with pytest.raises(RuntimeError, match="M_TRIM_THRESHOLD"):
        allocator.retain_freed_memory()
