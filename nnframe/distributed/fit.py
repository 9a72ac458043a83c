"""What ``Model.fit(..., distributed=True)`` adds to the loop: sync callbacks and the session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nnframe import callbacks as callbacks_mod
from nnframe import data as data_mod
from nnframe import io
from nnframe.distributed.optimizer import DistributedOptimizer
from nnframe.distributed.sharding import ShardedBatches, reduce_means, shard_range
from nnframe.distributed.state import average_buffers, broadcast_model
from nnframe.distributed.world import mpi, rank_generator
from nnframe.metrics import Metric

ROOT_ONLY_CALLBACKS = (callbacks_mod.ProgressBar, callbacks_mod.ModelCheckpoint, callbacks_mod.CSVLogger)

def evaluation_shard(optimizer: DistributedOptimizer, x: Any, y: Any) -> tuple[Any, Any]:
    """This rank's contiguous block of ``(x, y)`` (:func:`shard_range`), for ``evaluate``."""
    block = shard_range(len(x), optimizer.rank, optimizer.size)
    return x[block], (None if y is None else y[block])

class _EpochSync(callbacks_mod.Callback):
    """First callback of a distributed fit: per-rank dropout streams, averaged buffers, reduced epoch logs."""

    def __init__(self, optimizer: DistributedOptimizer) -> None:
        super().__init__()
        self.optimizer = optimizer
        self._shared: dict[str, dict[str, Any]] = {}
        self._samples = 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self._samples = 0
        self._shared = {}
        for key, gen in io.layer_generators(self.model.net).items():
            seed = int(gen.integers(2**63 - 1))
            self._shared[key] = gen.bit_generator.state
            gen.bit_generator.state = rank_generator(seed, self.optimizer.rank, like=gen).bit_generator.state

    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        self._samples += int(logs["size"])

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        for key, gen in io.layer_generators(self.model.net).items():
            gen.bit_generator.state = self._shared[key]
        average_buffers(self.model.net, self.optimizer.comm)
        trained = {k: v for k, v in (logs or {}).items() if not k.startswith("val_") and k != "lr"}
        if trained:  # this rank's epoch means over its samples -> the mean over every rank's samples
            totals = {key: Metric(key) for key in trained}
            for key, tracker in totals.items():
                tracker.update_value(float(trained[key]), self._samples)
            logs.update(reduce_means(totals, self.optimizer.comm))


class _StopSync(callbacks_mod.Callback):
    """Last callback of a distributed fit: a stop asked for on any rank stops every rank."""

    def __init__(self, optimizer: DistributedOptimizer) -> None:
        super().__init__()
        self.optimizer = optimizer

    def on_batch_end(self, batch: int, logs: Any = None) -> None:
        flag = np.array([1 if self.model.stop_training else 0], dtype=np.int32)
        self.optimizer.comm.Allreduce(mpi().IN_PLACE, flag, op=mpi().MAX)
        self.model.stop_training = bool(flag[0])

class FitSession:
    """What ``Model.fit(..., distributed=True)`` adds to the loop (built by :func:`fit_session`).

    Args:
        model: the model being fitted; its optimizer must be a :class:`DistributedOptimizer`.
    """

    def __init__(self, model: Any) -> None:
        if not isinstance(model.optimizer, DistributedOptimizer):
            raise TypeError("FitSession: the model's optimizer must be a DistributedOptimizer")
        self.model = model
        self.optimizer: DistributedOptimizer = model.optimizer
        self.is_root = self.optimizer.rank == 0

    def callbacks(self, user: Sequence[callbacks_mod.Callback] | None, verbose: int) -> tuple[list, int]:
        """The user's callbacks this rank runs, and the verbosity (0 except on rank 0)."""
        kept = [c for c in (user or []) if self.is_root or not isinstance(c, ROOT_ONLY_CALLBACKS)]
        return kept, verbose if self.is_root else 0

    def wrap(self, cbs: callbacks_mod.CallbackList) -> callbacks_mod.CallbackList:
        """``cbs`` with the synchronising callbacks first and last."""
        return callbacks_mod.CallbackList([_EpochSync(self.optimizer), *cbs.callbacks, _StopSync(self.optimizer)])

    def begin(self, x: Any) -> None:
        """Build the net (on one sample of ``x``) if needed, then :func:`broadcast_model`."""
        model = self.model
        if not model.net.is_built:
            with model.mode(training=False):
                for xb in model._batches(x[:1], None, 1):
                    model.forward(xb)
        broadcast_model(model, comm=self.optimizer.comm)
        self.optimizer.attach(model.net)

    def batches(self, plain: data_mod.BatchIterator) -> ShardedBatches:
        """This rank's share of the batches ``plain`` would give one process."""

        def set_weight(local: int, total: int) -> None:
            self.optimizer.grad_weight = local / total

        return ShardedBatches(plain.x, plain.y, plain.batch_size, self.optimizer.rank, self.optimizer.size,
                              shuffle=plain.shuffle, rng=plain._rng, dtype=plain.dtype, on_batch=set_weight)


def fit_session(model: Any, distributed: bool | None) -> FitSession | None:
    """The :class:`FitSession` for ``fit(..., distributed=...)``, or ``None`` for a plain fit.

    ``None`` means: distributed when the optimizer is a :class:`DistributedOptimizer`.
    ``True`` wraps a plain optimizer in one (``MPI.COMM_WORLD``).

    Raises:
        ValueError: for ``distributed=False`` with a :class:`DistributedOptimizer`.
    """
    wrapped = isinstance(model.optimizer, DistributedOptimizer)
    if distributed is None:
        distributed = wrapped
    if not isinstance(distributed, bool):
        raise TypeError(f"fit: distributed must be True, False or None, got {distributed!r}")
    if not distributed:
        if wrapped:
            raise ValueError("fit(distributed=False): the optimizer is a DistributedOptimizer, which "
                             "averages over ranks; pass its .optimizer to Model for a single-process fit")
        return None
    if not wrapped:
        model.optimizer = DistributedOptimizer(model.optimizer)
    return FitSession(model)
