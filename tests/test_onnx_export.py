"""ONNX export (nnframe.onnx.export), checked in ONNX Runtime against Model.predict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from layer_cases import ALL_CASES, Case

from nnframe import backend, layer, loss, optimizer
from nnframe.gradcheck import smooth_input
from nnframe.model import Model
from nnframe.net import Net

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
nnframe_onnx = pytest.importorskip("nnframe.onnx")
from nnframe.interop import onnx_export  # noqa: E402 - after the importorskip of onnx
from nnframe.layer.container import subtree  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    """The exported file's output for ``x`` in ONNX Runtime (CPU)."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """float32 agreement to 1e-5 relative (to each value, or to the output's scale near zero)."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale)


def _model(net: Net) -> Model:
    return Model(net, loss.MSE(), optimizer.SGD(lr=0.1))


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_every_layer_family_runs_in_onnx_runtime_like_predict(case: Case, tmp_path):
    made = case.make()
    top_level = hasattr(made, "input_names")  # a functional graph: its own inputs and outputs
    if isinstance(case.input_shape, list) and not top_level:  # merges take several inputs: inside graphs
        pytest.skip("a layer of several inputs is exported as part of a graph")
    model = _model(made if top_level else Net([made]))
    shapes = case.input_shape if isinstance(case.input_shape, list) else [case.input_shape]
    path = tmp_path / "layer.onnx"
    missing = [lay for lay in subtree(made) if type(lay) not in onnx_export._CONVERTERS]
    if missing:  # not (yet) exportable (e.g. a functional graph): a clear error naming the first such layer
        first = type(missing[0]).__name__
        with pytest.raises(onnx_export.ExportError, match=rf"cannot export layer \S+ .*class {first}"):
            nnframe_onnx.export(model, path, input_shape=shapes[0][1:])
        assert not path.exists()
        return
    rng = np.random.default_rng(3)
    if case.ids is not None:  # integer ids in (Embedding): an int64 graph input
        xs = [rng.integers(0, case.ids, size=(7, *shape[1:])) for shape in shapes]
    else:
        xs = [smooth_input((7, *shape[1:]), seed=3 + k, kinks=case.kinks).astype(np.float32)
              for k, shape in enumerate(shapes)]
    model.predict(xs if len(xs) > 1 else xs[0])  # builds the layer (predict runs in evaluation mode)
    proto = nnframe_onnx.export(model, path)
    onnx.checker.check_model(str(path), full_check=True)
    names = [i.name for i in proto.graph.input]
    for batch in (1, 7):  # batch sizes 1 and 7 through one file: the batch axis is dynamic
        x = [a[:batch] for a in xs]
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, dict(zip(names, x, strict=True)))
        expected = model.predict(x if len(x) > 1 else x[0])
        expected = expected if isinstance(expected, list) else [expected]
        assert len(got) == len(expected)
        for actual, wanted in zip(got, expected, strict=True):
            assert_close(actual, wanted)


def _cnn() -> Net:
    return Net([
        layer.Conv2D(4, 3, padding="same", bias=False), layer.MaxPool2D(2), layer.BatchNorm(), layer.ReLU(),
        layer.Conv2D(6, 3, stride=2), layer.GELU(), layer.ZeroPad2D(1), layer.AvgPool2D(2),
        layer.Flatten(), layer.Dropout(0.25), layer.Dense(8), layer.LayerNorm(), layer.SiLU(),
        layer.Dense(3), layer.Softmax(),
    ])


def test_a_cnn_keeps_nchw_between_conv_layers_and_matches(tmp_path):
    model = _model(_cnn())
    x = smooth_input((5, 12, 10, 2), seed=1).astype(np.float32)
    model.fit(x, np.zeros((5, 3), np.float32), epochs=1, batch_size=5, verbose=0)  # non-trivial BN statistics
    proto = nnframe_onnx.export(model, tmp_path / "cnn.onnx")
    ops = [node.op_type for node in proto.graph.node]
    # one transpose in (before the first conv), one out (before Flatten): none between conv, pool, BN, ReLU
    assert ops.count("Transpose") == 2, ops
    assert ops.index("Transpose", 1) == ops.index("Flatten") - 1
    assert_close(run_onnx(tmp_path / "cnn.onnx", x), model.predict(x))


def test_input_and_output_have_a_dynamic_batch_axis_and_nhwc_shape(tmp_path):
    net = Net([layer.Conv2D(2, 3), layer.Flatten(), layer.Dense(4)])
    proto = nnframe_onnx.export(net, tmp_path / "m.onnx", input_shape=(6, 5, 3))
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert (inp.name, out.name) == ("input", "output")
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", 6, 5, 3]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 4]
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_metadata_carries_class_names_and_normalisation(tmp_path):
    model = _model(Net([layer.Flatten(), layer.Dense(3)]))
    model.metadata = {"dataset": "toy", "class_names": ["a", "b", "c"],
                      "preprocessing": {"standardize": {"mean": [0.5], "std": [0.25]}}}
    model.predict(np.zeros((1, 4, 4, 1), np.float32))
    path = tmp_path / "m.onnx"
    nnframe_onnx.export(model, path, metadata={"note": "hello"})
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(props["class_names"]) == ["a", "b", "c"]
    assert json.loads(props["preprocessing"]) == {"standardize": {"mean": [0.5], "std": [0.25]}}
    assert props["dataset"] == "toy" and props["note"] == "hello"
    assert props["input_layout"] == "NHWC" and json.loads(props["input_shape"]) == [4, 4, 1]
    assert nnframe_onnx.metadata(path)["class_names"] == ["a", "b", "c"]
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
    assert json.loads(meta.custom_metadata_map["class_names"]) == ["a", "b", "c"]


class Doubler(layer.Layer):
    """A custom layer without a converter."""

    def forward(self, inputs):
        return inputs * 2

    def backward(self, grad):
        return grad * 2


def test_an_unexportable_layer_is_named_and_no_file_is_left(tmp_path):
    net = Net([layer.Dense(3), Doubler(), layer.ReLU()])
    net.forward(np.zeros((1, 2), np.float32))
    path = tmp_path / "m.onnx"
    with pytest.raises(onnx_export.ExportError, match=r"cannot export layer 1 \(Doubler, class Doubler\).*Dense"):
        nnframe_onnx.export(net, path)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file
    path.write_bytes(b"old")
    with pytest.raises(onnx_export.ExportError):
        nnframe_onnx.export(net, path)
    assert path.read_bytes() == b"old"


def test_bad_arguments_are_reported():
    net = Net([layer.Dense(3)])
    with pytest.raises(onnx_export.ExportError, match="input shape is unknown"):
        nnframe_onnx.export(net, "unused.onnx")
    with pytest.raises(onnx_export.ExportError, match="input_shape must be .* got \\(0, 3\\)"):
        nnframe_onnx.export(net, "unused.onnx", input_shape=(0, 3))
    with pytest.raises(onnx_export.ExportError, match="opset must be an integer from 17 .* got 11"):
        nnframe_onnx.export(net, "unused.onnx", input_shape=(2,), opset=11)
    with pytest.raises(TypeError, match="expected a nnframe Model or Net, got list"):
        nnframe_onnx.export([net], "unused.onnx")


def test_opset_20_uses_the_gelu_operator(tmp_path):
    net = Net([layer.Dense(4), layer.GELU("tanh"), layer.Dense(2), layer.GELU()])
    x = smooth_input((3, 5), seed=2).astype(np.float32)
    proto = nnframe_onnx.export(net, tmp_path / "g.onnx", input_shape=(5,), opset=20)
    assert [n.op_type for n in proto.graph.node].count("Gelu") == 2
    assert_close(run_onnx(tmp_path / "g.onnx", x), _model(net).predict(x))


def test_float64_nets_export_as_double(tmp_path):
    with backend.default_dtype("float64"):
        net = Net([layer.Dense(3), layer.Tanh()])
        x = smooth_input((2, 4), seed=0)
        nnframe_onnx.export(net, tmp_path / "d.onnx", input_shape=(4,))
    np.testing.assert_allclose(run_onnx(tmp_path / "d.onnx", x), _model(net).predict(x), rtol=1e-12)


def test_importing_nnframe_onnx_and_the_cli_loads_no_optional_dependency():
    code = ("import sys, nnframe, nnframe.onnx, nnframe.cli; "
            "print(sorted(m for m in ('onnx', 'onnxruntime', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_cli_export_writes_a_file_that_predicts_like_the_checkpoint(tmp_path, capsys):
    from nnframe.cli import main

    model = Model(Net([layer.Conv2D(3, 3), layer.ReLU(), layer.Flatten(), layer.Dense(4)]),
                  loss.SoftmaxCrossEntropy(), optimizer.Adam())
    model.metadata = {"class_names": ["w", "x", "y", "z"],
                      "preprocessing": {"standardize": {"mean": [0.2], "std": [0.3]}}}
    x = smooth_input((7, 6, 6, 1), seed=4).astype(np.float32)
    model.fit(x, np.arange(7) % 4, epochs=1, batch_size=7, verbose=0)
    ckpt, out = tmp_path / "m.safetensors", tmp_path / "m.onnx"
    model.save(ckpt)
    assert main(["export", str(ckpt), str(out)]) == 0
    printed = capsys.readouterr().out
    assert "input 'input' ('N', 6, 6, 1)" in printed and "class_names (4)" in printed
    assert_close(run_onnx(out, x), model.predict(x))
    assert nnframe_onnx.metadata(out)["preprocessing"]["standardize"]["std"] == [0.3]
    assert main(["export", str(tmp_path / "missing.safetensors"), str(out)]) == 1
    assert "checkpoint" in capsys.readouterr().err
    assert main(["export", str(ckpt), str(out), "--opset", "9"]) == 1
    assert "opset must be an integer from 17" in capsys.readouterr().err


def test_conv_transpose_output_padding_beyond_the_padding_runs_in_onnx_runtime(tmp_path):
    # output_padding 2 >= stride 1 (allowed: dilation 3) and > padding 1: exported as a crop, zero rows and the bias
    net = Net([layer.Conv2DTranspose(3, 2, padding=1, dilation=3, output_padding=(2, 1), groups=1)]).eval()
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 2)).astype(np.float32)
    net.forward(x)
    net.layers[0].params["b"][...] = [0.5, -1.0, 2.0]
    path = tmp_path / "t.onnx"
    nnframe_onnx.export(net, path)
    expected = net.forward(x)
    assert expected.shape == (2, 6, 6, 3) and np.all(expected[:, -1, :, 0] == 0.5)  # a zero row plus the bias
    assert_close(run_onnx(path, x), expected)


FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.slow
@pytest.mark.skipif(not (FASHION_DIR / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_exported_mlp_and_cnn_agree_with_nnframe_on_the_whole_fashion_mnist_test_set(tmp_path):
    """The seed's MLP and the CNN example (trained briefly here), exported: the same class for all 10000 images."""
    from nnframe.cli import mlp
    from nnframe.data import load_fashion_mnist, standardize

    sys.path.insert(0, str(REPO / "examples"))
    try:
        from fashion_cnn import build_layers
    finally:
        sys.path.remove(str(REPO / "examples"))
    (x_train, y_train), (x_test, _) = load_fashion_mnist(FASHION_DIR, download=False, progress=False)
    x_train, mean, std = standardize(x_train[:4096])
    x_test = standardize(x_test, mean, std)[0]
    for name, net in (("mlp", mlp(10)), ("cnn", Net(build_layers()))):
        model = Model(net, loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-3))
        model.fit(x_train, y_train[:4096], epochs=1, batch_size=128, verbose=0)
        path = tmp_path / f"{name}.onnx"
        nnframe_onnx.export(model, path)
        ours, theirs = model.predict(x_test), run_onnx(path, x_test)
        agree = int((ours.argmax(1) == theirs.argmax(1)).sum())
        assert agree == len(x_test), f"{name}: {agree}/{len(x_test)} test images get the same class"
        assert_close(theirs, ours)
