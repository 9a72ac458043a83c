"""nnframe.atomic.atomic_write: all of the new file or none of it, with sensible permissions."""

from __future__ import annotations

import os
import stat

import pytest

from nnframe import atomic
from nnframe.atomic import atomic_write


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_block_s_bytes_replace_the_file(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    with atomic_write(path) as f:
        f.write(b"new ")
        f.write(b"content")
        assert path.read_bytes() == b"old"  # nothing visible before the block ends
    assert path.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_an_exception_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "keep.bin"
    path.write_bytes(b"precious")
    with pytest.raises(type(error)):
        with atomic_write(path) as f:
            f.write(b"half of it")
            raise error
    assert path.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["keep.bin"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "keep.bin"
    path.write_bytes(b"precious")

    def failing_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(atomic.os, "replace", failing_replace)
    with pytest.raises(OSError, match="rename failed"):
        with atomic_write(path) as f:
            f.write(b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["keep.bin"]


def test_a_new_file_is_world_readable_and_an_old_one_keeps_its_mode(tmp_path):
    fresh = tmp_path / "fresh.bin"
    with atomic_write(fresh) as f:
        f.write(b"x")
    assert _mode(fresh) == atomic.NEW_FILE_MODE  # not mkstemp's private 0o600
    private = tmp_path / "private.bin"
    private.write_bytes(b"old")
    os.chmod(private, 0o600)
    with atomic_write(private) as f:
        f.write(b"new")
    assert _mode(private) == 0o600


def test_a_missing_directory_is_an_error_that_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such-dir"):
        with atomic_write(tmp_path / "no-such-dir" / "out.bin") as f:
            f.write(b"x")
