"""Rank 0's model everywhere: broadcast, checksum, averaged buffers."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from nnframe import io
from nnframe import random as nn_random
from nnframe.distributed.world import check_same_everywhere, mpi, world


def _buffers(net: Any) -> dict[str, Any]:
    """The non-trainable arrays (BatchNorm running statistics) by dotted name."""
    return dict(net.nt_params)


def model_checksum(model: Any) -> str:
    """SHA-256 of the parameters, buffers, optimizer state and step count, in a fixed order."""
    digest = hashlib.sha256()
    net = model.net
    digest.update(np.ascontiguousarray(net.params.flat).tobytes())
    for name, value in sorted(_buffers(net).items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    optimizer = model.optimizer
    for name, buf in sorted(optimizer.state.items()):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(buf.flat).tobytes())
    digest.update(repr((int(optimizer.iterations), float(optimizer.lr), int(model.epoch))).encode())
    return digest.hexdigest()

def broadcast_model(model: Any, root: int = 0, comm: Any = None) -> str:
    """Copy rank ``root``'s model to every rank, then verify it with a checksum.

    Parameters and BatchNorm buffers go by in-place ``Bcast`` of their arrays, the
    optimizer state (present after a resume) by ``Bcast`` of its flat buffers; the
    step counts, learning rate, shuffling and layer generators by ``bcast`` (small).

    Returns:
        The SHA-256 checksum, equal on every rank.

    Raises:
        RuntimeError: when the ranks' nets or optimizer states differ in layout (the
            message names the ranks), or the checksum differs after the broadcast.
    """
    comm = world(comm)
    net = model.net
    if not net.is_built:
        raise RuntimeError("broadcast_model: the net is not built yet; run net.build((1, *input_shape)) first")
    optimizer = model.optimizer
    buffers = _buffers(net)
    layout = (net.params.layout.names, net.params.layout.shapes, str(net.params.layout.dtype),
              sorted((k, tuple(v.shape), str(v.dtype)) for k, v in buffers.items()),
              sorted(optimizer.state), sorted(io.layer_generators(net)))
    check_same_everywhere(layout, "the model's layout (parameters, buffers, optimizer state, generators)", comm)
    comm.Bcast(net.params.flat, root=root)
    for name in sorted(buffers):
        comm.Bcast(buffers[name], root=root)  # BatchNorm buffers: contiguous arrays of their own
    for name in sorted(optimizer.state):
        comm.Bcast(optimizer.state[name].flat, root=root)
    scalars = comm.bcast(
        {"iterations": optimizer.iterations, "lr": optimizer.lr, "epoch": model.epoch,
         "global_step": model.global_step, "split_seed": model.split_seed,
         "shuffle": None if model.shuffle_rng is None else model.shuffle_rng.bit_generator.state,
         "layers": {k: g.bit_generator.state for k, g in io.layer_generators(net).items()},
         "global": nn_random.get_state()},
        root=root)
    optimizer.iterations, optimizer.lr = scalars["iterations"], scalars["lr"]
    model.epoch, model.global_step, model.split_seed = scalars["epoch"], scalars["global_step"], scalars["split_seed"]
    if scalars["shuffle"] is not None:
        model.shuffle_rng = io.restore_generator(model.shuffle_rng, scalars["shuffle"], "shuffling")
    for key, gen in io.layer_generators(net).items():
        gen.bit_generator.state = scalars["layers"][key]
    nn_random.set_state(scalars["global"])
    checksum = model_checksum(model)
    check_same_everywhere(checksum, "the SHA-256 checksum of the model after the broadcast", comm)
    return checksum

def average_buffers(net: Any, comm: Any = None) -> None:
    """Average the non-trainable buffers (BatchNorm running statistics) over ranks, in place."""
    comm = world(comm)
    size = comm.Get_size()
    for _, value in sorted(_buffers(net).items()):
        if value.dtype.kind == "f":
            comm.Allreduce(mpi().IN_PLACE, value, op=mpi().SUM)
            value /= size
