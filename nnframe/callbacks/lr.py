"""Callbacks that set the learning rate: a :mod:`nnframe.schedule` scheduler stepped per epoch or
per batch, and :class:`ReduceLROnPlateau`."""

from __future__ import annotations

from typing import Any

from nnframe import schedule as schedule_mod
from nnframe.callbacks.base import Callback, Logs, _count, _Monitor, float_from_json, float_to_json


class LRSchedulerCallback(Callback):
    """Step a :mod:`nnframe.schedule` scheduler after every epoch or every batch.

    The scheduler is attached to the model (``model.scheduler``) so checkpoints
    save and restore its state. With ``scheduler=None`` the model's own scheduler
    (e.g. one restored by :func:`nnframe.load`) is stepped.

    Args:
        scheduler: an :class:`~nnframe.schedule.LRScheduler` built on the model's optimizer.
        per: ``"epoch"`` or ``"batch"``.
    """

    def __init__(self, scheduler: schedule_mod.LRScheduler | None = None, per: str = "epoch") -> None:
        super().__init__()
        if scheduler is not None and not isinstance(scheduler, schedule_mod.LRScheduler):
            raise TypeError(f"LRSchedulerCallback: expected an LRScheduler, got {type(scheduler).__name__}")
        if per not in ("epoch", "batch"):
            raise ValueError(f"LRSchedulerCallback: per must be 'epoch' or 'batch', got {per!r}")
        self.scheduler = scheduler
        self.per = per

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        if self.scheduler is not None:
            if self.scheduler.optimizer is not model.optimizer:
                raise ValueError("LRSchedulerCallback: the scheduler was built on another optimizer than "
                                 "the model's; build it with model.optimizer")
            model.scheduler = self.scheduler

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self.scheduler is None:
            self.scheduler = getattr(self.model, "scheduler", None)
            if self.scheduler is None:
                raise ValueError("LRSchedulerCallback: no scheduler given and the model has none attached")

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self.per == "batch":
            self.scheduler.step()

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        if self.per == "epoch":
            self.scheduler.step()


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving.

    Args:
        monitor: the log key to watch.
        factor: the multiplier, in (0, 1).
        patience: epochs without improvement before a reduction.
        min_delta: the smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        cooldown: epochs after a reduction that do not count towards ``patience``.
        min_lr: the learning rate never goes below this.
        verbose: print a line per reduction.
    """

    def __init__(self, monitor: str = "val_loss", factor: float = 0.1, patience: int = 10,
                 min_delta: float = 1e-4, mode: str = "auto", cooldown: int = 0,
                 min_lr: float = 0.0, verbose: int = 0) -> None:
        super().__init__()
        if not 0.0 < float(factor) < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"ReduceLROnPlateau: {name} must be a non-negative integer, got {value!r}")
        self._monitor = _Monitor("ReduceLROnPlateau", monitor, mode, min_delta)
        self.monitor, self.factor, self.patience = monitor, float(factor), patience
        self.cooldown, self.min_lr, self.verbose = cooldown, float(min_lr), verbose
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self._monitor.reset()
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        value = self._monitor.current(logs)
        if value is None:
            return
        in_cooldown = self.cooldown_counter > 0
        if in_cooldown:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._monitor.improved(value):
            self._monitor.best = value
            self.wait = 0
            return
        if in_cooldown:
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        optimizer = self.model.optimizer
        old = optimizer.lr
        if old > self.min_lr:
            optimizer.lr = max(old * self.factor, self.min_lr)
            if self.verbose:
                print(f"ReduceLROnPlateau: epoch {epoch + 1}: lr {old:.4g} -> {optimizer.lr:.4g}", flush=True)
        self.cooldown_counter = self.cooldown
        self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        """The best monitored value and the patience and cooldown counters."""
        return {"best": float_to_json(self._monitor.best), "wait": self.wait,
                "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        best = float_from_json(state.get("best"), "ReduceLROnPlateau state: best")
        wait = _count(state, "wait", "ReduceLROnPlateau")
        cooldown_counter = _count(state, "cooldown_counter", "ReduceLROnPlateau")
        self._monitor.best, self.wait, self.cooldown_counter = best, wait, cooldown_counter
