"""The ``nnframe`` command, run in-process on tiny generated IDX data sets, and the PNG reader.

Every test runs with HOME, XDG_CACHE_HOME and NNFRAME_DATA pointed into tmp_path, no
system directories and mirrors on a closed local port, so nothing here reads the real
cache or reaches the internet. The slow end-to-end test trains on the real Debian
Fashion-MNIST copy and skips where it is absent.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import nnframe
import nnframe.data.datasets as ds
from nnframe import cli
from nnframe.data import PNGFormatError, read_png, standardize, write_idx

CLOSED_PORT_URL = "http://127.0.0.1:9/"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# matplotlib's font cache stays where it is (rebuilding it under a fresh HOME takes a minute)
MPL_DIR = os.environ.get("MPLCONFIGDIR") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib")
EVAL_RE = re.compile(r"loss (\d+\.\d+) - accuracy (\d\.\d+) \((\d+)/(\d+)\)")


# ------------------------------------------------------------------------ fixtures
def _isolate(monkeypatch, home: Path) -> None:
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("NNFRAME_DATA", raising=False)
    monkeypatch.delenv("NNFRAME_DEBUG", raising=False)
    monkeypatch.setenv("MPLCONFIGDIR", MPL_DIR)
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", [])
    monkeypatch.setattr(ds, "MIRRORS", {name: [CLOSED_PORT_URL] for name in ds.MIRRORS})


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    _isolate(monkeypatch, tmp_path / "home")


def make_dataset(directory: Path, n_train: int = 240, n_test: int = 60, seed: int = 0) -> dict:
    """Four IDX files of a small learnable 10-class set: class k has a bright block at place k."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 120, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            row, col = divmod(int(k), 4)
            images[i, 2 + 8 * row:8 + 8 * row, 2 + 6 * col:7 + 6 * col] += 100
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)
        arrays[prefix] = (images[..., None], labels.astype(np.int64))
    return arrays


def run(argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)`` with stdout and stderr captured: ``(status, out, err)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small training run shared by the read-only tests: ``(dir, arrays, ckpt, out, err)``."""
    root = tmp_path_factory.mktemp("cli")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, root / "home")
        arrays = make_dataset(root / "data")
        ckpt = root / "model.safetensors"
        nnframe.set_seed(1234)
        status, out, err = run(["train", "--data-dir", root / "data", "--no-download", "--epochs", 2,
                                "--batch-size", 32, "--lr", 1e-3, "--out", ckpt])
    assert status == 0, err
    return root, arrays, ckpt, out, err


def train_args(data_dir: Path, out: Path, *extra) -> list:
    return ["train", "--data-dir", data_dir, "--no-download", "--batch-size", 32, "--out", out, *extra]


# ------------------------------------------------------------------------ a tiny PNG encoder
def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def encode_png(image: np.ndarray, filters=(0,), depth: int = 8, color: int | None = None,
               interlace: int = 0, chunks_after_ihdr: tuple = ()) -> bytes:
    """A PNG of uint8 ``image`` (H, W, C); row ``y`` uses filter ``filters[y % len(filters)]``
    (implemented straight from the specification, byte by byte)."""
    height, width, channels = image.shape
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels] if color is None else color
    bpp = channels
    raw = bytearray()
    prior = [0] * (width * channels)
    for y in range(height):
        line = [int(v) for v in image[y].reshape(-1)]
        kind = filters[y % len(filters)]
        out = []
        for i, value in enumerate(line):
            left = line[i - bpp] if i >= bpp else 0
            up = prior[i]
            upleft = prior[i - bpp] if i >= bpp else 0
            predictor = [0, left, up, (left + up) // 2, _paeth(left, up, upleft)][kind] if kind < 5 else 0
            out.append((value - predictor) % 256)
        raw += bytes([kind, *out])
        prior = line

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + b"".join(chunk(k, b) for k, b in chunks_after_ihdr)
            + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


# ----------------------------------------------------------------------------- train
def test_train_writes_checkpoint_with_metadata_and_reports(trained):
    root, arrays, ckpt, out, err = trained
    assert ckpt.is_file()
    # progress bar and per-epoch train / validation figures (tqdm on stderr)
    assert "Epoch 1/2" in err and "Epoch 2/2" in err
    assert re.search(r"loss=\d\.\d+, accuracy=\d\.\d+, val_loss=\d\.\d+, val_accuracy=\d\.\d+", err)
    assert "216 training / 24 validation / 60 test" in out
    assert "Total params: 186,610" in out  # the seed's MLP: 784-200-100-70-30-10
    assert EVAL_RE.search(out.split("test:")[1])
    model = nnframe.load(ckpt)
    assert model.epoch == 2
    meta = model.metadata
    assert meta["dataset"] == "fashion-mnist" and meta["class_names"][9] == "Ankle boot"
    assert meta["batch_size"] == 32 and meta["validation_split"] == 0.1 and meta["seed"] == 0
    _, mean, std = standardize(arrays["train"][0])
    np.testing.assert_array_equal(np.float32(meta["preprocessing"]["standardize"]["mean"]), mean)
    np.testing.assert_array_equal(np.float32(meta["preprocessing"]["standardize"]["std"]), std)


def test_train_learns_the_tiny_task(tmp_path):
    arrays = make_dataset(tmp_path / "data")
    status, out, err = run(train_args(tmp_path / "data", tmp_path / "m.safetensors", "--epochs", 3,
                                      "--lr", 3e-3))
    assert status == 0, err
    acc = float(EVAL_RE.search(out.split("test:")[1]).group(2))
    assert acc >= 0.9, out  # chance is 0.1
    assert len(arrays["t10k"][1]) == 60


def test_evaluate_reproduces_the_train_figures_exactly(trained):
    root, _, ckpt, out, _ = trained
    train_figures = EVAL_RE.search(out.split("test:")[1]).group(0)
    status, eval_out, err = run(["evaluate", ckpt, "--data-dir", root / "data", "--no-download"])
    assert status == 0, err
    assert EVAL_RE.search(eval_out).group(0) == train_figures
    assert "fashion-mnist test set (60 images)" in eval_out


def test_evaluate_agrees_with_the_model_api(trained):
    root, arrays, ckpt, _, _ = trained
    model = nnframe.load(ckpt)
    x_test, y_test = arrays["t10k"]
    meta = model.metadata["preprocessing"]["standardize"]
    x, _, _ = standardize(x_test, meta["mean"], meta["std"])
    expected = np.mean(np.argmax(model.predict(x), axis=1) == y_test)
    status, eval_out, _ = run(["evaluate", ckpt, "--data-dir", root / "data", "--no-download",
                               "--batch-size", 7])
    assert status == 0
    match = EVAL_RE.search(eval_out)
    assert int(match.group(3)) == round(expected * len(y_test)) and int(match.group(4)) == len(y_test)


def test_same_seed_same_checkpoint_and_resume_is_bit_identical(tmp_path):
    make_dataset(tmp_path / "data")
    data_dir = tmp_path / "data"
    straight, again, part = (tmp_path / n for n in ("a.safetensors", "b.safetensors", "c.safetensors"))
    for path in (straight, again):
        assert run(train_args(data_dir, path, "--epochs", 2, "--seed", 5))[0] == 0
    assert run(train_args(data_dir, part, "--epochs", 1, "--seed", 5))[0] == 0
    status, out, err = run(["train", "--data-dir", data_dir, "--no-download", "--resume", part,
                            "--epochs", 2, "--out", part])
    assert status == 0, err
    assert "epochs 2..2" in out and "trained 1 epoch(s)" in out
    weights = [nnframe.load(p).net.state_dict() for p in (straight, again, part)]
    for name in weights[0]:
        np.testing.assert_array_equal(weights[0][name], weights[1][name])
        np.testing.assert_array_equal(weights[0][name], weights[2][name])
    assert nnframe.load(part).epoch == 2


def test_train_with_a_json_spec_and_another_optimizer(tmp_path):
    make_dataset(tmp_path / "data")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"layers": [{"class": "Flatten", "config": {}},
                                           {"class": "Dense", "config": {"num_out": 16}},
                                           {"class": "Tanh", "config": {}},
                                           {"class": "Dense", "config": {"num_out": 10}}]}))
    ckpt = tmp_path / "spec.safetensors"
    status, out, err = run(train_args(tmp_path / "data", ckpt, "--model", spec, "--epochs", 1,
                                      "--optimizer", "sgd", "--lr", 0.05, "--validation-split", 0))
    assert status == 0, err
    assert "val_loss" not in err
    model = nnframe.load(ckpt)
    assert [type(layer).__name__ for layer in model.net.layers] == ["Flatten", "Dense", "Tanh", "Dense"]
    assert type(model.optimizer).__name__ == "SGD" and model.optimizer.lr == pytest.approx(0.05)


@pytest.mark.skipif(not (EXAMPLES / "fashion_cnn.json").is_file(), reason="examples/fashion_cnn.json not present")
def test_train_the_example_cnn_spec_and_evaluate(tmp_path):
    make_dataset(tmp_path / "data", n_train=64, n_test=20)
    ckpt = tmp_path / "cnn.safetensors"
    status, out, err = run(train_args(tmp_path / "data", ckpt, "--model", EXAMPLES / "fashion_cnn.json",
                                      "--epochs", 1))
    assert status == 0, err
    assert "Conv2D" in out and "BatchNorm" in out
    status, eval_out, err = run(["evaluate", ckpt, "--data-dir", tmp_path / "data", "--no-download"])
    assert status == 0, err
    assert EVAL_RE.search(eval_out).group(0) == EVAL_RE.search(out.split("test:")[1]).group(0)


# ---------------------------------------------------------------------------- plot
def test_plot_writes_a_png_with_the_curves(tmp_path):
    pytest.importorskip("matplotlib")
    make_dataset(tmp_path / "data")
    plot = tmp_path / "curves.png"
    status, out, err = run(train_args(tmp_path / "data", tmp_path / "m.safetensors", "--epochs", 2,
                                      "--plot", plot))
    assert status == 0, err
    assert f"curves: {plot}" in out
    image = read_png(plot)  # matplotlib writes 8-bit RGBA: our own reader decodes it
    assert image.ndim == 3 and image.shape[2] == 4 and image.shape[1] > image.shape[0] > 100
    assert image[..., :3].std() > 10  # not a blank canvas


def test_plot_without_matplotlib_fails_before_training(tmp_path, monkeypatch):
    make_dataset(tmp_path / "data")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out_path = tmp_path / "m.safetensors"
    status, out, err = run(train_args(tmp_path / "data", out_path, "--plot", tmp_path / "c.png"))
    assert status == 1
    assert err.count("\n") == 1 and "pip install 'nnframe[plot]'" in err
    assert not out_path.exists()


# ------------------------------------------------------------------- predict, summary
def _expected_classes(ckpt: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    model = nnframe.load(ckpt)
    meta = model.metadata["preprocessing"]["standardize"]
    logits = np.asarray(model.predict(standardize(images, meta["mean"], meta["std"])[0]), dtype=np.float64)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return probs.argmax(axis=1), probs.max(axis=1)


def _parse_predictions(out: str) -> list[tuple[str, int, float]]:
    found = re.findall(r"^(\S+): class (\d) \([^)]*\) p=(\d\.\d{4})", out, flags=re.M)
    return [(label, int(k), float(p)) for label, k, p in found]


def test_predict_npy_single_image_and_batch(trained, tmp_path):
    _, arrays, ckpt, _, _ = trained
    x_test = arrays["t10k"][0]
    batch, single = tmp_path / "batch.npy", tmp_path / "one.npy"
    np.save(batch, x_test[:5])  # (5, 28, 28, 1)
    np.save(single, x_test[7, :, :, 0])  # (28, 28)
    status, out, err = run(["predict", ckpt, batch, single, "--top", 2])
    assert status == 0, err
    preds = _parse_predictions(out)
    classes, probs = _expected_classes(ckpt, x_test[[0, 1, 2, 3, 4, 7]])
    assert [label for label, _, _ in preds] == [f"{batch}[{i}]" for i in range(5)] + [str(single)]
    assert [k for _, k, _ in preds] == list(classes)
    np.testing.assert_allclose([p for _, _, p in preds], probs, atol=6e-5)
    assert out.count("top 2:") == 6


@pytest.mark.parametrize("mode", ["gray", "rgb", "rgba"])
def test_predict_png(trained, tmp_path, mode):
    _, arrays, ckpt, _, _ = trained
    image = arrays["t10k"][0][3]  # (28, 28, 1)
    if mode != "gray":
        image = np.repeat(image, 3, axis=2)  # gray as RGB: luma gives the same gray back
    if mode == "rgba":
        image = np.concatenate([image, np.full_like(image[..., :1], 255)], axis=2)
    path = tmp_path / f"{mode}.png"
    path.write_bytes(encode_png(image, filters=(0, 1, 2, 3, 4)))
    status, out, err = run(["predict", ckpt, path])
    assert status == 0, err
    classes, probs = _expected_classes(ckpt, arrays["t10k"][0][3:4])
    [(label, k, p)] = _parse_predictions(out)
    assert label == str(path) and k == classes[0] and p == pytest.approx(probs[0], abs=6e-5)


def test_summary(trained):
    _, _, ckpt, _, _ = trained
    status, out, err = run(["summary", ckpt])
    assert status == 0, err
    for text in ("Flatten", "Dense", "(None, 200)", "(None, 10)", "Total params: 186,610",
                 "Trained: 2 epoch(s), 14 step(s)", "Data set: fashion-mnist", "Input preprocessing"):
        assert text in out
    history = nnframe.load(ckpt).history.history  # the figures train printed for epoch 2
    assert (f"Last epoch (2): accuracy {history['accuracy'][-1]:.4f}, loss {history['loss'][-1]:.4f}, "
            f"val_accuracy {history['val_accuracy'][-1]:.4f}, val_loss {history['val_loss'][-1]:.4f}") in out


# ---------------------------------------------------------------------------- help
def _option_strings(parser) -> set[str]:
    return {s for action in parser._actions for s in action.option_strings if s.startswith("--")}


@pytest.mark.parametrize("command", ["train", "evaluate", "predict", "summary"])
def test_help_explains_every_option(command):
    status, out, _ = run([command, "--help"])
    assert status == 0
    sub = cli.build_parser()._subparsers._group_actions[0].choices[command]
    options = _option_strings(sub)
    if command == "train":
        assert {"--dataset", "--model", "--epochs", "--batch-size", "--lr", "--optimizer", "--seed", "--data-dir",
                "--out", "--resume", "--plot", "--validation-split"} <= options
    for option in options:
        assert re.search(rf"^\s+(-\w, )?{re.escape(option)}\b.*\S", out, flags=re.M), option
    assert all(action.help for action in sub._actions), "every option has a help text"


def test_top_level_help_and_python_m(tmp_path):
    status, out, _ = run(["--help"])
    assert status == 0 and all(c in out for c in ("train", "evaluate", "predict", "summary"))
    proc = subprocess.run([sys.executable, "-m", "nnframe", "summary", tmp_path / "missing.safetensors"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("nnframe: error: ")


# --------------------------------------------------------------------------- errors
def _assert_one_line_error(status: int, err: str, code: int, *fragments: str) -> None:
    assert status == code
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nnframe: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--epochs", "0"], "--epochs"),
    (["train", "--epochs", "many"], "--epochs"),
    (["train", "--lr", "-1"], "--lr"),
    (["train", "--lr", "nan"], "--lr"),
    (["train", "--batch-size", "0"], "--batch-size"),
    (["train", "--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
    (["train", "--dataset", "imagenet"], "unknown data set 'imagenet'"),
    (["train", "--validation-split", "1.5"], "--validation-split"),
    (["train", "--seed", "-3"], "--seed"),
    (["train", "--bogus"], "unrecognized arguments"),
    (["evaluate"], "CKPT"),
    (["frobnicate"], "invalid choice"),
    ([], "COMMAND"),
])
def test_bad_options_are_one_line_with_status_2(argv, fragment):
    status, _, err = run(argv)
    _assert_one_line_error(status, err, 2, fragment)


def test_a_missing_dataset_says_the_problem_first_in_the_command_line_s_words(tmp_path):
    (tmp_path / "empty").mkdir()
    status, _, err = run(train_args(tmp_path / "empty", tmp_path / "m.safetensors"))
    assert status == 1 and "Traceback" not in err
    first, *rest = err.strip().splitlines()
    assert first == f"nnframe: error: Fashion-MNIST not found in --data-dir ({tmp_path / 'empty'})."
    assert any(f"{tmp_path / 'empty'} (--data-dir): missing train-images-idx3-ubyte.gz" in line for line in rest)
    assert any("apt-get install dataset-fashion-mnist" in line for line in rest)
    for library_word in ("data_dir", "download=False", "download=True"):
        assert library_word not in err
    status, _, err = run(["train", "--no-download", "--out", tmp_path / "n.safetensors"])
    assert "--no-download" in err and "download=False" not in err


def test_bad_checkpoints_are_one_line(tmp_path, trained):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x80\x04not a checkpoint at all")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(trained[2].read_bytes()[:5000])
    for path, fragment in ((tmp_path / "missing.safetensors", "does not exist"), (garbage, "checkpoint"),
                           (truncated, "truncated")):
        for command in (["summary", path], ["evaluate", path, "--no-download"], ["predict", path, "x.npy"]):
            status, _, err = run(command)
            _assert_one_line_error(status, err, 1, fragment)


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not valid JSON"),
    ('{"layers": []}', "at least one layer"),
    ('{"layers": [{"class": "Warp", "config": {}}]}', "unknown layer class 'Warp'"),
    ('{"layers": [{"class": "Dense", "config": {"units": 3}}]}', "units"),
    ('{"layers": [{"class": "Reshape", "config": {"shape": [5, -1]}}]}', "does not fit"),
    ('{"layers": [{"class": "Dense", "config": {"num_out": 10}}]}', "(28, 28, 10) per image"),  # Dense: last axis
    ('{"layers": [{"class": "Flatten"}, {"class": "Dense", "config": {"num_out": 3}}]}', "one score per class"),
])
def test_bad_model_specs_are_one_line(tmp_path, content, fragment):
    make_dataset(tmp_path / "data", n_train=20, n_test=5)
    spec = tmp_path / "spec.json"
    spec.write_text(content)
    status, _, err = run(train_args(tmp_path / "data", tmp_path / "m.safetensors", "--model", spec))
    _assert_one_line_error(status, err, 1, fragment)


def test_other_usage_errors_are_one_line(tmp_path, trained):
    root, _, ckpt, _, _ = trained
    data_dir = root / "data"
    cases = [
        (train_args(data_dir, tmp_path / "m.safetensors", "--model", "resnet"), "'mlp' or a JSON spec file"),
        (train_args(data_dir, tmp_path / "nodir" / "m.safetensors"), "does not exist"),
        (train_args(data_dir, tmp_path / "m.safetensors", "--resume", ckpt, "--lr", 0.1), "--lr cannot"),
        (train_args(data_dir, tmp_path / "m.safetensors", "--resume", ckpt, "--epochs", 2), "already trained 2"),
        (["predict", ckpt, tmp_path / "image.jpg"], "expected a .npy or .png file"),
        (["predict", ckpt, tmp_path / "missing.npy"], "No such file"),
    ]
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((3, 32, 32), dtype=np.uint8))
    cases.append((["predict", ckpt, wrong], "does not fit the model's input (28, 28, 1)"))
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases.append((["predict", ckpt, pickled], "not a plain .npy array"))
    bad_png = tmp_path / "bad.png"
    bad_png.write_bytes(encode_png(np.zeros((28, 28, 3), np.uint8), color=3))
    cases.append((["predict", ckpt, bad_png], "palette PNGs are not supported"))
    for argv, fragment in cases:
        status, _, err = run(argv)
        _assert_one_line_error(status, err, 1, fragment)


# ------------------------------------------------------------------------ PNG reader
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (4, 3, 2, 1, 0)])
def test_read_png_every_filter_and_colour_type(channels, filters):
    image = np.random.default_rng(channels).integers(0, 256, (7, 5, channels), dtype=np.uint8)
    image[2] = 255  # saturated rows exercise the mod-256 wrap of every filter
    decoded = read_png(encode_png(image, filters=filters))
    assert decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded, image)


def test_read_png_split_idat_ancillary_chunks_and_palette_hint(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    png = encode_png(image, chunks_after_ihdr=((b"tEXt", b"Comment\x00hi"), (b"PLTE", b"\x00\x00\x00")))
    np.testing.assert_array_equal(read_png(png), image)
    # the same image with its compressed data spread over three IDAT chunks
    start = png.index(b"IDAT") - 4
    length = struct.unpack(">I", png[start:start + 4])[0]
    body = png[start + 8:start + 8 + length]

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    split = png[:start] + b"".join(chunk(b"IDAT", body[i:i + 7]) for i in range(0, len(body), 7)) \
        + png[start + 12 + length:]
    path = tmp_path / "split.png"
    path.write_bytes(split)
    np.testing.assert_array_equal(read_png(path), image)


def _corrupt_crc(png: bytes) -> bytes:
    return png[:29] + bytes([png[29] ^ 1]) + png[30:]  # last CRC byte of IHDR


@pytest.mark.parametrize("make, fragment", [
    (lambda img: b"GIF89a" + encode_png(img)[6:], "not a PNG file"),
    (lambda img: encode_png(img)[:40], "truncated"),
    (lambda img: _corrupt_crc(encode_png(img)), "CRC"),
    (lambda img: encode_png(img, color=3), "palette"),
    (lambda img: encode_png(img, depth=16), "16-bit"),
    (lambda img: encode_png(img, interlace=1), "interlaced"),
    (lambda img: encode_png(img, filters=(5,)), "unknown filter type 5"),
    (lambda img: encode_png(img, chunks_after_ihdr=((b"ZZZZ", b""),)), "unsupported critical chunk"),
    (lambda img: encode_png(img).replace(b"IHDR\x00\x00\x00\x04", b"IHDR\x00\x00\x00\x05"), "CRC"),
])
def test_read_png_rejects_bad_files_clearly(make, fragment):
    image = np.zeros((4, 4, 1), dtype=np.uint8)
    with pytest.raises(PNGFormatError, match=re.escape(fragment)):
        read_png(make(image))


def test_read_png_size_mismatch_and_bomb():
    def with_idat(width, height, raw):
        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

    with pytest.raises(PNGFormatError, match="only 3 bytes"):
        read_png(with_idat(2, 2, b"\x00\x01\x02"))
    with pytest.raises(PNGFormatError, match="more than"):  # 10 MB of zeros claimed as a 2x2 image
        read_png(with_idat(2, 2, bytes(10_000_000)))


# ----------------------------------------------------------------------- end to end
@pytest.mark.slow
@pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_end_to_end_on_fashion_mnist(tmp_path):
    ckpt = tmp_path / "mlp.safetensors"
    status, out, err = run(["train", "--data-dir", FASHION_DIR, "--no-download", "--epochs", 1, "--out", ckpt])
    assert status == 0, err
    assert "54000 training / 6000 validation / 10000 test" in out
    train_figures = EVAL_RE.search(out.split("test:")[1])
    assert float(train_figures.group(2)) > 0.75  # one epoch of the seed's MLP: about 0.82
    status, eval_out, err = run(["evaluate", ckpt, "--data-dir", FASHION_DIR, "--no-download"])
    assert status == 0, err
    assert EVAL_RE.search(eval_out).group(0) == train_figures.group(0)


def test_option_types_say_what_they_expected():
    import argparse

    from nnframe import cli_types

    assert cli_types.positive_int("3") == 3 and cli_types.port("0") == 0 and cli_types.fraction("0.5") == 0.5
    assert cli_types.milliseconds("1000") == 1000.0 and cli_types.non_negative_int("0") == 0
    for parse, bad, expected in [(cli_types.positive_int, "0", "a positive integer"),
                                 (cli_types.positive_int, "x", "a positive integer"),
                                 (cli_types.positive_float, "0", "a positive number"),
                                 (cli_types.positive_float, "inf", "a positive number"),
                                 (cli_types.positive_float, "nan", "a positive number"),
                                 (cli_types.fraction, "1", "a number in [0, 1)"),
                                 (cli_types.port, "65536", "a port number 0..65535"),
                                 (cli_types.milliseconds, "-1", "milliseconds 0..1000"),
                                 (cli_types.non_negative_int, "-1", "a non-negative integer")]:
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected {re.escape(expected)}, got '{re.escape(bad)}'"):
            parse(bad)
