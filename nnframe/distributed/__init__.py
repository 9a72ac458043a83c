"""Data-parallel training on MPI through ``mpi4py`` (the optional extra ``nnframe[mpi]``).

Every rank holds the whole model and trains on its own share of each batch; after
backward, one in-place ``Allreduce`` on the net's flat gradient buffer averages the
gradients, so every rank takes the same step and the weights stay identical. This
package imports ``mpi4py`` only when a function here is called; ``import nnframe``
never does. Launch with ``mpirun -n 4 python train.py`` (or ``mpirun -n 4 nnframe
train ...``).

The design keeps the seed's three calls (Horovod's ``DistributedOptimizer``)::

    from nnframe import distributed
    model = Model(net, loss, distributed.DistributedOptimizer(SGD(0.1)))
    model.net.build((1, 784))
    distributed.broadcast_model(model)       # rank 0's weights everywhere, checksummed
    model.optimizer.attach(model.net)        # only needed for overlap / sync_batchnorm
    pred = model.forward(x_mine)             # this rank's rows of the global batch
    loss, step = model.backward(pred, y_mine)  # the gradient is averaged over ranks here
    model.apply_grad(step)                   # same step on every rank

or simply ``model.fit(x, y, batch_size=64, distributed=True)`` (a model whose
optimizer is a :class:`DistributedOptimizer` fits distributed by default), which also:

* broadcasts parameters, BatchNorm buffers, optimizer state (on resume) and the
  generators from rank 0 and checks a SHA-256 checksum of them on every rank;
* shards each epoch: one permutation drawn from the (shared) shuffling generator, cut
  into global batches of ``size * batch_size`` samples exactly as one process with that
  batch size would; rank ``r`` takes rows ``r, r + size, ...`` of each global batch.
  Remainder: the last global batch is split as evenly as possible (ranks differ by at
  most one sample) and each rank's gradient is weighted by its share of the samples,
  so every step equals one process's step on the same samples. Only when the last
  global batch has fewer samples than there are ranks is it skipped (at most
  ``size - 1`` samples of that epoch, a different few each epoch when shuffling);
* gives each rank its own dropout masks: at the start of every epoch each layer
  generator draws one seed, and rank ``r`` draws from :func:`rank_generator` (seed, r);
  at the end of the epoch the generators go back to the shared stream, so a checkpoint
  (written by rank 0) resumes every rank exactly;
* reduces the epoch's training figures and :meth:`~nnframe.model.Model.evaluate`'s
  over all ranks (sample-weighted), so every rank logs the same numbers and callbacks
  such as ``EarlyStopping`` decide the same; a stop requested on any rank mid-epoch
  stops every rank after that batch;
* shows the progress bar and runs ``ModelCheckpoint`` and ``CSVLogger`` on rank 0 only.

BatchNorm: each rank normalises with its own batch's statistics (as PyTorch's DDP
does); the running statistics are averaged over ranks at the end of every epoch, so
evaluation and checkpoints use the same buffers everywhere. With
``DistributedOptimizer(..., sync_batchnorm=True)`` the batch statistics are computed over
every rank's rows instead (:mod:`nnframe.distributed.batchnorm`), and ``size`` ranks of
batch ``b`` train like one process of batch ``size * b``, running statistics included.

Overlap: ``DistributedOptimizer(..., overlap=True, bucket_mb=...)`` starts each bucket's
``Iallreduce`` during backward, as soon as its layers are done
(:mod:`nnframe.distributed.overlap`).

Failure: an exception that reaches the top of a rank's program prints which rank failed
and why, then calls ``MPI_Abort`` so the other ranks (blocked in a collective) end at
once instead of hanging; a rank killed by a signal makes ``mpirun`` end the job.
"""

from __future__ import annotations

from nnframe.distributed.fit import ROOT_ONLY_CALLBACKS, FitSession, evaluation_shard, fit_session
from nnframe.distributed.optimizer import DistributedOptimizer
from nnframe.distributed.sharding import ShardedBatches, reduce_means, shard_range
from nnframe.distributed.state import average_buffers, broadcast_model, model_checksum
from nnframe.distributed.world import (
    WORLD_SIZE_VARIABLES,
    abort,
    check_same_everywhere,
    install_abort_on_error,
    launched_world_size,
    mpi,
    rank_generator,
    run_cli_rank,
    world,
)

__all__ = [
    "ROOT_ONLY_CALLBACKS", "WORLD_SIZE_VARIABLES", "DistributedOptimizer", "FitSession", "ShardedBatches", "abort",
    "average_buffers", "broadcast_model", "check_same_everywhere", "evaluation_shard", "fit_session",
    "install_abort_on_error", "launched_world_size", "model_checksum", "mpi", "rank_generator", "reduce_means",
    "run_cli_rank", "shard_range", "world",
]
