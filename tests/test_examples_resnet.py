"""examples/fashion_resnet.py end to end on a tiny data set written by the test: it trains with its
augmentations, reports the held-out accuracy, is reproducible and saves a loadable checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from example_loader import load_example
from test_cli import make_dataset

import nnframe


@pytest.mark.slow
def test_resnet_example_trains_reproducibly_and_saves(tmp_path, capsys):
    example = load_example("fashion_resnet")
    make_dataset(tmp_path / "data", n_train=96, n_test=32)
    common = ["--data-dir", str(tmp_path / "data"), "--epochs", "1", "--batch", "32", "--max-lr", "1e-2"]
    accuracy = example.main([*common, "--validation", "0.25", "--crop", "2"])
    first = capsys.readouterr().out
    assert "72 training / 24 validation images" in first and "validation accuracy" in first
    assert 0.0 <= accuracy <= 1.0 and f"final validation accuracy {accuracy:.4f}" in first
    assert example.main([*common, "--validation", "0.25", "--crop", "2"]) == accuracy  # seeded: the same run again
    again = capsys.readouterr().out
    losses = [line.split("train loss ")[1].split()[0] for line in (first, again) for line in line.splitlines()
              if "train loss" in line]
    assert len(losses) == 2 and losses[0] == losses[1]
    ckpt = tmp_path / "resnet.safetensors"
    test_accuracy = example.main([*common, "--save", str(ckpt)])
    out = capsys.readouterr().out
    assert "96 training / 32 test images" in out and f"final test accuracy {test_accuracy:.4f}" in out
    loaded = nnframe.load(ckpt)
    images = np.zeros((2, 28, 28, 1), dtype=np.float32)
    assert loaded.predict(images).shape == (2, 10)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "expected"), [("sgd", "SGD"), ("adamw", "AdamW"), ("adam", "Adam")])
def test_resnet_example_optimizer_options(tmp_path, capsys, name, expected):
    example = load_example("fashion_resnet")
    make_dataset(tmp_path / "data", n_train=64, n_test=16)
    ckpt = tmp_path / "resnet.safetensors"
    example.main(["--data-dir", str(tmp_path / "data"), "--epochs", "1", "--batch", "32", "--max-lr", "1e-2",
                  "--optimizer", name, "--weight-decay", "5e-4", "--save", str(ckpt)])
    capsys.readouterr()
    opt = nnframe.load(ckpt).optimizer
    assert type(opt).__name__ == expected and opt.weight_decay == pytest.approx(5e-4)
    if name == "sgd":
        assert opt.momentum == pytest.approx(0.9) and opt.nesterov


def test_resnet_example_refuses_an_unknown_optimizer(capsys):
    example = load_example("fashion_resnet")
    with pytest.raises(SystemExit):
        example.main(["--optimizer", "lbfgs"])
    assert "invalid choice: 'lbfgs'" in capsys.readouterr().err


@pytest.mark.slow
def test_resnet_example_reports_flip_averaged_accuracy_beside_the_single_pass(tmp_path, capsys):
    example = load_example("fashion_resnet")
    make_dataset(tmp_path / "data", n_train=64, n_test=16)
    ckpt = tmp_path / "resnet.safetensors"
    accuracy = example.main(["--data-dir", str(tmp_path / "data"), "--epochs", "1", "--batch", "32",
                             "--tta", "--save", str(ckpt)])
    out = capsys.readouterr().out
    assert f"final test accuracy {accuracy:.4f}" in out  # the single pass is still what main returns
    reported = float(out.split("final test accuracy with flip averaging ")[1].split()[0])
    model = nnframe.load(ckpt)
    images = np.random.default_rng(0).normal(size=(16, 28, 28, 1)).astype(np.float32)
    labels = np.arange(16) % 10
    probs = model.predict_proba(images) + model.predict_proba(images[:, :, ::-1].copy())
    assert example.flip_averaged_accuracy(model, images, labels) == pytest.approx(np.mean(probs.argmax(1) == labels))
    assert 0.0 <= reported <= 1.0


@pytest.mark.slow
def test_resnet_example_random_erasing_changes_the_run_and_is_seeded(tmp_path, capsys):
    example = load_example("fashion_resnet")
    make_dataset(tmp_path / "data", n_train=64, n_test=16)
    common = ["--data-dir", str(tmp_path / "data"), "--epochs", "1", "--batch", "32", "--max-lr", "1e-2"]

    def train_loss(*extra: str) -> str:
        example.main([*common, *extra])
        return capsys.readouterr().out.split("train loss ")[1].split()[0]

    plain = train_loss()
    erased = train_loss("--erase", "1.0", "--erase-fill", "normal")
    assert erased != plain  # every image had a rectangle of noise
    assert train_loss("--erase", "1.0", "--erase-fill", "normal") == erased  # the same draws again
    assert train_loss("--erase", "1.0") != erased  # a 0 fill is another augmentation


def test_resnet_example_refuses_an_unknown_erase_fill(capsys):
    example = load_example("fashion_resnet")
    with pytest.raises(SystemExit):
        example.main(["--erase-fill", "noise"])
    assert "argument --erase-fill: invalid erase_fill value: 'noise'" in capsys.readouterr().err


def test_resnet_example_head_dropout_is_an_option_and_off_by_default():
    example = load_example("fashion_resnet")
    from nnframe.layer.container import subtree  # noqa: PLC0415

    assert not any(type(lay).__name__ == "Dropout" for lay in subtree(example.build_graph()))
    dropped = [lay for lay in subtree(example.build_graph(0.25)) if type(lay).__name__ == "Dropout"]
    assert len(dropped) == 1 and dropped[0].rate == pytest.approx(0.25)
