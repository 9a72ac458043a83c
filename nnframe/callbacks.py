"""Callbacks: everything around the training loop that is not the training step.

:meth:`nnframe.model.Model.fit` calls, in this order, ``on_train_begin``;
per epoch ``on_epoch_begin(epoch)``, per batch ``on_batch_begin(batch)`` /
``on_batch_end(batch, logs)``, then ``on_epoch_end(epoch, logs)``; finally
``on_train_end``. ``epoch`` and ``batch`` are 0-based indices. Batch logs hold the
running means of the epoch so far (``loss``, metrics) plus ``batch`` and ``size``;
epoch logs hold the epoch's means, ``val_``-prefixed validation results and ``lr``.

A callback stops training by setting ``self.model.stop_training = True``; the loop
checks it after every batch and every epoch (Keras' convention).

A callback that learns something across epochs (the history, early stopping's
patience counter and best weights, ReduceLROnPlateau's counters, a best-only
checkpoint's best value) returns it from :meth:`Callback.state_dict`; checkpoints
save it, and ``fit(..., resume_from=path)`` gives it back through
:meth:`Callback.load_state_dict`, so a resumed run decides exactly as an
uninterrupted one would.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from nnframe import backend
from nnframe import schedule as schedule_mod

if TYPE_CHECKING:  # tqdm is imported when a bar is shown: it costs ~50 ms on `import nnframe`
    from tqdm import tqdm

Logs = dict[str, Any]


class Callback:
    """Base class: every hook does nothing. ``self.model`` is set by ``fit``.

    ``self.params`` holds ``epochs``, ``initial_epoch``, ``steps`` (batches per epoch),
    ``samples`` and ``verbose``.
    """

    def __init__(self) -> None:
        self.model: Any = None
        self.params: dict[str, Any] = {}

    def set_model(self, model: Any) -> None:
        """Attach the model being trained (called by ``fit`` before ``on_train_begin``)."""
        self.model = model

    def set_params(self, params: dict[str, Any]) -> None:
        """Receive the run's parameters (epochs, steps per epoch, ...)."""
        self.params = dict(params)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Called once before the first epoch."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """Called once after the last epoch (also after a stop), with the last epoch's logs."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Called at the start of epoch ``epoch`` (0-based)."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        """Called after epoch ``epoch`` and its validation, with the epoch's logs."""

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        """Called before training batch ``batch`` (0-based within the epoch)."""

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        """Called after training batch ``batch`` with the epoch's running means."""

    def state_dict(self) -> dict[str, Any]:
        """What the callback has learnt so far, for checkpoints (``{}``: nothing).

        JSON values (non-finite floats as the strings ``"inf"``, ``"-inf"``, ``"nan"``),
        plus numpy arrays under ``"arrays"`` as ``{name: array}`` (the optimizer's
        convention); :meth:`~nnframe.model.Model.save` stores both.
        """
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned.

        ``fit(..., resume_from=path)`` calls it right after ``on_train_begin``.

        Raises:
            ValueError: for a state this callback cannot have written.
        """
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, got {sorted(state)}")


def float_to_json(value: float) -> float | str:
    """``value`` itself if finite, else ``"inf"``, ``"-inf"`` or ``"nan"`` (strict JSON has no such numbers)."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


def float_from_json(value: Any, what: str) -> float:
    """The inverse of :func:`float_to_json`.

    Raises:
        ValueError: naming ``what`` when ``value`` is neither a number nor one of those strings.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if value in ("inf", "-inf", "nan"):
        return float(value)
    raise ValueError(f"{what} must be a number, 'inf', '-inf' or 'nan', got {value!r}")


def _count(state: dict[str, Any], key: str, owner: str, optional: bool = False) -> int | None:
    """``state[key]`` checked to be a non-negative int (or ``None`` when ``optional``)."""
    value = state.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{owner} state: {key} must be a non-negative integer, got {value!r}")
    return value


class CallbackList(Callback):
    """Dispatch every hook to a list of callbacks, in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        super().__init__()
        self.callbacks = list(callbacks)
        for index, callback in enumerate(self.callbacks):
            if not isinstance(callback, Callback):
                raise TypeError(
                    f"callbacks[{index}] must be a nnframe.callbacks.Callback, got {type(callback).__name__}"
                )

    def set_model(self, model: Any) -> None:
        super().set_model(model)
        for callback in self.callbacks:
            callback.set_model(model)

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        for callback in self.callbacks:
            callback.set_params(params)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(logs)

    def on_train_end(self, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_train_end(logs)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, logs)

    def on_batch_begin(self, batch: int, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_batch_begin(batch, logs)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        for callback in self.callbacks:
            callback.on_batch_end(batch, logs)


def _format_logs(logs: Logs, skip: Sequence[str] = ("batch", "size")) -> str:
    parts = []
    for key, value in logs.items():
        if key in skip:
            continue
        parts.append(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    return " - ".join(parts)


def _fmt(key: str, value: Any) -> str:
    return f"{value:.3g}" if key == "lr" else f"{value:.4f}"


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss and metrics as its postfix.

    Args:
        verbose: 0 prints nothing, 1 a bar per epoch (on stderr, ending with the
            epoch's train and validation figures), 2 one line per epoch on stdout.
    """

    def __init__(self, verbose: int = 1) -> None:
        super().__init__()
        if verbose not in (0, 1, 2):
            raise ValueError(f"ProgressBar: verbose must be 0, 1 or 2, got {verbose!r}")
        self.verbose = verbose
        self._bar: tqdm | None = None

    def _desc(self, epoch: int) -> str:
        return f"Epoch {epoch + 1}/{self.params.get('epochs', '?')}"

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if self.verbose == 1:
            from tqdm import tqdm  # noqa: PLC0415 - lazily, see the import block

            self._bar = tqdm(total=self.params.get("steps"), desc=self._desc(epoch), unit="batch",
                             file=sys.stderr, leave=True, dynamic_ncols=True)

    def on_batch_end(self, batch: int, logs: Logs | None = None) -> None:
        if self._bar is None:
            return
        self._bar.update(1)
        postfix = {k: _fmt(k, v) for k, v in (logs or {}).items() if k not in ("batch", "size")}
        self._bar.set_postfix(postfix, refresh=False)

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        if self._bar is not None:
            self._bar.set_postfix({k: _fmt(k, v) for k, v in logs.items() if isinstance(v, float)},
                                  refresh=False)
            self._bar.close()
            self._bar = None
        elif self.verbose == 2:
            print(f"{self._desc(epoch)} - {_format_logs(logs)}", flush=True)

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self._bar is not None:  # training stopped mid-epoch
            self._bar.close()
            self._bar = None


class History(Callback):
    """Records every epoch's logs: ``history["val_loss"][i]`` is epoch ``epoch[i]``'s value.

    ``fit`` always adds one and returns it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        self.history: dict[str, list[Any]] = {}

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def state_dict(self) -> dict[str, Any]:
        """The epochs so far and their logs (a resumed ``fit`` returns the whole run's history)."""
        return {"epoch": list(self.epoch),
                "history": {k: [float_to_json(v) for v in values] for k, values in self.history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        epochs, history = state.get("epoch"), state.get("history")
        if not (isinstance(epochs, list) and all(isinstance(e, int) and not isinstance(e, bool) for e in epochs)):
            raise ValueError(f"History state: epoch must be a list of integers, got {epochs!r}")
        if not (isinstance(history, dict) and all(isinstance(v, list) for v in history.values())):
            raise ValueError("History state: history must map each log key to a list of values")
        self.epoch = list(epochs)
        self.history = {str(k): [float_from_json(v, f"History state: {k}") for v in values]
                        for k, values in history.items()}


class _Monitor:
    """Whether a monitored value improved on the best so far (``mode`` min/max/auto)."""

    def __init__(self, owner: str, monitor: str, mode: str, min_delta: float) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if ("acc" in monitor or monitor.startswith(("top", "val_top"))) else "min"
        if not float(min_delta) >= 0.0:
            raise ValueError(f"{owner}: min_delta must be >= 0, got {min_delta}")
        self.owner, self.monitor, self.mode, self.min_delta = owner, monitor, mode, float(min_delta)
        self._warned = False
        self.best = math.inf if mode == "min" else -math.inf

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf

    def current(self, logs: Logs | None) -> float | None:
        """The monitored value in ``logs``, or ``None`` (with one warning) when absent."""
        value = (logs or {}).get(self.monitor)
        if value is None:
            if not self._warned:
                warnings.warn(
                    f"{self.owner}: {self.monitor!r} is not in the logs (available: "
                    f"{sorted(logs or {})}); it does nothing. Pass validation data or monitor another key.",
                    RuntimeWarning, stacklevel=3,
                )
                self._warned = True
            return None
        return float(value)

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


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


class ModelCheckpoint(Callback):
    """Save the model (``model.save``) after every epoch, or only when ``monitor`` improves.

    Args:
        path: file to write; may hold ``str.format`` fields ``{epoch}`` (1-based)
            and any log key, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.safetensors"``.
        monitor: log key compared when ``save_best_only``.
        mode: ``"min"``, ``"max"`` or ``"auto"``.
        save_best_only: save only on improvement ("best"); otherwise every epoch
            overwrites ``path`` ("last", what ``fit(resume_from=...)`` wants).
        min_delta: the smallest change that counts as an improvement.
        verbose: print a line per save.

    Attributes:
        best: the best monitored value; last_saved: the last path written.
    """

    def __init__(self, path: str | os.PathLike, monitor: str = "val_loss", mode: str = "auto",
                 save_best_only: bool = False, min_delta: float = 0.0, verbose: int = 0) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self._monitor = _Monitor("ModelCheckpoint", monitor, mode, min_delta)
        self.verbose = verbose
        self.last_saved: str | None = None

    @property
    def best(self) -> float:
        """The best monitored value so far (when ``save_best_only``)."""
        return self._monitor.best

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        logs = logs or {}
        if self.save_best_only:
            value = self._monitor.current(logs)
            if value is None or not self._monitor.improved(value):
                return
            self._monitor.best = value
        try:
            path = self.path.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"ModelCheckpoint: cannot format path {self.path!r} with the logs "
                             f"{sorted(logs)}: {exc}") from None
        params = self.model.net.params.flat
        if not bool(backend.xp().isfinite(params).all()):
            print(f"ModelCheckpoint: not saving epoch {epoch + 1} to {path}: the weights hold NaN or infinity "
                  "(the run diverged); the last finite checkpoint is kept", file=sys.stderr, flush=True)
            return
        previous, self.last_saved = self.last_saved, path  # the file records itself as the last one
        try:
            self.model.save(path)
        except BaseException:
            self.last_saved = previous
            raise
        if self.verbose:
            print(f"ModelCheckpoint: saved epoch {epoch + 1} to {path}", flush=True)

    def state_dict(self) -> dict[str, Any]:
        """The best monitored value and the last path written."""
        return {"best": float_to_json(self.best), "last_saved": self.last_saved}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        best = float_from_json(state.get("best"), "ModelCheckpoint state: best")
        last_saved = state.get("last_saved")
        if last_saved is not None and not isinstance(last_saved, str):
            raise ValueError(f"ModelCheckpoint state: last_saved must be a path or null, got {last_saved!r}")
        self._monitor.best, self.last_saved = best, last_saved


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


class CSVLogger(Callback):
    """Append one CSV row per epoch: ``epoch`` (1-based) then the log keys, sorted.

    The header is written with the first row. Each row goes to the file in one
    ``write`` on a descriptor opened for appending, then ``fsync``: a crash leaves
    whole rows, never half of one.

    Args:
        path: the CSV file.
        separator: the field separator.
        append: keep an existing file (and its header's columns), e.g. when resuming;
            otherwise the file is truncated when training begins.
    """

    def __init__(self, path: str | os.PathLike, separator: str = ",", append: bool = False) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.separator = separator
        self.append = bool(append)
        self.columns: list[str] | None = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.columns = None
        if self.append and os.path.exists(self.path):
            with open(self.path, encoding="utf-8") as file:
                header = file.readline().rstrip("\r\n")
            if header:
                self.columns = header.split(self.separator)
        elif os.path.exists(self.path):
            with open(self.path, "w", encoding="utf-8"):
                pass

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None:
        row = {"epoch": epoch + 1, **(logs or {})}
        text = ""
        if self.columns is None:
            self.columns = ["epoch"] + sorted(k for k in row if k != "epoch")
            text = self.separator.join(self.columns) + "\n"
        text += self.separator.join(_csv_value(row.get(column, "")) for column in self.columns) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            data = text.encode("utf-8")
            written = os.write(fd, data)
            while written < len(data):  # short write: finish it
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)


def _csv_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


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
