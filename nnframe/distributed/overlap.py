"""Overlap the gradient reduction with backward: one ``Iallreduce`` per bucket as soon as it is filled.

The flat gradient buffer holds the layers' gradients in layer order, and backward runs
from the last layer to the first, so the buffer fills from its end. :class:`Overlap`
groups consecutive layers, from the last, into buckets of at least ``bucket_mb`` MiB;
when backward has finished the first (lowest) layer of a bucket, that bucket is weighted
and its non-blocking ``Iallreduce`` started, and every later layer's backward polls the
open requests (``Testall``) so that MPI progresses them while the next layers compute.
``DistributedOptimizer.compute_step`` then waits for the rest.
"""

from __future__ import annotations

from typing import Any

from nnframe.distributed.world import mpi


class Overlap:
    """Bucketed, overlapped reduction of ``net``'s gradient buffer (see the module docstring).

    Args:
        net: a built net; its top-level layers' ``backward`` are wrapped on the instances.
        optimizer: the ``DistributedOptimizer`` (communicator, ``grad_weight``, timing).
        bucket_mb: the smallest bucket, in MiB.
    """

    def __init__(self, net: Any, optimizer: Any, bucket_mb: float) -> None:
        layers = getattr(net, "layers", None)
        if not isinstance(layers, list) or getattr(net, "_repeated", None):
            raise ValueError(f"overlap=True needs a Net whose layers each appear once (their gradients are "
                             f"final when their backward returns), got {type(net).__name__}; use bucket_mb "
                             "without overlap")
        self.net = net
        self.optimizer = optimizer
        self.flat = net.grads.flat
        layout = net.params.layout
        spans: dict[int, list[int]] = {}
        for name, start, size in zip(layout.names, layout.offsets, layout.sizes, strict=True):
            span = spans.setdefault(int(name.split(".", 1)[0]), [start, start + size])
            span[0], span[1] = min(span[0], start), max(span[1], start + size)
        limit = bucket_mb * 2**20
        self.buckets: dict[int, tuple[int, int]] = {}  # first layer of the bucket -> (start, stop)
        current: list[int] | None = None
        for index in sorted(spans, reverse=True):
            lo, hi = spans[index]
            current = [index, lo, hi] if current is None else [index, lo, current[2]]
            if (current[2] - current[1]) * self.flat.itemsize >= limit:
                self.buckets[current[0]] = (current[1], current[2])
                current = None
        if current is not None:
            self.buckets[current[0]] = (current[1], current[2])
        self.requests: list[Any] = []
        for index in spans:
            self._wrap(index)

    def _wrap(self, index: int) -> None:
        layer = self.net.layers[index]
        original = layer.backward
        names = [n for n in self.net.params.layout.names if int(n.split(".", 1)[0]) == index]

        def backward(grad: Any) -> Any:
            out = original(grad)
            self._bucket_done(index, layer, names)
            return out

        layer.backward = backward

    def _bucket_done(self, index: int, layer: Any, names: list[str]) -> None:
        if self.net.grads.flat is not self.flat:  # the net was repacked: compute_step reduces it whole
            return
        start = self.optimizer.clock()
        MPI = mpi()
        for name in names if isinstance(layer.grads, dict) else ():  # a leaf that rebound grads[key]:
            key, view = name.split(".", 1)[1], self.net.grads[name]  # its values into the buffer now
            current = layer.grads.get(key)
            if current is not None and current is not view:
                view[...] = current
                layer.grads[key] = view
        if index in self.buckets:
            lo, hi = self.buckets[index]
            weight = self.optimizer.weight()
            if weight != 1.0:
                self.flat[lo:hi] *= weight
            self.requests.append(self.optimizer.comm.Iallreduce(MPI.IN_PLACE, self.flat[lo:hi], op=MPI.SUM))
        if self.requests:
            MPI.Request.Testall(self.requests)
        self.optimizer.account(start)

    def ready(self, flat: Any) -> bool:
        """Whether every bucket of ``flat`` was started in this backward pass."""
        return flat is self.flat and len(self.requests) == len(self.buckets)

    def wait(self) -> None:
        """Wait for the open reductions (the buffer then holds the weighted sum)."""
        mpi().Request.Waitall(self.requests)
        self.requests = []

    def check_idle(self) -> None:
        """Raise unless no reduction is open (``compute_step`` is about to reduce the buffer whole).

        Raises:
            RuntimeError: when backward started only some buckets (or ran twice without a
                step): reducing the whole buffer again would count those twice.
        """
        if self.requests:
            started, total = len(self.requests), len(self.buckets)
            self.wait()
            self.requests = []
            raise RuntimeError(f"DistributedOptimizer(overlap=True): backward started {started} of {total} "
                               "gradient buckets before this step; call net.backward exactly once per step")
