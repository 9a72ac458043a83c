"""examples/fashion_common.py: the options, data, spec file and epoch loop the Fashion-MNIST examples share."""

from __future__ import annotations

import json

import numpy as np
import pytest
from example_loader import load_example

from nnframe import data, layer, loss, model, net, optimizer, schedule, set_seed

common = load_example("fashion_common")


def test_training_parser_has_the_shared_options_with_the_examples_defaults(tmp_path):
    p = common.training_parser("d", tmp_path / "x.json", epochs=7, max_lr=1e-3, label_smoothing=0.2)
    args = p.parse_args([])
    assert (args.epochs, args.batch, args.max_lr, args.label_smoothing, args.seed, args.data_dir, args.write_spec) \
        == (7, 128, 1e-3, 0.2, 0, None, False)
    assert "write x.json and exit" in p.format_help()


def test_layers_spec_is_what_net_from_config_reads():
    spec = common.layers_spec([layer.Flatten(), layer.Dense(3)])
    assert [entry["class"] for entry in spec["layers"]] == ["Flatten", "Dense"] and list(spec) == ["layers"]
    rebuilt = net.Net.from_config(spec)
    assert rebuilt.forward(np.zeros((2, 2, 2, 1), dtype=np.float32)).shape == (2, 3)


def test_write_spec_writes_json_atomically(tmp_path):
    path = tmp_path / "spec.json"
    spec = {"layers": [{"class": "Dense", "config": {"units": 3}}]}
    common.write_spec(path, spec)
    assert json.loads(path.read_text()) == spec and path.read_text().endswith("\n")
    common.write_spec(path, spec, indent=1)
    assert path.read_text().startswith('{\n "layers"')
    assert [p.name for p in tmp_path.iterdir()] == ["spec.json"]  # no temporary file left


def test_standardize_pixels_uses_the_training_sets_statistics(monkeypatch):
    x_train = np.array([0, 255, 0, 255], dtype=np.uint8).reshape(4, 1, 1, 1)
    x_test = np.array([255, 255], dtype=np.uint8).reshape(2, 1, 1, 1)
    train, test = common.standardize_pixels(x_train, x_test)
    assert train.dtype == test.dtype == np.float32
    np.testing.assert_allclose(train.ravel(), [-1, 1, -1, 1], rtol=1e-6)
    np.testing.assert_allclose(test.ravel(), [1, 1], rtol=1e-6)
    monkeypatch.setattr(common, "load_fashion_mnist", lambda data_dir: ((x_train, np.arange(4)), (x_test, np.ones(2))))
    (xs, ys), (xt, yt) = common.load_standardized(None)
    np.testing.assert_array_equal(xs, train) and np.testing.assert_array_equal(ys, np.arange(4))


def _tiny(seed: int):
    set_seed(seed)  # the initial weights, as the examples do
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4, 4, 1)).astype(np.float32)
    y = (x[:, :, :2].mean(axis=(1, 2, 3)) > x[:, :, 2:].mean(axis=(1, 2, 3))).astype(np.int64)
    m = model.Model(net.Net([layer.Flatten(), layer.Dense(2)]), loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-2))
    lr_schedule = schedule.OneCycleLR(m.optimizer, max_lr=1e-2, total_steps=2 * 5)
    return m, lr_schedule, (x[:32], y[:32]), (x[32:], y[32:])


@pytest.mark.parametrize("augment", [None, data.random_horizontal_flip])
def test_train_epochs_runs_the_seeds_three_calls_per_batch_and_reports(capsys, augment):
    clock = common.Clock()
    results = []
    for _ in range(2):  # same generator seed, same run
        m, lr_schedule, train, test = _tiny(0)
        results.append((common.train_epochs(m, lr_schedule, train, test, epochs=2, batch=6,
                                            rng=np.random.default_rng(1), clock=clock, augment=augment),
                        m.net.params.flat.copy()))
        assert m.global_step == 0 and lr_schedule.last_step == 2 * 5  # 32 // 6 = 5 full batches per epoch
        assert results[-1][0] == m.evaluate(*test)["accuracy"]
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("epoch  1/2  train loss ") and "test accuracy" in lines[0]
    assert lines[2].startswith(f"final test accuracy {results[0][0]:.4f} after ")
    assert clock.wall() >= 0 and clock.cpu() >= 0
