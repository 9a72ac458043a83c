"""``nnframe train --out/--resume/--overwrite`` (issue 10 item 8, issue 9 item 12): the path is
checked once, up front, exactly as it is used; a resumed run writes back to its own file."""

from __future__ import annotations

import os
import stat

import pytest
from test_cli import _isolate, make_dataset, run, train_args

import nnframe
from nnframe import callbacks
from nnframe.cli_paths import OutPathError, debug_enabled, literal_path, resolve_out, resume_command


def test_the_default_out_is_the_resumed_file_else_model_safetensors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_out(None, None, False) == str(tmp_path / "model.safetensors")
    (tmp_path / "run1.safetensors").write_bytes(b"x")
    assert resolve_out(None, "run1.safetensors", False) == str(tmp_path / "run1.safetensors")


def test_an_existing_file_of_another_run_needs_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    (tmp_path / "other.safetensors").write_bytes(b"y")
    with pytest.raises(OutPathError, match="already exists and is not the checkpoint being resumed; pass "
                                           "--overwrite"):
        resolve_out(None, None, False)
    with pytest.raises(OutPathError, match="--overwrite"):
        resolve_out("model.safetensors", "other.safetensors", False)
    assert resolve_out("model.safetensors", None, True) == str(tmp_path / "model.safetensors")


def test_tilde_is_expanded_as_the_save_uses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_out("~/m.safetensors", None, False) == str(tmp_path / "m.safetensors")
    with pytest.raises(OutPathError, match="folder .* does not exist"):
        resolve_out("~/nowhere/m.safetensors", None, False)


def test_a_device_fifo_or_folder_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    for name, kind in (("pipe", "a FIFO"), ("", "a folder")):
        with pytest.raises(OutPathError, match=f"exists and is {kind}, not a regular file"):
            resolve_out(str(tmp_path / name), None, True)
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode)
    with pytest.raises(OutPathError, match="character device"):
        resolve_out("/dev/null", None, True)


def test_braces_in_out_are_a_plain_file_name(tmp_path):
    for name in ("run{x}.safetensors", "m-{epoch}"):
        path = str(tmp_path / name)
        assert callbacks.ModelCheckpoint(literal_path(path)).path.format(epoch=1) == path


def test_the_resume_command_is_complete_and_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class Args:
        out, epochs, data_dir, no_download = str(tmp_path / "my run.safetensors"), 7, "data", True

    command = resume_command("nnframe", Args())
    assert command == (f"nnframe train --resume '{tmp_path}/my run.safetensors' --epochs 7 "
                       f"--data-dir {tmp_path}/data --no-download")


@pytest.mark.parametrize("value, expected", [("", False), ("0", False), ("false", False), ("off", False),
                                             ("1", True), ("yes", True)])
def test_nnframe_debug_zero_means_off(value, expected):
    assert debug_enabled({"NNFRAME_DEBUG": value}) is expected


@pytest.mark.slow
def test_resume_writes_back_and_a_plain_train_does_not_replace_another_run(tmp_path, monkeypatch):
    _isolate(monkeypatch, tmp_path / "home")
    make_dataset(tmp_path / "data", n_train=64, n_test=20)
    monkeypatch.chdir(tmp_path)
    first = tmp_path / "run1.safetensors"
    assert run(train_args(tmp_path / "data", first, "--epochs", 1))[0] == 0
    status, out, err = run(["train", "--data-dir", tmp_path / "data", "--no-download", "--resume", first,
                            "--epochs", 2])
    assert status == 0, err
    assert nnframe.load(first).epoch == 2 and not (tmp_path / "model.safetensors").exists()
    before = first.read_bytes()
    status, out, err = run(train_args(tmp_path / "data", first, "--epochs", 1))
    assert status == 1 and "already exists and is not the checkpoint being resumed" in err
    assert first.read_bytes() == before
    braces = tmp_path / "m-{epoch}.safetensors"
    status, out, err = run(train_args(tmp_path / "data", braces, "--epochs", 1))
    assert status == 0, err
    assert braces.is_file() and f"checkpoint: {braces}" in out


@pytest.mark.slow
def test_the_interrupt_hint_starts_a_new_line_and_can_be_pasted(tmp_path, monkeypatch):
    _isolate(monkeypatch, tmp_path / "home")
    make_dataset(tmp_path / "data", n_train=64, n_test=20)
    original = callbacks.ModelCheckpoint.on_epoch_end

    def save_then_interrupt(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(callbacks.ModelCheckpoint, "on_epoch_end", save_then_interrupt)
    out_path = tmp_path / "run.safetensors"
    status, out, err = run(train_args(tmp_path / "data", out_path, "--epochs", 3))
    assert status == 130
    line = next(t for t in err.split("\n") if "interrupted" in t)
    assert line.startswith("nnframe: error: interrupted;")
    assert f"continue with: nnframe train --resume {out_path} --epochs 3 --data-dir {tmp_path / 'data'}" in line


@pytest.mark.slow
def test_a_modified_data_set_copy_is_refused_unless_allowed(tmp_path, monkeypatch):
    from nnframe.data import integrity  # noqa: PLC0415

    _isolate(monkeypatch, tmp_path / "home")
    arrays = make_dataset(tmp_path / "data", n_train=64, n_test=20)
    shapes = {"train-images-idx3-ubyte.gz": arrays["train"][0].shape[:3], "train-labels-idx1-ubyte.gz": (64,),
              "t10k-images-idx3-ubyte.gz": arrays["t10k"][0].shape[:3], "t10k-labels-idx1-ubyte.gz": (20,)}
    monkeypatch.setitem(integrity.CONTENT_DIGESTS, "fashion-mnist", {f: (s, "0" * 64) for f, s in shapes.items()})
    status, _, err = run(train_args(tmp_path / "data", tmp_path / "a.safetensors", "--epochs", 1))
    assert status == 1 and "its content is not Fashion-MNIST's" in err and "--modified-data" in err
    status, _, err = run(train_args(tmp_path / "data", tmp_path / "a.safetensors", "--epochs", 1,
                                    "--modified-data"))
    assert status == 0, err
