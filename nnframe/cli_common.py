"""What the ``nnframe`` sub-commands share: the program's name and data sets, the one-line
errors (:class:`CLIError`, :class:`UsageError`), the data-set options, loading a checkpoint
and applying its stored preprocessing, and the report's formatting."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nnframe import data
from nnframe.model import Model

PROG = "nnframe"
DATASETS = ("mnist", "fashion-mnist", "cifar10")
DEFAULT_DATASET = "fashion-mnist"
EVAL_BATCH_SIZE = 1000


class CLIError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 1."""


class UsageError(CLIError):
    """A bad command line; printed as one line, exit status 2."""


def dataset_name(text: str) -> str:
    """The canonical data set name for ``--dataset`` (``fashion`` -> ``fashion-mnist``); an
    :class:`argparse.ArgumentTypeError` listing the choices for an unknown one."""
    key = text.lower().replace("_", "-")
    key = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)
    if key not in DATASETS:
        raise argparse.ArgumentTypeError(f"unknown data set {text!r}; expected one of {', '.join(DATASETS)}")
    return key


def data_options(p: argparse.ArgumentParser, dataset_help: str) -> None:
    """Add ``--dataset``, ``--data-dir``, ``--modified-data`` and ``--no-download`` to a sub-command."""
    p.add_argument("--dataset", type=dataset_name, default=None, metavar="NAME",
                   help=f"{' | '.join(DATASETS)}: {dataset_help}")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="a directory holding the data set's files, looked in first; then $NNFRAME_DATA, "
                        "the user cache (~/.cache/nnframe/NAME), /usr/share/datasets/NAME, and finally a "
                        "download into the user cache")
    p.add_argument("--modified-data", action="store_true",
                   help="use a local copy of a known data set even if its content differs from the published "
                        "data (checked by digest on first use)")
    p.add_argument("--no-download", action="store_true",
                   help="fail instead of downloading when no local copy of the data set is found")


def say(*parts: Any) -> None:
    """Print a line of the command's report to stdout, flushed at once."""
    print(*parts, flush=True)


def load_model(path: str) -> Model:
    """The :class:`~nnframe.model.Model` in checkpoint ``path``; a :class:`CLIError` when there is no such file."""
    if not Path(path).exists():
        raise CLIError(f"checkpoint {path!r} does not exist")
    return Model.load(path)


def preprocess(x: np.ndarray, model: Model, where: str = "checkpoint") -> np.ndarray:
    """Apply the checkpoint's stored input preprocessing to raw pixels ``x`` (N, H, W, C).

    Without stored preprocessing the values are only cast to the net's dtype
    (:func:`nnframe.data.apply_stored_preprocessing`).
    """
    try:
        return data.apply_stored_preprocessing(x, model.metadata, model.net.dtype, where)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def check_input_shape(model: Model, shape: tuple[int, ...], what: str) -> None:
    """A :class:`CLIError` when the model's per-sample input shape is known and is not ``shape`` (of ``what``)."""
    expected = model.input_shape
    if expected is not None and tuple(expected) != tuple(shape):
        raise CLIError(f"the model takes inputs of shape {tuple(expected)}, {what} has shape {tuple(shape)}")


def format_eval(results: dict[str, float], n: int) -> str:
    """``loss 0.3012 - accuracy 0.8931 (8931/10000)``: :meth:`~nnframe.model.Model.evaluate`'s
    results on ``n`` samples."""
    text = f"loss {results['loss']:.4f}"
    if "accuracy" in results:
        acc = results["accuracy"]
        text += f" - accuracy {acc:.4f} ({round(acc * n)}/{n})"
    return text


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (``path: reason`` for a plain OSError)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def print_error(message: str) -> None:
    """``nnframe: error: MESSAGE`` on stderr, on one line, after whatever stdout still holds."""
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr, flush=True)
