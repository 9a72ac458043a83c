"""Synchronised BatchNorm: batch statistics over every rank's rows, not just this rank's.

:func:`sync_batchnorm` switches the BatchNorm layers of a net, in place, to forward
and backward passes that reduce their per-channel sums over the ranks (two small
``Allreduce`` calls forward, one backward). The layers stay :class:`BatchNorm` objects
with the same config, so checkpoints load anywhere, with or without MPI. With it, ``P``
ranks of batch ``b`` train exactly like one process of batch ``P * b`` (up to float
rounding), running statistics included.

The backward pass needs the true gradient of the global loss: a rank's incoming
gradient is of its own mean loss, so it is weighted by the rank's share of the step's
samples (``DistributedOptimizer.grad_weight``) for the cross-rank sums, and the input
gradient is returned at the rank's own scale, which the optimizer's weighting then
applies to every parameter alike.
"""

from __future__ import annotations

import types
from typing import Any

from nnframe import backend
from nnframe import functional as F
from nnframe.distributed.optimizer import DistributedOptimizer
from nnframe.distributed.world import mpi
from nnframe.errors import ShapeError
from nnframe.layer import BatchNorm


def sync_batchnorm(net: Any, optimizer: DistributedOptimizer) -> int:
    """Make every :class:`BatchNorm` of ``net`` use statistics over all ranks; returns how many.

    Args:
        net: the net (every leaf layer of the tree is searched).
        optimizer: the :class:`DistributedOptimizer` whose communicator and per-step
            ``grad_weight`` are used.

    Raises:
        TypeError: when ``optimizer`` is not a :class:`DistributedOptimizer`.
    """
    if not isinstance(optimizer, DistributedOptimizer):
        raise TypeError(f"sync_batchnorm: expected a DistributedOptimizer, got {type(optimizer).__name__}")
    count = 0
    for _, item in net.named_leaves():
        if isinstance(item, BatchNorm):
            item.sync_optimizer = optimizer
            item.forward = types.MethodType(_forward, item)
            item.backward = types.MethodType(_backward, item)
            count += 1
    return count


def _allreduce(values: Any, comm: Any) -> Any:
    MPI = mpi()
    comm.Allreduce(MPI.IN_PLACE, values, op=MPI.SUM)
    return values


def _forward(self: BatchNorm, inputs: Any) -> Any:
    if not self.is_training:
        return BatchNorm.forward(self, inputs)
    xp = backend.xp()
    comm = self.sync_optimizer.comm
    self._prepare(inputs)
    channels = inputs.shape[-1]
    rows, reps = F.channel_rows(xp.ascontiguousarray(inputs))  # (R, reps*C): channels tile each row
    local = inputs.size // channels
    sums = xp.empty(channels + 1, dtype=inputs.dtype)
    F.channel_sums(inputs, out=sums[:channels])
    sums[channels] = local
    _allreduce(sums, comm)  # (C sums, count) over every rank
    count = int(round(float(sums[channels])))
    if count < 2:
        raise ShapeError(f"{self.name}: training needs more than one value per feature over all ranks, got "
                         f"input of shape {tuple(inputs.shape)}")
    mean = sums[:channels] * (1.0 / count)  # (C,)
    xhat = rows - xp.tile(mean, reps)  # centred, (R, reps*C)
    var = _allreduce(F.channel_sums((xhat * xhat).reshape(-1, channels)), comm) * (1.0 / count)
    self._update_running(mean, var, count)
    inv_std = 1.0 / xp.sqrt(var + self.eps)  # (C,)
    xhat *= xp.tile(inv_std, reps)
    out = xhat * xp.tile(self.params["gamma"], reps)
    out += xp.tile(self.params["beta"], reps)
    self.ctx = {"xhat": xhat, "inv_std": inv_std, "reps": reps, "train": True, "count": count}
    return out.reshape(inputs.shape)


def _backward(self: BatchNorm, grad: Any) -> Any:
    if not self.ctx["train"]:
        return BatchNorm.backward(self, grad)
    xp = backend.xp()
    optimizer = self.sync_optimizer
    xhat, inv_std, reps, count = self.ctx["xhat"], self.ctx["inv_std"], self.ctx["reps"], self.ctx["count"]
    channels = inv_std.shape[0]
    g = xp.ascontiguousarray(grad).reshape(xhat.shape)  # (R, reps*C)
    dgamma = F.channel_sums((g * xhat).reshape(-1, channels), out=self._grad_buffer("gamma"))
    dbeta = F.channel_sums(g.reshape(-1, channels), out=self._grad_buffer("beta"))
    if not self.requires_input_grad:
        return None
    weight = 1.0 / optimizer.size if optimizer.grad_weight is None else float(optimizer.grad_weight)
    sums = xp.concatenate([dgamma, dbeta]) * weight  # this rank's part of the global loss's sums
    _allreduce(sums, optimizer.comm)
    # dx = gamma / std * (g - mean(g) - xhat * mean(g * xhat)), means over the global batch; the global
    # gradient is weight * g, and dx goes back at this rank's scale (divided by weight)
    dx = xhat * xp.tile(sums[:channels] * (-1.0 / (count * weight)), reps)
    dx += g
    dx -= xp.tile(sums[channels:] * (1.0 / (count * weight)), reps)
    dx *= xp.tile(self.params["gamma"] * inv_std, reps)
    return dx.reshape(grad.shape)
