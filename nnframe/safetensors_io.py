"""Reading a safetensors file without trusting it: header first, tensors by offset.

The file must be a regular file (a FIFO, a device such as ``/dev/zero`` or a folder is
refused before a byte is read). The 8-byte header length is checked against the file's
size and :data:`MAX_HEADER_BYTES`, then only the header is read and validated (every
dtype, shape and offset; the tensors must tile the data section exactly). The tensors
are read-only NumPy views of a memory map of the file, so reading costs memory only
for the pages a caller touches. Messages lead with the verdict ("not a safetensors
file", "truncated: N of M bytes") and give the details after.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import stat
from typing import Any

import numpy as np

from nnframe.errors import CheckpointError

#: the largest header accepted (a header describes tensors and holds the metadata strings)
MAX_HEADER_BYTES = 16 * 1024 * 1024
#: the most dimensions a tensor may have
MAX_RANK = 16
DTYPES = {
    "F16": np.float16, "F32": np.float32, "F64": np.float64, "BOOL": np.bool_,
    "I8": np.int8, "I16": np.int16, "I32": np.int32, "I64": np.int64,
    "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64,
}


def sniff(head: bytes) -> str:
    """A note on what ``head`` (a file's first bytes) looks like, when it is a known non-checkpoint."""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return " (it is a zip archive, e.g. a NumPy .npz: not a nnframe checkpoint; refusing it)"
    if head[:1] == b"\x80" and head[1:2] in bytes(range(2, 6)):
        return " (it looks like a Python pickle: refusing to load it, pickles can run code)"
    if head.startswith(b"\x93NUMPY"):
        return " (it is a NumPy .npy file: not a nnframe checkpoint)"
    if head[:2] == b"\x1f\x8b":
        return " (it is gzip-compressed)"
    if head and all(32 <= c < 127 or c in b"\t\r\n" for c in head[:64]):
        return " (it looks like a text file)"
    return ""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str, name: str) -> tuple[int, int]:
    """Open ``path`` for reading without blocking; return ``(fd, size)`` of a regular file.

    Raises:
        CheckpointError: when it cannot be opened or is not a regular file (FIFO, device, folder).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise CheckpointError(f"cannot read {name}: {exc.strerror or exc}") from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise CheckpointError(f"{name}: not a regular file: it is {_kind(info.st_mode)}; a checkpoint "
                              "is a file written by Model.save or nnframe train")
    return fd, info.st_size


def _read_exactly(fd: int, offset: int, count: int) -> bytes:
    chunks, done = [], 0
    while done < count:
        chunk = os.pread(fd, min(count - done, 1 << 24), offset + done)
        if not chunk:
            break
        chunks.append(chunk)
        done += len(chunk)
    return b"".join(chunks)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CheckpointError(f"duplicate key {key!r} in the header")
        result[key] = value
    return result


def parse_header(head: bytes, file_size: int, name: str) -> tuple[dict[str, Any], dict[str, str], int]:
    """Validate a safetensors header given the file's first bytes and its size.

    Args:
        head: at least the first ``min(file_size, 8 + header length)`` bytes.
        file_size: the whole file's length in bytes.
        name: how messages name the file.

    Returns:
        ``(tensors, metadata, data_start)``: ``{name: {"dtype", "shape", "data_offsets"}}``,
        the metadata strings, and the offset where the tensor bytes begin.

    Raises:
        CheckpointError: leading with "not a safetensors file" or "truncated: N of M bytes".
    """
    if file_size < 8:
        raise CheckpointError(f"{name}: not a safetensors file (or truncated): {file_size} bytes, fewer than "
                              f"the 8-byte header length a checkpoint starts with{sniff(head)}")
    header_len = int.from_bytes(head[:8], "little")
    looks_like_json = head[8:9] == b"{"
    if header_len < 2 or header_len > MAX_HEADER_BYTES or not looks_like_json:
        raise CheckpointError(
            f"{name}: not a safetensors file{sniff(head) or ''}: its first 8 bytes give a header length of "
            f"{header_len} (at most {MAX_HEADER_BYTES} accepted) and the header must be a JSON object"
        )
    if 8 + header_len > file_size:
        raise CheckpointError(f"{name}: truncated: {file_size} of at least {8 + header_len} bytes (the header "
                              f"alone is {header_len} bytes long)")
    try:
        header = json.loads(head[8 : 8 + header_len].decode("utf-8"), object_pairs_hook=_no_duplicates)
    except CheckpointError as exc:
        raise CheckpointError(f"{name}: {exc}") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSON, huge ints
        raise CheckpointError(f"{name}: not a safetensors file: the header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: not a safetensors file: the header must be a JSON object, "
                              f"got {type(header).__name__}")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise CheckpointError(f"{name}: the header has no __metadata__ of strings: not a nnframe checkpoint")
    _check_tensors(header, file_size - 8 - header_len, 8 + header_len, name)
    return header, metadata, 8 + header_len


def _check_tensors(header: dict[str, Any], data_len: int, data_start: int, name: str) -> None:
    problems, spans = [], []
    for key, info in header.items():
        problem = _check_entry(key, info)
        if problem:
            problems.append(problem)
        else:
            spans.append((info["data_offsets"][0], info["data_offsets"][1], key))
    if problems:
        raise CheckpointError(f"{name}: bad tensor entries: " + "; ".join(problems[:20])
                              + (f"; ... ({len(problems)} in all)" if len(problems) > 20 else ""))
    needed = max((end for _, end, _ in spans), default=0)
    if needed > data_len:
        raise CheckpointError(f"{name}: truncated: {data_start + data_len} of {data_start + needed} bytes "
                              f"(the header describes {len(spans)} tensors ending at byte {data_start + needed})")
    position = 0
    for begin, end, key in sorted(spans):
        if begin != position:
            raise CheckpointError(f"{name}: tensor {key!r} starts at byte {begin}, expected {position} "
                                  "(overlapping or gapped data)")
        position = end
    if position != data_len:
        raise CheckpointError(f"{name}: the tensors cover {position} bytes but the file holds {data_len} "
                              "after the header (padded, or not written by nnframe)")


def _check_entry(key: str, info: Any) -> str | None:
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        return f"{key!r}: expected an object with dtype, shape, data_offsets"
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        return f"{key!r}: unsupported dtype {dtype!r} (expected one of {sorted(DTYPES)})"
    if (not isinstance(shape, list) or len(shape) > MAX_RANK
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s for s in shape)):
        return f"{key!r}: shape must be a list of at most {MAX_RANK} non-negative integers, got {shape!r}"
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        return f"{key!r}: data_offsets must be two integers, got {offsets!r}"
    begin, end = offsets
    nbytes = math.prod(shape) * np.dtype(DTYPES[dtype]).itemsize
    if not 0 <= begin <= end:
        return f"{key!r}: data_offsets {offsets} are not an increasing pair of non-negative integers"
    if end - begin != nbytes:
        return f"{key!r}: shape {shape} of {dtype} needs {nbytes} bytes, offsets give {end - begin}"
    return None


def read_safetensors(path: str, name: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Read a safetensors file: ``({tensor name: read-only array}, metadata)``.

    The header is read and checked first (:func:`parse_header`); the arrays are views of a
    read-only memory map of the file, so they cost memory only when touched.

    Raises:
        CheckpointError: for a file that is missing, not regular, not safetensors or truncated.
    """
    fd, size = open_regular(path, name)
    try:
        head = _read_exactly(fd, 0, min(size, 64))  # the length field and enough to recognise a format
        header_len = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
        if 2 <= header_len <= MAX_HEADER_BYTES and 8 + header_len <= size:  # plausible: read it all
            head = _read_exactly(fd, 0, 8 + header_len)
        header, metadata, start = parse_header(head, size, name)
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if size > start else b""
    except OSError as exc:
        raise CheckpointError(f"cannot read {name}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    tensors = {}
    for key, info in header.items():
        begin, end = info["data_offsets"]
        dtype = np.dtype(DTYPES[info["dtype"]]).newbyteorder("<")
        if end == begin:
            array = np.empty(0, dtype=dtype)
            array.flags.writeable = False
        else:
            array = np.frombuffer(mapped, dtype=dtype, count=(end - begin) // dtype.itemsize, offset=start + begin)
        tensors[key] = array.reshape(info["shape"])
    return tensors, metadata
