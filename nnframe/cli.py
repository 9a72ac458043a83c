"""The ``nnframe`` command (also ``python -m nnframe``): train, evaluate, predict, summary.

::

    nnframe train --epochs 20 --plot curves.png     # the seed's MLP on Fashion-MNIST
    nnframe evaluate model.safetensors              # test loss and accuracy
    nnframe predict model.safetensors shoe.png      # class and probabilities
    nnframe summary model.safetensors               # layers, shapes, parameter counts

``train`` standardises the pixels with the training set's per-channel mean and
standard deviation and stores them (with the data set's name and class names) in
the checkpoint's ``metadata``, so ``evaluate`` and ``predict`` apply exactly the
same preprocessing. Errors are reported as one line on stderr with exit status 1
(2 for a bad command line); set ``NNFRAME_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nnframe import callbacks, cli_types, data, layer, loss, optimizer, plot
from nnframe import random as nn_random
from nnframe.cli_paths import (
    DEFAULT_OUT,
    data_error_lines,
    debug_enabled,
    literal_path,
    resolve_out,
    resume_command,
)
from nnframe.errors import ShapeError
from nnframe.generation import command as generate_command
from nnframe.graph import Graph
from nnframe.interop import export_command
from nnframe.layer.container import Container
from nnframe.model import Model
from nnframe.net import Net
from nnframe.serve import command as serve_command

PROG = "nnframe"
DATASETS = ("mnist", "fashion-mnist", "cifar10")
DEFAULT_DATASET = "fashion-mnist"
#: Batch size of every test-set evaluation: ``train``'s final figure and ``evaluate`` must agree exactly.
EVAL_BATCH_SIZE = 1000
MLP_SIZES = (200, 100, 70, 30)  # the seed's hidden layers; the output layer has one unit per class
_OPTIMIZERS = {cls.__name__.lower(): cls.__name__ for cls in vars(optimizer).values()
               if isinstance(cls, type) and issubclass(cls, optimizer.BaseOptimizer)
               and cls is not optimizer.BaseOptimizer}


class CLIError(Exception):
    """A problem with what the user asked for; printed as one line, exit status 1."""


class UsageError(CLIError):
    """A bad command line; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) and do not exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


# ------------------------------------------------------------------- option types
_positive_int = cli_types.positive_int
_seed = cli_types.non_negative_int
_positive_float = cli_types.positive_float
_fraction = cli_types.fraction


def _optimizer_name(text: str) -> str:
    name = _OPTIMIZERS.get(text.lower())
    if name is None:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {text!r}; expected one of {', '.join(sorted(_OPTIMIZERS))}")
    return name


def _dataset_name(text: str) -> str:
    key = text.lower().replace("_", "-")
    key = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)
    if key not in DATASETS:
        raise argparse.ArgumentTypeError(f"unknown data set {text!r}; expected one of {', '.join(DATASETS)}")
    return key


# ------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The ``nnframe`` argument parser with its sub-commands."""
    parser = _Parser(
        prog=PROG,
        description="Train, evaluate and inspect nnframe models on MNIST, Fashion-MNIST and CIFAR-10.",
        epilog="Run 'nnframe COMMAND --help' for a command's options. Errors are one line on stderr "
               "(exit status 1; 2 for a bad command line); NNFRAME_DEBUG=1 shows the traceback instead.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_summary(commands)
    export_command.add_parser(commands, _positive_int)
    serve_command.add_parser(commands)
    generate_command.add_parser(commands, _positive_int)
    return parser


def _data_options(p: argparse.ArgumentParser, dataset_help: str) -> None:
    p.add_argument("--dataset", type=_dataset_name, default=None, metavar="NAME",
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


def _add_train(commands: Any) -> None:
    p = commands.add_parser(
        "train", help="train a model and write a checkpoint",
        description="Train a classifier (default: the seed's 784-200-100-70-30-10 ReLU MLP on Fashion-MNIST, "
                    "Adam, lr 2e-4, batch 128) with a progress bar and per-epoch train/validation metrics, "
                    "then report the test loss and accuracy. Pixels are standardised with the training set's "
                    "per-channel mean and standard deviation, which are stored in the checkpoint.",
    )
    _data_options(p, f"the data set to train on (default {DEFAULT_DATASET}; with --resume, the checkpoint's)")
    p.add_argument("--model", default=None, metavar="mlp|SPEC.json",
                   help="'mlp' (default): Flatten, then Dense 200-100-70-30 with ReLU, then one output per "
                        'class; or a JSON file {"layers": [{"class": "Conv2D", "config": {...}}, ...]} '
                        "as read by nnframe.net.Net.from_config (the last layer gives the class scores)")
    p.add_argument("--epochs", type=_positive_int, default=20, metavar="N",
                   help="total number of epochs; with --resume, training continues up to this epoch (default 20)")
    p.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                   help="training batch size (default 128; with --resume, the checkpoint's)")
    p.add_argument("--lr", type=_positive_float, default=None, metavar="LR",
                   help="learning rate (default 2e-4)")
    p.add_argument("--optimizer", type=_optimizer_name, default=None, metavar="NAME",
                   help=f"one of {', '.join(sorted(_OPTIMIZERS))} (default adam)")
    p.add_argument("--seed", type=_seed, default=0, metavar="N",
                   help="seed for the initial weights, the shuffling and the validation split; the same seed "
                        "gives the same run, bit for bit (default 0)")
    p.add_argument("--validation-split", type=_fraction, default=None, metavar="F",
                   help="fraction of the training set held out for validation metrics each epoch; "
                        "0 turns validation off (default 0.1; with --resume, the checkpoint's)")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="checkpoint file, rewritten (atomically) after every epoch (default: the --resume file, "
                        f"else {DEFAULT_OUT}); an existing file of another run is only replaced with --overwrite")
    p.add_argument("--overwrite", action="store_true",
                   help="allow --out to replace an existing file that is not the checkpoint being resumed")
    p.add_argument("--resume", default=None, metavar="CKPT",
                   help="continue the run saved in CKPT (architecture, weights, optimizer, generators, epoch); "
                        "the result is bit-identical to a run that was never interrupted")
    p.add_argument("--distributed", action="store_true",
                   help="data-parallel over MPI ranks, --batch-size per rank (on by itself when mpirun starts "
                        "more than one process; needs nnframe[mpi])")
    p.add_argument("--plot", default=None, metavar="FILE.png",
                   help="save loss and accuracy per epoch (train and validation) to this image; "
                        "needs matplotlib: pip install 'nnframe[plot]'")
    p.set_defaults(handler=cmd_train)


def _add_evaluate(commands: Any) -> None:
    p = commands.add_parser(
        "evaluate", help="test loss and accuracy of a checkpoint",
        description="Print the loss and accuracy of a trained checkpoint on its data set's test images, "
                    "with the preprocessing stored in the checkpoint.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint written by 'nnframe train'")
    _data_options(p, "the test set to use (default: the one the checkpoint was trained on)")
    p.add_argument("--batch-size", type=_positive_int, default=EVAL_BATCH_SIZE, metavar="N",
                   help=f"evaluation batch size; only the speed depends on it (default {EVAL_BATCH_SIZE}, "
                        "as 'nnframe train' uses for its final test figures)")
    p.add_argument("--force", action="store_true",
                   help="evaluate on a --dataset other than the one the checkpoint was trained on")
    p.set_defaults(handler=cmd_evaluate)


def _add_predict(commands: Any) -> None:
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
    p.add_argument("--top", type=_positive_int, default=3, metavar="K",
                   help="also list the K most probable classes (default 3)")
    p.set_defaults(handler=cmd_predict)


def _add_summary(commands: Any) -> None:
    p = commands.add_parser(
        "summary", help="layers, output shapes and parameter counts of a checkpoint",
        description="Print a checkpoint's layers with their output shapes and parameter counts, its loss, "
                    "optimizer and training progress, and the data set and preprocessing it was trained with.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint file")
    p.set_defaults(handler=cmd_summary)


# ------------------------------------------------------------------------ helpers
def _version() -> str:
    import nnframe  # noqa: PLC0415 - the package sits above cli in the import order (STYLE.md)

    return nnframe.__version__


def _say(*parts: Any) -> None:
    print(*parts, flush=True)


def _check_writable(path: str, what: str) -> None:
    """Fail before training, not after it, when ``path`` cannot be written."""
    parent = Path(path).expanduser().resolve().parent
    if not parent.is_dir():
        raise CLIError(f"{what} {path!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise CLIError(f"{what} {path!r}: directory {str(parent)!r} is not writable")
    if Path(path).is_dir():
        raise CLIError(f"{what} {path!r} is a directory; give a file name")


def _require_matplotlib() -> None:
    try:
        plot.require_matplotlib()
    except ImportError:
        raise CLIError(f"--plot: {plot.MATPLOTLIB_MISSING} (or leave out --plot)") from None


def mlp(num_classes: int) -> Net:
    """The seed's MLP: Flatten, Dense 200-100-70-30 with ReLU, Dense ``num_classes`` (logits)."""
    layers: list[layer.Layer] = [layer.Flatten()]
    for width in MLP_SIZES:
        layers += [layer.Dense(width), layer.ReLU()]
    layers.append(layer.Dense(num_classes))
    return Net(layers)


def net_from_spec(path: str) -> Container:
    """A net from a JSON spec ``{"layers": [{"class": ..., "config": {...}}, ...]}``, or a graph
    from ``{"inputs": ..., "nodes": [{"class", "config", "inputs"}, ...], "outputs": ...}``
    (see :meth:`nnframe.graph.Graph.get_config`).

    Raises:
        CLIError: naming the file and what is wrong with it.
    """
    try:
        with open(path, encoding="utf-8") as file:
            spec = json.load(file)
    except OSError as exc:
        raise CLIError(f"model spec {path!r}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CLIError(f"model spec {path!r} is not valid JSON: {exc}") from None
    if isinstance(spec, dict) and "nodes" in spec:
        try:
            return Graph.from_config(spec)
        except (TypeError, ValueError, KeyError) as exc:
            raise CLIError(f"model spec {path!r}: {_one_line(exc)}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("layers"), list) or not spec["layers"]:
        raise CLIError(f'model spec {path!r}: expected a JSON object {{"layers": [{{"class": ..., '
                       f'"config": {{...}}}}, ...]}} with at least one layer')
    for index, entry in enumerate(spec["layers"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("class"), str) \
                or not isinstance(entry.get("config", {}), dict):
            raise CLIError(f'model spec {path!r}: layer {index} must be {{"class": NAME, "config": {{...}}}}, '
                           f"got {entry!r}")
    try:
        return Net.from_config(spec)
    except (TypeError, ValueError, KeyError) as exc:
        raise CLIError(f"model spec {path!r}: {_one_line(exc)}") from None


def _standardization(meta: dict[str, Any], where: str) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        return data.stored_standardization(meta, where)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def preprocess(x: np.ndarray, model: Model, where: str = "checkpoint") -> np.ndarray:
    """Apply the checkpoint's stored input preprocessing to raw pixels ``x`` (N, H, W, C).

    Without stored preprocessing the values are only cast to the net's dtype
    (:func:`nnframe.data.apply_stored_preprocessing`).
    """
    try:
        return data.apply_stored_preprocessing(x, model.metadata, model.net.dtype, where)
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _load(path: str) -> Model:
    if not Path(path).exists():
        raise CLIError(f"checkpoint {path!r} does not exist")
    return Model.load(path)


def _load_test_set(args: argparse.Namespace, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    (_, _), (x_test, y_test) = data.load_dataset(dataset, data_dir=args.data_dir, download=not args.no_download,
                                                 verify=not args.modified_data)
    return x_test, y_test


def _check_input_shape(model: Model, shape: tuple[int, ...], what: str) -> None:
    expected = model.input_shape
    if expected is not None and tuple(expected) != tuple(shape):
        raise CLIError(f"the model takes inputs of shape {tuple(expected)}, {what} has shape {tuple(shape)}")


def _fmt_eval(results: dict[str, float], n: int) -> str:
    text = f"loss {results['loss']:.4f}"
    if "accuracy" in results:
        acc = results["accuracy"]
        text += f" - accuracy {acc:.4f} ({round(acc * n)}/{n})"
    return text


def _fmt_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _one_line(exc: BaseException) -> str:
    """The exception's message on one line (``path: reason`` for a plain OSError)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


# -------------------------------------------------------------------------- train
def _train_setup(args: argparse.Namespace) -> tuple[Model, str, dict[str, Any]]:
    """The model to train, the data set's name, and the run's settings (fresh or resumed)."""
    if args.resume is None:
        dataset = args.dataset or DEFAULT_DATASET
        nn_random.set_seed(args.seed)
        net = mlp(10) if args.model in (None, "mlp") else net_from_spec(args.model)
        opt = optimizer.get(args.optimizer or "Adam", lr=2e-4 if args.lr is None else args.lr)
        model = Model(net, loss.SoftmaxCrossEntropy(), opt)
        settings = {"batch_size": args.batch_size or 128,
                    "validation_split": 0.1 if args.validation_split is None else args.validation_split,
                    "seed": args.seed}
        return model, dataset, settings
    for option in ("model", "lr", "optimizer"):
        if getattr(args, option) is not None:
            raise CLIError(f"--{option} cannot be combined with --resume: the checkpoint holds the "
                           f"{option if option != 'lr' else 'learning rate'} of the run")
    model = _load(args.resume)
    meta = model.metadata
    stored = meta.get("dataset")
    if args.dataset is not None and stored is not None and args.dataset != stored:
        raise CLIError(f"--resume: checkpoint {args.resume!r} was trained on {stored}, not {args.dataset}")
    dataset = args.dataset or stored or DEFAULT_DATASET
    if model.epoch >= args.epochs:
        raise CLIError(f"--resume: checkpoint {args.resume!r} has already trained {model.epoch} epochs; "
                       f"pass --epochs greater than {model.epoch} to train more")
    settings = {"batch_size": args.batch_size or int(meta.get("batch_size", 128)),
                "validation_split": float(meta.get("validation_split", 0.1) if args.validation_split is None
                                          else args.validation_split),
                "seed": meta.get("seed", args.seed)}
    return model, dataset, settings


def cmd_train(args: argparse.Namespace) -> int:
    """``nnframe train``: fit, report per-epoch figures, save the checkpoint, test, plot.

    Under ``mpirun -n P`` (or with ``--distributed``) every rank runs this with its share
    of each batch; rank 0 alone prints, checkpoints and plots (:mod:`nnframe.distributed`).
    """
    from nnframe import distributed  # mpi4py itself is imported only when used

    if args.distributed or distributed.launched_world_size() > 1:
        args.distributed = True
        return distributed.run_cli_rank(_train, args)
    return _train(args)


def _train(args: argparse.Namespace) -> int:
    if args.model not in (None, "mlp") and args.resume is None and not Path(args.model).is_file():
        raise CLIError(f"--model must be 'mlp' or a JSON spec file; {args.model!r} is neither")
    args.out = resolve_out(args.out, args.resume, args.overwrite)
    if args.plot is not None:
        _require_matplotlib()
        _check_writable(args.plot, "--plot")
    model, dataset, settings = _train_setup(args)

    location = data.locate_dataset(dataset, data_dir=args.data_dir, download=not args.no_download)
    (x_train, y_train), (x_test, y_test) = data.load_dataset(dataset, data_dir=location, download=False,
                                                             verify=not args.modified_data)
    num_classes = len(data.CLASS_NAMES[dataset])
    if args.resume is None:
        pixel_range = data.value_range(x_train)
        x_train, mean, std = data.standardize(x_train, dtype=model.net.dtype)
        model.metadata = {
            "dataset": dataset,
            "class_names": list(data.CLASS_NAMES[dataset]),
            "preprocessing": {"standardize": {"mean": [float(v) for v in mean], "std": [float(v) for v in std]}},
            "pixel_range": pixel_range,
            **settings,
        }
        model.input_shape = x_train.shape[1:]
    else:
        _check_input_shape(model, x_train.shape[1:], f"{dataset}'s images")
        x_train = preprocess(x_train, model, f"checkpoint {args.resume!r}")
    x_test = preprocess(x_test, model)

    split = settings["validation_split"]
    n_val = int(round(len(x_train) * split)) if split else 0
    _say(f"{PROG} train: {dataset} from {location}, {len(x_train) - n_val} training / {n_val} validation / "
         f"{len(x_test)} test "
         f"images of shape {tuple(x_train.shape[1:])}; {type(model.optimizer).__name__} lr {model.optimizer.lr:g}, "
         f"batch size {settings['batch_size']}, "
         f"epochs {model.epoch + 1}..{args.epochs}, seed {settings['seed']}")
    try:
        model.summary(input_shape=x_train.shape[1:], print_fn=_say)
    except ShapeError as exc:
        raise CLIError(f"the model does not fit {dataset}'s images {tuple(x_train.shape[1:])}: {_one_line(exc)}") \
            from None
    _check_outputs(model, num_classes, dataset)

    start, first_epoch = time.perf_counter(), model.epoch
    try:
        history = model.fit(
            x_train, y_train, epochs=args.epochs, batch_size=settings["batch_size"], validation_split=split,
            callbacks=[callbacks.ModelCheckpoint(literal_path(args.out))], verbose=1,
            resume_from=args.resume, rng=None if args.resume else settings["seed"], distributed=args.distributed,
        )
    except KeyboardInterrupt:
        sys.stderr.write("\n")  # off the progress bar's line
        if model.epoch > first_epoch:
            _error(f"interrupted; {args.out} holds epoch {model.epoch}; continue with: "
                   f"{resume_command(PROG, args)}")
        else:
            _error("interrupted before the first epoch ended; no checkpoint written")
        return 130
    elapsed = time.perf_counter() - start

    results = model.evaluate(x_test, y_test, batch_size=EVAL_BATCH_SIZE)
    # the test figures travel with the checkpoint (nnframe serve's model card shows them)
    model.metadata["test"] = {**{k: float(v) for k, v in results.items()}, "samples": len(x_test)}
    model.save(args.out)
    _say(f"trained {model.epoch - first_epoch} epoch(s) in {_fmt_duration(elapsed)}")
    _say(f"test: {_fmt_eval(results, len(x_test))}")
    _say(f"checkpoint: {args.out}")
    if args.plot is not None and getattr(model.optimizer, "rank", 0) == 0:
        title = f"{dataset}: test accuracy {results['accuracy']:.4f}" if "accuracy" in results else dataset
        plot.plot_history(history, args.plot, title)
        _say(f"curves: {args.plot}")
    return 0


def _check_outputs(model: Model, num_classes: int, dataset: str) -> None:
    """The net must give one score per class (checked on one blank image, in evaluation mode)."""
    shape = tuple(model.predict(np.zeros((1, *model.input_shape), dtype=model.net.dtype)).shape[1:])
    if shape != (num_classes,):
        raise CLIError(f"the model's last layer gives outputs of shape {shape} per image; {dataset} needs "
                       f"({num_classes},): one score per class")


# ------------------------------------------------------------- evaluate / predict
def cmd_evaluate(args: argparse.Namespace) -> int:
    """``nnframe evaluate CKPT``: loss and accuracy on the test set."""
    model = _load(args.checkpoint)
    stored = model.metadata.get("dataset")
    dataset = args.dataset or stored
    if dataset is None:
        raise CLIError(f"checkpoint {args.checkpoint!r} does not say which data set it was trained on; "
                       "pass --dataset")
    if stored is not None and dataset != stored and not args.force:
        raise CLIError(f"checkpoint {args.checkpoint!r} was trained on {stored}, not {dataset}; its test figures "
                       f"on {dataset} would mean nothing (pass --force to evaluate on {dataset} anyway)")
    x_test, y_test = _load_test_set(args, dataset)
    _check_input_shape(model, x_test.shape[1:], f"{dataset}'s test set")
    results = model.evaluate(preprocess(x_test, model, f"checkpoint {args.checkpoint!r}"), y_test,
                             batch_size=args.batch_size)
    _say(f"{args.checkpoint} on the {dataset} test set ({len(x_test)} images): {_fmt_eval(results, len(x_test))}")
    return 0


def _read_images(path: str, shape: tuple[int, ...]) -> np.ndarray:
    """Raw pixels ``(N, *shape)`` from a .npy or .png file, fitted to the model's input ``shape`` (H, W, C)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise CLIError(f"{path}: not a plain .npy array ({_one_line(exc)})") from None
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
    model = _load(args.checkpoint)
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
            _say(f"{label}: class {best} ({_class_name(names, best)}) p={row[best]:.4f}   top {len(order)}: {top}")
    return 0


def _class_name(names: Any, k: int) -> str:
    if isinstance(names, list) and 0 <= k < len(names):
        return str(names[k])
    return str(k)


def cmd_summary(args: argparse.Namespace) -> int:
    """``nnframe summary CKPT``: the layer table and what the checkpoint was trained on."""
    model = _load(args.checkpoint)
    if model.input_shape is None:
        raise CLIError(f"checkpoint {args.checkpoint!r} does not record its input shape")
    model.summary()
    meta = model.metadata
    _say(f"Trained: {model.epoch} epoch(s), {model.global_step} step(s); learning rate now "
         f"{model.optimizer.lr:.4g}")
    history = model.history
    if history is not None and history.epoch:
        last = {key: values[-1] for key, values in history.history.items() if values and key != "lr"}
        _say(f"Last epoch ({history.epoch[-1] + 1}): "
             + ", ".join(f"{key} {value:.4f}" for key, value in sorted(last.items())))
    if meta.get("dataset"):
        _say(f"Data set: {meta['dataset']} (batch size {meta.get('batch_size', '?')}, validation split "
             f"{meta.get('validation_split', '?')}, seed {meta.get('seed', '?')})")
    stats = _standardization(meta, f"checkpoint {args.checkpoint!r}")
    if stats is not None:
        mean, std = stats
        _say("Input preprocessing: (pixels - mean) / std per channel, mean "
             f"{[round(float(v), 4) for v in mean]}, std {[round(float(v), 4) for v in std]}")
    return 0


# --------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``nnframe`` command; returns the exit status.

    Args:
        argv: the arguments (default ``sys.argv[1:]``).
    """
    parser = build_parser()
    debug = debug_enabled()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return int(exc.code or 0) if not isinstance(exc.code, str) else 2
        return args.handler(args)
    except UsageError as exc:
        _error(str(exc))
        return 2
    except CLIError as exc:
        _error(str(exc))
        return 1
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except data.DatasetNotFoundError as exc:  # the problem first, then what was tried, in option names
        if debug:
            raise
        headline, *details = data_error_lines(str(exc))
        _error(headline)
        print("\n".join(details), file=sys.stderr, flush=True)
        return 1
    except BrokenPipeError:  # stdout closed early (nnframe summary ... | head -1): stop quietly
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for other tools
    except (OSError, ValueError, MemoryError) as exc:  # nnframe's errors derive from these
        if debug:
            raise
        _error(_one_line(exc))
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit does not raise a second BrokenPipeError."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # a stdout without a file: nothing to do
        target = sys.stdout.fileno()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, target)
        finally:
            os.close(devnull)


def _error(message: str) -> None:
    with contextlib.suppress(OSError):
        sys.stdout.flush()
    print(f"{PROG}: error: {' '.join(message.split())}", file=sys.stderr, flush=True)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
