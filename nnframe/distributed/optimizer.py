"""``DistributedOptimizer``: average the flat gradient buffer over the ranks, then step."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from nnframe.distributed.overlap import Overlap
from nnframe.distributed.world import install_abort_on_error, mpi, world
from nnframe.optimizer import BaseOptimizer
from nnframe.parameter import ParamBuffer, as_buffer


class DistributedOptimizer(BaseOptimizer):
    """Wrap an optimizer so that ``compute_step`` first averages the gradient over all ranks.

    The average is one in-place buffer-protocol ``Allreduce`` (no pickling) on the
    net's flat gradient buffer, or one ``Iallreduce`` per bucket of about
    ``bucket_mb`` MiB when given. Everything else (``lr``, state, checkpoints) is the
    wrapped optimizer's, so a checkpoint written under MPI loads without it.

    Args:
        optimizer: the optimizer to wrap (e.g. ``SGD(0.1)``).
        comm: an mpi4py communicator (default ``MPI.COMM_WORLD``).
        bucket_mb: split the buffer into buckets of this many MiB (``None``: one message;
            with ``overlap``, default 1).
        overlap: start each bucket's ``Iallreduce`` during backward, as soon as its layers
            are done (:mod:`nnframe.distributed.overlap`; needs :meth:`attach`, which
            ``fit`` calls).
        sync_batchnorm: BatchNorm statistics over every rank's rows
            (:func:`~nnframe.distributed.batchnorm.sync_batchnorm`; applied by ``fit``).
        abort_on_error: see :func:`install_abort_on_error`.

    Attributes:
        grad_weight: this rank's share of the step's samples (set per step by ``fit``);
            ``None`` means ``1 / size`` (equal shares).
        comm_seconds: seconds spent in the gradient reduction so far (``comm_cpu_seconds``:
            CPU seconds there, MPI's polling included); ``comm_calls``: how many steps.
    """

    is_distributed = True

    def __init__(self, optimizer: BaseOptimizer, comm: Any = None, bucket_mb: float | None = None,
                 overlap: bool = False, sync_batchnorm: bool = False, abort_on_error: bool = True) -> None:
        if isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedOptimizer: the optimizer is already distributed")
        if not isinstance(optimizer, BaseOptimizer):
            raise TypeError(f"DistributedOptimizer: expected a nnframe optimizer, got {type(optimizer).__name__}")
        if bucket_mb is not None and not (isinstance(bucket_mb, (int, float)) and bucket_mb > 0
                                          and math.isfinite(bucket_mb)):
            raise ValueError(f"DistributedOptimizer: bucket_mb must be a positive number or None, got {bucket_mb!r}")
        self.optimizer = optimizer
        self.comm = world(comm)
        self.rank = int(self.comm.Get_rank())
        self.size = int(self.comm.Get_size())
        self.overlap = bool(overlap)
        self.sync_batchnorm = bool(sync_batchnorm)
        self.bucket_mb = 1.0 if overlap and bucket_mb is None else bucket_mb
        self._overlap: Overlap | None = None
        self.grad_weight: float | None = None
        self.comm_seconds = 0.0
        self.comm_cpu_seconds = 0.0
        self.comm_calls = 0
        if abort_on_error:
            install_abort_on_error(self.comm)

    # the wrapped optimizer's state, read and written through
    @property
    def lr(self) -> float:  # type: ignore[override]
        """The wrapped optimizer's learning rate."""
        return self.optimizer.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.optimizer.lr = value

    @property
    def iterations(self) -> int:  # type: ignore[override]
        """The wrapped optimizer's step count."""
        return self.optimizer.iterations

    @iterations.setter
    def iterations(self, value: int) -> None:
        self.optimizer.iterations = value

    @property
    def state(self) -> dict[str, ParamBuffer]:  # type: ignore[override]
        """The wrapped optimizer's state buffers."""
        return self.optimizer.state

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        """The wrapped optimizer's state buffer names."""
        return self.optimizer.state_names

    def attach(self, net: Any) -> None:
        """Prepare the net for the options: overlapped buckets and synchronised BatchNorm.

        Call once the net is built (``fit`` does); a no-op without those options.
        """
        if self.sync_batchnorm:
            from nnframe.distributed.batchnorm import sync_batchnorm

            sync_batchnorm(net, self)
        if self.overlap and (self._overlap is None or self._overlap.net is not net):
            self._overlap = Overlap(net, self, self.bucket_mb)

    def weight(self) -> float:
        """This rank's factor for its gradient: ``grad_weight``, or ``1 / size``."""
        return 1.0 / self.size if self.grad_weight is None else float(self.grad_weight)

    def compute_step(self, grads: ParamBuffer | list, params: ParamBuffer | list) -> ParamBuffer:
        """Average ``grads`` over the ranks (in place), then the wrapped optimizer's step."""
        grads = as_buffer(grads)
        if self._overlap is not None and self._overlap.ready(grads.flat):
            start = self.clock()
            self._overlap.wait()  # started during backward
            self.account(start)
            self.comm_calls += 1
        else:
            if self._overlap is not None:
                self._overlap.check_idle()
            self.allreduce_gradients(grads.flat)
        return self.optimizer.compute_step(grads, params)

    def allreduce_gradients(self, flat: Any) -> None:
        """Replace ``flat`` by the ``grad_weight``-weighted sum over ranks, in place."""
        weight = self.weight()
        if weight != 1.0:
            flat *= weight  # a Python float keeps the dtype
        start = self.clock()
        MPI = mpi()
        if self.bucket_mb is None:
            self.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM)
        else:
            step = max(1, int(self.bucket_mb * 2**20) // flat.itemsize)
            requests = [self.comm.Iallreduce(MPI.IN_PLACE, flat[i:i + step], op=MPI.SUM)
                        for i in range(0, flat.size, step)]
            MPI.Request.Waitall(requests)
        self.account(start)
        self.comm_calls += 1

    @staticmethod
    def clock() -> tuple[float, float]:
        """``(wall, cpu)`` seconds now, for :meth:`account`."""
        return time.perf_counter(), time.process_time()

    def account(self, start: tuple[float, float]) -> None:
        """Add the wall and CPU time since ``start`` (from :meth:`clock`) to the communication totals."""
        self.comm_seconds += time.perf_counter() - start[0]
        self.comm_cpu_seconds += time.process_time() - start[1]

    def __getattr__(self, name: str) -> Any:
        """Any other attribute is the wrapped optimizer's (``momentum``, ``beta1``, ...)."""
        if name == "optimizer":  # during construction or unpickling: not set yet
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def get_config(self) -> dict[str, Any]:
        """The wrapped optimizer's config (checkpoints rebuild the plain optimizer)."""
        return self.optimizer.get_config()

    def hyperparameters(self) -> dict[str, Any]:
        """The wrapped optimizer's hyperparameters."""
        return self.optimizer.hyperparameters()

    def state_dict(self) -> dict[str, Any]:
        """The wrapped optimizer's state."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: Mapping[str, Any], layout: Any) -> None:
        """Restore the wrapped optimizer's state."""
        self.optimizer.load_state_dict(state, layout)

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r}, ranks={self.size})"
