"""Smoke tests of the benchmark suite (``python -m benchmarks mlp``): structure, not speed.

The suite runs on a few hundred synthetic samples for one short epoch; the tests check
that the report has every key with sensible values and that the hand-written NumPy
loop (the suite's floor) trains exactly as nnframe does. No timed asserts.
"""

from __future__ import annotations

import gzip
import json
import math
import struct

import numpy as np
import pytest

from benchmarks import common, mlp
from benchmarks.__main__ import _threads_from_argv
from benchmarks.__main__ import main as bench_main


def _tiny_data(n_train: int = 512, n_test: int = 300) -> mlp.Data:
    return mlp.load_data(synthetic=True, train_samples=n_train, test_samples=n_test, seed=3)


def _torch_threads() -> int:
    # the suite calls torch.set_num_threads; keep the test process's setting as it is
    torch = pytest.importorskip("torch")
    return torch.get_num_threads()


def test_flops_count_matches_hand_count():
    # forward + weight gradients: 2 * 128 * 186200 each; input gradients skip layer 0: 2 * 128 * 29400
    assert mlp.train_flops_per_step(128) == 2 * 128 * (2 * 186200 + 29400)
    assert mlp.inference_flops(10) == 2 * 10 * 186200
    epoch = (60000 // 128) * mlp.train_flops_per_step(128)
    assert 48.0e9 < epoch < 48.3e9  # the "48 GFLOP per epoch"


def test_read_idx_scales_and_limits(tmp_path):
    images = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3)
    path = tmp_path / "images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 5, 2, 3) + images.tobytes())
    np.testing.assert_array_equal(mlp.read_idx(str(path)), images)
    scaled = mlp.read_idx(str(path), limit=4, scale=True)
    assert scaled.dtype == np.float32 and scaled.shape == (4, 2, 3)
    np.testing.assert_allclose(scaled, images[:4] / 255.0, rtol=1e-6)
    bad = tmp_path / "bad.gz"
    with gzip.open(bad, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x0D, 1) + struct.pack(">I", 1) + b"\0\0\0\0")
    with pytest.raises(ValueError, match="unsigned-byte IDX"):
        mlp.read_idx(str(bad))


def test_synthetic_data_has_fashion_mnist_shapes():
    data = _tiny_data(256, 64)
    assert data.x_train.shape == (256, 784) and data.x_train.dtype == np.float32
    assert data.onehot_train.shape == (256, 10) and data.onehot_train.dtype == np.float64
    np.testing.assert_array_equal(data.onehot_train.argmax(axis=1), data.labels_train)
    assert data.x_test.shape == (64, 784) and data.labels_test.shape == (64,)


def test_numpy_loop_trains_like_nnframe():
    # same start, same batches: the floor must do the same maths as the framework it bounds
    data = _tiny_data(128 * 3)
    weights = mlp.initial_weights(5)
    ours = mlp.NnframeTrainer(weights, lr=1e-3)
    floor = mlp.NumpyTrainer(weights, lr=1e-3)
    loss_ours = ours.train_epoch(data, 128)
    loss_floor = floor.train_epoch(data, 128)
    assert math.isclose(loss_ours, loss_floor, rel_tol=1e-5)
    # Adam moves each value by about lr per step whatever the gradient's size, so float32
    # rounding in tiny gradients shows up at ~1% of a step: compare to 3% of the 3e-3 moved
    for i, (w, b) in enumerate(zip(floor.w, floor.b, strict=True)):
        np.testing.assert_allclose(ours.model.net.params[f"{2 * i}.w"], w, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ours.model.net.params[f"{2 * i}.b"], b, rtol=1e-4, atol=1e-4)
    outs = [o.copy() for o in floor.predict(data.x_test, 128)]
    np.testing.assert_allclose(np.concatenate(outs), np.concatenate(ours.predict(data.x_test, 128)),
                               rtol=1e-4, atol=1e-5)


def test_torch_trainer_matches_numpy_loop():
    threads = _torch_threads()
    data = _tiny_data(128 * 2)
    weights = mlp.initial_weights(6)
    torch_loss = mlp.TorchTrainer(weights, lr=1e-3, threads=threads).train_epoch(data, 128)
    numpy_loss = mlp.NumpyTrainer(weights, lr=1e-3).train_epoch(data, 128)
    assert math.isclose(torch_loss, numpy_loss, rel_tol=1e-4)


def _assert_positive(value):
    assert isinstance(value, float) and math.isfinite(value) and value > 0, value


def test_suite_report_structure():
    threads = _torch_threads()
    config = mlp.Config(
        epochs=1, threads=threads, inference_batch=128, inference_passes=1,
        warmup_steps=10,  # 10 batches of 128 > 384 samples: the warm-up stops at the data's end
        synthetic=True, train_samples=384, test_samples=200, rss=False, import_repeats=0,
        sgemm=False, gap_s=0.0,
    )
    report = mlp.run_suite(config, log=lambda *a, **k: None)
    json.loads(json.dumps(report))  # JSON-serialisable as written by --json
    assert set(report["frameworks"]) == {"nnframe", "pytorch", "pytorch_fused", "numpy"}
    for name, r in report["frameworks"].items():
        for key in ("median_epoch_s", "train_samples_per_s", "train_gflops", "median_inference_s",
                    "inference_samples_per_s", "inference_gflops"):
            _assert_positive(r[key])
        assert len(r["epoch_seconds"]) == 1 and len(r["inference_seconds"]) == 1, name
        assert 0.0 <= r["test_accuracy"] <= 1.0 and math.isfinite(r["final_loss"])
    assert report["data"]["steps_per_epoch"] == 3
    assert report["flops_per_epoch"] == 3 * mlp.train_flops_per_step(128)
    for key in ("epoch_nnframe_over_pytorch", "epoch_nnframe_over_pytorch_fused", "epoch_nnframe_over_numpy",
                "inference_nnframe_over_pytorch"):
        _assert_positive(report["ratios"][key])
        spread = report["ratio_ranges"][key]
        assert spread["min"] <= spread["median"] == report["ratios"][key] <= spread["max"]
    assert report["ratios"]["rss_nnframe_over_pytorch"] is None  # rss=False
    assert set(report["goals"]) == {g[0] for g in mlp.GOALS}
    assert report["goals"]["import_time"]["met"] is None
    assert "blas" in report and "OPENBLAS_CORETYPE" in report["blas"]
    text = mlp.format_report(report)
    for name in ("nnframe", "pytorch", "numpy", "s/epoch"):
        assert name in text
    for key, goal in report["goals"].items():  # each goal's verdict is printed, whichever it is
        verdict = "n/a" if goal["met"] is None else ("MET" if goal["met"] else "MISSED")
        assert any(line.startswith(verdict) for line in text.splitlines()), key


def test_peak_rss_child_and_cli_json(tmp_path, monkeypatch):
    # the numpy-only child: what the suite runs once per framework for peak RSS; it must run
    # with the machine's OpenBLAS overrides removed, and say so
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    child = common.run_json_child([
        "mlp", "--only", "numpy", "--synthetic", "--train-samples", "256", "--test-samples", "100",
        "--epochs", "1", "--warmup-steps", "1", "--inference-batch", "64", "--threads", "1", "--quiet",
        "--json", str(tmp_path / "child.json"),
    ])
    assert list(child["frameworks"]) == ["numpy"]
    _assert_positive(child["rss_mb"]["this_process"])
    assert child["rss_mb"]["this_process"] >= child["rss_mb"]["after_data"] > 0
    assert "import_seconds" not in child and "sgemm" not in child  # a single --only skips them
    assert json.loads((tmp_path / "child.json").read_text())["frameworks"]["numpy"]["median_epoch_s"] > 0
    assert child["blas"]["cleared_overrides"] == {"OPENBLAS_CORETYPE": "Haswell"}
    assert child["blas"]["OPENBLAS_CORETYPE"] is None and child["blas"]["corename"]


def test_measurement_helpers():
    (result,) = common.sgemm_gflops([(8, 16, 4, True)], samples=2, sample_seconds=0.001)
    _assert_positive(result["median_gflops"])
    assert result["best_gflops"] >= result["median_gflops"]
    times = common.import_seconds("json", repeats=1)
    assert len(times) == 1 and times[0] >= 0.0
    _assert_positive(common.peak_rss_mb())
    info = common.blas_info()
    assert info["numpy"] == np.__version__


def test_format_table_aligns_columns():
    text = common.format_table(["name", "value"], [["a", 1.5], ["longer", 1234.0], ["c", None]])
    lines = text.splitlines()
    assert len({len(line) for line in lines[:2]}) == 1  # header as wide as the rule
    assert lines[2].endswith("1.500") and lines[3].endswith("1,234") and lines[4].endswith("-")


def test_write_json_is_atomic_and_readable(tmp_path):
    path = tmp_path / "r.json"
    common.write_json(str(path), {"a": [1, 2.5]})
    assert json.loads(path.read_text()) == {"a": [1, 2.5]}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_entry_point_dispatch(capsys):
    assert _threads_from_argv(["--epochs", "2", "--threads", "3"]) == 3
    assert _threads_from_argv(["--threads=4"]) == 4
    assert _threads_from_argv([]) == common.cpu_count()
    assert bench_main(["no-such-suite"]) == 2
    assert "unknown suite" in capsys.readouterr().err
    assert bench_main(["--help"]) == 0
    assert "mlp" in capsys.readouterr().out
    assert bench_main(["--retain-freed-memory", "--keep-blas-env", "no-such-suite"]) == 2  # leading flags, any order
    assert "unknown suite 'no-such-suite'" in capsys.readouterr().err


@pytest.mark.parametrize("retained, text", [(True, "glibc malloc keeps freed memory"), (None, "malloc: default"),
                                            (False, "malloc: not glibc")])
def test_blas_line_says_what_malloc_does(monkeypatch, retained, text):
    monkeypatch.setattr(common, "MALLOC_RETAINED", retained)
    assert text in common.blas_line()


@pytest.mark.parametrize("applied, text", [("20", "OpenBLAS thread timeout 20"),
                                          (None, "not set by nnframe (NumPy loaded first)")])
def test_blas_line_says_which_thread_timeout_openblas_loaded_with(monkeypatch, applied, text):
    from nnframe import blas_env

    monkeypatch.setattr(blas_env, "applied", lambda: applied)
    assert text in common.blas_line()


def test_phase_profile_covers_every_phase():
    config = mlp.Config(synthetic=True)
    data = _tiny_data(128 * 2, 64)
    phases = mlp.phase_times(config, data, steps=2, rounds=1)
    assert set(phases) == {"nnframe", "numpy"}
    for times in phases.values():
        assert list(times) == list(mlp.PHASES)
        for value in times.values():
            _assert_positive(value)
    text = mlp.pyinstrument_text(config, data, steps=2)  # two steps may fall between samples
    assert text is None or "Recorded" in text


def test_compare_alternates_order_and_pauses_before_every_timed_call(monkeypatch):
    events = []
    monkeypatch.setattr(common, "idle", lambda seconds=common.IDLE_GAP_S: events.append(("idle", seconds)))
    calls = {name: (lambda name=name: events.append(("call", name)) or name) for name in ("a", "b", "c")}
    timings = common.compare(calls, rounds=3, gap_s=0.25, warmup=1)
    assert timings.orders == [["c", "b", "a"], ["a", "b", "c"], ["c", "b", "a"]]  # round 0 is the warm-up
    assert events[0::2] == [("idle", 0.25)] * 12  # a pause before each of the 4 x 3 calls
    assert [e[1] for e in events[1::2]] == ["a", "b", "c", "c", "b", "a", "a", "b", "c", "c", "b", "a"]
    assert all(len(v) == 3 for v in timings.wall.values()) and timings.results == {"a": "a", "b": "b", "c": "c"}


def test_ratio_is_taken_per_round():
    timings = common.Timings(["x", "y"], {"x": [2.0, 9.0, 3.0], "y": [1.0, 3.0, 2.0]},
                             {"x": [1.0] * 3, "y": [1.0] * 3}, [], 0.0)
    ratio = timings.ratio("x", "y")
    assert ratio["per_round"] == [2.0, 3.0, 1.5]
    assert (ratio["median"], ratio["min"], ratio["max"]) == (2.0, 1.5, 3.0)
    assert "MISSED (goal <= 1.2)" in common.format_ratio("x / y", ratio, goal=1.2)
    headers, rows = timings.table(unit=2.0)
    assert rows[0][:3] == ["x", 1.5, 1.0]
    with pytest.raises(KeyError, match="'z'"):
        timings.ratio("x", "z")
    with pytest.raises(ValueError, match="rounds must be >= 1, got 0"):
        common.compare({"x": lambda: None}, rounds=0)


def test_per_round_ratio_and_load_average_are_shared_by_the_suites():
    ratio = common.per_round_ratio([2.0, 9.0, 3.0], [1.0, 3.0, 2.0])
    assert ratio == {"median": 2.0, "min": 1.5, "max": 3.0, "per_round": [2.0, 3.0, 1.5]}
    with pytest.raises(ValueError, match="equally long, non-empty lists of seconds, got 2 and 1"):
        common.per_round_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="got 0 and 0"):
        common.per_round_ratio([], [])
    load = common.load_average()
    assert load == "?" or [float(v) >= 0 for v in load.split()] == [True] * 3


def test_mlp_batch_slices_drop_or_keep_the_last_partial_batch():
    assert mlp.batch_slices(10, 4, drop_last=True) == [slice(0, 4), slice(4, 8)]
    assert mlp.batch_slices(10, 4, drop_last=False) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    assert mlp.batch_slices(3, 4, drop_last=True) == []


def test_clear_blas_overrides_refuses_once_numpy_is_loaded(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    with pytest.raises(RuntimeError, match="before NumPy is imported"):
        common.clear_blas_overrides()
    assert common.alternating_order(["a", "b"], 1) == ["b", "a"]


def test_interference_times_every_gap():
    calls = []
    result = common.interference(lambda: calls.append(1), lambda: calls.append(2), gaps=(0.0, 0.01), repeats=2)
    assert set(result) == {0.0, 0.01} and calls == [1, 2] * 4
    assert all(r["best_s"] <= r["median_s"] for r in result.values())


def test_lenet_ratio_ranges_per_round():
    from benchmarks import lenet

    raw = {name: {"train_s": [2.0, 4.0], "infer_s": [1.0, 1.0], "infer_b1_s": [3.0, 1.0]}
           for name in ("nnframe", "pytorch", "pytorch_fused")}
    raw["pytorch"]["train_s"] = [4.0, 2.0]
    ranges = lenet.ratio_ranges(raw, [1])
    assert ranges["epoch_nnframe_over_pytorch"]["per_round"] == [0.5, 2.0]
    assert ranges["epoch_nnframe_over_pytorch_fused"]["median"] == 1.0
    assert set(ranges) == {"epoch_nnframe_over_pytorch", "epoch_nnframe_over_pytorch_fused",
                           "infer_b1000_nnframe_over_pytorch", "infer_b1_nnframe_over_pytorch"}


def test_cnn_suite_report(capsys):
    torch = pytest.importorskip("torch")
    from benchmarks import cnn

    threads = torch.get_num_threads()  # the suite sets it (to 1 here: fast on a loaded machine); restore it
    try:
        _run_cnn_suite(cnn, capsys)
    finally:
        torch.set_num_threads(threads)


def _run_cnn_suite(cnn, capsys):
    argv = ["--rounds", "2", "--steps", "1", "--samples", "8", "--batch", "4", "--gap", "0", "--profile",
            "--profile-steps", "1", "--threads", "1", "--data-dir", "/nonexistent"]
    assert cnn.main([*argv, "--quiet"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["data"].startswith("random images")
    assert set(report["timings"]["wall_s"]) == set(cnn.FRAMEWORKS)
    ratio = report["ratio_ranges"]["train_nnframe_over_pytorch"]
    assert len(ratio["per_round"]) == 2 and ratio["min"] <= ratio["median"] <= ratio["max"]
    layers = [row[0] for row in report["profile"]]
    assert layers[0] == "0.Conv2D" and layers[-1] == "whole step" and "15.Dense" in layers
    assert all(row[1] > 0 for row in report["profile"] if row[0].endswith("Conv2D"))
    infer = report["infer_ratio_ranges"]["infer_nnframe_over_pytorch"]
    assert len(infer["per_round"]) == 2 and "infer_nnframe_over_pytorch_fused" not in report["infer_ratio_ranges"]
    assert "train_numpy_products_over_pytorch" in report["ratio_ranges"]
    assert "infer_numpy_products_over_pytorch" in report["infer_ratio_ranges"]
    text = cnn.format_report(report)
    assert "train_nnframe_over_pytorch" in text and ("MET" in text or "MISSED" in text)
    assert "ms/batch" in text and "infer_nnframe_over_pytorch" in text


def test_cnn_reads_cifar_binary(tmp_path):
    from benchmarks import cnn

    records = np.zeros((3, 3073), dtype=np.uint8)
    records[:, 0] = [7, 1, 2]
    records[1, 1 + 1024 + 5] = 255  # image 1, green plane, pixel (0, 5)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    records.tofile(folder / "data_batch_1.bin")
    x, y, source = cnn.load_data(str(tmp_path), samples=2)
    assert x.shape == (2, 32, 32, 3) and x.dtype == np.float32 and y.tolist() == [7, 1]
    assert x[1, 0, 5, 1] == 1.0 and x.sum() == 1.0 and "CIFAR-10" in source


def test_cnn_resnet_block_nets_agree_in_shape():
    torch = pytest.importorskip("torch")
    from benchmarks import cnn

    x, y, source = cnn.random_data(cnn.INPUT_SHAPES["resnet-block"], 2)
    assert x.shape == (2, 16, 16, 64) and source.startswith("random")
    trainer = cnn.NnframeTrainer(0, 1e-3, "resnet-block")
    assert [type(lay).__name__ for lay in trainer.net.layers] == ["Residual", "ReLU", "GlobalAvgPool2D", "Dense"]
    assert trainer.model.forward(x).shape == (2, 10)
    with torch.no_grad():
        out = cnn.torch_net("resnet-block")(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    assert tuple(out.shape) == (2, 10) and len(cnn.torch_net("resnet-block")) == len(trainer.net.layers)


def test_cnn_product_floor_matches_the_nets():
    from benchmarks import cnn

    block = cnn.net_products("resnet-block", batch=4)
    assert [p.n for p in block["forward"]] == [64, 64, 10] and block["forward"][0].m == 4 * 16 * 16
    assert len(block["backward"]) == 1 + 2 + 2  # the first convolution needs no input gradient
    cifar = cnn.net_products("cifar", batch=4)
    assert [(p.m, p.k) for p in cifar["forward"]] == [(4 * 32 * 32, 27), (4 * 32 * 32, 288), (4 * 16 * 16, 288),
                                                      (4 * 16 * 16, 576), (4, 8 * 8 * 64)]
