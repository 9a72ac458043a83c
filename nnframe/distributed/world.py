"""The MPI world: launcher detection, the lazily imported ``mpi4py``, agreement checks and failures."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

WORLD_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")

#: Callbacks that only rank 0 runs: they print or write files.

_INSTALL_HINT = ("pip install 'nnframe[mpi]' (mpi4py) on top of an MPI library, e.g. "
                 "apt-get install openmpi-bin libopenmpi-dev")


def launched_world_size(environ: Mapping[str, str] | None = None) -> int:
    """The number of processes an MPI launcher started (1 when not started by one).

    Reads the launcher's environment only (``OMPI_COMM_WORLD_SIZE``, ``PMI_SIZE``,
    ``MV2_COMM_WORLD_SIZE``), so it never imports ``mpi4py``.

    Raises:
        ValueError: when such a variable is not a positive integer.
    """
    environ = os.environ if environ is None else environ
    for name in WORLD_SIZE_VARIABLES:
        value = environ.get(name)
        if value is not None:
            if not value.strip().isdigit() or int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            return int(value)
    return 1


def mpi() -> Any:
    """The ``mpi4py.MPI`` module (initialises MPI on first use).

    Raises:
        ImportError: saying how to install it, when ``mpi4py`` or its MPI library is missing.
    """
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"nnframe.distributed needs mpi4py ({exc}); {_INSTALL_HINT}") from None
    return MPI


def world(comm: Any = None) -> Any:
    """``comm``, or ``MPI.COMM_WORLD`` when ``None``."""
    return mpi().COMM_WORLD if comm is None else comm


def rank_generator(seed: int, rank: int, like: np.random.Generator | None = None) -> np.random.Generator:
    """Rank ``rank``'s generator derived from ``seed`` (``SeedSequence(seed, spawn_key=(rank,))``).

    Args:
        seed: a non-negative integer shared by every rank.
        rank: this process's rank.
        like: make a generator of this one's bit-generator type (default PCG64).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"rank_generator: seed must be a non-negative integer, got {seed!r}")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0:
        raise ValueError(f"rank_generator: rank must be a non-negative integer, got {rank!r}")
    bit_type = type(like.bit_generator) if like is not None else np.random.PCG64
    return np.random.Generator(bit_type(np.random.SeedSequence(int(seed), spawn_key=(int(rank),))))


# ------------------------------------------------------------------------ failures
_abort_installed = False


def install_abort_on_error(comm: Any = None) -> None:
    """Make an uncaught exception on this rank abort the whole MPI job (``MPI_Abort``).

    The message names the rank; without this, the other ranks would wait in their
    next collective forever. Installed once per process (``sys.excepthook``).
    """
    global _abort_installed
    if _abort_installed:
        return
    comm = world(comm)
    previous = sys.excepthook

    def hook(exc_type: Any, exc: BaseException, tb: Any) -> None:
        previous(exc_type, exc, tb)
        print(f"nnframe.distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed with "
              f"{exc_type.__name__}: {exc}; aborting all ranks (MPI_Abort)", file=sys.stderr, flush=True)
        comm.Abort(1)

    sys.excepthook = hook
    _abort_installed = True


def abort(message: str, code: int = 1, comm: Any = None) -> None:
    """Print ``message`` naming this rank on stderr and end every rank with ``MPI_Abort(code)``."""
    comm = world(comm)
    print(f"nnframe.distributed: rank {comm.Get_rank()} of {comm.Get_size()}: {message}; "
          "aborting all ranks (MPI_Abort)", file=sys.stderr, flush=True)
    comm.Abort(int(code))


def run_cli_rank(command: Callable[[Any], int], args: Any, comm: Any = None) -> int:
    """Run a CLI command on this rank: only rank 0 prints to stdout; a failure on any rank ends all.

    An exception or a non-zero status on one rank prints the reason with the rank and
    calls ``MPI_Abort``, so no rank is left waiting.
    """
    comm = world(comm)
    install_abort_on_error(comm)
    rank, size = comm.Get_rank(), comm.Get_size()
    if rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process
    else:
        print(f"nnframe: data-parallel on {size} MPI ranks (batch size per rank)", flush=True)
    try:
        status = command(args)
    except BaseException as exc:  # noqa: BLE001 - every failure must end every rank
        abort(f"{type(exc).__name__}: {exc}", comm=comm)
        raise
    if status:
        abort(f"the command failed with status {status}", code=status, comm=comm)
    return status

def check_same_everywhere(value: Any, what: str, comm: Any = None) -> None:
    """Raise on every rank unless ``value`` (small, picklable) is equal on all ranks.

    Raises:
        RuntimeError: naming the ranks whose ``what`` differs from rank 0's.
    """
    values = world(comm).allgather(value)
    differ = [r for r, v in enumerate(values) if v != values[0]]
    if differ:
        raise RuntimeError(f"nnframe.distributed: {what} differs from rank 0's on ranks {differ}: "
                           f"rank 0 has {values[0]!r}, rank {differ[0]} has {values[differ[0]]!r}")
