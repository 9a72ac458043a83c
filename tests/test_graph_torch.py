"""A residual CNN built as an nnframe Graph against the same PyTorch module, weights copied:
outputs, the input gradient and every parameter gradient (float64 to 1e-10, float32 to 1e-5)."""

from __future__ import annotations

import numpy as np
import pytest

from nnframe import backend, layer
from nnframe.graph import Graph, Input
from nnframe.interop.layout import (
    from_linear,
    from_oihw,
    to_channels_first,
    to_channels_last,
    to_linear,
    to_oihw,
)
from nnframe.net import Net

torch = pytest.importorskip("torch")


def conv_bn(channels: int, stride: int = 1, kernel: int = 3) -> list:
    return [layer.Conv2D(channels, kernel, stride=stride, padding=kernel // 2, bias=False), layer.BatchNorm()]


def nnframe_model() -> Graph:
    """stem conv-BN-ReLU; a basic block with identity; a strided block with a projection; a branch
    concatenated with the pooled features; dense head. NHWC (N, 8, 8, 3) -> (N, 5)."""
    x = Input((8, 8, 3))
    h = layer.ReLU()(Net(conv_bn(4))(x))
    h = layer.ReLU()(layer.Residual(Net([*conv_bn(4), layer.ReLU(), *conv_bn(4)]))(h))
    h = layer.ReLU()(layer.Residual(Net([*conv_bn(6, stride=2), layer.ReLU(), *conv_bn(6)]),
                                    shortcut=Net(conv_bn(6, stride=2, kernel=1)))(h))
    pooled = layer.GlobalAvgPool2D()(h)
    side = layer.Tanh()(layer.Dense(3)(pooled))
    return Graph(x, layer.Dense(5)(layer.Concatenate()([pooled, side])))


class TorchBlock(torch.nn.Module):
    def __init__(self, c_in: int, c: int, stride: int, project: bool) -> None:
        super().__init__()
        self.c1 = torch.nn.Conv2d(c_in, c, 3, stride, 1, bias=False)
        self.b1 = torch.nn.BatchNorm2d(c)
        self.c2 = torch.nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.b2 = torch.nn.BatchNorm2d(c)
        self.proj = torch.nn.Sequential(torch.nn.Conv2d(c_in, c, 1, stride, 0, bias=False),
                                        torch.nn.BatchNorm2d(c)) if project else None

    def forward(self, x):
        out = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
        return torch.relu(out + (x if self.proj is None else self.proj(x)))


class TorchModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 3, 1, 1, bias=False)
        self.stem_bn = torch.nn.BatchNorm2d(4)
        self.block1 = TorchBlock(4, 4, 1, False)
        self.block2 = TorchBlock(4, 6, 2, True)
        self.side = torch.nn.Linear(6, 3)
        self.head = torch.nn.Linear(9, 5)

    def forward(self, x):
        h = self.block2(self.block1(torch.relu(self.stem_bn(self.stem(x)))))
        pooled = h.mean(dim=(2, 3))
        return self.head(torch.cat([pooled, torch.tanh(self.side(pooled))], dim=1))


def torch_names() -> list[tuple[str, str]]:
    """(nnframe dotted name, torch parameter name), in nnframe's order."""
    pairs = [("0.0.w", "stem.weight"), ("0.1.gamma", "stem_bn.weight"), ("0.1.beta", "stem_bn.bias")]
    for index, block, convs in ((2, "block1", ("c1", "b1", "c2", "b2")), (4, "block2", ("c1", "b1", "c2", "b2"))):
        for pos, module in zip((0, 1, 3, 4), convs, strict=True):
            if module.startswith("c"):
                pairs.append((f"{index}.body.{pos}.w", f"{block}.{module}.weight"))
            else:
                pairs += [(f"{index}.body.{pos}.gamma", f"{block}.{module}.weight"),
                          (f"{index}.body.{pos}.beta", f"{block}.{module}.bias")]
    pairs += [("4.shortcut.0.w", "block2.proj.0.weight"), ("4.shortcut.1.gamma", "block2.proj.1.weight"),
              ("4.shortcut.1.beta", "block2.proj.1.bias"), ("7.w", "side.weight"), ("7.b", "side.bias"),
              ("10.w", "head.weight"), ("10.b", "head.bias")]
    return pairs


def to_torch(name: str, value: np.ndarray) -> np.ndarray:
    if value.ndim == 4:
        return to_oihw(value)
    return to_linear(value) if name.endswith(".w") else value


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_residual_cnn_graph_matches_torch_outputs_and_every_gradient(dtype, tol):
    torch_dtype = {np.float64: torch.float64, np.float32: torch.float32}[dtype]
    with backend.default_dtype(dtype):
        graph = nnframe_model()
        x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype(dtype)
        graph.forward(x)  # build
        assert [n for n, _ in torch_names()] == list(graph.params)  # every parameter is compared
        module = TorchModel().to(torch_dtype)
        params = dict(module.named_parameters())
        with torch.no_grad():
            for ours, theirs in torch_names():
                params[theirs].copy_(torch.from_numpy(to_torch(ours, graph.params[ours].copy())))
        graph.train()
        module.train()
        y = graph.forward(x)
        xt = torch.from_numpy(to_channels_first(x).copy()).requires_grad_(True)
        yt = module(xt)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=tol, atol=tol)
        upstream = np.random.default_rng(1).normal(size=y.shape).astype(dtype)
        dx = graph.backward(upstream)
        yt.backward(torch.from_numpy(upstream))
        np.testing.assert_allclose(dx, to_channels_last(xt.grad.numpy()), rtol=tol, atol=tol)
        for ours, theirs in torch_names():
            grad = params[theirs].grad.numpy()
            if grad.ndim == 4:
                grad = from_oihw(grad)
            elif ours.endswith(".w"):
                grad = from_linear(grad)
            np.testing.assert_allclose(graph.grads[ours], grad, rtol=tol, atol=tol, err_msg=ours)
        assert graph.grads.flat.dtype == dtype
