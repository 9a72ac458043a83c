"""Where ``nnframe train`` writes: the checkpoint path checked once, up front, exactly as it is used.

``--out`` is a plain path (``~`` expanded, made absolute), never a ``str.format``
template; by default it is the checkpoint being resumed, else ``model.safetensors``.
An existing file is only replaced when it is the checkpoint being resumed or with
``--overwrite``; a destination that is not a regular file is always refused.
"""

from __future__ import annotations

import argparse
import os
import shlex

from nnframe.atomic import check_destination

DEFAULT_OUT = "model.safetensors"


class OutPathError(ValueError):
    """``--out`` names a place the checkpoint cannot or must not be written to."""


def resolve_out(out: str | None, resume: str | None, overwrite: bool) -> str:
    """The absolute checkpoint path a run writes, validated before training starts.

    Args:
        out: ``--out`` as given, or ``None``.
        resume: ``--resume`` as given, or ``None`` (then it is also the default ``--out``).
        overwrite: whether an existing file of another run may be replaced.

    Raises:
        OutPathError: for a missing or unwritable folder, a destination that is a folder,
            device or FIFO, or an existing file that is not the resumed checkpoint
            (without ``overwrite``).
    """
    given = out if out is not None else resume if resume is not None else DEFAULT_OUT
    path = os.path.abspath(os.path.expanduser(given))
    shown = f"--out {given!r}" + (f" ({path})" if path != given else "")
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise OutPathError(f"{shown}: folder {parent!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutPathError(f"{shown}: folder {parent!r} is not writable")
    try:
        check_destination(path)
    except FileExistsError as exc:
        raise OutPathError(f"{shown}: {exc}") from None
    if os.path.exists(path) and not overwrite:
        resumed = resume is not None and os.path.exists(resume) and os.path.samefile(path, resume)
        if not resumed:
            raise OutPathError(f"{shown} already exists and is not the checkpoint being resumed; pass "
                               "--overwrite to replace it, or choose another --out")
    return path


def literal_path(path: str) -> str:
    """``path`` escaped for :class:`~nnframe.callbacks.ModelCheckpoint`, which formats ``{...}`` fields."""
    return path.replace("{", "{{").replace("}", "}}")


def resume_command(prog: str, args: argparse.Namespace) -> str:
    """The full command that continues the run from ``args.out``, with absolute paths (copy-pastable)."""
    words = [prog, "train", "--resume", args.out, "--epochs", str(args.epochs)]
    if getattr(args, "data_dir", None):
        words += ["--data-dir", os.path.abspath(os.path.expanduser(args.data_dir))]
    if getattr(args, "no_download", False):
        words.append("--no-download")
    return " ".join(shlex.quote(w) for w in words)


def debug_enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether ``NNFRAME_DEBUG`` asks for tracebacks: set and not ``0``/``false``/``no``/``off``/empty."""
    value = (os.environ if environ is None else environ).get("NNFRAME_DEBUG", "")
    return value.strip().lower() not in ("", "0", "false", "no", "off")


# the data module's words for its arguments, and the command line's for the same things
_CLI_WORDS = (
    ("in the data_dir given", "in --data-dir"),
    ("(data_dir argument)", "(--data-dir)"),
    ("data_dir argument: not given", "--data-dir: not given"),
    ("pass data_dir=DIR (nnframe train --data-dir DIR)", "pass --data-dir DIR"),
    ("and pass data_dir=DIR", "and pass --data-dir DIR"),
    ("leave data_dir out", "leave out --data-dir"),
    ("not attempted (download=False)", "not attempted (--no-download)"),
    ("allow the download (download=True)", "leave out --no-download to allow the download"),
)


def data_error_lines(message: str) -> list[str]:
    """A data set's not-found message in the command line's words: a short first line (the
    problem), then what was tried and how to get the data, one item per line."""
    for library, cli in _CLI_WORDS:
        message = message.replace(library, cli)
    first, _, rest = message.partition("\n")
    headline = first.replace(" Places tried, in order:", "").replace(" Places tried:", "")
    return [headline, *(f"  {line.strip()}" for line in rest.splitlines() if line.strip())]
