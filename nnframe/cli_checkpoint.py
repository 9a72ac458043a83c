"""The sub-commands that read a checkpoint: ``nnframe evaluate`` (test loss and accuracy),
``nnframe predict`` (classes of images from .npy or .png files) and ``nnframe summary``
(layers, training progress, preprocessing); registered by :mod:`nnframe.cli`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from nnframe import cli_types, data
from nnframe.cli_common import (
    EVAL_BATCH_SIZE,
    PROG,
    CLIError,
    check_input_shape,
    data_options,
    format_eval,
    load_model,
    one_line,
    preprocess,
    say,
)


def add_evaluate_parser(commands: Any) -> None:
    """Register ``evaluate`` on the ``nnframe`` command's sub-parsers."""
    p = commands.add_parser(
        "evaluate", help="test loss and accuracy of a checkpoint",
        description="Print the loss and accuracy of a trained checkpoint on its data set's test images, "
                    "with the preprocessing stored in the checkpoint.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint written by 'nnframe train'")
    data_options(p, "the test set to use (default: the one the checkpoint was trained on)")
    p.add_argument("--batch-size", type=cli_types.positive_int, default=EVAL_BATCH_SIZE, metavar="N",
                   help=f"evaluation batch size; only the speed depends on it (default {EVAL_BATCH_SIZE}, "
                        "as 'nnframe train' uses for its final test figures)")
    p.add_argument("--force", action="store_true",
                   help="evaluate on a --dataset other than the one the checkpoint was trained on")
    p.set_defaults(handler=cmd_evaluate)


def add_predict_parser(commands: Any) -> None:
    """Register ``predict`` on the ``nnframe`` command's sub-parsers."""
    p = commands.add_parser(
        "predict", help="classify images from .npy or .png files",
        description="Print the predicted class and its probability for every image. A .npy file holds "
                    "one image (H, W, C) or (H, W), or a batch (N, H, W, C) or (N, H, W), with pixel values "
                    "0..255 as in the data set; a .png file (8-bit grayscale, RGB or RGBA) holds one image, "
                    "fitted to the model's input as nnframe serve does (nnframe.data.fit_image): alpha over "
                    "white, colour to gray for a grayscale model, light backgrounds inverted, and a picture of "
                    "another size cropped to its object and resized.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint written by 'nnframe train'")
    p.add_argument("files", nargs="+", metavar="FILE", help="one or more .npy or .png files")
    p.add_argument("--top", type=cli_types.positive_int, default=3, metavar="K",
                   help="also list the K most probable classes (default 3)")
    p.set_defaults(handler=cmd_predict)


def add_summary_parser(commands: Any) -> None:
    """Register ``summary`` on the ``nnframe`` command's sub-parsers."""
    p = commands.add_parser(
        "summary", help="layers, output shapes and parameter counts of a checkpoint",
        description="Print a checkpoint's layers with their output shapes and parameter counts, its loss, "
                    "optimizer and training progress, and the data set and preprocessing it was trained with.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint file")
    p.set_defaults(handler=cmd_summary)


def _load_test_set(args: argparse.Namespace, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    (_, _), (x_test, y_test) = data.load_dataset(dataset, data_dir=args.data_dir, download=not args.no_download,
                                                 verify=not args.modified_data)
    return x_test, y_test


def _standardization(meta: dict[str, Any], where: str) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        return data.stored_standardization(meta, where)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``nnframe evaluate CKPT``: loss and accuracy on the test set."""
    model = load_model(args.checkpoint)
    stored = model.metadata.get("dataset")
    dataset = args.dataset or stored
    if dataset is None:
        raise CLIError(f"checkpoint {args.checkpoint!r} does not say which data set it was trained on; "
                       "pass --dataset")
    if stored is not None and dataset != stored and not args.force:
        raise CLIError(f"checkpoint {args.checkpoint!r} was trained on {stored}, not {dataset}; its test figures "
                       f"on {dataset} would mean nothing (pass --force to evaluate on {dataset} anyway)")
    x_test, y_test = _load_test_set(args, dataset)
    check_input_shape(model, x_test.shape[1:], f"{dataset}'s test set")
    results = model.evaluate(preprocess(x_test, model, f"checkpoint {args.checkpoint!r}"), y_test,
                             batch_size=args.batch_size)
    say(f"{args.checkpoint} on the {dataset} test set ({len(x_test)} images): {format_eval(results, len(x_test))}")
    return 0


def _read_images(path: str, shape: tuple[int, ...]) -> np.ndarray:
    """Raw pixels ``(N, *shape)`` from a .npy or .png file, fitted to the model's input ``shape`` (H, W, C)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise CLIError(f"{path}: not a plain .npy array ({one_line(exc)})") from None
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "uif":
            raise CLIError(f"{path}: expected a numeric array, got dtype {getattr(array, 'dtype', None)}")
    elif suffix == ".png":
        try:  # the same fitting as nnframe serve's (nnframe.data.images)
            return data.fit_image(data.read_png(path), shape)[None]  # (H, W, C) -> (1, H, W, C)
        except data.ImageError as exc:
            raise CLIError(f"{path}: {exc}") from None
    else:
        raise CLIError(f"{path}: expected a .npy or .png file")
    if array.shape == shape:
        return array[None]  # (H, W, C) -> (1, H, W, C)
    if array.shape[1:] == shape and array.shape[0] > 0:
        return array
    if shape and shape[-1] == 1 and array.shape in (shape[:-1],):
        return array[None, ..., None]  # (H, W) -> (1, H, W, 1)
    if shape and shape[-1] == 1 and array.ndim == len(shape) and array.shape[1:] == shape[:-1] and len(array):
        return array[..., None]  # (N, H, W) -> (N, H, W, 1)
    raise CLIError(f"{path}: an array of shape {array.shape} does not fit the model's input {shape}: expected "
                   f"{shape} or (N, {', '.join(map(str, shape))})")


def _check_pixels(path: str, images: np.ndarray, pixel_range: tuple[float, float] | None) -> np.ndarray:
    """:func:`nnframe.data.check_pixel_values`, with a notice on stderr when 0..1 floats are rescaled."""
    try:
        images, rescaled = data.check_pixel_values(images, pixel_range)
    except ValueError as exc:
        raise CLIError(f"{path}: {exc}") from None
    if rescaled:
        print(f"{PROG}: note: {path}: float pixels in 0..1 taken as 0..255 (multiplied by 255), the range "
              "the model was trained on", file=sys.stderr, flush=True)
    return images


def cmd_predict(args: argparse.Namespace) -> int:
    """``nnframe predict CKPT FILE...``: predicted class and probabilities per image."""
    model = load_model(args.checkpoint)
    shape = tuple(model.input_shape or ())
    names = model.metadata.get("class_names")
    try:
        pixel_range = data.stored_pixel_range(model.metadata, f"checkpoint {args.checkpoint!r}")
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    for path in args.files:
        images = _check_pixels(path, _read_images(path, shape), pixel_range)
        try:
            probs = np.asarray(model.predict_proba(preprocess(images, model, f"checkpoint {args.checkpoint!r}")),
                               dtype=np.float64)
        except TypeError as exc:  # a loss without class probabilities (e.g. MSE)
            raise CLIError(f"predict needs a classifier: {exc}") from None
        if probs.ndim != 2:
            raise CLIError(f"predict needs (N, K) class scores; the model gives shape {probs.shape}")
        for index, row in enumerate(probs):
            label = path if len(probs) == 1 else f"{path}[{index}]"
            order = np.argsort(-row, kind="stable")[: args.top]
            top = ", ".join(f"{_class_name(names, k)} {row[k]:.4f}" for k in order)
            best = int(order[0])
            say(f"{label}: class {best} ({_class_name(names, best)}) p={row[best]:.4f}   top {len(order)}: {top}")
    return 0


def _class_name(names: Any, k: int) -> str:
    if isinstance(names, list) and 0 <= k < len(names):
        return str(names[k])
    return str(k)


def cmd_summary(args: argparse.Namespace) -> int:
    """``nnframe summary CKPT``: the layer table and what the checkpoint was trained on."""
    model = load_model(args.checkpoint)
    if model.input_shape is None:
        raise CLIError(f"checkpoint {args.checkpoint!r} does not record its input shape")
    model.summary()
    meta = model.metadata
    say(f"Trained: {model.epoch} epoch(s), {model.global_step} step(s); learning rate now "
         f"{model.optimizer.lr:.4g}")
    history = model.history
    if history is not None and history.epoch:
        last = {key: values[-1] for key, values in history.history.items() if values and key != "lr"}
        say(f"Last epoch ({history.epoch[-1] + 1}): "
             + ", ".join(f"{key} {value:.4f}" for key, value in sorted(last.items())))
    if meta.get("dataset"):
        say(f"Data set: {meta['dataset']} (batch size {meta.get('batch_size', '?')}, validation split "
             f"{meta.get('validation_split', '?')}, seed {meta.get('seed', '?')})")
    stats = _standardization(meta, f"checkpoint {args.checkpoint!r}")
    if stats is not None:
        mean, std = stats
        say("Input preprocessing: (pixels - mean) / std per channel, mean "
             f"{[round(float(v), 4) for v in mean]}, std {[round(float(v), 4) for v in std]}")
    return 0
