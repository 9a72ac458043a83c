"""Callbacks that end a run: when the monitored value stops improving (:class:`EarlyStopping`,
which can also restore the best epoch's weights) or when the loss is no longer finite."""

from __future__ import annotations

import math
import sys
from typing import Any

from nnframe.callbacks.base import Callback, Logs, _count, _Monitor, float_from_json, float_to_json


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: the log key to watch (``"val_loss"``, ``"val_accuracy"``, ``"loss"``...).
        patience: epochs without improvement before stopping (0: stop at the first).
        min_delta: the smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, else min).
        restore_best_weights: at the end of training, load the weights (and buffers)
            of the best epoch.
        verbose: print a line when stopping / restoring.

    Attributes:
        best: the best monitored value so far.
        best_epoch: the epoch it was reached.
        stopped_epoch: the epoch training stopped at (``None`` if it was not stopped).
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False, verbose: int = 0) -> None:
        super().__init__()
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative integer, got {patience!r}")
        self._monitor = _Monitor("EarlyStopping", monitor, mode, min_delta)
        self.monitor, self.patience = monitor, patience
        self.restore_best_weights = bool(restore_best_weights)
        self.verbose = verbose
        self._reset()

    def _reset(self) -> None:
        self._monitor.reset()
        self.wait = 0
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, Any] | None = None
        self._last_epoch: int | None = None

    @property
    def best(self) -> float:
        """The best monitored value so far."""
        return self._monitor.best

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self._last_epoch = epoch
        value = self._monitor.current(logs)
        if value is None:
            return
        if self._monitor.improved(value):
            self._monitor.best = value
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.net.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(f"EarlyStopping: {self.monitor} has not improved for {self.wait} epochs; "
                      f"stopping after epoch {epoch + 1}", flush=True)

    def state_dict(self) -> dict[str, Any]:
        """Best value and epoch, the patience counter, and the best weights (as arrays)."""
        state = {"best": float_to_json(self.best), "wait": self.wait, "best_epoch": self.best_epoch,
                 "stopped_epoch": self.stopped_epoch, "last_epoch": self._last_epoch}
        if self.best_weights is not None:
            state["arrays"] = dict(self.best_weights)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        best = float_from_json(state.get("best"), "EarlyStopping state: best")
        wait = _count(state, "wait", "EarlyStopping")
        epochs = {key: _count(state, key, "EarlyStopping", optional=True)
                  for key in ("best_epoch", "stopped_epoch", "last_epoch")}
        weights = state.get("arrays") or None
        if weights is not None:
            expected = {k: (tuple(v.shape), v.dtype) for k, v in self.model.net.state_dict().items()}
            got = {k: (tuple(v.shape), v.dtype) for k, v in weights.items()}
            if got != expected:
                raise ValueError(f"EarlyStopping state: the best weights {got} do not fit the net {expected}")
            weights = {k: v.copy() for k, v in weights.items()}
        self._monitor.best, self.wait, self.best_weights = best, wait, weights
        self.best_epoch, self.stopped_epoch = epochs["best_epoch"], epochs["stopped_epoch"]
        self._last_epoch = epochs["last_epoch"]

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.best_weights is not None and self.best_epoch != self._last_epoch:
            self.model.net.load_state_dict(self.best_weights)
            if self.verbose:
                print(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1} "
                      f"({self.monitor} = {self.best:.6g})", flush=True)


class TerminateOnNaN(Callback):
    """Stop training as soon as the loss is NaN or infinite.

    ``Model(check_finite=True)`` (the default) already raises on a non-finite loss
    before the step reaches the weights; this callback is for models built with
    ``check_finite=False``, where it ends the run cleanly instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.terminated_at: tuple[int, int] | None = None  # (epoch, batch)
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        self._epoch = epoch

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.terminated_at = (self._epoch, batch)
            self.model.stop_training = True
            print(f"TerminateOnNaN: loss is {loss} at epoch {self._epoch + 1}, batch {batch + 1}; "
                  "stopping", file=sys.stderr, flush=True)
