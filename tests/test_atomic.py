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


# ------------------------------------------------- issue 10 items 6-7: hostile destinations, leftovers
@pytest.mark.parametrize("kind", ["fifo", "folder", "char device"])
def test_a_destination_that_is_not_a_regular_file_is_refused_not_replaced(tmp_path, kind):
    path = tmp_path / "dest"
    if kind == "fifo":
        os.mkfifo(path)
        check = stat.S_ISFIFO
    elif kind == "folder":
        path.mkdir()
        check = stat.S_ISDIR
    else:
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null
        check = stat.S_ISCHR
    shown = {"fifo": "FIFO", "folder": "folder", "char device": "character device"}[kind]
    with pytest.raises(FileExistsError, match=f"exists and is a {shown}, not a regular"):
        with atomic_write(path) as f:
            f.write(b"x" * 100)
    assert check(os.lstat(path).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["dest"]


def test_a_link_to_a_regular_file_is_still_written(tmp_path):
    (tmp_path / "real").write_bytes(b"old")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with atomic_write(tmp_path / "link") as f:
        f.write(b"new")
    assert (tmp_path / "link").read_bytes() == b"new"


def test_stale_temporaries_of_a_killed_write_are_removed_on_the_next_write(tmp_path):
    path = tmp_path / "m.safetensors"
    old = atomic.PROCESS_START - 60
    names = {
        ".m.safetensors.abcd_123.tmp": True,   # ours, from a killed process: removed
        ".m.safetensors.zzzzzzzz.tmp": False,  # ours, but written after this process started: in flight
        ".m.safetensors.abc.tmp": False,       # not tempfile's pattern
        ".other.abcdefgh.tmp": False,          # another file's
        "m.safetensors.abcdefgh.tmp": False,   # no leading dot
    }
    for name, stale in names.items():
        (tmp_path / name).write_bytes(b"x" * 10)
        if stale or name != ".m.safetensors.zzzzzzzz.tmp":
            os.utime(tmp_path / name, (old, old))
    with atomic_write(path) as f:
        f.write(b"new")
    left = set(os.listdir(tmp_path))
    assert left == {"m.safetensors"} | {n for n, stale in names.items() if not stale}


def test_resuming_removes_the_leftovers_of_a_run_killed_while_saving(tmp_path):
    from training_cases import blobs, mlp  # noqa: PLC0415

    path = tmp_path / "m.safetensors"
    x, y = blobs(n=32)
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    model.save(path)
    leftover = tmp_path / ".m.safetensors.k1ll3d_x.tmp"
    leftover.write_bytes(path.read_bytes())
    os.utime(leftover, (atomic.PROCESS_START - 60,) * 2)
    mlp().fit(x, y, epochs=1, verbose=0, resume_from=path)
    assert not leftover.exists()
