"""Saving the model while it trains: :class:`ModelCheckpoint` (every epoch, or the best only)."""

from __future__ import annotations

import os
import sys
from typing import Any

from nnframe import backend
from nnframe.callbacks.base import Callback, Logs, _Monitor, float_from_json, float_to_json


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
