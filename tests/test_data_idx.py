"""IDX reader and writer: round trips, and a clear error for every kind of bad file."""

import gzip
import struct

import numpy as np
import pytest

import nnframe.data.idx as idx_module
from nnframe.data import IDXFormatError, read_idx, write_idx


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("compress", [True, False])
def test_round_trip_every_type(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((5, 3, 4)) * 100).astype(dtype)
    path = write_idx(tmp_path / "a.idx", array, gzip=compress)
    with open(path, "rb") as f:
        assert (f.read(2) == b"\x1f\x8b") == compress
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    back[0] = 0  # writable


def test_header_is_the_mnist_layout(tmp_path):
    labels = np.array([3, 1, 4], dtype=np.uint8)
    path = write_idx(tmp_path / "labels-idx1-ubyte", labels, gzip=False)
    assert path.read_bytes() == bytes([0, 0, 0x08, 1]) + struct.pack(">I", 3) + bytes([3, 1, 4])
    big = np.array([1, 256], dtype=np.int32)
    raw = write_idx(tmp_path / "i32", big, gzip=False).read_bytes()
    assert raw[2] == 0x0C and raw[8:] == struct.pack(">ii", 1, 256)  # big-endian data
    a = write_idx(tmp_path / "one.gz", labels).read_bytes()
    assert write_idx(tmp_path / "two.gz", labels).read_bytes() == a  # gzip output is deterministic


def test_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    path = write_idx(tmp_path / "no-extension", array, gzip=True)
    np.testing.assert_array_equal(read_idx(path), array)
    raw = write_idx(tmp_path / "looks.gz", array, gzip=False)
    np.testing.assert_array_equal(read_idx(raw), array)


def test_write_rejects_unsupported_dtype_and_shape(tmp_path):
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    path = write_idx(tmp_path / "keep.idx", np.arange(4, dtype=np.uint8))
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(idx_module.gzip_module, "GzipFile", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_idx(path, np.arange(100, dtype=np.uint8))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.idx"]


def _raw(tmp_path, content, name="bad.idx", compress=False):
    path = tmp_path / name
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


GOOD_HEADER = bytes([0, 0, 0x08, 2]) + struct.pack(">II", 2, 3)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "too short for an IDX header"),
        (b"\x12\x34\x08\x01" + struct.pack(">I", 1) + b"\x00", "bad magic number 0x12340801"),
        (b"PK\x03\x04" + b"\x00" * 20, "bad magic number"),
        (bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00", "unknown IDX type code 0x07"),
        (bytes([0, 0, 0x08, 0]), "0 dimensions"),
        (bytes([0, 0, 0x08, 3]) + struct.pack(">I", 5), "truncated header: 3 dimensions need 12 bytes"),
        (GOOD_HEADER + bytes(5), r"truncated: header says shape \(2, 3\) of uint8 = 6 bytes of data, found 5"),
        (GOOD_HEADER + bytes(7), "size mismatch"),
        (bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3) + bytes(11), r"shape \(3,\) of int32 = 12 bytes"),
    ],
)
def test_bad_files_say_what_is_wrong_and_where(tmp_path, content, message, compress):
    path = _raw(tmp_path, content, compress=compress)
    with pytest.raises(IDXFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_lying_header_does_not_allocate_the_claimed_size(tmp_path):
    # 2**32-1 cubed elements of float64 would be ~6e29 bytes: must fail on size, not on memory
    content = bytes([0, 0, 0x0E, 3]) + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1) + bytes(64)
    for compress, reason in ((False, "truncated"), (True, "more than the 1073741824 accepted")):
        with pytest.raises(IDXFormatError, match=reason):
            read_idx(_raw(tmp_path, content, name=f"huge{compress}", compress=compress))


def test_a_gzip_bomb_claiming_many_images_is_refused_before_reading(tmp_path):
    import tracemalloc  # noqa: PLC0415

    # 64 MiB of zeros behind a header claiming 2**32 - 1 images of 28x28: the old reader kept
    # every chunk and joined them (2x the stream) before reporting "truncated"
    stream = gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">III", 2**32 - 1, 28, 28) + bytes(64 << 20))
    path = tmp_path / "bomb.gz"
    path.write_bytes(stream)
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match="more than the 1073741824 accepted"):
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 3]) + struct.pack(">III", 60000, 28, 28) + bytes(1 << 20)))
    with pytest.raises(IDXFormatError, match=r"truncated: header says shape \(60000, 28, 28\)"):
        read_idx(path)  # within the bound: read as it arrives, into one buffer


def test_truncated_gzip_stream(tmp_path):
    full = gzip.compress(GOOD_HEADER + bytes(6))
    path = tmp_path / "cut.gz"
    path.write_bytes(full[: len(full) - 10])
    with pytest.raises(IDXFormatError, match="cut.gz"):
        read_idx(path)


def test_corrupt_gzip_stream(tmp_path):
    path = tmp_path / "corrupt.gz"
    path.write_bytes(b"\x1f\x8b" + bytes(range(40)))
    with pytest.raises(IDXFormatError, match="corrupt.gz"):
        read_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")
