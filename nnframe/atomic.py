"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

The pattern: write to a temporary file in the destination's directory (so the final
rename stays on one file system), flush and ``fsync`` it, ``os.replace`` it over the
destination, then ``fsync`` the directory so the rename itself survives a crash. Any
exception on the way (``KeyboardInterrupt`` included) removes the temporary file and
leaves the destination untouched. Checkpoints, downloaded data sets, IDX files, plots
and benchmark reports are all written through :func:`atomic_write`.

A destination that exists and is not a regular file (a device such as ``/dev/null``, a
FIFO, a folder) is refused, never replaced. A process killed mid-write leaves its
temporary file (``.NAME.XXXXXXXX.tmp``) behind; the next write of the same destination
removes such leftovers (:func:`remove_stale_temps`: only that exact pattern, only files
last modified before this process started).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

NEW_FILE_MODE = 0o644  # what a new file gets (mkstemp alone would make it 0o600)
#: when this process started using this module: temporary files older than this are not ours in flight
PROCESS_START = time.time()
_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # tempfile's name alphabet


def remove_stale_temps(path: str | os.PathLike) -> list[str]:
    """Delete temporary files a killed :func:`atomic_write` of ``path`` left behind.

    Only files named exactly like ours (``.NAME.`` + 8 of tempfile's characters + ``.tmp``,
    beside ``path``), regular, and last modified before this process started
    (:data:`PROCESS_START`), so a write in flight in another process is left alone.

    Returns:
        The names removed.
    """
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.") + f"[{_TEMP_CHARS}]{{8}}" + re.escape(".tmp"))
    removed = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if not pattern.fullmatch(name):
            continue
        candidate = path.parent / name
        with contextlib.suppress(OSError):
            info = candidate.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mtime < PROCESS_START:
                candidate.unlink()
                removed.append(name)
    return removed


def check_destination(path: str | os.PathLike) -> None:
    """Raise unless ``path`` is absent or a regular file (or a link to one).

    Raises:
        FileExistsError: naming what stands there (a device, a FIFO, a folder, ...).
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError:
        return  # e.g. a dangling link or no permission: the write itself will report it
    if not stat.S_ISREG(mode):
        kind = ("a folder" if stat.S_ISDIR(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        raise FileExistsError(f"{os.fspath(path)!r} exists and is {kind}, not a regular file: refusing to "
                              "replace it (give a file path)")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary binary file that replaces ``path`` when the block exits cleanly.

    The new file keeps the permission bits of the file it replaces, or gets
    ``NEW_FILE_MODE`` (``rw-r--r--``) if there was none.

    Args:
        path: the destination. Its directory must exist; if it exists it must be a
            regular file (or a link to one).

    Yields:
        A binary file object opened for writing.

    Example::

        with atomic_write("out.bin") as f:
            f.write(data)          # an exception here leaves out.bin as it was

    Raises:
        FileExistsError: when ``path`` exists and is not a regular file.
    """
    path = Path(path)
    check_destination(path)
    remove_stale_temps(path)
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
