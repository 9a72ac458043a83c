"""Hostile checkpoints cost nothing: shapes are checked before allocating, only regular files are
read, the header comes first and the tensors are read by offset (issue 10 items 1-2, issue 9 item 11)."""

from __future__ import annotations

import json
import os
import threading
import tracemalloc

import numpy as np
import pytest
from training_cases import blobs, mlp

import nnframe
from nnframe import io
from nnframe.io import CheckpointError

MiB = 1 << 20


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A small trained MLP's checkpoint bytes and its parsed header."""
    model = mlp()
    model.fit(*blobs(n=40), epochs=1, batch_size=20, verbose=0)
    path = tmp_path_factory.mktemp("good") / "m.safetensors"
    model.save(path)
    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    return blob, json.loads(blob[8:8 + n])


def _write(path, header, data=b"", size=None):
    raw = json.dumps(header).encode()
    with open(path, "wb") as file:
        file.write(len(raw).to_bytes(8, "little") + raw + data)
        if size is not None:
            file.truncate(size)
    return path


def _with_config(good, path, edit, keep_tensors=True):
    """``good``'s checkpoint with ``edit(config)`` applied; without any tensor unless ``keep_tensors``."""
    blob, header = good
    header = json.loads(json.dumps(header))
    config = json.loads(header["__metadata__"]["config"])
    edit(config)
    header["__metadata__"]["config"] = json.dumps(config)
    if keep_tensors:
        n = int.from_bytes(blob[:8], "little")
        return _write(path, header, blob[8 + n:])
    state = json.loads(header["__metadata__"]["state"])
    state["optimizer"]["iterations"] = 0
    header["__metadata__"]["state"] = json.dumps(state)
    return _write(path, {"__metadata__": header["__metadata__"]})


def _refused(path, limit_mib: float = 32) -> str:
    """Load ``path``; return the CheckpointError's message, asserting Python allocated < ``limit_mib``."""
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError) as info:
            nnframe.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit_mib * MiB, f"loading took {peak / MiB:.0f} MiB"
    return str(info.value)


# ------------------------------------------------------- item 1: shapes before bytes
def test_a_3kb_file_declaring_a_huge_layer_without_tensors_allocates_nothing(good, tmp_path):
    def huge(config):
        config["net"]["layers"] = [{"class": "Flatten"}, {"class": "Dense", "config": {"num_out": 400000}}]
        config["input_shape"] = [784]

    path = _with_config(good, tmp_path / "c.safetensors", huge, keep_tensors=False)
    assert path.stat().st_size < 4096
    message = _refused(path)
    assert "does not match its own config: missing weights: ['1.b', '1.w']" in message


def test_an_input_shape_the_stored_tensors_do_not_fit_is_refused_before_building(good, tmp_path):
    def wide(config):
        config["input_shape"] = [2**21]

    message = _refused(_with_config(good, tmp_path / "c.safetensors", wide))
    assert f"weights 0.w: expected ({2**21}, 16) float32, got (6, 16) float32" in message


def test_an_activation_too_big_for_one_sample_is_refused(good, tmp_path):
    def padded(config):
        config["net"]["layers"] = [{"class": "ZeroPad2D", "config": {"padding": 12000}}, {"class": "Flatten"},
                                   {"class": "Dense", "config": {"num_out": 10}}]
        config["input_shape"] = [28, 28, 1]

    message = _refused(_with_config(good, tmp_path / "c.safetensors", padded, keep_tensors=False))
    assert f"layer 0 (ZeroPad2D) would output {24028 * 24028} values per sample" in message
    assert f"more than the {io.MAX_INPUT_ELEMENTS} allowed" in message


def test_the_layer_count_is_capped(good, tmp_path):
    def deep(config):
        config["net"]["layers"] = [{"class": "ReLU"}] * (io.MAX_LAYERS + 1)

    message = _refused(_with_config(good, tmp_path / "c.safetensors", deep, keep_tensors=False))
    assert f"the net has more than {io.MAX_LAYERS} layers (counting nested ones)" in message


def test_a_huge_metadata_field_is_refused_before_parsing(good, tmp_path):
    _, header = good
    header = json.loads(json.dumps(header))
    header["__metadata__"]["config"] = "[" + "{}," * (io.MAX_METADATA_JSON_CHARS // 3) + "{}]"
    message = _refused(_write(tmp_path / "c.safetensors", {"__metadata__": header["__metadata__"]}), 64)
    assert "metadata 'config' is" in message and f"more than the {io.MAX_METADATA_JSON_CHARS}" in message


def test_a_net_is_built_without_a_forward_pass(tmp_path):
    from nnframe import layer, net  # noqa: PLC0415

    big = net.Net([layer.ZeroPad2D(1000), layer.Conv2D(2, 3), layer.GlobalAvgPool2D(), layer.Dense(3)])
    tracemalloc.start()
    try:
        big.build((1, 28, 28, 1))  # a forward pass would hold ~2000x2000 activations (32 MB each)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert big.is_built and peak < 4 * MiB
    assert {k: v.shape for k, v in big.state_dict().items()} == {"1.w": (3, 3, 1, 2), "1.b": (2,), "3.w": (2, 3),
                                                                "3.b": (3,)}


# --------------------------------------------------- item 2: regular files, header first
def _in_thread(function, timeout: float = 20.0):
    """Run ``function`` in a daemon thread; return what it raised, failing if it never returns."""
    outcome = {}

    def run():
        try:
            function()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "reading did not return (it blocked)"
    return outcome.get("error")


@pytest.mark.parametrize("kind", ["fifo", "char device", "folder"])
def test_only_regular_files_are_read(kind, tmp_path):
    if kind == "fifo":
        path = str(tmp_path / "pipe.safetensors")
        os.mkfifo(path)
        expected = "it is a FIFO (named pipe)"
    elif kind == "char device":
        path, expected = "/dev/zero", "it is a character device"
    else:
        path, expected = str(tmp_path), "it is a folder"
    error = _in_thread(lambda: io.read_checkpoint(path))
    assert isinstance(error, CheckpointError)
    assert f"checkpoint {path!r}: not a regular file: {expected}" in str(error)


def test_a_2gib_file_of_zeros_is_refused_from_its_first_bytes(tmp_path):
    path = tmp_path / "zeros.safetensors"
    with open(path, "wb") as file:
        file.truncate(2 << 30)  # sparse: no disk used
    message = _refused(path, limit_mib=4)
    assert message.startswith(f"checkpoint {str(path)!r}: not a safetensors file: its first 8 bytes give a "
                              "header length of 0")


def test_tensors_are_read_by_offset_not_copied(good, tmp_path):
    _, header = good
    metadata = json.loads(json.dumps(header["__metadata__"]))
    n = 4096
    tensors = {"__metadata__": metadata,
               "optimizer/zz": {"dtype": "F32", "shape": [n, n], "data_offsets": [0, 4 * n * n]}}
    path = _write(tmp_path / "big.safetensors", tensors, size=None)
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) + 4 * n * n)  # 64 MiB of zeros
    tracemalloc.start()
    try:
        ckpt = io.read_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * MiB
    array = ckpt.optimizer_arrays["zz"]
    assert array.shape == (n, n) and array.dtype == np.float32 and not array.flags.writeable
    assert float(array[-1, -1]) == 0.0


# ------------------------------------------------ issue 9 item 11: the verdict first
def test_a_text_file_is_called_not_a_safetensors_file(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("These are my notes about the model.\n" * 20)
    message = _refused(path)
    assert message.startswith(f"checkpoint {str(path)!r}: not a safetensors file (it looks like a text file)")


def test_a_truncated_checkpoint_says_how_much_is_there(good, tmp_path):
    blob, _ = good
    path = tmp_path / "cut.safetensors"
    path.write_bytes(blob[:-100])
    message = _refused(path)
    assert message.startswith(f"checkpoint {str(path)!r}: truncated: {len(blob) - 100} of {len(blob)} bytes")
    assert len(message) < 300 + len(str(path))


# ------------------------------------------ item 9: every metadata field checked when read
def _set(tree, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        tree = tree[int(key)] if isinstance(tree, list) else tree.setdefault(key, {})
    tree[int(last) if isinstance(tree, list) else last] = value


MT_SHORT_KEY = {"bit_generator": "MT19937", "state": {"key": [1, 2, 3], "pos": 0}}
PLAUSIBLE_BUT_WRONG = [
    ("state", "rng", [1], "state.rng must be a JSON object"),
    ("state", "rng", "x", "state.rng must be a JSON object"),
    ("state", "optimizer.iterations", "Infinity", "Infinity is not a number a checkpoint may hold"),
    ("state", "optimizer.iterations", -5, "state.optimizer.iterations must be an integer"),
    ("state", "optimizer.iterations", 3.5, "state.optimizer.iterations must be an integer"),
    ("state", "optimizer.iterations", 1e308, "state.optimizer.iterations must be an integer"),
    ("state", "optimizer.lr", "NaN", "NaN is not a number a checkpoint may hold"),
    ("state", "optimizer.lr", "-Infinity", "-Infinity is not a number a checkpoint may hold"),
    ("state", "optimizer.lr", -0.1, "state.optimizer.lr must be a finite number >= 0.0"),
    ("state", "shuffle_rng", MT_SHORT_KEY, "bad generator state for shuffling"),
    ("config", "metrics", [{"class": "Metric"}], "unknown metric class"),
    ("config", "net.layers.0.config.name", ["x"], "name must be a string or None, got ['x']"),
    ("config", "metadata.dataset", 5, "metadata.dataset must be a string"),
    ("config", "metadata.batch_size", [1], "metadata.batch_size must be an integer"),
    ("config", "metadata.validation_split", {}, "metadata.validation_split must be a number"),
]


@pytest.mark.parametrize("section, field, value, expected", PLAUSIBLE_BUT_WRONG,
                         ids=[f"{s}.{f}={v!r}" for s, f, v, _ in PLAUSIBLE_BUT_WRONG])
def test_a_plausible_but_wrong_field_is_a_checkpoint_error(good, tmp_path, section, field, value, expected):
    blob, header = good
    header = json.loads(json.dumps(header))
    tree = json.loads(header["__metadata__"][section])
    _set(tree, field, "@@" if isinstance(value, str) and value.lstrip("-") in ("NaN", "Infinity") else value)
    text = json.dumps(tree)
    if isinstance(value, str) and value.lstrip("-") in ("NaN", "Infinity"):
        text = text.replace('"@@"', value)  # a bare JSON constant, as Python's json writes it
    header["__metadata__"][section] = text
    n = int.from_bytes(blob[:8], "little")
    message = _refused(_write(tmp_path / "c.safetensors", header, blob[8 + n:]))
    assert expected in message


def test_a_scheduler_state_that_overflows_is_a_checkpoint_error(good, tmp_path):
    blob, header = good
    header = json.loads(json.dumps(header))
    config, state = (json.loads(header["__metadata__"][k]) for k in ("config", "state"))
    config["scheduler"] = {"class": "StepLR", "step_size": 1, "gamma": 10.0}
    state["scheduler"] = {"last_step": 1000, "base_lr": 0.01}
    header["__metadata__"].update(config=json.dumps(config), state=json.dumps(state))
    n = int.from_bytes(blob[:8], "little")
    message = _refused(_write(tmp_path / "c.safetensors", header, blob[8 + n:]))
    assert "bad scheduler state" in message


def test_an_activation_too_big_in_a_graph_names_its_node(monkeypatch):
    """A graph with a shared layer has more nodes than layers: the node is named, not an IndexError."""
    import nnframe
    from nnframe import layer

    x = nnframe.Input(shape=(4,), name="x")
    shared = layer.Dense(4, name="shared")
    graph = nnframe.Graph(inputs=x, outputs=layer.Dense(64, name="wide")(shared(shared(x))))
    config = nnframe.layer.base.layer_to_config(graph)
    monkeypatch.setattr(io, "MAX_INPUT_ELEMENTS", 32)
    with pytest.raises(io.CheckpointError, match=r"node 2 \(wide\) would output 64 values per sample"):
        io.planned_state(nnframe.layer.base.layer_from_config(config), (4,))
