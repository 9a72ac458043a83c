"""The callback contract (:class:`Callback`, :class:`CallbackList`) and what the built-in
callbacks share: JSON-safe floats for their saved state, counters checked on load, and the
"did the monitored value improve" test of the callbacks that watch a log key."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from typing import Any

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
