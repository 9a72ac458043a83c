"""``Model(net, loss, optimizer)``: the seed's three calls.

::

    pred = model.forward(x)
    loss, step = model.backward(pred, y)   # loss value and the optimizer's step
    model.apply_grad(step)                 # params += step, one in-place add
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from nnframe import backend
from nnframe.backend import Array
from nnframe.loss import BaseLoss
from nnframe.net import Net
from nnframe.optimizer import BaseOptimizer
from nnframe.parameter import ParamBuffer


class Model:
    """A net trained with a loss and an optimizer.

    Args:
        net: the :class:`~nnframe.net.Net`.
        loss: a :class:`~nnframe.loss.BaseLoss`.
        optimizer: a :class:`~nnframe.optimizer.BaseOptimizer`.
        check_finite: raise ``ValueError`` in :meth:`backward` when the loss is NaN
            or infinite, before any gradient reaches the parameters.
    """

    def __init__(self, net: Net, loss: BaseLoss, optimizer: BaseOptimizer,
                 check_finite: bool = True) -> None:
        for arg, value, cls in (("net", net, Net), ("loss", loss, BaseLoss),
                                ("optimizer", optimizer, BaseOptimizer)):
            if not isinstance(value, cls):
                raise TypeError(f"Model: {arg} must be a {cls.__name__}, got {type(value).__name__}")
        self.net = net
        self.loss = loss
        self.optimizer = optimizer
        self.check_finite = check_finite

    def forward(self, inputs: Array) -> Array:
        """The net's output for ``inputs`` (in whatever mode the net is in)."""
        return self.net.forward(inputs)

    def backward(self, preds: Array, targets: Array) -> tuple[float, ParamBuffer]:
        """Loss of ``preds`` against ``targets`` and the optimizer's step.

        Returns:
            ``(loss, step)``: a float and a :class:`~nnframe.parameter.ParamBuffer`
            to pass to :meth:`apply_grad` (reused by the next call).

        Raises:
            ValueError: when the loss is NaN or infinite and ``check_finite`` is set.
        """
        loss, grad = self.loss.loss_and_grad(preds, targets)
        if self.check_finite and not math.isfinite(loss):
            raise ValueError(
                f"the loss is {loss} (not finite); lower the learning rate, check the inputs "
                "for NaN/Inf, or pass check_finite=False to Model to train on regardless"
            )
        self.net.backward(grad, input_grad=False)
        step = self.optimizer.compute_step(self.net.grads, self.net.params)
        return loss, step

    def apply_grad(self, step: ParamBuffer | Sequence[Mapping[str, Array]]) -> None:
        """Add ``step`` to the parameters.

        Args:
            step: the :class:`ParamBuffer` from :meth:`backward` (one in-place add),
                or the seed's list of per-layer dicts of arrays.
        """
        params = self.net.params
        if isinstance(step, ParamBuffer):
            if step.layout != params.layout:
                raise ValueError("apply_grad: the step's names/shapes do not match the net's parameters")
            params.flat += step.flat
            return
        if not isinstance(step, (list, tuple)) or len(step) != len(self.net.layers):
            raise TypeError(
                f"apply_grad: expected the step from backward or a list of {len(self.net.layers)} "
                f"per-layer dicts, got {type(step).__name__}"
            )
        xp = backend.xp()
        for layer_step, layer in zip(step, self.net.layers, strict=True):
            for key, value in layer_step.items():
                layer.params[key] += xp.asarray(value, dtype=layer.params[key].dtype)
