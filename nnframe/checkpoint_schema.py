"""The schema of a checkpoint's ``config`` and ``state`` metadata, checked when the file is read.

Every field a later step uses is checked here for its type, range and finiteness, so that
code can trust it: a crafted but plausible checkpoint ends in one
:class:`~nnframe.errors.CheckpointError` naming the field, what was expected and what
was found, never in a ``TypeError`` or ``OverflowError`` somewhere later. Fields a
component checks itself (layer, loss and optimizer arguments, generator states, each
callback's state) are checked for their container type here and in full there.
"""

from __future__ import annotations

import math
from typing import Any

from nnframe.errors import CheckpointError

#: counters (epochs, steps, iterations) above this are refused: no run gets there, and
#: floats stop counting exactly beyond it
MAX_COUNT = 2**53


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise CheckpointError(f"{where} must be an integer in [0, {MAX_COUNT}], got {_show(value)}")
    return value


def _seed(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise CheckpointError(f"{where} must be an integer in [0, 2**64), got {_show(value)}")
    return value


def _number(value: Any, where: str, low: float = 0.0, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CheckpointError(f"{where} must be a number, got {_show(value)}")
    number = float(value)
    if not math.isfinite(number) or number < low or (low_open and number == low):
        bound = f"> {low}" if low_open else f">= {low}"
        raise CheckpointError(f"{where} must be a finite number {bound}, got {_show(value)}")
    return number


def _object(value: Any, where: str, optional: bool = False) -> dict[str, Any] | None:
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise CheckpointError(f"{where} must be a JSON object{' or null' if optional else ''}, got {_show(value)}")
    return value


def _string(value: Any, where: str, optional: bool = True) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise CheckpointError(f"{where} must be a string{' or null' if optional else ''}, got {_show(value)}")


def check_state(state: dict[str, Any], name: str) -> None:
    """Check the training state (``epoch``, ``step``, ``optimizer``, ``scheduler``, ``rng``, ...).

    Raises:
        CheckpointError: naming the first field that does not fit.
    """
    where = f"{name}: state"
    for key in ("epoch", "step"):
        if key in state:
            _count(state[key], f"{where}.{key}")
    if state.get("split_seed") is not None:
        _seed(state["split_seed"], f"{where}.split_seed")
    optimizer = _object(state.get("optimizer"), f"{where}.optimizer")
    _count(optimizer.get("iterations"), f"{where}.optimizer.iterations")
    _number(optimizer.get("lr"), f"{where}.optimizer.lr")
    scheduler = _object(state.get("scheduler"), f"{where}.scheduler", optional=True)
    if scheduler is not None:
        _count(scheduler.get("last_step"), f"{where}.scheduler.last_step")
        _number(scheduler.get("base_lr"), f"{where}.scheduler.base_lr")
    rng = _object(state.get("rng", {}), f"{where}.rng")
    _object(rng.get("global"), f"{where}.rng.global", optional=True)
    layers = _object(rng.get("layers", {}), f"{where}.rng.layers")
    for key, value in layers.items():
        _object(value, f"{where}.rng.layers[{key!r}]")
    _object(state.get("shuffle_rng"), f"{where}.shuffle_rng", optional=True)
    saved = _object(state.get("callbacks", {}), f"{where}.callbacks", optional=True) or {}
    for key, value in saved.items():
        _object(value, f"{where}.callbacks[{key!r}]")


def check_config(config: dict[str, Any], name: str) -> None:
    """Check the architecture and run settings (``net``, ``loss``, ``optimizer``, ``metadata``, ...).

    Raises:
        CheckpointError: naming the first field that does not fit.
    """
    where = f"{name}: config"
    for key in ("net", "loss", "optimizer"):
        _object(config.get(key), f"{where}.{key}")
    scheduler = _object(config.get("scheduler"), f"{where}.scheduler", optional=True)
    if scheduler is not None:
        _string(scheduler.get("class"), f"{where}.scheduler.class", optional=False)
    metrics = config.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, list):
            raise CheckpointError(f"{where}.metrics must be a list or null, got {_show(metrics)}")
        for index, metric in enumerate(metrics):
            if not isinstance(metric, (str, dict)):
                raise CheckpointError(f"{where}.metrics[{index}] must be a name or an object, got {_show(metric)}")
    check_metadata(config.get("metadata", {}), name)


def check_metadata(metadata: Any, name: str) -> None:
    """Check the model's ``metadata`` object and the fields nnframe's command line writes into it.

    Raises:
        CheckpointError: naming the first field that does not fit.
    """
    where = f"{name}: metadata"
    metadata = _object(metadata, where, optional=True) or {}
    _string(metadata.get("dataset"), f"{where}.dataset")
    if metadata.get("batch_size") is not None:
        _count(metadata["batch_size"], f"{where}.batch_size")
        if metadata["batch_size"] < 1:
            raise CheckpointError(f"{where}.batch_size must be at least 1, got {metadata['batch_size']}")
    if metadata.get("validation_split") is not None:
        split = _number(metadata["validation_split"], f"{where}.validation_split")
        if split >= 1.0:
            raise CheckpointError(f"{where}.validation_split must be in [0, 1), got {split}")
    if metadata.get("seed") is not None:
        _seed(metadata["seed"], f"{where}.seed")
    names = metadata.get("class_names")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise CheckpointError(f"{where}.class_names must be a list of strings, got {_show(names)}")
    pixel_range = metadata.get("pixel_range")
    if pixel_range is not None:
        if not (isinstance(pixel_range, list) and len(pixel_range) == 2):
            raise CheckpointError(f"{where}.pixel_range must be [low, high], got {_show(pixel_range)}")
        for index, value in enumerate(pixel_range):
            _number(value, f"{where}.pixel_range[{index}]", low=-math.inf)
    for key in ("preprocessing", "test"):
        _object(metadata.get(key), f"{where}.{key}", optional=True)
