"""Each rank's share of the data: training batches and evaluation blocks, and reduced means."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nnframe import data as data_mod
from nnframe.distributed.world import mpi, world
from nnframe.metrics import Metric


class ShardedBatches(data_mod.BatchIterator):
    """One rank's share of each global batch (see the module docstring for the rule).

    Iterates like a :class:`~nnframe.data.BatchIterator` with batch ``size * batch_size``
    (same permutation from the same generator), yielding rows ``rank::size`` of each
    global batch; before yielding, calls ``on_batch(local_count, global_count)``.

    Args:
        x, y, shuffle, rng, dtype: as for :class:`~nnframe.data.BatchIterator`.
        batch_size: samples per rank per step.
        rank, size: this rank and the number of ranks.
        on_batch: called with this rank's and the global batch's sample counts.
    """

    def __init__(self, x: Any, y: Any, batch_size: int, rank: int, size: int, shuffle: bool = False,
                 rng: int | np.random.Generator | None = None, dtype: Any = None,
                 on_batch: Callable[[int, int], None] | None = None) -> None:
        if not (isinstance(size, int) and size >= 1 and isinstance(rank, int) and 0 <= rank < size):
            raise ValueError(f"ShardedBatches: need 0 <= rank < size, got rank={rank!r}, size={size!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        super().__init__(x, y, int(batch_size) * size, shuffle=shuffle, rng=rng, dtype=dtype)
        self.rank, self.size = rank, size
        self.on_batch = on_batch

    def __len__(self) -> int:
        """Steps per epoch (a last global batch smaller than ``size`` is skipped)."""
        full, tail = divmod(self.num_samples, self.batch_size)
        return full + (1 if tail >= self.size else 0)

    def global_batches(self) -> list[np.ndarray]:
        """One epoch's global batches as sample indices (draws the permutation)."""
        n = self.num_samples
        order = self._rng.permutation(n) if self._rng is not None else np.arange(n)
        return [order[start:start + self.batch_size] for start in range(0, len(self) * self.batch_size,
                                                                         self.batch_size)]

    def __iter__(self) -> Any:
        for index in self.global_batches():
            mine = index[self.rank::self.size]
            if self.on_batch is not None:
                self.on_batch(len(mine), len(index))
            yield self._gather(mine)

    def __repr__(self) -> str:
        return f"ShardedBatches(rank={self.rank}, size={self.size}, global batch={self.batch_size})"


def shard_range(n: int, rank: int, size: int) -> slice:
    """Rank ``rank``'s contiguous block of ``n`` samples (blocks differ by at most one)."""
    return slice(n * rank // size, n * (rank + 1) // size)

def reduce_means(trackers: Mapping[str, Metric], comm: Any = None) -> dict[str, float]:
    """Sample-weighted means of the ranks' running means (``Metric.total``/``count``), on every rank.

    A rank without samples contributes nothing. The keys are the union over ranks.

    Raises:
        ValueError: when no rank saw any sample.
    """
    comm = world(comm)
    keys = sorted(set().union(*comm.allgather(sorted(trackers))))
    local = np.zeros(2 * len(keys), dtype=np.float64)
    for i, key in enumerate(keys):
        if key in trackers:
            local[2 * i], local[2 * i + 1] = trackers[key].total, trackers[key].count
    comm.Allreduce(mpi().IN_PLACE, local, op=mpi().SUM)
    if not keys or local[1::2].max(initial=0.0) == 0:
        raise ValueError("evaluate: x has no samples on any rank")
    return {key: float(local[2 * i] / local[2 * i + 1]) for i, key in enumerate(keys)}
