"""The IDX file format of MNIST and Fashion-MNIST: a reader that checks everything, and a writer.

Layout (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS")::

    bytes 0-1   0x00 0x00
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                           0x0D float32, 0x0E float64
    byte  3     number of dimensions (1..255)
    4 bytes per dimension: its size, big-endian unsigned 32-bit
    the data, big-endian, C order, exactly prod(dims) * itemsize bytes

Files may be gzip-compressed (recognised by content, not by name).
"""

from __future__ import annotations

import gzip as gzip_module
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nnframe.atomic import atomic_write

# IDX type code -> big-endian dtype as stored in the file.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF_DTYPE = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 22  # read compressed files 4 MiB at a time, never a header-sized allocation
#: the most data bytes an IDX header may declare (MNIST's largest file holds 47 MB)
MAX_IDX_BYTES = 1 << 30


class IDXFormatError(ValueError):
    """A file is not a valid IDX file; the message names the file and what is wrong."""


def read_idx(path: str | os.PathLike, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a native-byte-order array.

    The size the header declares is checked against ``max_bytes`` (and, for a raw file,
    against the file's size) before anything is read, and the data is read into one
    buffer of that size as it streams in, so a file costs at most its declared size.

    Args:
        path: the file.
        max_bytes: the most data bytes accepted (default :data:`MAX_IDX_BYTES`).

    Returns:
        A writable array with the file's shape and dtype (``uint8`` for MNIST images
        ``(N, 28, 28)`` and labels ``(N,)``).

    Raises:
        FileNotFoundError: if the file does not exist.
        IDXFormatError: for a bad magic number, an unknown type code, zero dimensions,
            a declared size above ``max_bytes``, a truncated header or body, trailing bytes,
            or a corrupt gzip stream.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        if compressed:
            with gzip_module.GzipFile(fileobj=raw, mode="rb") as f:
                try:
                    return _read_stream(f, path, None, max_bytes)
                except (OSError, EOFError, zlib.error) as exc:
                    raise IDXFormatError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
        return _read_stream(raw, path, os.fstat(raw.fileno()).st_size, max_bytes)


def _read_stream(f: BinaryIO, path: Path, file_size: int | None, max_bytes: int) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4:
        raise IDXFormatError(f"{path}: file too short for an IDX header ({len(head)} bytes, need 4)")
    if head[:2] != b"\x00\x00":
        raise IDXFormatError(
            f"{path}: bad magic number 0x{head.hex()}: an IDX file starts with two zero bytes "
            f"(0x0000TTDD, type TT, DD dimensions)"
        )
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise IDXFormatError(f"{path}: unknown IDX type code 0x{code:02X} (expected one of {known})")
    if ndim == 0:
        raise IDXFormatError(f"{path}: IDX header declares 0 dimensions (expected at least 1)")
    dims_raw = f.read(4 * ndim)
    if len(dims_raw) < 4 * ndim:
        raise IDXFormatError(
            f"{path}: truncated header: {ndim} dimensions need {4 * ndim} bytes of sizes, "
            f"found {len(dims_raw)}"
        )
    shape = struct.unpack(f">{ndim}I", dims_raw)
    dtype = IDX_TYPES[code]
    count = 1
    for d in shape:
        count *= d
    nbytes = count * dtype.itemsize
    header = 4 + 4 * ndim
    if file_size is not None and file_size != header + nbytes:
        _raise_size_mismatch(path, shape, dtype, nbytes, file_size - header)
    if nbytes > max_bytes:
        raise IDXFormatError(f"{path}: the header declares shape {shape} of {dtype.newbyteorder('=').name} = "
                             f"{nbytes} bytes of data, more than the {max_bytes} accepted (max_bytes)")
    data = np.empty(nbytes, dtype=np.uint8)  # filled as the stream is read: pages cost only when written
    got = _read_into(f, memoryview(data))
    if got != nbytes:
        _raise_size_mismatch(path, shape, dtype, nbytes, got)
    if f.read(1):
        _raise_size_mismatch(path, shape, dtype, nbytes, None)
    array = data.view(dtype).reshape(shape)
    return array if dtype.isnative else array.byteswap().view(dtype.newbyteorder("="))


def _raise_size_mismatch(path: Path, shape: tuple[int, ...], dtype: np.dtype,
                         expected: int, found: int | None) -> None:
    what = f"header says shape {shape} of {dtype.newbyteorder('=').name} = {expected} bytes of data"
    if found is None:
        raise IDXFormatError(f"{path}: size mismatch: {what}, but the file has more bytes after them")
    kind = "truncated" if found < expected else "size mismatch"
    raise IDXFormatError(f"{path}: {kind}: {what}, found {found}")


def _read_into(f: BinaryIO, buffer: memoryview) -> int:
    """Fill ``buffer`` from ``f`` in chunks; return how many bytes arrived (fewer at end of stream)."""
    done = 0
    while done < len(buffer):
        got = f.readinto(buffer[done : done + _CHUNK])
        if not got:
            break
        done += got
    return done


def write_idx(path: str | os.PathLike, array: np.ndarray, gzip: bool = True) -> Path:
    """Write ``array`` as an IDX file, atomically (temporary file, fsync, rename).

    Args:
        path: the destination file.
        array: 1 to 255 dimensions, each below 2**32, of dtype uint8, int8, int16,
            int32, float32 or float64.
        gzip: compress the file (deterministically: no timestamp in the gzip header).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: for an unsupported dtype or shape.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODE_OF_DTYPE.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(
            f"write_idx: dtype {array.dtype} has no IDX type code "
            f"(supported: uint8, int8, int16, int32, float32, float64)"
        )
    if not 1 <= array.ndim <= 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"write_idx: shape must have 1..255 dimensions below 2**32, got {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    with atomic_write(path) as f:
        if gzip:
            with gzip_module.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
                gz.write(header)
                gz.write(body)
        else:
            f.write(header)
            f.write(body)
    return path
