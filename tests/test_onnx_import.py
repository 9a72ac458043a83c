"""ONNX import (nnframe.onnx.load): nnframe's own files, torch.onnx.export's, unsupported operators."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from layer_cases import ALL_CASES, Case

import nnframe
from nnframe import loss, optimizer
from nnframe.gradcheck import smooth_input
from nnframe.model import Model
from nnframe.net import Net

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
nnframe_onnx = pytest.importorskip("nnframe.onnx")
from onnx import TensorProto, helper  # noqa: E402

from nnframe.interop import onnx_export, onnx_import  # noqa: E402
from nnframe.layer.container import subtree  # noqa: E402


def _ort(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _close(actual: np.ndarray, expected: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)


ROUND_TRIP = [c for c in ALL_CASES if not isinstance(c.input_shape, list)
              and all(type(sub) in onnx_export._CONVERTERS for sub in subtree(c.make()))]  # a nested Graph: none


@pytest.mark.parametrize("case", ROUND_TRIP, ids=[c.id for c in ROUND_TRIP])
def test_nnframe_export_then_import_gives_the_same_net(case: Case, tmp_path):
    made = case.make()
    net = (made if hasattr(made, "input_names") else Net([made])).eval()  # a functional graph: as it is
    if case.ids is not None:
        x = np.random.default_rng(5).integers(0, case.ids, size=case.input_shape)
    else:
        x = smooth_input(case.input_shape, seed=5, kinks=case.kinks).astype(np.float32)
    expected = net.forward(x)
    path = tmp_path / "m.onnx"
    nnframe_onnx.export(net, path)  # every layer nnframe exports imports (attention, Masking, graphs too)
    imported = nnframe_onnx.load(path)
    if isinstance(expected, list):  # a graph of several outputs: one array each, in order
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        from_ort = session.run(None, {session.get_inputs()[0].name: x})
        for ours, theirs, runtime in zip(imported.forward(x), expected, from_ort, strict=True):
            _close(ours, theirs)
            _close(ours, runtime)
        return
    _close(imported.forward(x), expected)
    _close(imported.forward(x), _ort(path, x))


def test_a_channels_first_flatten_permutes_the_next_dense_layer(tmp_path):
    """A torch-style NCHW graph: Conv -> Relu -> Flatten -> Gemm, with a 3x3 map before the flatten."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 2, 3, 3)).astype(np.float32)
    fc = rng.normal(size=(5, 4 * 3 * 3)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
         helper.make_node("Relu", ["c"], ["r"]), helper.make_node("Flatten", ["r"], ["f"], axis=1),
         helper.make_node("Gemm", ["f", "fc", "b"], ["y"], transB=1)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        initializer=[onnx.numpy_helper.from_array(w, "w"), onnx.numpy_helper.from_array(fc, "fc"),
                     onnx.numpy_helper.from_array(np.arange(5, dtype=np.float32), "b")])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    net = nnframe_onnx.load(path)
    assert [type(lay).__name__ for lay in net.layers] == ["Conv2D", "ReLU", "Flatten", "Dense"]
    x = rng.normal(size=(7, 2, 6, 5)).astype(np.float32)
    _close(net.forward(x.transpose(0, 2, 3, 1)), _ort(path, x))  # the net takes NHWC


def _torch_sequential(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, padding=1, groups=2, bias=False), nn.ELU(), nn.AvgPool2d(3, 2, padding=1),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(6 * 3 * 3, 8), nn.Tanh(), nn.Linear(8, 3), nn.Softmax(-1))


def _torch_export(torch, module, x, path, opset_version: int | None = None) -> None:
    """``torch.onnx.export`` (TorchScript exporter) with input ``"x"``, its batch axis dynamic; warnings quiet."""
    options = {} if opset_version is None else {"opset_version": opset_version}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), str(path), dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "N"}},
                          **options)


def test_a_torch_onnx_export_imports_matches_onnx_runtime_and_fine_tunes(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = _torch_sequential(torch)
    with torch.no_grad():
        module[1].running_mean.uniform_(-1, 1)
        module[1].running_var.uniform_(0.5, 2)
    module.eval()
    x = np.random.default_rng(1).normal(size=(7, 2, 11, 12)).astype(np.float32)
    path = tmp_path / "torch.onnx"
    _torch_export(torch, module, torch.from_numpy(x), path)
    net = nnframe_onnx.load(path)
    x_nhwc = x.transpose(0, 2, 3, 1)
    _close(net.forward(x_nhwc), _ort(path, x))
    with torch.no_grad():
        _close(net.forward(x_nhwc), module(torch.from_numpy(x)).numpy())
    model = Model(net, loss.MSE(), optimizer.SGD(lr=0.5))  # fine-tuning: the loss goes down
    target = np.eye(3, dtype=np.float32)[np.arange(7) % 3]
    before = model.evaluate(x_nhwc, target)["loss"]
    model.fit(x_nhwc, target, epochs=5, batch_size=7, verbose=0)
    assert model.evaluate(x_nhwc, target)["loss"] < before


def test_unsupported_operators_are_listed_in_one_error(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("HardSwish", ["a"], ["b"]),
         helper.make_node("Cos", ["b"], ["c"]), helper.make_node("HardSwish", ["c"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    path = tmp_path / "u.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(onnx_import.UnsupportedOperatorError,
                       match=r"does not support: Cos \(x1\), HardSwish \(x2\); supported: .*Conv"):
        nnframe_onnx.load(path)


def test_values_joined_by_an_operator_that_is_not_a_merge_are_refused_by_node(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["x"], ["b"]),
         helper.make_node("MatMul", ["a", "b"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    path = tmp_path / "branch.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(onnx_import.ConversionError,
                       match=r"MatMul node '' reads \['a', 'b'\]; only Add, Concat, Mul, Sum of values"):
        nnframe_onnx.load(path)


def test_input_layout_is_checked():
    with pytest.raises(ValueError, match="input_layout must be"):
        onnx_import._channels_first(None, "x", "nhwc", 4)


def _chain_model(nodes, constants, path, opset=17):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, ["N", 4])],
        initializer=[onnx.numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in constants.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))


def test_activations_spelled_as_arithmetic_are_recognised(tmp_path):
    """PyTorch's GELU below opset 20, SiLU, Softplus(beta) and a Tanh right after them."""
    nodes = [  # GELU as torch writes it: x * 0.5 * (1 + erf(x / sqrt(2)))
        helper.make_node("Div", ["x", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["a"]), helper.make_node("Mul", ["x", "a"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["gelu"]),
        helper.make_node("Sigmoid", ["gelu"], ["s"]), helper.make_node("Mul", ["gelu", "s"], ["silu"]),
        helper.make_node("Tanh", ["silu"], ["t"]),
        helper.make_node("Mul", ["t", "beta"], ["tb"]), helper.make_node("Softplus", ["tb"], ["sp"]),
        helper.make_node("Div", ["sp", "beta"], ["y"])]
    path = tmp_path / "act.onnx"
    _chain_model(nodes, {"sqrt2": 2 ** 0.5, "one": 1.0, "half": 0.5, "beta": 3.0}, path)
    net = nnframe_onnx.load(path)
    assert [type(lay).__name__ for lay in net.layers] == ["GELU", "SiLU", "Tanh", "Softplus"]
    assert net.layers[3].beta == pytest.approx(3.0)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32) * 3
    _close(net.forward(x), _ort(path, x))


def test_arithmetic_that_is_no_known_activation_is_refused_by_node(tmp_path):
    nodes = [helper.make_node("Mul", ["x", "k"], ["a"]), helper.make_node("Exp", ["a"], ["y"])]
    path = tmp_path / "exp.onnx"
    _chain_model(nodes, {"k": 2.0}, path)
    with pytest.raises(onnx_import.ConversionError, match="Mul node .* only as part of an element-wise activation"):
        nnframe_onnx.load(path)


def test_torch_gelu_and_silu_exported_at_opset_17_import(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    nn = torch.nn
    module = nn.Sequential(nn.Linear(4, 6), nn.GELU(), nn.Linear(6, 5), nn.SiLU(), nn.Linear(5, 3),
                           nn.GELU(approximate="tanh"), nn.Softplus(beta=2.0)).eval()
    x = np.random.default_rng(4).normal(size=(7, 4)).astype(np.float32)
    path = tmp_path / "acts.onnx"
    _torch_export(torch, module, torch.from_numpy(x), path, opset_version=17)
    net = nnframe_onnx.load(path)
    assert [type(lay).__name__ for lay in net.layers] == ["Dense", "GELU", "Dense", "SiLU", "Dense", "GELU",
                                                          "Softplus"]
    _close(net.forward(x), _ort(path, x))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_a_torch_recurrent_model_exported_by_torch_imports(kind, tmp_path):
    """``batch_first`` recurrent layer, ``y[:, -1]``, a Linear: PyTorch's zero initial states come from Shape."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(5)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(3, 4, batch_first=True)
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.fc(y[:, -1])

    module = Model().eval()
    x = np.random.default_rng(6).normal(size=(5, 6, 3)).astype(np.float32)
    path = tmp_path / "rnn.onnx"
    _torch_export(torch, module, torch.from_numpy(x), path)
    net = nnframe_onnx.load(path)
    assert [type(lay).__name__ for lay in net.layers] == [kind, "Dense"]
    _close(net.forward(x), _ort(path, x))
    with torch.no_grad():
        _close(net.forward(x), module(torch.from_numpy(x)).numpy())


def _torch_resnet(torch):
    """A residual network with a projection shortcut and a two-branch concatenation, in PyTorch (NCHW)."""
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                      nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.shortcut = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                             if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            return torch.relu(self.body(x) + self.shortcut(x))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU())
            self.left, self.right = nn.Conv2d(4, 3, 1), nn.Conv2d(4, 5, 3, padding=1)
            self.blocks = nn.Sequential(Block(8, 8, 1), Block(8, 6, 2))
            self.head = nn.Linear(6 * 4 * 5, 3)

        def forward(self, x):
            x = self.stem(x)
            right = self.right(x)  # read by GELU's arithmetic and by the sum after it
            x = torch.cat([self.left(x), torch.nn.functional.gelu(right) + right], dim=1)  # (N, 8, H, W)
            return self.head(torch.flatten(self.blocks(x), 1))

    return Net()


def test_a_torch_resnet_with_branches_imports_as_a_graph_and_fine_tunes(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = _torch_resnet(torch)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, torch.nn.BatchNorm2d):
                sub.running_mean.uniform_(-1, 1)
                sub.running_var.uniform_(0.5, 2)
                sub.weight.uniform_(0.5, 1.5)
    module.eval()
    x = np.random.default_rng(1).normal(size=(5, 2, 8, 10)).astype(np.float32)
    path = tmp_path / "resnet.onnx"
    _torch_export(torch, module, torch.from_numpy(x), path, opset_version=17)
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"Add", "Concat", "Erf"} <= ops  # branches, a merge of channels, and GELU spelled as arithmetic
    graph = nnframe_onnx.load(path)
    assert type(graph).__name__ == "Graph" and not graph.is_training
    merges = sorted(type(lay).__name__ for lay in subtree(graph) if type(lay).__name__ in ("Add", "Concatenate"))
    assert merges == ["Add", "Add", "Add", "Concatenate"]
    assert any(type(lay).__name__ == "GELU" for lay in subtree(graph))
    x_nhwc = x.transpose(0, 2, 3, 1)
    _close(graph.forward(x_nhwc), _ort(path, x))
    with torch.no_grad():
        _close(graph.forward(x_nhwc), module(torch.from_numpy(x)).numpy())
    model = Model(graph, loss.MSE(), optimizer.SGD(lr=0.05))  # one flat parameter buffer: training works
    target = np.eye(3, dtype=np.float32)[np.arange(5) % 3]
    before = model.evaluate(x_nhwc, target)["loss"]
    model.fit(x_nhwc, target, epochs=5, batch_size=5, verbose=0)
    assert model.evaluate(x_nhwc, target)["loss"] < before
    model.save(tmp_path / "tuned.safetensors")  # the wiring is saved: a checkpoint like any graph's
    np.testing.assert_array_equal(nnframe.load(tmp_path / "tuned.safetensors").predict(x_nhwc), model.predict(x_nhwc))


def test_the_resnet_example_exported_by_nnframe_imports_with_its_wiring(tmp_path):
    from example_loader import load_example  # noqa: PLC0415

    graph = load_example("fashion_resnet").build_graph()
    graph.build((1, 28, 28, 1))
    graph.load_state_dict({k: np.random.default_rng(len(k)).normal(0.0, 0.2, v.shape).astype(v.dtype) + (
        1.0 if k.endswith("var") else 0.0) for k, v in graph.state_dict().items()})
    graph.eval()
    x = np.random.default_rng(2).normal(size=(3, 28, 28, 1)).astype(np.float32)
    path = tmp_path / "resnet.onnx"
    nnframe_onnx.export(graph, path)
    imported = nnframe_onnx.load(path)
    assert type(imported).__name__ == "Graph"
    assert sum(type(lay).__name__ == "Add" for lay in subtree(imported)) == 3  # the three blocks' residual sums
    _close(imported.forward(x), graph.forward(x))
    _close(imported.forward(x), _ort(path, x))


def _save(tmp_path, nodes, inputs, outputs, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_a_merge_of_values_in_different_layouts_is_refused_by_node(tmp_path):
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3, 1, 1], np.eye(3, dtype=np.float32).reshape(-1))
    path = _save(tmp_path, [helper.make_node("Conv", ["x", "w"], ["a"]),
                            helper.make_node("GlobalAveragePool", ["x"], ["s"]),
                            helper.make_node("Mul", ["a", "s"], ["y"], name="excite")],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 4, 4])], [w])
    with pytest.raises(onnx_import.ConversionError,
                       match=r"Mul node 'excite' joins values of shapes \[\(None, 3, 4, 4\), \(None, 3, 1, 1\)\] held "
                             "in different layouts"):
        nnframe_onnx.load(path)


def test_a_broadcasting_merge_is_refused_and_a_concat_maps_its_axis(tmp_path):
    path = _save(tmp_path, [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("ReduceMin", ["x"], ["m"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                 [helper.make_tensor_value_info("m", TensorProto.FLOAT, ["N", 1])])
    with pytest.raises(onnx_import.UnsupportedOperatorError, match="ReduceMin"):
        nnframe_onnx.load(path)
    b = helper.make_tensor("b", TensorProto.FLOAT, [2, 3], np.ones(6, dtype=np.float32))
    path = _save(tmp_path, [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("MatMul", ["x", "b"], ["c"]),
                            helper.make_node("Add", ["a", "c"], ["y"], name="sum")],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [b])
    with pytest.raises(onnx_import.ConversionError,
                       match=r"Add node 'sum' broadcasts values of shapes \[\(None, 2\), \(None, 3\)\]"):
        nnframe_onnx.load(path)
    path = _save(tmp_path, [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["x"], ["s"]),
                            helper.make_node("Concat", ["a", "s", "x"], ["y"], axis=1)],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 3, 4])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6, 3, 4])])
    x = np.random.default_rng(0).normal(size=(2, 2, 3, 4)).astype(np.float32)
    graph = nnframe_onnx.load(path, input_layout="channels_first")
    _close(graph.forward(x.transpose(0, 2, 3, 1)), _ort(path, x).transpose(0, 2, 3, 1))
    _close(nnframe_onnx.load(path).forward(x), _ort(path, x))  # auto: no channels-first operator, as given


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_a_torch_recurrent_layer_in_a_graph_that_branches_imports(kind, tmp_path):
    """A stacked bidirectional layer beside a Linear on (N, T, D) input (PyTorch writes Add(bias, x @ w)),
    their sum read by another Linear: the zero initial states are slices of one ConstantOfShape."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)

    class Beside(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = getattr(torch.nn, kind)(3, 4, num_layers=2, batch_first=True, bidirectional=True)
            self.skip, self.out = torch.nn.Linear(3, 8), torch.nn.Linear(8, 2)

        def forward(self, x):
            y, _ = self.rnn(x)
            return self.out(torch.relu(y + self.skip(x)))

    module = Beside().eval()
    x = np.random.default_rng(4).normal(size=(3, 5, 3)).astype(np.float32)
    path = tmp_path / "beside.onnx"
    _torch_export(torch, module, torch.from_numpy(x), path)
    graph = nnframe_onnx.load(path)
    assert type(graph).__name__ == "Graph"
    (rnn,) = [lay for lay in subtree(graph) if type(lay).__name__ == kind]  # both stacked layers in one
    assert (rnn.num_layers, rnn.bidirectional) == (2, True)
    _close(graph.forward(x), _ort(path, x))
    with torch.no_grad():
        _close(graph.forward(x), module(torch.from_numpy(x)).numpy())


def test_a_recurrent_graph_exported_by_nnframe_imports(tmp_path):
    from nnframe import Graph, Input, layer  # noqa: PLC0415

    seq = Input(shape=(5, 3))
    summed = layer.Add()([layer.LSTM(4, return_sequences=True)(seq), layer.Dense(4)(seq)])
    graph = Graph(inputs=seq, outputs=layer.GRU(6, bidirectional=True)(summed)).eval()
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype(np.float32)
    path = tmp_path / "graph.onnx"
    nnframe_onnx.export(graph, path)
    imported = nnframe_onnx.load(path)
    _close(imported.forward(x), graph.forward(x))
    _close(imported.forward(x), _ort(path, x))


def test_a_graph_out_of_topological_order_or_without_its_output_is_refused(tmp_path):
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    y_info = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])
    path = _save(tmp_path, [helper.make_node("Add", ["a", "b"], ["y"], name="late"),
                            helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Tanh", ["x"], ["b"])],
                 [x_info], [y_info])
    with pytest.raises(onnx_import.ConversionError,
                       match=r"Add node 'late' reads \['a', 'b'\], which no earlier node writes"):
        nnframe_onnx.load(path)
    path = _save(tmp_path, [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Tanh", ["x"], ["b"]),
                            helper.make_node("Add", ["a", "b"], ["c"])], [x_info], [y_info])
    with pytest.raises(onnx_import.ConversionError, match="no node writes the graph's output 'y'"):
        nnframe_onnx.load(path)


def test_a_sum_of_three_branches_imports_as_one_add(tmp_path):
    x_info = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])
    path = _save(tmp_path, [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Tanh", ["x"], ["b"]),
                            helper.make_node("Sum", ["a", "b", "x"], ["y"])], [x_info],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    graph = nnframe_onnx.load(path)
    assert [type(lay).__name__ for lay in graph.layers] == ["ReLU", "Tanh", "Add"]
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    _close(graph.forward(x), _ort(path, x))


def test_a_node_of_constants_only_is_refused_by_name(tmp_path):
    c = helper.make_tensor("c", TensorProto.FLOAT, [3], np.ones(3, dtype=np.float32))
    path = _save(tmp_path, [helper.make_node("Relu", ["c"], ["k"], name="lonely"),
                            helper.make_node("Add", ["x", "k"], ["y"])],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                 [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [c])
    with pytest.raises(onnx_import.ConversionError, match="Relu node 'lonely' reads no value of the graph"):
        nnframe_onnx.load(path)


def test_a_graph_of_two_inputs_and_two_outputs_goes_through_onnx_and_back(tmp_path):
    import nnframe  # noqa: PLC0415
    from nnframe import layer  # noqa: PLC0415

    image = nnframe.Input(shape=(6, 6, 2), name="image")
    extra = nnframe.Input(shape=(5,), name="extra")
    h = layer.Flatten()(layer.MaxPool2D(2)(layer.ReLU()(layer.Conv2D(3, 3, padding=1)(image))))  # (N, 27)
    joined = layer.Concatenate()([h, layer.Dense(4)(extra)])  # (N, 31)
    graph = nnframe.Graph(inputs=[image, extra], outputs=[layer.Dense(3)(joined), layer.Dense(2)(extra)])
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=(4, 6, 6, 2)).astype(np.float32), rng.normal(size=(4, 5)).astype(np.float32)]
    expected = graph.eval().forward(xs)
    path = tmp_path / "two.onnx"
    nnframe_onnx.export(graph, path)
    imported = nnframe_onnx.load(path, input_layout="channels_last")  # nnframe's export keeps NHWC inputs
    assert imported.input_names == ["image", "extra"]
    outs = imported.forward(xs)
    assert len(outs) == 2
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    runtime = session.run(None, {"image": xs[0], "extra": xs[1]})
    for ours, theirs, ort_out in zip(outs, expected, runtime, strict=True):
        _close(ours, theirs)
        _close(ours, ort_out)


def test_a_gpt_exported_by_nnframe_imports_with_its_causal_attention_and_trains(tmp_path):
    from nnframe import layer  # noqa: PLC0415

    gpt = Net([layer.Embedding(30, 16), layer.PositionalEmbedding(8), layer.TransformerDecoderBlock(16, 4),
               layer.TransformerDecoderBlock(16, 2, activation="gelu"), layer.LayerNorm(), layer.Dense(30)])
    ids = np.random.default_rng(0).integers(0, 30, (3, 8))
    logits = gpt.eval().forward(ids)
    path = tmp_path / "gpt.onnx"
    nnframe_onnx.export(gpt, path)
    imported = nnframe_onnx.load(path)
    attention = [lay for lay in subtree(imported) if type(lay).__name__ == "MultiHeadAttention"]
    assert [(a.num_heads, a.causal, a.bias) for a in attention] == [(4, True, True), (2, True, True)]
    _close(imported.forward(ids), logits)
    _close(imported.forward(ids), _ort(path, ids))
    model = Model(imported, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-2))  # the imported graph trains
    targets = np.roll(ids, -1, axis=1).reshape(-1)
    losses = []
    for _ in range(6):  # the seed's three calls, the loss over all (N * T) positions
        value, step = model.backward(model.forward(ids).reshape(-1, 30), targets)
        model.apply_grad(step)
        losses.append(value)
    assert losses[-1] < losses[0]


def test_attention_that_is_not_the_exported_pattern_is_refused_by_node(tmp_path):
    from nnframe import layer  # noqa: PLC0415

    path = tmp_path / "att.onnx"
    nnframe_onnx.export(Net([layer.MultiHeadAttention(8, 2)]), path, input_shape=(5, 8))
    proto = onnx.load(str(path))
    for tensor in proto.graph.initializer:
        if tensor.name.endswith("scale"):  # the 1/sqrt(d) of the queries, changed
            tensor.CopyFrom(onnx.numpy_helper.from_array(np.array(0.3, dtype=np.float32), tensor.name))
    onnx.save(proto, str(path))
    with pytest.raises(onnx_import.ConversionError, match="MatMul node .* only Add, Concat, Mul, Sum"):
        nnframe_onnx.load(path)


@pytest.mark.parametrize("opset", [17, 18])  # ReduceMax's axes: an attribute below 18, an input from 18
def test_masking_exported_by_nnframe_imports_as_one_masking_layer(opset, tmp_path):
    from nnframe import layer  # noqa: PLC0415

    net = Net([layer.Masking(mask_value=-1.0), layer.Dense(5), layer.Tanh()])
    x = np.random.default_rng(0).normal(size=(3, 6, 4)).astype(np.float32)
    x[0, 4:] = -1.0  # padded steps: every feature is the mask value
    x[1, 2, :2] = -1.0  # a real step with some features equal to it is kept
    expected = net.eval().forward(x)
    path = tmp_path / "masking.onnx"
    nnframe_onnx.export(net, path, opset=opset)
    imported = nnframe_onnx.load(path)
    assert [type(lay).__name__ for lay in imported.layers] == ["Masking", "Dense", "Tanh"]
    assert imported.layers[0].mask_value == -1.0
    _close(imported.forward(x), expected)
    _close(imported.forward(x), _ort(path, x))
    np.testing.assert_array_equal(imported.forward(x)[0, 4:], np.tanh(net.layers[1].params["b"])[None].repeat(2, 0))


def test_a_masking_whose_mask_a_later_layer_would_read_is_refused():
    from nnframe import layer  # noqa: PLC0415
    from nnframe.interop import onnx_import_masking  # noqa: PLC0415

    onnx_import_masking.check_mask_unused(Net([layer.Masking(), layer.Dense(3), layer.Tanh()]))  # nothing reads it
    with pytest.raises(onnx_import.ConversionError, match=r"layer 2 \(LSTM\) would read the mask .* layer 0"):
        onnx_import_masking.check_mask_unused(Net([layer.Masking(), layer.Dense(3), layer.LSTM(4)]))  # passed on


def test_masking_in_a_graph_that_branches_is_refused_and_a_changed_pattern_is_not_masking(tmp_path):
    from nnframe import Graph, Input, layer  # noqa: PLC0415

    steps = Input(shape=(5, 3))
    masked = layer.Masking()(steps)
    path = tmp_path / "branching.onnx"
    nnframe_onnx.export(Graph(inputs=steps, outputs=layer.Add()([layer.Dense(3)(masked), masked])), path)
    with pytest.raises(onnx_import.ConversionError, match="masks padded steps .* single chain"):
        nnframe_onnx.load(path)
    path = tmp_path / "changed.onnx"
    nnframe_onnx.export(Net([layer.Masking()]), path, input_shape=(5, 3))
    proto = onnx.load(str(path))
    for node in proto.graph.node:  # a reduction over another axis is no Masking
        if node.op_type == "ReduceMax":
            node.attribute[0].CopyFrom(helper.make_attribute("axes", [1])) if node.attribute[0].name == "axes" else None
    onnx.save(proto, str(path))
    with pytest.raises(onnx_import.ConversionError, match="Equal node .* part of .* a Masking"):
        nnframe_onnx.load(path)
