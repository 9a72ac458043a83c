"""Fuzzing checkpoint headers and metadata (issue 10): every mutated file gives a clear
``CheckpointError`` (or loads), in bounded memory, never another exception."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from training_cases import blobs, mlp

import nnframe
from nnframe import callbacks, schedule
from nnframe.io import CheckpointError


def _base() -> tuple[dict, bytes]:
    """A checkpoint with every section filled: its header (metadata JSON decoded) and data bytes."""
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    model = mlp(metrics=["accuracy"])
    model.scheduler = schedule.StepLR(model.optimizer, step_size=1, gamma=0.5)
    model.metadata = {"dataset": "fashion-mnist", "batch_size": 16, "validation_split": 0.25, "seed": 1,
                      "class_names": list("abc"), "pixel_range": [0, 255]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.safetensors"
        model.fit(*blobs(n=32), epochs=2, batch_size=16, validation_split=0.25, verbose=0,
                  callbacks=[callbacks.LRSchedulerCallback(), callbacks.EarlyStopping(patience=3),
                             callbacks.ModelCheckpoint(path)])
        blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    for key in ("config", "state"):
        header["__metadata__"][key] = json.loads(header["__metadata__"][key])
    return header, blob[8 + n:]


HEADER, DATA = _base()


def _paths(node, prefix=()):
    """Every path into the header's nested objects and lists."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            yield from _paths(value, (*prefix, index))


PATHS = [p for p in _paths(HEADER) if p]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
INTERESTING = st.sampled_from([-5, 3.5, 1e308, float("inf"), float("nan"), -1, 0, 2**64, "", "x", [1], {},
                               [], None, True, ["x"], {"class": "Metric"}, "F32", ["F32"], [2**40, 2**40]])


def _mutated(path, value, delete) -> bytes:
    header = json.loads(json.dumps(HEADER))
    node = header
    for key in path[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value
    meta = header.get("__metadata__")
    if isinstance(meta, dict):
        for key in ("config", "state"):
            if key in meta and not isinstance(meta[key], str):
                meta[key] = json.dumps(meta[key])
    raw = json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + DATA


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), value=st.one_of(INTERESTING, JSON), delete=st.booleans())
def test_a_mutated_header_gives_a_checkpoint_error_in_bounded_memory(tmp_path, path, value, delete):
    file = tmp_path / "fuzz.safetensors"
    file.write_bytes(_mutated(path, value, delete))
    tracemalloc.start()
    try:
        try:
            model = nnframe.load(file)
        except CheckpointError as exc:
            assert str(exc) and "Traceback" not in str(exc)
            model = None
        if model is not None:  # what loads must also summarise and evaluate without surprises
            model.summary_text()
            x, y = blobs(n=8)
            try:
                model.evaluate(x, y)
            except ValueError:
                pass  # e.g. a wrong input shape for a mutated input_shape: a clear error
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_the_unmutated_base_loads():
    import tempfile  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.safetensors"
        raw = json.dumps({**HEADER, "__metadata__": {
            **HEADER["__metadata__"], **{k: json.dumps(HEADER["__metadata__"][k]) for k in ("config", "state")}}})
        path.write_bytes(len(raw.encode()).to_bytes(8, "little") + raw.encode() + DATA)
        model = nnframe.load(path)
    assert model.epoch == 2 and np.isfinite(model.net.params.flat).all()
