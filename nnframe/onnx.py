"""ONNX export and import: ``nnframe.onnx.export(model, "model.onnx")``, ``nnframe.onnx.load("model.onnx")``.

::

    import nnframe, nnframe.onnx
    model = nnframe.load("model.safetensors")
    nnframe.onnx.export(model, "model.onnx")       # NHWC input "input", output "output", dynamic batch

    import onnxruntime as ort
    logits = ort.InferenceSession("model.onnx").run(None, {"input": x})[0]   # == model.predict(x)

    net = nnframe.onnx.load("resnet.onnx")          # a nnframe Net, channels-last input

``onnx`` (and ``onnxruntime`` for checking) are the optional extra ``nnframe[onnx]``; this
module imports them only when a function is called, so ``import nnframe.onnx`` works
without them. The work is done in :mod:`nnframe.interop.onnx_export` and
:mod:`nnframe.interop.onnx_import`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from nnframe.graph import Graph
    from nnframe.model import Model
    from nnframe.net import Net

DEFAULT_OPSET = 17
MISSING = "needs the 'onnx' package: pip install 'nnframe[onnx]' (onnx, and onnxruntime to run the file)"


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401, PLC0415 - the optional extra, loaded on use only
    except ImportError as exc:
        raise ImportError(f"nnframe.onnx {MISSING}") from exc


def export(model_or_net: Model | Net, path: str | os.PathLike, input_shape: Sequence[int] | None = None,
           opset: int = DEFAULT_OPSET, metadata: dict[str, Any] | None = None) -> Any:
    """Write a model or net as ONNX; see :func:`nnframe.interop.onnx_export.export`.

    Args:
        model_or_net: a :class:`~nnframe.model.Model` (its metadata, e.g. class names and input
            normalisation, goes into the file) or a :class:`~nnframe.net.Net`.
        path: the ``.onnx`` file, written atomically (never partially).
        input_shape: per-sample input shape without the batch axis; default: the model's.
        opset: ONNX opset, 17 or newer.
        metadata: extra entries for the file's ``metadata_props``.

    Returns:
        The ``onnx.ModelProto`` written.

    Raises:
        nnframe.interop.onnx_export.ExportError: naming a layer that cannot be exported,
            or for an unknown input shape or bad opset.
        ImportError: without the ``onnx`` package.
    """
    _require_onnx()
    from nnframe.interop import onnx_export  # noqa: PLC0415

    return onnx_export.export(model_or_net, path, input_shape=input_shape, opset=opset, metadata=metadata)


def load(path: str | os.PathLike, input_layout: str = "auto") -> Net | Graph:
    """Build a nnframe :class:`~nnframe.net.Net` (weights included) from an ONNX file, or a
    :class:`~nnframe.graph.Graph` when the ONNX graph branches (residual blocks, concatenations).

    See :func:`nnframe.interop.onnx_import.load` for the supported operators and layouts.
    The result takes channels-last input; wrap it in a :class:`~nnframe.model.Model` with a
    loss and an optimizer to fine-tune it with ``fit``.

    Raises:
        nnframe.interop.onnx_import.UnsupportedOperatorError: listing every operator of the
            graph that has no nnframe equivalent.
        ImportError: without the ``onnx`` package.
    """
    _require_onnx()
    from nnframe.interop import onnx_import  # noqa: PLC0415

    return onnx_import.load(path, input_layout=input_layout)


def metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metadata_props`` of an ONNX file, JSON values decoded (class names, normalisation, ...)."""
    _require_onnx()
    from nnframe.interop import onnx_import  # noqa: PLC0415

    return onnx_import.read_metadata(path)
