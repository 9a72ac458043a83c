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

This module builds the parser, registers the sub-commands and turns errors into one line;
the commands live in :mod:`nnframe.cli_train` (``train``), :mod:`nnframe.cli_checkpoint`
(``evaluate``, ``predict``, ``summary``), :mod:`nnframe.interop.export_command`,
:mod:`nnframe.serve.command` and :mod:`nnframe.generation.command`; what they share is in
:mod:`nnframe.cli_common`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from nnframe import cli_checkpoint, cli_train, cli_types, data
from nnframe.cli_checkpoint import cmd_evaluate, cmd_predict, cmd_summary
from nnframe.cli_common import (
    DATASETS,
    DEFAULT_DATASET,
    EVAL_BATCH_SIZE,
    PROG,
    CLIError,
    UsageError,
    one_line,
    preprocess,
    print_error,
)
from nnframe.cli_paths import data_error_lines, debug_enabled
from nnframe.cli_train import MLP_SIZES, cmd_train, mlp, net_from_spec
from nnframe.generation import command as generate_command
from nnframe.interop import export_command
from nnframe.serve import command as serve_command

__all__ = [  # the names users and tests import from nnframe.cli, where they were defined before the split
    "DATASETS", "DEFAULT_DATASET", "EVAL_BATCH_SIZE", "MLP_SIZES", "PROG", "CLIError", "UsageError", "build_parser",
    "cmd_evaluate", "cmd_predict", "cmd_summary", "cmd_train", "main", "mlp", "net_from_spec", "preprocess",
]


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) and do not exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


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
    cli_train.add_parser(commands)
    cli_checkpoint.add_evaluate_parser(commands)
    cli_checkpoint.add_predict_parser(commands)
    cli_checkpoint.add_summary_parser(commands)
    export_command.add_parser(commands, cli_types.positive_int)
    serve_command.add_parser(commands)
    generate_command.add_parser(commands, cli_types.positive_int)
    return parser


def _version() -> str:
    import nnframe  # noqa: PLC0415 - the package sits above cli in the import order (STYLE.md)

    return nnframe.__version__


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
        print_error(str(exc))
        return 2
    except CLIError as exc:
        print_error(str(exc))
        return 1
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130
    except data.DatasetNotFoundError as exc:  # the problem first, then what was tried, in option names
        if debug:
            raise
        headline, *details = data_error_lines(str(exc))
        print_error(headline)
        print("\n".join(details), file=sys.stderr, flush=True)
        return 1
    except BrokenPipeError:  # stdout closed early (nnframe summary ... | head -1): stop quietly
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for other tools
    except (OSError, ValueError, MemoryError) as exc:  # nnframe's errors derive from these
        if debug:
            raise
        print_error(one_line(exc))
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


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
