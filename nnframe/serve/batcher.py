"""Micro-batching: concurrent requests that arrive within a few milliseconds share one forward pass.

A web server gets requests one picture at a time; a forward pass over 32 pictures
costs far less than 32 passes over one. :class:`MicroBatcher` queues the requests'
inputs, and one worker takes the first waiting input, gathers whatever else arrives
within ``max_wait`` seconds (up to ``max_batch`` samples), runs the function once on
the concatenation, and hands every request its rows.

The function runs on the event loop itself, not in a worker thread: a forward pass of
a small model takes about a millisecond, and in a second thread each of its NumPy
calls would wait for the interpreter lock while the loop parses requests (up to the
5 ms switch interval each), which made a batched pass 50x slower than alone. The
model is only ever called from the loop, so it needs no locking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np


class MicroBatcher:
    """Run ``fn`` on batches gathered from concurrent :meth:`submit` calls.

    Args:
        fn: maps an array ``(N, ...)`` to an array ``(N, ...)`` (row ``i`` belongs to input row ``i``).
        max_batch: the most samples one call of ``fn`` gets (a larger single request runs alone).
        max_wait: seconds to wait for more requests after the first one arrives.
        enabled: ``False`` runs every request on its own, as it comes.

    Attributes:
        calls: how many times ``fn`` ran. samples: how many samples it processed.
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], max_batch: int = 64,
                 max_wait: float = 0.002, enabled: bool = True) -> None:
        if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"MicroBatcher: max_batch must be a positive integer, got {max_batch!r}")
        if not isinstance(max_wait, (int, float)) or not 0 <= max_wait <= 1:
            raise ValueError(f"MicroBatcher: max_wait must be seconds in [0, 1], got {max_wait!r}")
        self.fn, self.max_batch, self.max_wait, self.enabled = fn, max_batch, float(max_wait), bool(enabled)
        self.calls = 0
        self.samples = 0
        self._started = False
        self._queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future[np.ndarray]]] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the gathering task; call inside the server's event loop."""
        self._started = True
        if self.enabled:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._gather_and_run())

    async def stop(self) -> None:
        """Stop gathering and fail the requests still waiting."""
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = None
        while self._queue is not None and not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(RuntimeError("the server is shutting down"))
        self._started = False

    async def submit(self, inputs: np.ndarray) -> np.ndarray:
        """``fn(inputs)``, computed in a batch with other requests arriving at the same time."""
        if not self._started:
            raise RuntimeError("MicroBatcher.submit before start()")
        if not self.enabled:
            return self._call(inputs)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        assert self._queue is not None
        await self._queue.put((inputs, future))
        return await future

    def _call(self, batch: np.ndarray) -> np.ndarray:
        out = self.fn(batch)
        self.calls += 1
        self.samples += len(batch)
        return out

    async def _gather_and_run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        held = None  # a request that did not fit the last batch: it opens the next one
        while True:
            first = held if held is not None else await self._queue.get()
            held = None
            pending, count = [first], len(first[0])
            deadline = loop.time() + self.max_wait
            while count < self.max_batch:
                try:  # whatever is queued already joins at once; then wait until the deadline
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if count + len(item[0]) > self.max_batch:
                    held = item
                    break
                pending.append(item)
                count += len(item[0])
            self._run(pending)

    def _run(self, pending: list[tuple[np.ndarray, asyncio.Future[np.ndarray]]]) -> None:
        batch = pending[0][0] if len(pending) == 1 else np.concatenate([inputs for inputs, _ in pending])
        try:
            outputs = self._call(batch)
        except Exception as exc:  # a failure of the forward pass reaches every request that shared it
            for _, future in pending:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for inputs, future in pending:
            if not future.done():  # a client that went away leaves a cancelled future
                future.set_result(outputs[start: start + len(inputs)])
            start += len(inputs)
