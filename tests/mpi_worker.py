"""Run by tests/test_distributed.py under ``mpirun -n 2``: distributed fits whose results rank 0 writes.

``python mpi_worker.py train OUT_DIR``: for float64 and float32, a small MLP with Dropout
fitted with batch 64 per rank for 3 epochs (a checkpoint per epoch), then a fresh model
resumed from the epoch-2 checkpoint up to epoch 3. Rank 0 writes ``{dtype}-full.npz`` and
``{dtype}-resumed.npz`` (flat parameters) and ``{dtype}.json`` (history, checksum, counts).

``python mpi_worker.py raise OUT_DIR`` / ``kill OUT_DIR``: rank 1 raises (or SIGKILLs
itself) in its second step; the others must not hang.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

import nnframe
from nnframe import backend, callbacks, distributed, layer, loss, optimizer
from nnframe.model import Model
from nnframe.net import Net

N_SAMPLES = 389  # three global batches of 128 and a last one of 5 (split 3 + 2)
DROPOUT_SEED = 5
SHUFFLE_SEED = 7


def data(dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training and validation data, the same in every process."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N_SAMPLES + 50, 12)).astype(dtype)
    y = rng.integers(0, 3, N_SAMPLES + 50)
    return x[:N_SAMPLES], y[:N_SAMPLES], x[N_SAMPLES:], y[N_SAMPLES:]


def build(dtype: str, dropout: type = layer.Dropout, batchnorm: bool = False, **distributed_options) -> Model:
    """The model (weights from seed 3), SGD with momentum: 12 -> 16 -> ReLU -> Dropout(0.25) -> 3,
    or with ``batchnorm`` 12 -> 16 -> BatchNorm -> ReLU -> 3. ``distributed_options`` (given
    or not) wrap the optimizer in a DistributedOptimizer with them."""
    backend.set_default_dtype(dtype)
    nnframe.set_seed(3)
    middle = layer.BatchNorm() if batchnorm else dropout(0.25, rng=DROPOUT_SEED)
    layers = [layer.Dense(16), middle, layer.ReLU(), layer.Dense(3)] if batchnorm else \
        [layer.Dense(16), layer.ReLU(), middle, layer.Dense(3)]
    opt = optimizer.SGD(0.05, momentum=0.9)
    if distributed_options:
        opt = distributed.DistributedOptimizer(opt, **distributed_options)
    return Model(Net(layers), loss.SoftmaxCrossEntropy(), opt)


def train(out: Path) -> None:
    rank = distributed.world().Get_rank()
    for dtype in ("float64", "float32"):
        x, y, x_val, y_val = data(dtype)
        ckpt = out / f"{dtype}-epoch{{epoch}}.safetensors"
        model = build(dtype)
        history = model.fit(x, y, epochs=3, batch_size=64, rng=SHUFFLE_SEED, validation_data=(x_val, y_val),
                            callbacks=[callbacks.ModelCheckpoint(ckpt)], verbose=0, distributed=True)
        full = model.net.params.flat.copy()
        checksum = distributed.model_checksum(model)
        resumed = build(dtype)
        resumed.fit(x, y, epochs=3, batch_size=64, rng=SHUFFLE_SEED, validation_data=(x_val, y_val), verbose=0,
                    resume_from=out / f"{dtype}-epoch2.safetensors", distributed=True)
        evaluated = model.evaluate(x_val, y_val)
        if dtype == "float64":  # the options: overlapped buckets, synchronised BatchNorm
            overlapped = build(dtype, overlap=True, bucket_mb=1e-4)
            overlapped.fit(x, y, epochs=3, batch_size=64, rng=SHUFFLE_SEED, verbose=0)
            synced = build(dtype, batchnorm=True, sync_batchnorm=True)
            synced.fit(x, y, epochs=2, batch_size=64, rng=SHUFFLE_SEED, verbose=0)
            if rank == 0:
                np.savez(out / "overlap.npz", params=overlapped.net.params.flat,
                         buckets=len(overlapped.optimizer._overlap.buckets))
                np.savez(out / "syncbn.npz", **synced.net.state_dict())
        if rank == 0:
            np.savez(out / f"{dtype}-full.npz", params=full)
            np.savez(out / f"{dtype}-resumed.npz", params=resumed.net.params.flat)
            (out / f"{dtype}.json").write_text(json.dumps({
                "history": history.history, "checksum": checksum, "evaluate": evaluated,
                "comm_calls": model.optimizer.comm_calls, "size": model.optimizer.size}))


def checks(out: Path) -> None:
    """The helpers on their own: by-hand steps, checksum disagreement, BatchNorm buffers without sync."""
    comm = distributed.world()
    rank = comm.Get_rank()
    x, y, _, _ = data("float64")
    found: dict = {}
    # the seed's three calls by hand == fit without shuffling, one epoch
    fitted = build("float64", abort_on_error=False)
    fitted.fit(x[:384], y[:384], epochs=1, batch_size=64, shuffle=False, rng=0, verbose=0)  # rng: no global draw
    by_hand = build("float64", abort_on_error=False)  # the same initial weights (seed 3)
    by_hand.net.build((1, 12))
    distributed.broadcast_model(by_hand)
    by_hand.net.train()
    io_gens = by_hand.net.layers[2].rng
    seed = int(io_gens.integers(2**63 - 1))  # fit's per-epoch dropout stream for this rank
    io_gens.bit_generator.state = distributed.rank_generator(seed, rank, like=io_gens).bit_generator.state
    for start in range(0, 384, 128):
        xb, yb = x[start:start + 128][rank::2], y[start:start + 128][rank::2]
        _, step = by_hand.backward(by_hand.forward(xb), yb)
        by_hand.apply_grad(step)
    found["by_hand_max_diff"] = float(np.abs(by_hand.net.params.flat - fitted.net.params.flat).max())
    # a rank whose weights differ is named
    if rank == 1:
        by_hand.net.params.flat[0] += 1.0
    try:
        distributed.check_same_everywhere(distributed.model_checksum(by_hand), "the checksum")
        found["mismatch"] = None
    except RuntimeError as exc:
        found["mismatch"] = str(exc)
    # BatchNorm without sync: local statistics, running buffers averaged at each epoch end
    local_bn = build("float64", batchnorm=True, abort_on_error=False)
    local_bn.fit(x, y, epochs=1, batch_size=64, rng=SHUFFLE_SEED, verbose=0)
    running = local_bn.net.state_dict()["1.running_mean"]
    found["bn_buffers_equal"] = all(np.array_equal(r, running) for r in comm.allgather(running))
    if rank == 0:
        (out / "checks.json").write_text(json.dumps(found))
        np.save(out / "bn_local_running_mean.npy", running)


class FailOnRankOne(callbacks.Callback):
    """Rank 1 raises (or kills itself) before its second step."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def on_batch_begin(self, batch, logs=None):
        if batch == 1 and distributed.world().Get_rank() == 1:
            if self.how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("rank 1 gives up on purpose")


def fail(how: str) -> None:
    x, y, _, _ = data("float32")
    model = build("float32")
    model.fit(x, y, epochs=2, batch_size=64, callbacks=[FailOnRankOne(how)], verbose=0, distributed=True)


if __name__ == "__main__":
    mode, out_dir = sys.argv[1], Path(sys.argv[2])
    if mode == "train":
        train(out_dir)
        checks(out_dir)
    else:
        fail(mode)
