"""nnframe.backend: the array module switch, the default float dtype and host copies."""

import importlib.util
import sys
import types

import numpy as np
import pytest

from nnframe import backend


@pytest.fixture(autouse=True)
def _numpy_backend_after():
    yield
    backend.set_backend("numpy")


def test_xp_is_numpy_by_default_and_after_selecting_it():
    assert backend.xp() is np
    backend.set_backend("numpy")
    assert backend.xp() is np


@pytest.mark.parametrize("name", ["torch", "NumPy", "", "cupy "])
def test_set_backend_unknown_name_is_a_value_error_quoting_it(name):
    with pytest.raises(ValueError, match=rf"unknown backend {name!r}: expected 'numpy' or 'cupy'"):
        backend.set_backend(name)
    assert backend.xp() is np  # a failed switch leaves the backend as it was


def test_set_backend_cupy_missing_is_an_import_error_and_keeps_numpy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail, installed or not
    with pytest.raises(ImportError, match="cupy"):
        backend.set_backend("cupy")
    assert backend.xp() is np


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_set_backend_cupy_not_installed_names_the_module():
    with pytest.raises(ModuleNotFoundError, match="No module named 'cupy'"):
        backend.set_backend("cupy")
    assert backend.xp() is np


def test_set_backend_cupy_selects_the_imported_module(monkeypatch):
    fake = types.ModuleType("cupy")  # stands in for CuPy: no GPU needed to test the switch
    monkeypatch.setitem(sys.modules, "cupy", fake)
    backend.set_backend("cupy")
    assert backend.xp() is fake
    backend.set_backend("numpy")
    assert backend.xp() is np


@pytest.mark.parametrize("spec, expected", [
    ("float32", np.float32), (np.float32, np.float32), ("f4", np.float32), (np.dtype("float32"), np.float32),
    ("float64", np.float64), (np.float64, np.float64), (float, np.float64), ("<f8", np.float64),
])
def test_as_float_dtype_accepts_float32_and_float64_spellings(spec, expected):
    resolved = backend.as_float_dtype(spec)
    assert isinstance(resolved, np.dtype)
    assert resolved == np.dtype(expected)


@pytest.mark.parametrize("spec, shown", [
    ("float16", "float16"), (np.int32, "int32"), (int, "int64"), ("complex64", "complex64"), (bool, "bool"),
])
def test_as_float_dtype_rejects_other_dtypes_naming_them(spec, shown):
    with pytest.raises(ValueError, match=f"dtype must be float32 or float64, got {shown}"):
        backend.as_float_dtype(spec)


def test_as_float_dtype_rejects_what_is_not_a_dtype_quoting_it():
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got 'float33'"):
        backend.as_float_dtype("float33")


def test_as_float_dtype_refuses_none_instead_of_numpys_float64():
    # np.dtype(None) is float64: before the fix set_default_dtype(None) silently switched
    # the framework to float64 instead of failing.
    with pytest.raises(ValueError, match="got None"):
        backend.as_float_dtype(None)
    with pytest.raises(ValueError, match="got None"):
        backend.set_default_dtype(None)
    assert backend.get_default_dtype() == np.float32


def test_default_dtype_is_float32_and_set_default_dtype_changes_it():
    assert backend.get_default_dtype() == np.dtype(np.float32)
    backend.set_default_dtype("float64")
    assert backend.get_default_dtype() == np.dtype(np.float64)
    assert isinstance(backend.get_default_dtype(), np.dtype)
    with pytest.raises(ValueError, match="got int8"):
        backend.set_default_dtype(np.int8)
    assert backend.get_default_dtype() == np.float64  # a refused dtype changes nothing


def test_default_dtype_context_restores_on_exit_and_on_error():
    with backend.default_dtype(np.float64) as inside:
        assert inside == np.float64 == backend.get_default_dtype()
        with backend.default_dtype("float32"):
            assert backend.get_default_dtype() == np.float32
        assert backend.get_default_dtype() == np.float64
    assert backend.get_default_dtype() == np.float32
    with pytest.raises(RuntimeError, match="boom"), backend.default_dtype("float64"):
        raise RuntimeError("boom")
    assert backend.get_default_dtype() == np.float32
    with pytest.raises(ValueError), backend.default_dtype("float16"):
        pass  # pragma: no cover - the refused dtype raises before the body
    assert backend.get_default_dtype() == np.float32


def test_to_host_returns_numpy_arrays_unchanged():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert backend.to_host(x) is x


def test_to_host_calls_get_on_device_arrays():
    class DeviceArray:  # the part of cupy.ndarray to_host relies on
        def __init__(self, data):
            self.data = data
            self.calls = 0

        def get(self):
            self.calls += 1
            return self.data.copy()

    data = np.array([[1.5, -2.0]], dtype=np.float32)
    device = DeviceArray(data)
    host = backend.to_host(device)
    assert device.calls == 1
    assert isinstance(host, np.ndarray) and host.dtype == np.float32
    np.testing.assert_array_equal(host, data)


def test_to_host_converts_lists_and_scalars_to_arrays():
    out = backend.to_host([[1, 2], [3, 4]])
    assert isinstance(out, np.ndarray) and out.shape == (2, 2)
    np.testing.assert_array_equal(out, [[1, 2], [3, 4]])
    scalar = backend.to_host(np.float32(2.5))
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar.dtype == np.float32
