"""nnframe.torch: from_module / to_module round trips, outputs equal to 1e-5, errors naming the layer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from layer_cases import ALL_CASES, Case

import nnframe
from nnframe import layer
from nnframe.gradcheck import smooth_input
from nnframe.interop import layout
from nnframe.net import Net

torch = pytest.importorskip("torch")
nn = torch.nn
from nnframe import torch as nnframe_torch  # noqa: E402 - after the importorskip
from nnframe.interop.builder import ConversionError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CONV_LIKE = (layer.Conv2D, layer.Conv1D, layer.Conv2DTranspose, layer.MaxPool2D, layer.AvgPool2D,
             layer.GlobalAvgPool2D, layer.ZeroPad2D, layer.BatchNorm)


def _close(actual, expected) -> None:
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)


def _run(module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _convertible(case: Case) -> bool:
    try:
        nnframe_torch.to_module(Net([case.make()]), case.input_shape[1:])
    except ConversionError:
        return False
    return True


def _first_leaf(lay):
    while isinstance(lay, (Net, layer.Residual, nnframe.Graph)):
        lay = lay.sublayers()[0][1]
    return lay


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_to_module_and_back_keep_every_layer_family_equal(case: Case):
    if isinstance(case.input_shape, list):
        pytest.skip("a layer of several inputs (a merge) lives in a graph, which PyTorch's Sequential is not")
    net = Net([case.make()])
    if case.ids is not None:
        x = np.random.default_rng(6).integers(0, case.ids, size=case.input_shape)
    else:
        x = smooth_input(case.input_shape, seed=6, kinks=case.kinks).astype(np.float32)
    net.eval()
    try:
        expected = net.forward(x)
    except Exception:  # test-only wrappers whose batch size is fixed: not a converter matter
        pytest.skip("the case's layer takes a fixed batch")
    if not _convertible(case):
        with pytest.raises(ConversionError, match="cannot convert layer 0"):
            nnframe_torch.to_module(net, case.input_shape[1:])
        return
    module = nnframe_torch.to_module(net)
    first = _first_leaf(net)  # the first layer that is no container decides PyTorch's input layout
    channels_first = len(case.input_shape) >= 3 and isinstance(first, CONV_LIKE)
    x_torch = layout.to_channels_first(x) if channels_first else x
    out = _run(module, x_torch)
    ends_cf = channels_first and expected.ndim >= 3 and not isinstance(first, layer.GlobalAvgPool2D)
    _close(out, layout.to_channels_first(expected) if ends_cf else expected)
    back = nnframe_torch.from_module(module, x_torch.shape[1:])
    _close(back.forward(x), expected)
    ours, theirs = net.state_dict(), back.state_dict()  # the same weights, exactly, in nnframe's layout
    if case.id == "Net-repeated-layer":  # PyTorch gets the shared layer twice: same values, own copies
        assert all(any(np.array_equal(v, t) for t in theirs.values()) for v in ours.values())
        return
    assert len(ours) == len(theirs)
    for (key, value), (key_back, value_back) in zip(ours.items(), theirs.items(), strict=True):
        assert key.split(".")[-1] == key_back.split(".")[-1]
        np.testing.assert_array_equal(value_back, value)


def _torch_cnn():
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(4, 6, 3, padding="same", groups=2, bias=False), nn.GELU()),
        nn.ZeroPad2d((1, 0, 0, 1)), nn.AvgPool2d(2),
        nn.Flatten(), nn.BatchNorm1d(6 * 3 * 3), nn.Dropout(0.2), nn.Linear(6 * 3 * 3, 8), nn.SiLU(),
        nn.LayerNorm(8), nn.Linear(8, 3), nn.Softmax(dim=1))


def test_a_torch_cnn_converts_with_its_weights_and_back():
    torch.manual_seed(0)
    module = _torch_cnn()
    with torch.no_grad():
        for bn in (module[1], module[8]):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.weight.uniform_(0.5, 1.5)
    module.eval()
    x = np.random.default_rng(2).normal(size=(7, 2, 11, 10)).astype(np.float32)
    net = nnframe_torch.from_module(module, (2, 11, 10))
    _close(net.forward(x.transpose(0, 2, 3, 1)), _run(module, x))
    again = nnframe_torch.to_module(net)
    _close(_run(again, x), _run(module, x))
    theirs = [p.detach().numpy() for p in module.parameters()]
    ours = [p.detach().numpy() for p in again.parameters()]
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):  # the very same weights in PyTorch's layout
        np.testing.assert_array_equal(a, b)


def test_a_sequence_mlp_and_a_1d_conv_net_convert():
    torch.manual_seed(1)
    mlp = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.LayerNorm(7), nn.Linear(7, 2)).eval()
    x = np.random.default_rng(3).normal(size=(4, 6, 5)).astype(np.float32)  # (N, T, D): Linear on the last axis
    _close(nnframe_torch.from_module(mlp, (6, 5)).forward(x), _run(mlp, x))
    conv1d = nn.Sequential(nn.Conv1d(3, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16, 2)).eval()
    x = np.random.default_rng(4).normal(size=(5, 3, 8)).astype(np.float32)  # (N, C, L)
    _close(nnframe_torch.from_module(conv1d, (3, 8)).forward(x.transpose(0, 2, 1)), _run(conv1d, x))


def test_a_trained_nnframe_model_becomes_a_torch_module_with_equal_outputs():
    from nnframe import loss, optimizer
    from nnframe.model import Model

    net = Net([layer.Conv2D(3, 3, padding="same"), layer.BatchNorm(), layer.ReLU(), layer.MaxPool2D(2),
               layer.Flatten(), layer.Dense(5), layer.ELU(), layer.Dense(3)])
    model = Model(net, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-2))
    x = smooth_input((16, 6, 6, 1), seed=8).astype(np.float32)
    model.fit(x, np.arange(16) % 3, epochs=3, batch_size=8, verbose=0)
    module = nnframe_torch.to_module(model)
    _close(_run(module, x.transpose(0, 3, 1, 2)), model.predict(x))


def test_errors_name_the_module_or_layer():
    with pytest.raises(ConversionError, match=r"cannot convert module '1' \(Hardswish\)"):
        nnframe_torch.from_module(nn.Sequential(nn.Linear(3, 3), nn.Hardswish()), (3,))
    with pytest.raises(ConversionError, match="padding_mode 'reflect'"):
        nnframe_torch.from_module(nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="reflect")), (1, 5, 5))
    net = Net([layer.Dense(4), layer.MultiHeadAttention(4, 2)])
    with pytest.raises(ConversionError, match=r"cannot convert layer 1 \(MultiHeadAttention"):
        nnframe_torch.to_module(net, (3, 2))
    with pytest.raises(ConversionError, match="input shape is unknown"):
        nnframe_torch.to_module(Net([layer.Dense(2)]))


def test_nnframe_torch_does_not_shadow_the_real_torch():
    """nnframe/torch.py must leave ``import torch`` (inside the package too) meaning PyTorch."""
    code = (
        "import sys, nnframe.torch as nt\n"
        "assert 'torch' not in sys.modules\n"
        "import torch\n"
        "from nnframe.interop import torch_convert\n"
        "assert torch_convert.torch is sys.modules['torch'] is torch and hasattr(torch, 'nn'), torch\n"
        "assert 'nnframe' not in torch.__file__.replace(sys.prefix, '')\n"
        "net = nt.from_module(torch.nn.Sequential(torch.nn.Linear(2, 3)), (2,))\n"
        "print(type(net).__name__, nt.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Net", "nnframe.torch"]


def test_a_gpt_style_stack_converts_both_ways_with_its_causal_mask():
    """Embedding, positions, decoder (causal) and encoder blocks, a head: PyTorch gives the same logits."""
    from nnframe import backend
    from nnframe.interop.torch_sequence import CausalEncoderLayer, LearnedPositions, SinusoidalPositions

    with backend.default_dtype("float64"):
        nnframe.set_seed(0)
        net = Net([layer.Embedding(11, 8, padding_idx=0), layer.PositionalEmbedding(6),
                   layer.SinusoidalPositionalEncoding(), layer.TransformerDecoderBlock(8, 2, activation="gelu"),
                   layer.TransformerEncoderBlock(8, 4, ff_dim=12), layer.LayerNorm(), layer.Dense(11)])
        ids = np.random.default_rng(0).integers(0, 11, (3, 6))
        net.eval()
        expected = net.forward(ids)
        module = nnframe_torch.to_module(net)
    kinds = [type(m) for m in module]
    assert kinds[:5] == [nn.Embedding, LearnedPositions, SinusoidalPositions, CausalEncoderLayer,
                         nn.TransformerEncoderLayer]
    out = _run(module, ids)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    changed = ids.copy()
    changed[:, -1] = (changed[:, -1] + 1) % 11  # a later token must not change earlier steps' logits...
    trunk = nn.Sequential(*list(module)[:4])  # (the encoder block after it sees every step)
    with torch.no_grad():
        a, b = trunk(torch.from_numpy(ids)), trunk(torch.from_numpy(changed))
    np.testing.assert_allclose(a[:, :-1].numpy(), b[:, :-1].numpy(), rtol=0, atol=1e-12)
    back = nnframe_torch.from_module(module, (6,))
    assert [type(lay).__name__ for lay in back.layers] == [type(lay).__name__ for lay in net.layers]
    np.testing.assert_allclose(back.forward(ids), expected, rtol=1e-10, atol=1e-10)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(back.state_dict()[key], value, err_msg=key)


def test_sequence_conversions_refuse_what_they_cannot_express():
    with pytest.raises(ConversionError, match=r"layer 0 \(.*\): mask_padding=True makes a mask"):
        nnframe_torch.to_module(Net([layer.Embedding(5, 4, padding_idx=0, mask_padding=True)]), (3,))
    post_norm = nn.TransformerEncoderLayer(8, 2, batch_first=True)
    with pytest.raises(ConversionError, match="only norm_first=True, batch_first=True"):
        nnframe_torch.from_module(nn.Sequential(post_norm), (4, 8))
    other = nn.TransformerEncoderLayer(8, 2, activation=torch.tanh, batch_first=True, norm_first=True)
    with pytest.raises(ConversionError, match="only ReLU or GELU layers"):
        nnframe_torch.from_module(nn.Sequential(other), (4, 8))
    from nnframe.interop.torch_sequence import CausalEncoderLayer

    with pytest.raises(TypeError, match="applies its own causal mask"):
        CausalEncoderLayer(8, 2, batch_first=True, norm_first=True)(torch.zeros(1, 3, 8), src_mask=None)


def test_the_resnet_example_goes_to_pytorch_and_back_with_equal_outputs_and_gradients():
    from example_loader import load_example  # noqa: PLC0415

    graph = load_example("fashion_resnet").build_graph(head_dropout=0.0)  # nn.Dropout converts back to nothing
    graph.build((1, 28, 28, 1))
    rng = np.random.default_rng(3)
    graph.load_state_dict({k: (rng.uniform(0.5, 1.5, v.shape) if k.endswith(("var", "gamma"))
                               else rng.normal(0.0, 0.2, v.shape)).astype(v.dtype)
                           for k, v in graph.state_dict().items()})
    graph.eval()
    x = rng.normal(size=(3, 28, 28, 1)).astype(np.float32)
    expected = graph.forward(x)
    module = nnframe_torch.to_module(graph)  # a Graph at the top, as a Model's net may be
    kinds = [type(m).__name__ for m in module.modules()]
    assert kinds.count("ResidualBlock") == 3 and kinds.count("GraphModule") == 1
    assert sum(p.numel() for p in module.parameters()) == sum(
        v.size for k, v in graph.state_dict().items() if k in set(graph.param_names))
    x_t = torch.from_numpy(layout.to_channels_first(x)).requires_grad_()
    out = module(x_t)
    _close(out.detach().numpy(), expected)
    grad_out = rng.normal(size=expected.shape).astype(np.float32)
    out.backward(torch.from_numpy(grad_out))
    graph.forward(x)
    _close(layout.to_channels_first(graph.backward(grad_out)), x_t.grad.numpy())  # the input gradient too
    back = nnframe_torch.from_module(module, (1, 28, 28))
    _close(back.forward(x), expected)
    assert sorted(back.state_dict()) == sorted(f"0.{k}" for k in graph.state_dict())  # the same wiring, nested once


def _shared_graph():
    x = nnframe.Input(shape=(4,))
    dense = layer.Dense(4)
    h = dense(layer.Tanh()(dense(x)))  # one layer used twice
    return nnframe.Graph(inputs=x, outputs=layer.Concatenate()([h, layer.Multiply()([h, x])]))


def test_a_shared_layer_stays_one_pytorch_module_and_comes_back_shared():
    graph = _shared_graph()
    graph.build((1, 4))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    module = nnframe_torch.to_module(graph)
    (graph_module,) = [m for m in module.modules() if type(m).__name__ == "GraphModule"]
    assert graph_module.nodes[0] is graph_module.nodes[2]  # called twice, one set of weights
    assert sum(p.numel() for p in module.parameters()) == 4 * 4 + 4
    _close(_run(module, x), graph.eval().forward(x))
    back = nnframe_torch.from_module(module, (4,))
    _close(back.forward(x), graph.forward(x))
    assert len(back.param_names) == 2  # one Dense: w and b


def test_graphs_pytorch_cannot_take_are_refused_by_name():
    a, b = nnframe.Input(shape=(3,)), nnframe.Input(shape=(3,))
    two_inputs = nnframe.Graph(inputs=[a, b], outputs=layer.Add()([a, b]))
    with pytest.raises(ConversionError, match="a graph converts with one input and one output, got 2 and 1"):
        nnframe_torch.to_module(two_inputs, (3,))
    x = nnframe.Input(shape=(3,))
    inner = nnframe.Graph(inputs=x, outputs=[layer.Dense(2)(x), layer.Dense(1)(x)])
    with pytest.raises(ConversionError, match=r"cannot convert layer 0 \(.*\): a graph inside a net must have one "
                                              "input and one output, got 1 and 2"):
        nnframe_torch.to_module(Net([inner]), (3,))
    from nnframe.interop import torch_graph  # noqa: PLC0415

    with pytest.raises(ValueError, match="Merge: op must be 'add', 'mul' or 'cat', got 'max'"):
        torch_graph.Merge("max")
    with pytest.raises(TypeError, match="GraphModule: expected 1 inputs, got 2"):
        torch_graph.GraphModule([(torch_graph.Merge("add"), [0, 0], 1)], 1, [1])(torch.ones(1), torch.ones(1))
    two = torch_graph.GraphModule([(nn.ReLU(), [0], 1)], 1, [0, 1])
    with pytest.raises(ConversionError, match="a graph converts with one input and one output, got 1 and 2"):
        nnframe_torch.from_module(nn.Sequential(two), (3,))


def test_recurrent_nets_go_to_pytorch_and_back_and_layers_with_states_are_refused():
    net = Net([layer.Embedding(20, 6), layer.LSTM(5, num_layers=2, bidirectional=True, return_sequences=True),
               layer.GRU(4, bidirectional=True), layer.Dense(3)])
    ids = np.random.default_rng(0).integers(0, 20, (4, 7))
    expected = net.eval().forward(ids)
    module = nnframe_torch.to_module(net)
    assert [type(m).__name__ for m in module] == ["Embedding", "Recurrent", "Recurrent", "Linear"]
    assert type(module[1].rnn).__name__ == "LSTM" and module[1].rnn.bidirectional and module[1].rnn.num_layers == 2
    _close(_run(module, ids), expected)  # the GRU's output: its final state, both directions
    back = nnframe_torch.from_module(module, (7,))
    _close(back.forward(ids), expected)
    assert [type(lay).__name__ for lay in back.layers] == ["Embedding", "LSTM", "GRU", "Dense"]
    with pytest.raises(ConversionError, match=r"cannot convert layer 0 \(.*\): return_state and stateful layers"):
        nnframe_torch.to_module(Net([layer.GRU(3, return_state=True)]), (5, 2))
    from nnframe.interop import torch_sequence  # noqa: PLC0415

    with pytest.raises(ValueError, match="Recurrent: the wrapped layer must be batch_first"):
        torch_sequence.Recurrent(nn.GRU(2, 3), return_sequences=True)
    with pytest.raises(ConversionError, match=r"module '0' \(LSTM\): it returns \(output, state\).*wrap it as "
                                              r"nnframe.interop.torch_sequence.Recurrent"):
        nnframe_torch.from_module(nn.Sequential(nn.LSTM(2, 3, batch_first=True)), (5, 2))
    with pytest.raises(ConversionError, match="without biases or with proj_size"):
        nnframe_torch.from_module(nn.Sequential(torch_sequence.Recurrent(nn.LSTM(2, 3, batch_first=True, bias=False),
                                                                         False)), (5, 2))


class _Block(nn.Module):
    """A torchvision-style basic block: its own forward, a projection shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) \
            if stride != 1 or cin != cout else None

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.nn.functional.relu(out + (x if self.down is None else self.down(x)))


class _TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.layers = nn.Sequential(_Block(4, 4, 1), _Block(4, 6, 2))
        self.side = nn.Conv2d(4, 2, 3, stride=2, padding=1)
        self.fc = nn.Linear(8 * 3 * 4, 5)

    def forward(self, x):
        x = self.stem(x)
        y = torch.cat([self.layers(x), torch.sigmoid(self.side(x))], dim=1)  # (N, 8, 3, 4)
        return self.fc(torch.flatten(y, 1))


def _randomize_batch_norms(module):
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, nn.BatchNorm2d):
                sub.running_mean.uniform_(-1, 1)
                sub.running_var.uniform_(0.5, 2)
                sub.weight.uniform_(0.5, 1.5)


def test_a_module_with_its_own_forward_is_traced_into_a_graph_with_equal_outputs():
    torch.manual_seed(0)
    module = _TinyResNet()
    _randomize_batch_norms(module)
    module.eval()
    x = np.random.default_rng(1).normal(size=(3, 3, 6, 8)).astype(np.float32)
    net = nnframe_torch.from_module(module, (3, 6, 8))
    kinds = [type(lay).__name__ for lay in nnframe.layer.container.subtree(net)]
    assert kinds.count("Graph") == 1  # torch.fx traces through the blocks: one graph of layers
    assert kinds.count("Add") == 2 and kinds.count("Concatenate") == 1 and kinds.count("Conv2D") == 7
    x_nhwc = x.transpose(0, 2, 3, 1)  # a channels-first model: the net takes channels-last input
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    _close(net.forward(x_nhwc), expected)
    model = nnframe.model.Model(net, nnframe.loss.MSE(), nnframe.optimizer.SGD(lr=0.05))  # it trains
    target = np.zeros((3, 5), dtype=np.float32)
    before = model.evaluate(x_nhwc, target)["loss"]
    model.fit(x_nhwc, target, epochs=3, batch_size=3, verbose=0)
    assert model.evaluate(x_nhwc, target)["loss"] < before


def test_a_module_with_its_own_forward_is_traced_once_per_conversion(monkeypatch):
    from nnframe.interop import torch_fx  # noqa: PLC0415

    traced = []
    real = torch.fx.symbolic_trace
    monkeypatch.setattr(torch.fx, "symbolic_trace", lambda m: traced.append(type(m).__name__) or real(m))
    module = _TinyResNet().eval()
    nnframe_torch.from_module(module, (3, 6, 8))
    assert traced == ["_TinyResNet"]  # asked for its first layer, then converted: one trace
    nnframe_torch.from_module(module, (3, 6, 8))
    assert traced == ["_TinyResNet"] * 2  # a new conversion traces afresh (the module may have changed)
    assert torch_fx.trace(module) is not torch_fx.trace(module)  # outside a conversion nothing is kept


class _OneLinear(nn.Module):
    """A Linear(4, 4) whose forward the subclasses write."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)


def test_what_a_trace_cannot_express_is_refused_by_node():
    class Sliced(_OneLinear):
        def forward(self, x):
            return self.fc(x)[:, :2]

    class Scaled(_OneLinear):
        def forward(self, x):
            return self.fc(x) + 1.0

    class Branchy(_OneLinear):
        def forward(self, x):
            if x.sum() > 0:  # data-dependent control flow: the tracer refuses it
                return self.fc(x)
            return x

    with pytest.raises(ConversionError, match=r"node 'getitem' \(call_function getitem\) has no nnframe equivalent"):
        nnframe_torch.from_module(Sliced(), (4,))
    with pytest.raises(ConversionError, match=r"node 'add' \(call_function add\) joins .*only tensors of the model"):
        nnframe_torch.from_module(Scaled(), (4,))
    with pytest.raises(ConversionError, match="torch.fx cannot trace Branchy"):
        nnframe_torch.from_module(Branchy(), (4,))


def test_a_block_with_its_own_forward_inside_a_sequential_becomes_a_graph_layer():
    torch.manual_seed(1)
    module = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), _Block(4, 4, 1), _Block(4, 6, 2), nn.AdaptiveAvgPool2d(1),
                           nn.Flatten(), nn.Linear(6, 3))
    _randomize_batch_norms(module)
    module.eval()
    x = np.random.default_rng(2).normal(size=(2, 2, 6, 6)).astype(np.float32)
    net = nnframe_torch.from_module(module, (2, 6, 6))
    assert [type(lay).__name__ for lay in net.layers] == ["Conv2D", "Graph", "Graph", "GlobalAvgPool2D", "Dense"]
    with torch.no_grad():
        _close(net.forward(x.transpose(0, 2, 3, 1)), module(torch.from_numpy(x)).numpy())


def test_the_small_modules_print_their_options():
    from nnframe.interop import torch_graph, torch_sequence  # noqa: PLC0415

    assert "Merge(cat, dim=1)" in repr(torch_graph.Merge("cat", 1)) and "Merge(add)" in repr(torch_graph.Merge("add"))
    assert "return_sequences=True" in repr(torch_sequence.Recurrent(nn.GRU(2, 3, batch_first=True), True))
    x, y = torch.ones(2, 3), torch.full((2, 3), 2.0)
    assert torch.equal(torch_graph.Merge("mul")(x, y, y), torch.full((2, 3), 4.0))
    assert torch_graph.Merge("cat", 1)(x, y).shape == (2, 6)
