"""nnframe.threads: batch slices, the thread pool, and layers split between threads."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from nnframe import layer, threads
from nnframe.layer import conv_ops as conv_module
from nnframe.layer import norm as norm_module
from nnframe.net import Net


@pytest.fixture
def split_everything(monkeypatch):
    """Three threads, and any work at all is split (tests use small arrays)."""
    monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_SLICE", 1)
    threads.set_num_threads(3)
    yield
    threads.set_num_threads(None)


def test_batch_slices_cover_the_batch_in_order_with_sizes_within_one():
    slices = threads.batch_slices(10, elements_per_item=1 << 20, num_threads=3)
    assert slices == [slice(0, 3), slice(3, 6), slice(6, 10)]
    assert threads.batch_slices(2, elements_per_item=1 << 20, num_threads=4) == [slice(0, 1), slice(1, 2)]
    small = threads.batch_slices(10, elements_per_item=1, num_threads=4)
    assert small == [slice(0, 10)] and not small.large  # too little work to split, or to hold the BLAS
    assert threads.batch_slices(10, elements_per_item=1 << 20, num_threads=1).large
    assert threads.batch_slices(0, elements_per_item=10, num_threads=4) == [slice(0, 0)]
    # exactly two slices' worth of work: two slices, not three
    assert len(threads.batch_slices(4, threads.MIN_ELEMENTS_PER_SLICE // 2, num_threads=3)) == 2


def test_thread_count_comes_from_the_setting_then_the_environment(monkeypatch):
    monkeypatch.setenv("NNFRAME_NUM_THREADS", "3")
    threads.set_num_threads(None)  # read the environment again
    assert threads.get_num_threads() == 3
    monkeypatch.setenv("NNFRAME_NUM_THREADS", "4")
    assert threads.get_num_threads() == 3  # read once, not on every call
    monkeypatch.setenv("NNFRAME_NUM_THREADS", "three")
    threads.set_num_threads(None)
    with pytest.raises(ValueError, match=r"NNFRAME_NUM_THREADS must be a positive integer, got 'three'"):
        threads.get_num_threads()
    threads.set_num_threads(5)
    try:
        assert threads.get_num_threads() == 5
    finally:
        threads.set_num_threads(None)
    monkeypatch.delenv("NNFRAME_NUM_THREADS")
    threads.set_num_threads(None)
    assert threads.get_num_threads() >= 1
    for bad in (0, -1, 2.0, True, "2"):
        with pytest.raises(ValueError, match=r"set_num_threads: count must be a positive integer, got"):
            threads.set_num_threads(bad)
    with pytest.raises(ValueError, match=r"num_threads must be a positive integer, got 0"):
        threads.batch_slices(4, 1, num_threads=0)


def test_map_slices_runs_slices_on_other_threads_and_keeps_slice_order():
    seen = {}

    def work(part):
        seen[part.start] = threading.current_thread().name
        return part.start

    slices = threads.batch_slices(8, 1 << 20, num_threads=4)
    assert threads.map_slices(work, slices) == [0, 2, 4, 6]
    assert seen[0] == threading.current_thread().name  # the caller takes the first slice
    assert all(name.startswith("nnframe") for start, name in seen.items() if start)


def test_map_slices_waits_for_every_slice_before_raising_and_restores_the_blas():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    finished = []

    def work(part):
        if part.start == 0:
            raise RuntimeError("slice 0 failed")
        threading.Event().wait(0.05)
        finished.append(part.start)
        return part.start

    with pytest.raises(RuntimeError, match="slice 0 failed"):
        threads.map_slices(work, [slice(0, 1), slice(1, 2), slice(2, 3)])
    assert sorted(finished) == [1, 2]  # the other slices ran to the end
    after = [info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"]
    assert after == before


def test_blas_is_held_to_one_thread_inside_slices_even_a_single_one():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads(_part):
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    inside = threads.map_slices(blas_threads, [slice(0, 1), slice(1, 2)])
    assert all(count == 1 for counts in inside for count in counts)
    threads.set_num_threads(2)
    try:
        assert threads.map_slices(blas_threads, [slice(0, 2)]) == [[1] * len(inside[0])]
        small = threads.batch_slices(2, 1)  # too small for a multi-threaded BLAS call: left alone
        assert threads.map_slices(blas_threads, small) == [blas_threads(None)]
        threads.set_num_threads(1)  # one thread: nnframe leaves the BLAS as it is
        assert threads.map_slices(blas_threads, [slice(0, 2)]) == [blas_threads(None)]
    finally:
        threads.set_num_threads(None)


def test_nested_calls_run_in_the_calling_slice(split_everything):
    def inner(part):
        return threads.batch_slices(6, 1 << 20)

    assert threads.map_slices(inner, threads.batch_slices(6, 1 << 20)) == [[slice(0, 6)]] * 3


def test_sum_parts_adds_in_order_without_changing_the_first_part():
    a, b = np.ones(3), np.arange(3.0)
    total = threads.sum_parts([a, b])
    np.testing.assert_array_equal(total, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(a, np.ones(3))
    assert threads.sum_parts([a]) is a
    with pytest.raises(ValueError, match="no parts"):
        threads.sum_parts([])


def _child_maps(queue):
    queue.put(threads.map_slices(lambda part: part.start, [slice(0, 1), slice(1, 2)]))


def test_a_forked_child_gets_a_working_pool():
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    threads.map_slices(lambda part: part.start, [slice(0, 1), slice(1, 2)])  # the parent's pool exists
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_maps, args=(queue,))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == [0, 1]


def _net_cases():
    return {
        "conv-im2col": (lambda: Net([layer.Conv2D(20, 3, padding=1)]), (5, 6, 6, 8)),
        "conv-planes-stride2": (lambda: Net([layer.Conv2D(4, 3, stride=2, padding=1)]), (5, 7, 7, 3)),
        "conv-col2im-widening": (lambda: Net([layer.Conv2D(24, 3, padding=1, bias=False)]), (4, 5, 5, 8)),
        "conv1d": (lambda: Net([layer.Conv1D(20, 3, padding=1)]), (5, 9, 8)),
        "conv-banded-one-block": (lambda: Net([layer.Conv2D(4, 3)]), (5, 6, 6, 2)),
        "bn-relu-pool": (lambda: Net([layer.BatchNorm(), layer.ReLU(), layer.MaxPool2D(2)]), (5, 4, 6, 3)),
        "dense": (lambda: Net([layer.Dense(7), layer.ReLU(), layer.Dense(3)]), (6, 5)),
        "dense-wide": (lambda: Net([layer.Dense(2050), layer.ReLU(), layer.Dense(3)]), (6, 5)),  # rows split
    }


@pytest.mark.parametrize("case", sorted(_net_cases()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("training", [True, False])
def test_layers_split_between_threads_match_one_thread(case, dtype, training, monkeypatch):
    make, shape = _net_cases()[case]
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape).astype(dtype)
    results = []
    for split in (False, True):
        if split:  # and in small blocks within each slice (BatchNorm's element-wise passes, Conv2D's im2col)
            monkeypatch.setattr(threads, "MIN_ELEMENTS_PER_SLICE", 1)
            monkeypatch.setattr(norm_module, "_BLOCK_ELEMENTS", 7)
            monkeypatch.setattr(conv_module, "_BLOCK_BYTES", 1)
            threads.set_num_threads(3)
        try:
            net = Net(make().layers, dtype=dtype)
            net.build(shape)
            net.is_training = training
            for lay in net.layers:  # the same parameters and statistics in both runs
                for name, value in {**lay.params, **lay.nt_params}.items():
                    value[...] = np.abs(np.random.default_rng(len(name)).normal(size=value.shape)) + 0.5
            y = net.forward(x)
            g = np.random.default_rng(4).normal(size=y.shape).astype(dtype)
            dx = net.backward(g)
            grads = {f"{i}.{k}": v.copy() for i, lay in enumerate(net.layers) for k, v in lay.grads.items()}
            results.append((y, dx, grads))
        finally:
            threads.set_num_threads(None)
    (y1, dx1, g1), (y2, dx2, g2) = results
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y2, y1, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx2, dx1, rtol=tol, atol=tol)
    assert g1.keys() == g2.keys()
    for name in g1:
        np.testing.assert_allclose(g2[name], g1[name], rtol=tol, atol=tol, err_msg=name)
