"""A minimal PNG reader (no Pillow): 8-bit grayscale, grayscale+alpha, RGB and RGBA, not interlaced.

Enough to feed a trained image classifier a picture (``nnframe predict model.safetensors
digit.png``). What it does (PNG specification, https://www.w3.org/TR/png/):

* checks the signature, every chunk's length and CRC-32, and the IHDR fields;
* concatenates the IDAT chunks and inflates them with :mod:`zlib`, never beyond the
  size the header announces (a "decompression bomb" fails instead of filling memory);
* undoes the five scanline filters (None, Sub, Up, Average, Paeth).

Anything else (palette images, 1/2/4/16-bit samples, Adam7 interlacing) raises
:class:`PNGFormatError` saying what was found and what is supported.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type -> (name, channels); only 8-bit samples are read.
COLOR_TYPES: dict[int, tuple[str, int]] = {0: ("grayscale", 1), 2: ("RGB", 3), 4: ("grayscale+alpha", 2),
                                           6: ("RGBA", 4)}
MAX_PIXELS = 1 << 26  # 64 Mpixel: a larger header is refused before any allocation


class PNGFormatError(ValueError):
    """A file is not a PNG this reader supports; the message names the file and the problem."""


def read_png(source: str | os.PathLike | bytes) -> np.ndarray:
    """Decode a PNG image into a uint8 array.

    Args:
        source: a path, or the file's bytes.

    Returns:
        The image, uint8, shape ``(H, W, C)`` with ``C`` = 1 (grayscale), 2
        (grayscale + alpha), 3 (RGB) or 4 (RGBA).

    Raises:
        PNGFormatError: for a damaged file or an unsupported kind of PNG.
        OSError: when the file cannot be read.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "PNG data"
    else:
        data, name = Path(source).read_bytes(), os.fspath(source)
    if not data.startswith(SIGNATURE):
        raise PNGFormatError(f"{name}: not a PNG file (expected the 8-byte PNG signature, got {data[:8]!r})")
    width, height, channels, compressed = _parse_chunks(data, name)
    stride = width * channels  # bytes per scanline, without the filter byte
    expected = height * (stride + 1)
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(compressed, expected + 1)
    except zlib.error as exc:
        raise PNGFormatError(f"{name}: the image data does not inflate ({exc})") from None
    if len(raw) != expected or inflater.unconsumed_tail:
        got = f"only {len(raw)}" if len(raw) < expected else "more than"
        raise PNGFormatError(f"{name}: the image data inflates to {got} bytes, the header implies {expected} "
                             f"({height} rows of 1 + {stride} bytes)")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(height, stride + 1)  # (H, 1 + W * C)
    image = _unfilter(rows, channels, name)
    return image.reshape(height, width, channels)  # (H, W * C) -> (H, W, C)


def _parse_chunks(data: bytes, name: str) -> tuple[int, int, int, bytes]:
    """Walk the chunks: the IHDR fields and the concatenated IDAT payload."""
    pos = len(SIGNATURE)
    header: tuple[int, int, int] | None = None
    idat: list[bytes] = []
    while True:
        if pos + 8 > len(data):
            raise PNGFormatError(f"{name}: truncated: no IEND chunk (the file ends at byte {len(data)})")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise PNGFormatError(f"{name}: truncated: chunk {kind!r} at byte {pos} declares {length} bytes, "
                                 f"only {max(0, len(data) - pos - 12)} follow")
        body = data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:end])
        if zlib.crc32(kind + body) != crc:
            raise PNGFormatError(f"{name}: chunk {kind!r} at byte {pos} fails its CRC check (damaged file)")
        if header is None and kind != b"IHDR":
            raise PNGFormatError(f"{name}: the first chunk must be IHDR, got {kind!r}")
        if kind == b"IHDR":
            header = _parse_ihdr(body, name)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        elif kind != b"PLTE" and kind[0] & 0x20 == 0:  # unknown critical chunk (a PLTE with RGB is a hint)
            raise PNGFormatError(f"{name}: unsupported critical chunk {kind!r}")
        pos = end
    if not idat:
        raise PNGFormatError(f"{name}: no IDAT chunk (no image data)")
    width, height, channels = header
    return width, height, channels, b"".join(idat)


def _parse_ihdr(body: bytes, name: str) -> tuple[int, int, int]:
    if len(body) != 13:
        raise PNGFormatError(f"{name}: IHDR must hold 13 bytes, got {len(body)}")
    width, height, depth, color, compression, filter_method, interlace = struct.unpack(">IIBBBBB", body)
    if width == 0 or height == 0 or width * height > MAX_PIXELS:
        raise PNGFormatError(f"{name}: image size {width}x{height} is outside 1..{MAX_PIXELS} pixels")
    if color not in COLOR_TYPES:
        kind = "palette" if color == 3 else f"colour type {color}"
        raise PNGFormatError(f"{name}: {kind} PNGs are not supported; save it as 8-bit grayscale, RGB or RGBA")
    if depth != 8:
        raise PNGFormatError(f"{name}: {depth}-bit samples are not supported; save it with 8 bits per sample")
    if compression != 0 or filter_method != 0:
        raise PNGFormatError(f"{name}: unknown compression/filter method {compression}/{filter_method}")
    if interlace != 0:
        raise PNGFormatError(f"{name}: interlaced (Adam7) PNGs are not supported; save it without interlacing")
    return width, height, COLOR_TYPES[color][1]


def _unfilter(rows: np.ndarray, bpp: int, name: str) -> np.ndarray:
    """Undo the per-scanline filters.

    Shapes: ``rows`` ``(H, 1 + S)`` (filter byte, then ``S`` bytes) -> ``(H, S)`` uint8.
    """
    height, stride = rows.shape[0], rows.shape[1] - 1
    out = np.zeros((height, stride), dtype=np.uint8)
    prior = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = int(rows[y, 0]), rows[y, 1:]
        if kind == 0:  # None
            cur = line.copy()
        elif kind == 1:  # Sub: cumulative sum along each byte lane, mod 256
            lanes = line.reshape(-1, bpp)  # (W, bpp)
            cur = np.cumsum(lanes, axis=0, dtype=np.uint8).reshape(-1)  # uint8 wraps = mod 256
        elif kind == 2:  # Up
            cur = line + prior  # uint8 wraps
        elif kind == 3:  # Average
            cur = _unfilter_sequential(line, prior, bpp, _average)
        elif kind == 4:  # Paeth
            cur = _unfilter_sequential(line, prior, bpp, _paeth)
        else:
            raise PNGFormatError(f"{name}: row {y} has unknown filter type {kind} (expected 0..4)")
        out[y] = cur
        prior = cur
    return out


def _average(left: np.ndarray, up: np.ndarray, _upleft: np.ndarray) -> np.ndarray:
    return (left + up) // 2


def _paeth(left: np.ndarray, up: np.ndarray, upleft: np.ndarray) -> np.ndarray:
    p = left + up - upleft
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
    return np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))


def _unfilter_sequential(line: np.ndarray, prior: np.ndarray, bpp: int, predictor) -> np.ndarray:
    """Average/Paeth: each pixel depends on the decoded one to its left, so go pixel by pixel
    (each step handles the ``bpp`` bytes of one pixel at once)."""
    line = line.astype(np.int32).reshape(-1, bpp)  # (W, bpp)
    up = prior.astype(np.int32).reshape(-1, bpp)
    cur = np.empty_like(line)
    zero = np.zeros(bpp, dtype=np.int32)
    for x in range(line.shape[0]):
        left = cur[x - 1] if x else zero
        upleft = up[x - 1] if x else zero
        cur[x] = (line[x] + predictor(left, up[x], upleft)) & 0xFF
    return cur.astype(np.uint8).reshape(-1)
