"""nnframe.distributed: pure helpers in-process, and real ``mpirun -n 2`` runs checked against one process.

The MPI runs (tests/mpi_worker.py, ``nnframe train``) are few and small, each under a
timeout that kills the whole process group, so a hang fails the test instead of CI.
The pytest process itself never initialises MPI.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nnframe
from nnframe import backend, callbacks, distributed, layer, loss, optimizer
from nnframe.data import BatchIterator, write_idx
from nnframe.model import Model

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))
import mpi_worker  # noqa: E402

HAVE_MPI = shutil.which("mpirun") is not None and __import__("importlib").util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI, reason="needs mpirun (openmpi-bin) and mpi4py (nnframe[mpi])")
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-n", "2"]


def mpirun(args: list, timeout: float, cwd: Path | None = None) -> tuple[int, str, str, float]:
    """Run ``mpirun -n 2 args``; on timeout kill its process group and fail. ``(status, out, err, seconds)``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    start = time.monotonic()
    proc = subprocess.Popen([*MPIRUN, *[str(a) for a in args]], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"mpirun {args} hung for {timeout} s and was killed\nstdout:\n{out}\nstderr:\n{err}")
    return proc.returncode, out, err, time.monotonic() - start


# ------------------------------------------------------------------------ in-process helpers
def test_launched_world_size_reads_the_launchers_variables():
    assert distributed.launched_world_size({}) == 1
    assert distributed.launched_world_size({"OMPI_COMM_WORLD_SIZE": "4"}) == 4
    assert distributed.launched_world_size({"PMI_SIZE": "3"}) == 3
    with pytest.raises(ValueError, match="OMPI_COMM_WORLD_SIZE must be a positive integer, got 'x'"):
        distributed.launched_world_size({"OMPI_COMM_WORLD_SIZE": "x"})


def test_rank_generator_differs_by_rank_and_repeats_by_seed():
    a0, a1 = distributed.rank_generator(9, 0), distributed.rank_generator(9, 1)
    assert a0.random() != a1.random()
    assert distributed.rank_generator(9, 1).random() == distributed.rank_generator(9, 1).random()
    like = np.random.Generator(np.random.Philox(1))
    assert isinstance(distributed.rank_generator(9, 0, like=like).bit_generator, np.random.Philox)
    with pytest.raises(ValueError, match="rank must be a non-negative integer, got -1"):
        distributed.rank_generator(9, -1)


@pytest.mark.parametrize("n", [384, 389, 385])
def test_shards_cover_each_global_batch_of_one_process(n):
    """Ranks' rows of each step are disjoint and together one process's batch of size * b (same permutation)."""
    x = np.arange(n, dtype=np.float64)[:, None]
    size, b = 3, 32
    shards = [distributed.ShardedBatches(x, None, b, r, size, shuffle=True, rng=4, dtype=np.float64)
              for r in range(size)]
    plain = list(BatchIterator(x, None, b * size, shuffle=True, rng=4, dtype=np.float64))
    per_rank = [list(s) for s in shards]
    assert all(len(batches) == len(shards[0]) for batches in per_rank)
    skipped = 0 < n % (b * size) < size
    assert len(shards[0]) == len(plain) - skipped
    seen = []
    for step in range(len(shards[0])):
        rows = np.concatenate([per_rank[r][step][:, 0] for r in range(size)])
        assert sorted(rows) == sorted(plain[step][:, 0])
        assert max(len(per_rank[r][step]) for r in range(size)) - min(len(per_rank[r][step]) for r in range(size)) <= 1
        seen.extend(rows)
    assert len(seen) == len(set(seen)) == n - (n % (b * size) if skipped else 0)


def test_shard_range_splits_evenly():
    blocks = [distributed.shard_range(10, r, 4) for r in range(4)]
    assert [(s.start, s.stop) for s in blocks] == [(0, 2), (2, 5), (5, 7), (7, 10)]


class _FakeComm:
    def Get_rank(self):  # noqa: N802 - mpi4py's names
        return 0

    def Get_size(self):  # noqa: N802
        return 2


def test_distributed_optimizer_passes_state_through_and_checks_arguments():
    inner = optimizer.Adam(0.01)
    opt = distributed.DistributedOptimizer(inner, comm=_FakeComm(), abort_on_error=False)
    opt.lr = 0.5
    assert inner.lr == 0.5 and opt.get_config() == inner.get_config()
    assert opt.state_names == inner.state_names and "ranks=2" in repr(opt)
    assert opt.beta1 == inner.beta1  # anything else is the wrapped optimizer's
    with pytest.raises(TypeError, match="already distributed"):
        distributed.DistributedOptimizer(opt, comm=_FakeComm())
    with pytest.raises(TypeError, match="expected a nnframe optimizer, got str"):
        distributed.DistributedOptimizer("sgd", comm=_FakeComm())
    with pytest.raises(ValueError, match="bucket_mb must be a positive number or None, got 0"):
        distributed.DistributedOptimizer(inner, comm=_FakeComm(), bucket_mb=0)


def test_fit_distributed_false_refuses_a_distributed_optimizer():
    opt = distributed.DistributedOptimizer(optimizer.SGD(0.1), comm=_FakeComm(), abort_on_error=False)
    model = Model(nnframe.net.Net([layer.Dense(2)]), loss.MSE(), opt)
    with pytest.raises(ValueError, match="distributed=False"):
        model.fit(np.zeros((4, 3)), np.zeros((4, 2)), distributed=False, verbose=0)
    with pytest.raises(TypeError, match="distributed must be True, False or None, got 'yes'"):
        distributed.fit_session(model, "yes")


def test_import_nnframe_does_not_import_mpi4py():
    code = "import sys, nnframe, nnframe.model, nnframe.cli; print('mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "False"


# ------------------------------------------------------------------------ mpirun: training
class RankDropout(layer.Dropout):
    """One process's Dropout drawing, for the rows of each rank, what that rank's generator would draw."""

    size = 2

    def __init__(self, rate, rng=None, name=None):
        super().__init__(rate, rng=rng, name=name)
        self.gens = None

    def new_epoch(self):
        seed = int(self.rng.integers(2**63 - 1))
        self.gens = [distributed.rank_generator(seed, r, like=self.rng) for r in range(self.size)]

    def forward(self, inputs):
        if not self.is_training:
            self.ctx = {"mask": None}
            return inputs
        keep = 1.0 - self.rate
        mask = np.empty(inputs.shape, dtype=inputs.dtype)
        for r, gen in enumerate(self.gens):
            draws = gen.random(mask[r::self.size].shape, dtype=np.float32)
            mask[r::self.size] = (draws < keep).astype(inputs.dtype) / inputs.dtype.type(keep)
        self.ctx = {"mask": mask}
        return inputs * mask


class NewEpoch(callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.model.net.layers[2].new_epoch()


def one_process(dtype: str):
    """One process, batch 128, the same samples and masks as two ranks of batch 64."""
    x, y, x_val, y_val = mpi_worker.data(dtype)
    model = mpi_worker.build(dtype, dropout=RankDropout)
    history = model.fit(x, y, epochs=3, batch_size=128, rng=mpi_worker.SHUFFLE_SEED, validation_data=(x_val, y_val),
                        callbacks=[NewEpoch()], verbose=0)
    return model, history.history


@pytest.fixture(scope="module")
def mpi_training(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi")
    status, stdout, stderr, _ = mpirun([sys.executable, TESTS / "mpi_worker.py", "train", out], timeout=180)
    assert status == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    return out


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_two_ranks_of_64_equal_one_process_of_128_with_dropout(mpi_training, dtype, tol):
    old = backend.get_default_dtype()
    try:
        model, history = one_process(dtype)
    finally:
        backend.set_default_dtype(old)
    full = np.load(mpi_training / f"{dtype}-full.npz")["params"]
    report = json.loads((mpi_training / f"{dtype}.json").read_text())
    assert full.dtype == np.dtype(dtype)
    np.testing.assert_allclose(full, model.net.params.flat, rtol=0, atol=tol)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(report["history"][key], history[key], rtol=10 * tol, err_msg=key)
    assert report["comm_calls"] == 3 * 4 and report["size"] == 2  # 4 steps per epoch: 128, 128, 128, 5


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_resume_under_mpi_continues_bit_for_bit(mpi_training, dtype):
    full = np.load(mpi_training / f"{dtype}-full.npz")["params"]
    resumed = np.load(mpi_training / f"{dtype}-resumed.npz")["params"]
    np.testing.assert_array_equal(resumed, full)


@needs_mpi
@pytest.mark.slow
def test_helpers_under_mpi(mpi_training):
    found = json.loads((mpi_training / "checks.json").read_text())
    assert found["by_hand_max_diff"] < 1e-12  # forward/backward/apply_grad by hand == fit
    assert found["mismatch"] is not None and "differs from rank 0's on ranks [1]" in found["mismatch"]
    assert found["bn_buffers_equal"] is True
    synced = np.load(mpi_training / "syncbn.npz")
    assert not np.allclose(np.load(mpi_training / "bn_local_running_mean.npy"), 0)
    assert "1.running_mean" in synced.files


@needs_mpi
@pytest.mark.slow
def test_overlapped_buckets_give_the_same_weights(mpi_training):
    overlapped = np.load(mpi_training / "overlap.npz")
    assert int(overlapped["buckets"]) == 2  # one per Dense layer
    np.testing.assert_array_equal(overlapped["params"], np.load(mpi_training / "float64-full.npz")["params"])


@needs_mpi
@pytest.mark.slow
def test_sync_batchnorm_two_ranks_equal_one_process(mpi_training):
    """Statistics over both ranks' rows: weights and running statistics as one process of batch 128."""
    old = backend.get_default_dtype()
    try:
        model = mpi_worker.build("float64", batchnorm=True)
        x, y, _, _ = mpi_worker.data("float64")
        model.fit(x, y, epochs=2, batch_size=128, rng=mpi_worker.SHUFFLE_SEED, verbose=0)
    finally:
        backend.set_default_dtype(old)
    synced = np.load(mpi_training / "syncbn.npz")
    expected = model.net.state_dict()
    assert sorted(synced.files) == sorted(expected) and "1.running_var" in expected
    for name, value in expected.items():
        np.testing.assert_allclose(synced[name], value, rtol=0, atol=1e-12, err_msg=name)


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("how, message", [("raise", "rank 1 of 2 failed with RuntimeError: rank 1 gives up on purpose"),
                                          ("kill", "exited on signal 9")])
def test_a_failing_rank_ends_every_rank(tmp_path, how, message):
    status, stdout, stderr, seconds = mpirun([sys.executable, TESTS / "mpi_worker.py", how, tmp_path], timeout=60)
    assert status != 0
    assert message in stderr + stdout
    assert seconds < 60


# ------------------------------------------------------------------------ mpirun: the CLI
def _tiny_idx(directory: Path, n_train: int = 200, n_test: int = 40) -> None:
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 120, (n, 28, 28)).astype(np.uint8)
        images[np.arange(n), 2 + labels * 2, 5] += 100
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)


@needs_mpi
@pytest.mark.slow
def test_mpirun_nnframe_train_failure_ends_every_rank(tmp_path):
    status, out, err, seconds = mpirun([sys.executable, "-m", "nnframe", "train", "--resume", tmp_path / "missing",
                                        "--epochs", 1, "--out", tmp_path / "m.safetensors"], timeout=60, cwd=tmp_path)
    assert status != 0 and seconds < 60
    assert "nnframe.distributed: rank" in err and "of 2:" in err and "missing" in err, err


@needs_mpi
@pytest.mark.slow
def test_mpirun_nnframe_train_and_resume(tmp_path):
    _tiny_idx(tmp_path / "data")
    ckpt = tmp_path / "model.safetensors"
    common = [sys.executable, "-m", "nnframe", "train", "--data-dir", tmp_path / "data", "--no-download",
              "--batch-size", 16, "--out", ckpt]
    status, out, err, _ = mpirun([*common, "--epochs", 2], timeout=180, cwd=tmp_path)
    assert status == 0, err
    assert out.count("checkpoint: ") == 1 and out.count("test: ") == 1, out
    assert err.count("Epoch 1/2") >= 1 and "Epoch 3" not in err
    assert "data-parallel on 2 MPI ranks" in out
    first = nnframe.load(ckpt)
    assert first.epoch == 2
    status, out, err, _ = mpirun([*common, "--resume", ckpt, "--epochs", 3], timeout=180, cwd=tmp_path)
    assert status == 0, err
    assert out.count("checkpoint: ") == 1 and "trained 1 epoch(s)" in out, out
    assert nnframe.load(ckpt).epoch == 3


# ------------------------------------------------------------------------ the benchmark's arithmetic
def test_ring_allreduce_model_and_report_tables():
    from benchmarks import distributed as bench

    # 2 (p - 1) / p of the buffer per worker plus 2 (p - 1) latencies
    assert bench.ring_allreduce_seconds(1e6, 4, 1e9, 1e-5) == pytest.approx(1.5e-3 + 6e-5)
    run = {"params": 10, "buffer_bytes": 4_000_000, "steps": 10, "samples_per_s": 100.0, "step_ms": 10.0,
           "cpu_s": 0.1, "comm_ms": 1.0, "comm_share": 0.1, "compute_cpu_ms": 2.0, "bare_allreduce_ms": 0.5,
           "bucketed_1mib_ms": 0.6}
    results = {"mlp": {config: [dict(run, samples_per_s=100.0 * (i + 1))] for i, config in enumerate(bench.CONFIGS)}}
    text = bench.table(results)
    assert "2x1 overlap" in text and "2.00 (2.00-2.00)" in text  # 200 / 100 samples/s
    scaling = bench.scaling_table(results)
    # compute 2 ms, 4 MB at 10 Gbit/s: 2 * 7/8 * 4e6 / 1.25e9 + 14 * 20 us = 5.88 ms > 2 ms from p = 8
    assert "5.88" in scaling and " 8 " in scaling


def test_overlap_refuses_a_net_that_repeats_a_layer():
    from nnframe.distributed.overlap import Overlap

    shared = layer.Dense(3)
    net = nnframe.net.Net([shared, layer.ReLU(), shared])
    net.build((1, 3))
    opt = distributed.DistributedOptimizer(optimizer.SGD(0.1), comm=_FakeComm(), abort_on_error=False)
    with pytest.raises(ValueError, match="overlap=True needs a Net whose layers each appear once"):
        Overlap(net, opt, 1.0)
