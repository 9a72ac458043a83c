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
        optimizer.lr = self.lr_at(0)

    def lr_at(self, step: int) -> float:
        """The learning rate after ``step`` calls of :meth:`step`."""
        raise NotImplementedError

    def step(self) -> float:
        """Advance one step, set and return the optimizer's new learning rate."""
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step)
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        """``{"last_step", "base_lr"}``."""
        return {"last_step": self.last_step, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output and set the optimizer's lr to match."""
        self.last_step = int(state["last_step"])
        self.base_lr = float(state["base_lr"])
        self.optimizer.lr = self.lr_at(self.last_step)


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
    """Linear warmup from 0 over ``warmup_steps``, then cosine decay to ``eta_min`` at ``t_max``.

    After warmup: ``lr = eta_min + (base_lr - eta_min) (1 + cos(pi s / S)) / 2`` with
    ``s = step - warmup_steps``, ``S = t_max - warmup_steps``; constant at ``eta_min``
    beyond ``t_max`` (Loshchilov & Hutter, 2017, without restarts).
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
    """The 1cycle policy (Smith & Topin, 2018), cosine form as PyTorch's ``OneCycleLR``.

    Rises from ``max_lr / div_factor`` to ``max_lr`` over ``pct_start * total_steps``,
    then falls to ``max_lr / (div_factor * final_div_factor)`` at ``total_steps - 1``.
    Step it once per batch.
    """

    def __init__(self, optimizer: BaseOptimizer, max_lr: float, total_steps: int,
                 pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4) -> None:
        self.max_lr = float(max_lr)
        self.total_steps = _positive_int("OneCycleLR", "total_steps", total_steps)
        if not 0.0 < float(pct_start) < 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in (0, 1), got {pct_start}")
        self.pct_start = float(pct_start)
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)  # for checkpoints
        self.initial_lr = self.max_lr / float(div_factor)
        self.min_lr = self.initial_lr / float(final_div_factor)
        super().__init__(optimizer)

    @staticmethod
    def _cos(start: float, end: float, fraction: float) -> float:
        return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2

    def lr_at(self, step: int) -> float:
        peak = self.pct_start * self.total_steps - 1
        last = self.total_steps - 1
        step = min(step, last)
        if step <= peak:
            return self._cos(self.initial_lr, self.max_lr, step / peak if peak > 0 else 1.0)
        return self._cos(self.max_lr, self.min_lr, (step - peak) / (last - peak))
