"""nnframe.cli_common: the pieces every nnframe sub-command shares (the commands themselves: test_cli*.py)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from nnframe import cli_common, layer, loss, optimizer
from nnframe.model import Model
from nnframe.net import Net


def test_dataset_name_accepts_aliases_and_lists_the_choices():
    assert cli_common.dataset_name("Fashion_MNIST") == "fashion-mnist"
    assert cli_common.dataset_name("fashion") == "fashion-mnist" and cli_common.dataset_name("CIFAR-10") == "cifar10"
    with pytest.raises(argparse.ArgumentTypeError, match="unknown data set 'svhn'; expected one of mnist"):
        cli_common.dataset_name("svhn")


def test_data_options_adds_the_four_options():
    parser = argparse.ArgumentParser()
    cli_common.data_options(parser, "help")
    args = parser.parse_args(["--dataset", "mnist", "--data-dir", "d", "--modified-data", "--no-download"])
    assert (args.dataset, args.data_dir, args.modified_data, args.no_download) == ("mnist", "d", True, True)


def test_report_formatting_and_one_line_errors(capsys):
    assert cli_common.format_eval({"loss": 0.5, "accuracy": 0.75}, 8) == "loss 0.5000 - accuracy 0.7500 (6/8)"
    assert cli_common.format_eval({"loss": 0.25}, 8) == "loss 0.2500"
    assert cli_common.one_line(ValueError("two\n  lines")) == "two lines"
    assert cli_common.one_line(FileNotFoundError(2, "No such file", "x.npy")) == "x.npy: No such file"
    cli_common.say("a", 1)
    cli_common.print_error("bad\n thing")
    out, err = capsys.readouterr()
    assert out == "a 1\n" and err == "nnframe: error: bad thing\n"


def test_load_model_and_check_input_shape_name_what_is_wrong(tmp_path):
    with pytest.raises(cli_common.CLIError, match="checkpoint '.*missing.safetensors' does not exist"):
        cli_common.load_model(str(tmp_path / "missing.safetensors"))
    model = Model(Net([layer.Flatten(), layer.Dense(2)]), loss.SoftmaxCrossEntropy(), optimizer.SGD(0.1))
    model.forward(np.zeros((1, 4, 4, 1), dtype=np.float32))
    cli_common.check_input_shape(model, (4, 4, 1), "the data")
    with pytest.raises(cli_common.CLIError, match=r"takes inputs of shape \(4, 4, 1\), the data has shape \(5, 5, 1\)"):
        cli_common.check_input_shape(model, (5, 5, 1), "the data")
    path = tmp_path / "m.safetensors"
    model.save(path)
    assert cli_common.load_model(str(path)).input_shape == (4, 4, 1)
