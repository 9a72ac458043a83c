"""Learning-rate schedules: each sets ``optimizer.lr`` from a step counter.

Call :meth:`LRScheduler.step` once per epoch (or per batch, for schedules defined
in batches such as :class:`OneCycleLR`); the learning rate for step ``k`` is
``lr_at(k)``, with ``k = 0`` before the first call. Schedules are stateless apart
from ``last_step``, which :meth:`LRScheduler.state_dict` saves.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Any

from nnframe.optimizer import BaseOptimizer


class LRScheduler:
    """Base class: subclasses implement :meth:`lr_at`; ``base_lr`` is the optimizer's lr at creation."""

    def __init__(self, optimizer: BaseOptimizer) -> None:
        if not isinstance(optimizer, BaseOptimizer):
            raise TypeError(f"{type(self).__name__}: expected an optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_step = 0
        self._apply(0)

    def lr_at(self, step: int) -> float:
        """The learning rate after ``step`` calls of :meth:`step`."""
        raise NotImplementedError

    def _apply(self, step: int) -> None:
        """Set the optimizer's hyperparameters for ``step`` (the learning rate; more in subclasses)."""
        self.optimizer.lr = self.lr_at(step)

    def step(self) -> float:
        """Advance one step, set and return the optimizer's new learning rate."""
        self.last_step += 1
        self._apply(self.last_step)
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        """``{"last_step", "base_lr"}``."""
        return {"last_step": self.last_step, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output and set the optimizer's lr to match."""
        self.last_step = int(state["last_step"])
        self.base_lr = float(state["base_lr"])
        self._apply(self.last_step)


def _positive_int(owner: str, name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return value


class StepLR(LRScheduler):
    """``lr = base_lr * gamma ** (step // step_size)``."""

    def __init__(self, optimizer: BaseOptimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma ** (step // self.step_size)


class MultiStepLR(LRScheduler):
    """``lr = base_lr * gamma ** (number of milestones <= step)``."""

    def __init__(self, optimizer: BaseOptimizer, milestones: Sequence[int], gamma: float = 0.1) -> None:
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, step)


class ExponentialLR(LRScheduler):
    """``lr = base_lr * gamma ** step``."""

    def __init__(self, optimizer: BaseOptimizer, gamma: float) -> None:
        if not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"ExponentialLR: gamma must be in (0, 1], got {gamma}")
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma**step


class CosineAnnealingLR(LRScheduler):
    """Linear warmup over ``warmup_steps``, then cosine decay to ``eta_min`` at ``t_max``.

    Warmup (``step < W``, ``W = warmup_steps``): ``lr = base_lr (step + 1) / (W + 1)``,
    a straight line from 0 of which the first rate used is the first step up,
    ``base_lr / (W + 1)`` (never 0, so the first batches do train), reaching
    ``base_lr`` at ``step = W``. After warmup:
    ``lr = eta_min + (base_lr - eta_min) (1 + cos(pi s / S)) / 2`` with
    ``s = step - W``, ``S = t_max - W``; constant at ``eta_min`` beyond ``t_max``
    (Loshchilov & Hutter, 2017, without restarts).

    >>> from nnframe import optimizer
    >>> sched = CosineAnnealingLR(optimizer.SGD(lr=1.0), t_max=10, warmup_steps=3)
    >>> [round(sched.lr_at(k), 4) for k in range(5)]
    [0.25, 0.5, 0.75, 1.0, 0.9505]
    """

    def __init__(self, optimizer: BaseOptimizer, t_max: int, eta_min: float = 0.0,
                 warmup_steps: int = 0) -> None:
        self.t_max = _positive_int("CosineAnnealingLR", "t_max", t_max)
        if not 0 <= int(warmup_steps) < self.t_max:
            raise ValueError(
                f"CosineAnnealingLR: warmup_steps must be in [0, t_max={t_max}), got {warmup_steps}"
            )
        self.warmup_steps = int(warmup_steps)
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / (self.warmup_steps + 1)
        progress = min(step - self.warmup_steps, self.t_max - self.warmup_steps)
        span = self.t_max - self.warmup_steps
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * progress / span)) / 2


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin, 2018), cosine form, as PyTorch's ``OneCycleLR``.

    The learning rate rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start * total_steps`` steps, then falls to ``max_lr / (div_factor *
    final_div_factor)`` at ``total_steps - 1``. Step it once per batch.

    With ``cycle_momentum`` (the default, as in PyTorch) the momentum moves the other
    way: from ``max_momentum`` down to ``base_momentum`` while the rate rises, and back
    to ``max_momentum`` at the end. It is ``beta1`` for the Adam family (Adam, AdamW,
    RAdam, Adamax) and ``momentum`` for SGD and RMSProp; the scheduler overwrites the
    value the optimizer was created with, from its first step, as PyTorch does.

    Args:
        optimizer: the optimizer whose ``lr`` (and momentum) it sets.
        max_lr: the peak learning rate.
        total_steps: the number of batches of the whole run.
        pct_start: the fraction of ``total_steps`` spent rising, in (0, 1).
        div_factor: ``max_lr / div_factor`` is the first rate.
        final_div_factor: the last rate is the first divided by this.
        cycle_momentum: also cycle the momentum (``beta1``).
        base_momentum: the momentum at the peak learning rate.
        max_momentum: the momentum at the first and the last step.

    Raises:
        ValueError: for out-of-range arguments, and with ``cycle_momentum`` for an
            optimizer without momentum (Adagrad, Adadelta; PyTorch refuses them too):
            pass ``cycle_momentum=False`` there.

    Where it differs from PyTorch's ``OneCycleLR(..., anneal_strategy="cos",
    three_phase=False)`` (tested against it in ``tests/test_schedule.py``):

    * **Past the end.** Stepping beyond ``total_steps - 1`` keeps the last rate and
      momentum; PyTorch raises ``ValueError`` ("Tried to step ... times").
    * **A rise of exactly one step** (``pct_start * total_steps == 1``). PyTorch
      divides by ``pct_start * total_steps - 1`` and raises ``ZeroDivisionError``;
      here step 0 is the peak (``max_lr``, ``base_momentum``) and the fall starts
      from there. Below 1, both start the fall from the peak's virtual position
      ``pct_start * total_steps - 1 < 0`` (the same values).
    * **SGD or RMSProp with** ``momentum=0`` and ``cycle_momentum``: as in PyTorch the
      momentum is switched on (``max_momentum`` at step 0); pass
      ``cycle_momentum=False`` to keep plain SGD. Momentum buffers start at zero when
      the momentum is first non-zero.
    * **Parameter groups** (:mod:`nnframe.optimizer`): every group's rate follows
      the optimizer's ``lr`` in proportion; PyTorch gives all groups the same
      ``max_lr`` unless ``max_lr`` is a list.
    """

    def __init__(self, optimizer: BaseOptimizer, max_lr: float, total_steps: int,
                 pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, cycle_momentum: bool = True,
                 base_momentum: float = 0.85, max_momentum: float = 0.95) -> None:
        self.max_lr = float(max_lr)
        self.total_steps = _positive_int("OneCycleLR", "total_steps", total_steps)
        if not 0.0 < float(pct_start) < 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in (0, 1), got {pct_start}")
        self.pct_start = float(pct_start)
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)  # for checkpoints
        self.initial_lr = self.max_lr / float(div_factor)
        self.min_lr = self.initial_lr / float(final_div_factor)
        self.cycle_momentum = bool(cycle_momentum)
        self.base_momentum, self.max_momentum = float(base_momentum), float(max_momentum)
        self.momentum_name: str | None = None
        if self.cycle_momentum:
            for name, value in (("base_momentum", base_momentum), ("max_momentum", max_momentum)):
                if isinstance(value, bool) or not 0.0 <= float(value) < 1.0:
                    raise ValueError(f"OneCycleLR: {name} must be in [0, 1), got {value!r}")
            self.momentum_name = next((n for n in ("beta1", "momentum") if hasattr(optimizer, n)), None)
            if self.momentum_name is None:
                raise ValueError(
                    f"OneCycleLR: cycle_momentum=True needs an optimizer with momentum or beta1, got "
                    f"{type(optimizer).__name__}; pass cycle_momentum=False")
        super().__init__(optimizer)

    @staticmethod
    def _cos(start: float, end: float, fraction: float) -> float:
        return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2

    def _phase(self, step: int) -> tuple[bool, float]:
        """``(rising, fraction of the phase done)`` at ``step``."""
        peak = self.pct_start * self.total_steps - 1
        last = self.total_steps - 1
        step = min(step, last)
        if step <= peak:
            return True, step / peak if peak > 0 else 1.0
        return False, (step - peak) / (last - peak)

    def lr_at(self, step: int) -> float:
        rising, fraction = self._phase(step)
        if rising:
            return self._cos(self.initial_lr, self.max_lr, fraction)
        return self._cos(self.max_lr, self.min_lr, fraction)

    def momentum_at(self, step: int) -> float:
        """The momentum (``beta1``) after ``step`` calls of :meth:`step`, with ``cycle_momentum``."""
        rising, fraction = self._phase(step)
        if rising:
            return self._cos(self.max_momentum, self.base_momentum, fraction)
        return self._cos(self.base_momentum, self.max_momentum, fraction)

    def _apply(self, step: int) -> None:
        super()._apply(step)
        if self.momentum_name is not None:
            setattr(self.optimizer, self.momentum_name, self.momentum_at(step))
