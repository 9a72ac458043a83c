"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

The pattern: write to a temporary file in the destination's directory (so the final
rename stays on one file system), flush and ``fsync`` it, ``os.replace`` it over the
destination, then ``fsync`` the directory so the rename itself survives a crash. Any
exception on the way (``KeyboardInterrupt`` included) removes the temporary file and
leaves the destination untouched. Checkpoints, downloaded data sets, IDX files, plots
and benchmark reports are all written through :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

NEW_FILE_MODE = 0o644  # what a new file gets (mkstemp alone would make it 0o600)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary binary file that replaces ``path`` when the block exits cleanly.

    The new file keeps the permission bits of the file it replaces, or gets
    ``NEW_FILE_MODE`` (``rw-r--r--``) if there was none.

    Args:
        path: the destination. Its directory must exist.

    Yields:
        A binary file object opened for writing.

    Example::

        with atomic_write("out.bin") as f:
            f.write(data)          # an exception here leaves out.bin as it was
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = NEW_FILE_MODE
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Flush a directory entry to disk (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
