"""``nnframe train``: the model to train (the seed's MLP or a JSON spec, fresh or resumed), the data
and its standardisation, the run and its report (registered by :mod:`nnframe.cli`).

``train`` standardises the pixels with the training set's per-channel mean and standard
deviation and stores them (with the data set's name and class names) in the checkpoint's
``metadata``, so ``evaluate`` and ``predict`` apply exactly the same preprocessing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from nnframe import callbacks, cli_types, data, layer, loss, optimizer, plot
from nnframe import random as nn_random
from nnframe.cli_common import (
    DEFAULT_DATASET,
    EVAL_BATCH_SIZE,
    PROG,
    CLIError,
    check_input_shape,
    data_options,
    format_eval,
    load_model,
    one_line,
    preprocess,
    print_error,
    say,
)
from nnframe.cli_paths import DEFAULT_OUT, literal_path, resolve_out, resume_command
from nnframe.errors import ShapeError
from nnframe.graph import Graph
from nnframe.layer.container import Container
from nnframe.model import Model
from nnframe.net import Net

MLP_SIZES = (200, 100, 70, 30)  # the seed's hidden layers; the output layer has one unit per class
_OPTIMIZERS = {cls.__name__.lower(): cls.__name__ for cls in vars(optimizer).values()
               if isinstance(cls, type) and issubclass(cls, optimizer.BaseOptimizer)
               and cls is not optimizer.BaseOptimizer}


def _optimizer_name(text: str) -> str:
    name = _OPTIMIZERS.get(text.lower())
    if name is None:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {text!r}; expected one of {', '.join(sorted(_OPTIMIZERS))}")
    return name


def add_parser(commands: Any) -> None:
    """Register ``train`` on the ``nnframe`` command's sub-parsers."""
    p = commands.add_parser(
        "train", help="train a model and write a checkpoint",
        description="Train a classifier (default: the seed's 784-200-100-70-30-10 ReLU MLP on Fashion-MNIST, "
                    "Adam, lr 2e-4, batch 128) with a progress bar and per-epoch train/validation metrics, "
                    "then report the test loss and accuracy. Pixels are standardised with the training set's "
                    "per-channel mean and standard deviation, which are stored in the checkpoint.",
    )
    data_options(p, f"the data set to train on (default {DEFAULT_DATASET}; with --resume, the checkpoint's)")
    p.add_argument("--model", default=None, metavar="mlp|SPEC.json",
                   help="'mlp' (default): Flatten, then Dense 200-100-70-30 with ReLU, then one output per "
                        'class; or a JSON file {"layers": [{"class": "Conv2D", "config": {...}}, ...]} '
                        "as read by nnframe.net.Net.from_config (the last layer gives the class scores)")
    p.add_argument("--epochs", type=cli_types.positive_int, default=20, metavar="N",
                   help="total number of epochs; with --resume, training continues up to this epoch (default 20)")
    p.add_argument("--batch-size", type=cli_types.positive_int, default=None, metavar="N",
                   help="training batch size (default 128; with --resume, the checkpoint's)")
    p.add_argument("--lr", type=cli_types.positive_float, default=None, metavar="LR",
                   help="learning rate (default 2e-4)")
    p.add_argument("--optimizer", type=_optimizer_name, default=None, metavar="NAME",
                   help=f"one of {', '.join(sorted(_OPTIMIZERS))} (default adam)")
    p.add_argument("--seed", type=cli_types.non_negative_int, default=0, metavar="N",
                   help="seed for the initial weights, the shuffling and the validation split; the same seed "
                        "gives the same run, bit for bit (default 0)")
    p.add_argument("--validation-split", type=cli_types.fraction, default=None, metavar="F",
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
            raise CLIError(f"model spec {path!r}: {one_line(exc)}") from None
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
        raise CLIError(f"model spec {path!r}: {one_line(exc)}") from None


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


def _fmt_duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


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
    model = load_model(args.resume)
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
        check_input_shape(model, x_train.shape[1:], f"{dataset}'s images")
        x_train = preprocess(x_train, model, f"checkpoint {args.resume!r}")
    x_test = preprocess(x_test, model)

    split = settings["validation_split"]
    n_val = int(round(len(x_train) * split)) if split else 0
    say(f"{PROG} train: {dataset} from {location}, {len(x_train) - n_val} training / {n_val} validation / "
         f"{len(x_test)} test "
         f"images of shape {tuple(x_train.shape[1:])}; {type(model.optimizer).__name__} lr {model.optimizer.lr:g}, "
         f"batch size {settings['batch_size']}, "
         f"epochs {model.epoch + 1}..{args.epochs}, seed {settings['seed']}")
    try:
        model.summary(input_shape=x_train.shape[1:], print_fn=say)
    except ShapeError as exc:
        raise CLIError(f"the model does not fit {dataset}'s images {tuple(x_train.shape[1:])}: {one_line(exc)}") \
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
            print_error(f"interrupted; {args.out} holds epoch {model.epoch}; continue with: "
                   f"{resume_command(PROG, args)}")
        else:
            print_error("interrupted before the first epoch ended; no checkpoint written")
        return 130
    elapsed = time.perf_counter() - start

    results = model.evaluate(x_test, y_test, batch_size=EVAL_BATCH_SIZE)
    # the test figures travel with the checkpoint (nnframe serve's model card shows them)
    model.metadata["test"] = {**{k: float(v) for k, v in results.items()}, "samples": len(x_test)}
    model.save(args.out)
    say(f"trained {model.epoch - first_epoch} epoch(s) in {_fmt_duration(elapsed)}")
    say(f"test: {format_eval(results, len(x_test))}")
    say(f"checkpoint: {args.out}")
    if args.plot is not None and getattr(model.optimizer, "rank", 0) == 0:
        title = f"{dataset}: test accuracy {results['accuracy']:.4f}" if "accuracy" in results else dataset
        plot.plot_history(history, args.plot, title)
        say(f"curves: {args.plot}")
    return 0


def _check_outputs(model: Model, num_classes: int, dataset: str) -> None:
    """The net must give one score per class (checked on one blank image, in evaluation mode)."""
    shape = tuple(model.predict(np.zeros((1, *model.input_shape), dtype=model.net.dtype)).shape[1:])
    if shape != (num_classes,):
        raise CLIError(f"the model's last layer gives outputs of shape {shape} per image; {dataset} needs "
                       f"({num_classes},): one score per class")
