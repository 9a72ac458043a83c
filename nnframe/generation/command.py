"""``nnframe generate CHECKPOINT --prompt TEXT``: print text sampled from a character language model.

:mod:`nnframe.cli` only registers it (:func:`add_parser`). The checkpoint must carry its
vocabulary in ``metadata["vocabulary"]`` (``examples/char_lm.py`` saves it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nnframe import cli_types


class GenerateCommandError(ValueError):
    """A problem with the generate command's arguments; printed as one line by the CLI."""


_temperature = cli_types.number_type(float, "a number >= 0", low=0)


def add_parser(commands: Any, positive_int: Any) -> None:
    """Add the ``generate`` sub-command to the CLI's sub-parsers."""
    p = commands.add_parser(
        "generate", help="print text sampled from a character language model",
        description="Continue a prompt with characters sampled from a trained character-level language model "
                    "(a checkpoint with its vocabulary in the metadata, e.g. from examples/char_lm.py) and print "
                    "the prompt and its continuation. The same --seed gives the same text.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a language-model checkpoint")
    p.add_argument("--prompt", default="\n", help="the text to continue (default: a newline)")
    p.add_argument("--length", type=positive_int, default=200, metavar="N", help="characters to add (default 200)")
    p.add_argument("--temperature", type=_temperature, default=1.0, metavar="T",
                   help="> 1 more varied, < 1 more conservative, 0 always the most likely character (default 1.0)")
    p.add_argument("--top-k", type=positive_int, default=None, metavar="K",
                   help="sample only among the K most likely characters")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampling (default: a fresh one)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint, sample and print."""
    from nnframe.generation.sampling import sample_text  # noqa: PLC0415 - keeps the CLI's start light
    from nnframe.model import Model  # noqa: PLC0415

    if not Path(args.checkpoint).exists():
        raise GenerateCommandError(f"checkpoint {args.checkpoint!r} does not exist")
    model = Model.load(args.checkpoint)
    text = sample_text(model, args.prompt, args.length, temperature=args.temperature, top_k=args.top_k,
                       seed=args.seed)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0
