"""What a run shows and records: the progress bar, the :class:`History` ``fit`` returns,
and a CSV file with a row per epoch."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nnframe.callbacks.base import Callback, Logs, float_from_json, float_to_json

if TYPE_CHECKING:  # tqdm is imported when a bar is shown: it costs ~50 ms on `import nnframe`
    from tqdm import tqdm


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
