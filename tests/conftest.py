"""Shared fixtures: every test starts from the same seed and the float32 default."""

import sys
from pathlib import Path

import pytest

import nnframe
from nnframe import backend

sys.path.insert(0, str(Path(__file__).parent))  # for tests/layer_cases*.py


@pytest.fixture(autouse=True)
def _reset_global_state():
    nnframe.set_seed(1234)
    backend.set_default_dtype("float32")
    yield
    backend.set_default_dtype("float32")
