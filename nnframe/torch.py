"""PyTorch interop: ``nnframe.torch.from_module(module, input_shape)`` and ``nnframe.torch.to_module(net)``.

::

    import torch, nnframe.torch
    net = nnframe.torch.from_module(torch_sequential, input_shape=(1, 28, 28))  # a nnframe Net, NHWC input
    module = nnframe.torch.to_module(net)                                     # an nn.Sequential, NCHW input

PyTorch is the optional extra ``nnframe[torch]``; this module does not import it (nor
anything that does) until a function is called, so ``import nnframe.torch`` works without
it. This file is named ``torch.py`` inside the package: it never imports ``torch`` by a
relative name, and :mod:`nnframe.interop.torch_convert` uses absolute imports only, so the
real PyTorch is what it gets. The conversion itself lives in
:mod:`nnframe.interop.torch_convert`; the weight layouts in :mod:`nnframe.interop.layout`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from nnframe.graph import Graph
    from nnframe.model import Model
    from nnframe.net import Net

MISSING = "needs PyTorch: pip install 'nnframe[torch]'"


def _converter() -> Any:
    try:
        from nnframe.interop import torch_convert  # noqa: PLC0415 - loads PyTorch on use only
    except ImportError as exc:
        if exc.name == "torch":
            raise ImportError(f"nnframe.torch {MISSING}") from exc
        raise
    return torch_convert


def from_module(module: Any, input_shape: Sequence[int]) -> Net:
    """Convert a PyTorch ``nn.Sequential`` (nested ones too, and the residual and graph modules
    :func:`to_module` writes) with its weights into a built nnframe net. A module that wires its
    children in its own ``forward`` (a ResNet) is traced by ``torch.fx`` into a
    :class:`~nnframe.graph.Graph` inside the net (:mod:`nnframe.interop.torch_fx`).

    Args:
        module: the PyTorch module.
        input_shape: PyTorch's per-sample input shape without the batch axis, e.g. ``(1, 28, 28)``.

    Returns:
        A :class:`~nnframe.net.Net` in evaluation mode that takes channels-last input
        (``(N, 28, 28, 1)`` for the example) and computes what the module computes.

    Raises:
        nnframe.interop.builder.ConversionError: naming the first module nnframe cannot express.
        ImportError: without PyTorch.
    """
    return _converter().from_module(module, input_shape)


def to_module(model_or_net: Model | Net | Graph, input_shape: Sequence[int] | None = None) -> Any:
    """Convert a nnframe model, net or graph into a PyTorch ``nn.Sequential`` with the same weights.

    ``Residual`` blocks and functional graphs (one input, one output) become the small
    modules of :mod:`nnframe.interop.torch_graph` inside it, and :func:`from_module` reads
    them back.

    Args:
        model_or_net: a :class:`~nnframe.model.Model`, :class:`~nnframe.net.Net` or
            :class:`~nnframe.graph.Graph`.
        input_shape: nnframe's per-sample input shape; default: the one the net has seen.

    Returns:
        An ``nn.Sequential`` in evaluation mode taking channels-first input (``(N, 1, 28, 28)``).

    Raises:
        nnframe.interop.builder.ConversionError: naming the first layer PyTorch cannot express here.
        ImportError: without PyTorch.
    """
    return _converter().to_module(model_or_net, input_shape)
