"""The functional API: Input, layers called on symbolic tensors, Graph; wiring checked at build
time; shared layers; several inputs and outputs through Model; configs, checkpoints, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import nnframe
from nnframe import io, layer, loss, optimizer
from nnframe.errors import ShapeError
from nnframe.gradcheck import gradcheck
from nnframe.graph import Graph, GraphError, Input
from nnframe.model import Model
from nnframe.net import Net


def two_task_data(n=200, seed=0):
    """Inputs a (N, 5), b (N, 3); a class from a+b and a regression target."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 5)).astype(np.float32)
    b = rng.normal(size=(n, 3)).astype(np.float32)
    labels = (a[:, 0] + b[:, 0] > 0).astype(np.int64)
    target = (2 * a[:, 1:2] - b[:, 1:2]).astype(np.float32)
    return a, b, labels, target


def two_task_graph() -> Graph:
    a, b = Input((5,), name="a"), Input((3,), name="b")
    h = layer.ReLU()(layer.Concatenate()([layer.Dense(16)(a), layer.Dense(16)(b)]))
    return Graph([a, b], [layer.Dense(2, name="cls")(h), layer.Dense(1, name="reg")(h)])


def test_calling_a_layer_on_a_symbolic_tensor_records_a_node_and_infers_the_shape():
    x = Input(shape=(8, 8, 1))
    h = layer.Conv2D(4, 3, stride=2, padding="same")(x)
    assert h.shape == (4, 4, 4) and "Conv2D" in repr(h)
    y = layer.Dense(10)(layer.Flatten()(h))
    g = Graph(inputs=x, outputs=y)
    assert g.param_names == ("0.w", "0.b", "2.w", "2.b")
    assert all(p is None for _, leaf in g.named_leaves() for p in leaf.params.values())  # nothing allocated yet
    out = g.forward(np.zeros((2, 8, 8, 1), np.float32))
    assert out.shape == (2, 10) and g.params.flat.size == g.num_params == 4 * 9 + 4 + 64 * 10 + 10


def test_graph_forward_and_backward_match_the_same_net():
    nnframe.set_seed(3)
    layers = [layer.Dense(6), layer.Tanh(), layer.Dense(3)]
    net = Net(layers)
    x = Input((4,))
    graph = Graph(x, layers[2](layers[1](layers[0](x))))
    data = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    y_net = net.forward(data)
    dx_net = net.backward(np.ones_like(y_net))
    grads = {k: v.copy() for k, v in net.grads.items()}
    y_graph = graph.forward(data)
    dx_graph = graph.backward(np.ones_like(y_graph))
    np.testing.assert_array_equal(y_graph, y_net)
    np.testing.assert_array_equal(dx_graph, dx_net)
    for key, value in grads.items():
        np.testing.assert_array_equal(graph.grads[key], value)


def test_a_shared_layer_has_one_set_of_parameters_and_its_gradients_add_up():
    with nnframe.backend.default_dtype("float64"):
        a, b = Input((3,)), Input((3,))
        shared = layer.Dense(2)
        g = Graph([a, b], layer.Add()([shared(a), shared(b)]))
        xa, xb = np.random.default_rng(0).normal(size=(2, 4, 3))
        y = g.forward([xa, xb])
        np.testing.assert_allclose(y, (xa + xb) @ shared.params["w"] + 2 * shared.params["b"])
        g.backward(np.ones_like(y))
        assert list(g.params) == ["0.w", "0.b"]
        np.testing.assert_allclose(g.grads["0.w"], (xa + xb).T @ np.ones_like(y))
        np.testing.assert_allclose(g.grads["0.b"], 2 * np.ones_like(y).sum(0))
        gradcheck(g, [xa, xb])


def test_a_multi_output_graph_is_gradient_checked_with_one_output_unused_by_a_node():
    with nnframe.backend.default_dtype("float64"):
        x = Input((4,))
        h = layer.Dense(3)(x)
        g = Graph(x, [layer.Tanh()(h), h, layer.Sigmoid()(layer.Dense(2)(h))])  # h is an output and consumed
        report = gradcheck(g, np.random.default_rng(2).normal(size=(3, 4)))
    assert set(report) == {"input", "0.w", "0.b", "2.w", "2.b"}


def test_shape_mismatch_is_refused_when_the_graph_is_built_naming_the_layers():
    x = Input((6, 6, 3))
    a = layer.Conv2D(8, 3, name="conv_a")(x)
    b = layer.Conv2D(4, 3, name="conv_b")(x)
    with pytest.raises(ShapeError, match=r"calling merge \(Add\) on tensor \(None, 4, 4, 8\) from conv_a \(Conv2D\), "
                                         r"tensor \(None, 4, 4, 4\) from conv_b \(Conv2D\).*do not broadcast"):
        layer.Add(name="merge")([a, b])
    dense = layer.Dense(3, name="head")
    dense(Input((5,)))
    with pytest.raises(ShapeError, match=r"calling head \(Dense\).*built for 5 input features"):
        dense(Input((7,)))


def test_dangling_and_unused_inputs_are_refused_naming_the_layers():
    a, b = Input((3,), name="a"), Input((3,), name="b")
    y = layer.Add(name="join")([a, b])
    with pytest.raises(GraphError, match=r"join \(Add\) reads an Input of shape \(None, 3\) \(b\) that is not in"):
        Graph(a, y)
    unused = Input((2,), name="extra")
    with pytest.raises(GraphError, match=r"input 'extra' \(None, 2\) is not used by any output"):
        Graph([a, b, unused], y)
    with pytest.raises(GraphError, match=r"inputs\[0\] must be an Input\(...\) tensor, got the tensor \(None, 3\) "
                                         r"from join \(Add\)"):
        Graph(y, y)
    with pytest.raises(TypeError, match="outputs must be a symbolic tensor"):
        Graph(a, np.zeros(3))
    with pytest.raises(GraphError, match="names must be unique"):
        Graph([Input((1,), name="x"), Input((1,), name="x")], layer.Add()([a, a]))


def test_a_cycle_in_a_config_is_refused_naming_the_layers():
    config = {"inputs": {"name": "x", "shape": [3]},
              "nodes": [{"class": "Dense", "config": {"num_out": 3, "name": "d1"}, "inputs": ["x", 2]},
                        {"class": "Tanh", "config": {"name": "t"}, "inputs": 0},
                        {"class": "Add", "config": {"name": "sum"}, "inputs": [1, "x"]}],
              "outputs": 2}
    with pytest.raises(GraphError, match=r"cycle: node 0 \(d1: Dense\) -> node 2 \(sum: Add\) -> node 1 \(t: Tanh\) "
                                         r"-> node 0 \(d1: Dense\)"):
        Graph.from_config(config)
    config["nodes"][0]["inputs"] = "nowhere"
    with pytest.raises(GraphError, match="refers to 'nowhere', which is neither an input"):
        Graph.from_config(config)


def test_config_round_trip_keeps_wiring_sharing_and_names():
    x = Input((4,), name="x")
    shared = layer.Dense(4, name="shared")
    h = shared(layer.Tanh()(shared(x)))
    g = Graph(x, [layer.Add()([h, x]), h], name="g")
    config = json.loads(json.dumps(g.get_config()))
    assert config["nodes"][2] == {"layer": 0, "inputs": 1}
    again = Graph.from_config(config)
    assert again.param_names == g.param_names and again.name == "g"
    data = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    g.forward(data)
    again.forward(data)
    again.load_state_dict(g.state_dict())
    for a, b in zip(again.forward(data), g.forward(data), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_hand_written_spec_may_use_names_output_indices_and_any_order():
    spec = {"inputs": [{"name": "seq", "shape": [4, 3]}],
            "nodes": [{"class": "Concatenate", "config": {"name": "cat"}, "inputs": ["lin", "seq"]},
                      {"class": "Dense", "config": {"num_out": 2, "name": "lin"}, "inputs": "seq"}],
            "outputs": ["cat", "lin"]}
    g = Graph.from_config(spec)
    out = g.forward([np.ones((2, 4, 3), np.float32)])
    assert [o.shape for o in out] == [(2, 4, 5), (2, 4, 2)]


def test_model_fits_a_two_input_two_output_graph_with_a_loss_per_output():
    a, b, labels, target = two_task_data()
    nnframe.set_seed(0)
    model = Model(two_task_graph(), [loss.SoftmaxCrossEntropy(), loss.MSE()], optimizer.Adam(1e-2),
                  loss_weights=[1.0, 0.5])
    history = model.fit([a, b], [labels, target], epochs=15, batch_size=32, verbose=0, validation_split=0.2)
    logs = {k: v[-1] for k, v in history.history.items()}
    assert {"loss", "out0_loss", "out1_loss", "out0_accuracy", "val_loss", "val_out0_accuracy"} <= set(logs)
    assert logs["loss"] == pytest.approx(logs["out0_loss"] + 0.5 * logs["out1_loss"], rel=1e-6)
    assert logs["out0_accuracy"] > 0.9 and logs["out1_loss"] < 0.2
    preds = model.predict([a, b], batch_size=64)
    assert [p.shape for p in preds] == [(200, 2), (200, 1)]
    evaluated = model.evaluate([a, b], [labels, target])
    assert evaluated["loss"] == pytest.approx(evaluated["out0_loss"] + 0.5 * evaluated["out1_loss"], rel=1e-6)
    with pytest.raises(ValueError, match="loss_weights needs a list of losses"):
        Model(two_task_graph(), loss.MSE(), optimizer.SGD(0.1), loss_weights=[1.0])
    with pytest.raises(ValueError, match="2 losses but 1 weights"):
        Model(two_task_graph(), [loss.MSE(), loss.MSE()], optimizer.SGD(0.1), loss_weights=[1.0])


def test_a_multi_output_checkpoint_rebuilds_the_wiring_and_resumes_bit_for_bit(tmp_path):
    a, b, labels, target = two_task_data(n=96)

    def make():
        nnframe.set_seed(4)
        return Model(two_task_graph(), [loss.SoftmaxCrossEntropy(), loss.MSE()], optimizer.Adam(1e-2),
                     loss_weights=[1.0, 0.25])

    straight = make()
    straight.fit([a, b], [labels, target], epochs=3, batch_size=16, verbose=0, rng=0)
    part = make()
    part.fit([a, b], [labels, target], epochs=2, batch_size=16, verbose=0, rng=0)
    path = tmp_path / "two.safetensors"
    part.save(path)
    assert io.read_checkpoint(path).config["input_shape"] == [[5], [3]]
    loaded = nnframe.load(path)
    assert isinstance(loaded.net, Graph) and loaded.net.input_names == ["a", "b"]
    assert loaded.loss.weights == [1.0, 0.25]
    for p, q in zip(loaded.predict([a, b]), part.predict([a, b]), strict=True):
        np.testing.assert_array_equal(p, q)
    resumed = make()
    resumed.fit([a, b], [labels, target], epochs=3, batch_size=16, verbose=0, resume_from=path)
    np.testing.assert_array_equal(resumed.net.params.flat, straight.net.params.flat)


def test_graphs_and_nets_nest_in_each_other_and_share_one_buffer():
    inner_x = Input((3,))
    inner = Graph(inner_x, layer.Tanh()(layer.Dense(3)(inner_x)))
    x = Input((3,))
    outer = Graph(x, layer.Add()([inner(x), Net([layer.Dense(3), inner])(x)]))
    with pytest.raises(ValueError, match="sits at both"):
        outer.forward(np.ones((2, 3), np.float32))  # the inner graph is in the outer graph and in the net
    shared_x = Input((3,))
    encoder = Net([layer.Dense(3), layer.Tanh()])
    siamese = Graph(shared_x, layer.Multiply()([encoder(shared_x), encoder(layer.Dense(3)(shared_x))]))
    model = Model(Net([siamese, layer.Dense(1)]), loss.MSE(), optimizer.SGD(0.1))
    x_data = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    model.train_step(x_data, np.zeros((8, 1), np.float32))
    assert model.net.param_names == ("0.0.0.w", "0.0.0.b", "0.1.w", "0.1.b", "1.w", "1.b")
    for _, leaf in model.net.named_leaves():
        for key in leaf.param_names:
            assert np.shares_memory(leaf.params[key], model.net.params.flat)
    with nnframe.backend.default_dtype("float64"):
        shared_x = Input((3,))
        encoder = Net([layer.Dense(3), layer.Tanh()])
        gradcheck(Graph(shared_x, layer.Multiply()([encoder(shared_x), encoder(layer.Dense(3)(shared_x))])),
                  np.random.default_rng(1).normal(size=(4, 3)))


def test_graph_input_checks_name_the_input():
    g = two_task_graph()
    with pytest.raises(ShapeError, match=r"input 'b' expects shape \(None, 3\), got \(2, 4\)"):
        g.forward([np.zeros((2, 5)), np.zeros((2, 4))])
    with pytest.raises(ShapeError, match=r"expected a list of 2 arrays \(\['a', 'b'\]\)"):
        g.forward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="shape must be a sequence of positive integers"):
        Input((None, 3))


def test_model_summary_lists_graph_nodes_and_the_cli_spec_trains_a_graph(tmp_path, monkeypatch):
    model = Model(two_task_graph(), [loss.SoftmaxCrossEntropy(), loss.MSE()], optimizer.SGD(0.1))
    text = model.summary_text()
    assert "input (None, 5), (None, 3)" in text
    assert any(line.split()[:2] == ["2", "Concatenate"] and "(None, 32)" in line for line in text.splitlines())
    from test_cli import _isolate, make_dataset, run, train_args

    _isolate(monkeypatch, tmp_path / "home")
    make_dataset(tmp_path / "data", n_train=64, n_test=20)
    spec = tmp_path / "graph.json"
    spec.write_text(json.dumps({
        "inputs": {"name": "image", "shape": [28, 28, 1]},
        "nodes": [{"class": "Conv2D", "config": {"out_channels": 4, "kernel_size": 3, "stride": 2,
                                                 "name": "stem"}, "inputs": "image"},
                  {"class": "Residual", "config": {"body": {"class": "Net", "config": {"layers": [
                      {"class": "Conv2D", "config": {"out_channels": 4, "kernel_size": 3, "padding": "same"}},
                      {"class": "ReLU", "config": {}}]}}}, "inputs": "stem"},
                  {"class": "GlobalAvgPool2D", "config": {}, "inputs": 1},
                  {"class": "Dense", "config": {"num_out": 10}, "inputs": 2}],
        "outputs": 3}))
    ckpt = tmp_path / "graph.safetensors"
    status, out, err = run(train_args(tmp_path / "data", ckpt, "--model", spec, "--epochs", 1))
    assert status == 0, err
    loaded = nnframe.load(ckpt)
    assert isinstance(loaded.net, Graph) and "1.body.0.w" in loaded.net.params


def test_the_resnet_example_spec_is_the_example_graph():
    from example_loader import EXAMPLES, load_example

    built = load_example("fashion_resnet").build_graph()
    loaded = Graph.from_config(json.loads((EXAMPLES / "fashion_resnet.json").read_text()))
    assert loaded.get_config() == built.get_config()
    outputs, states = loaded.infer_shapes((1, 28, 28, 1))
    assert outputs[-1] == (1, 10) and states == built.infer_shapes((1, 28, 28, 1))[1]
    assert any(isinstance(lay, layer.Residual) and lay.shortcut is not None for lay in loaded.layers)
