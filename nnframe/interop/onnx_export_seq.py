"""ONNX converters for the sequence family: Embedding (integer ids in), Masking.

Registered into :mod:`nnframe.interop.onnx_export`'s table when that module loads. A net
whose first layer takes integer ids gets an ``int64`` graph input.
"""

from __future__ import annotations

from nnframe import layer
from nnframe.interop.onnx_export import ExportContext, Tensor, register


@register(layer.Embedding)
def _embedding(ctx: ExportContext, lay: layer.Embedding, x: Tensor, out_shape: tuple) -> Tensor:
    """``weight[ids]``: ``Gather`` along the table's rows."""
    return Tensor(ctx.node("Gather", [ctx.constant(lay.params["weight"], "weight"), x.name], "lookup", axis=0),
                  out_shape)


@register(layer.Masking)
def _masking(ctx: ExportContext, lay: layer.Masking, x: Tensor, out_shape: tuple) -> Tensor:
    """``x * any(x != mask_value, last axis)``: padded steps zeroed (the mask itself is not exported)."""
    x = ctx.channels_last(x)
    same = ctx.node("Equal", [x.name, ctx.constant(lay.mask_value, "mask_value")], "is_mask_value")
    keep = ctx.node("Cast", [ctx.node("Not", [same], "differs")], "differs_float",
                    to=int(ctx.elem_type))
    if ctx.opset >= 18:
        keep = ctx.node("ReduceMax", [keep, ctx.ints([-1], "last_axis")], "keep", keepdims=1)
    else:
        keep = ctx.node("ReduceMax", [keep], "keep", axes=[-1], keepdims=1)
    return Tensor(ctx.node("Mul", [x.name, keep], "masked"), out_shape)

