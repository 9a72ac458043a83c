"""Optimizers: turn gradients into parameter steps (the seed's ``compute_step``).

``compute_step(grads, params)`` returns a :class:`~nnframe.parameter.ParamBuffer`
``step`` such that ``params += step`` is the update; ``Model.apply_grad`` does that
add. Everything works on whole flat buffers: a step is a handful of vectorised
operations writing into buffers allocated once (the returned step is reused, and
overwritten, by the next call).

Weight decay is the L2 penalty ``weight_decay * param`` added to the gradient
(scaled by the learning rate like the rest of the step, as in PyTorch), except in
:class:`AdamW`, where it is decoupled (Loshchilov & Hutter, 2019).
``clip_norm`` rescales the gradient so its global L2 norm is at most that value.

State (moments, accumulators) is kept per parameter name and exported by
:meth:`BaseOptimizer.state_dict` as ``{"<buffer>.<param name>": array}``.

**Parameter groups** (PyTorch's ``param_groups``) give some parameters their own
learning rate or weight decay, e.g. no decay on biases and normalisation scales::

    AdamW(lr=1e-3, weight_decay=0.01, param_groups=[
        {"params": ["*.b", "*.gamma", "*.beta"], "weight_decay": 0.0},
        {"params": ["0.*"], "lr": 1e-4},          # the first layer learns slower
    ])

``params`` are :mod:`fnmatch` patterns over the dotted parameter names (``"3.w"``);
a parameter matched by no group uses the optimizer's own ``lr`` and ``weight_decay``.
A group's ``lr`` is its rate while the optimizer's ``lr`` is the one it was created
with; when a scheduler (or you) change ``optimizer.lr``, every group's rate changes in
the same proportion. Groups are part of :meth:`BaseOptimizer.get_config`, so
checkpoints keep them. Every step is linear in the learning rate, so a group's rate
is applied as a per-element factor on the step (one multiply over the flat buffer).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nnframe import backend
from nnframe.backend import Array
from nnframe.parameter import ParamBuffer, ParamLayout, as_buffer


def _check(owner: str, name: str, value: float, low: float, high: float = math.inf,
           low_open: bool = False, high_open: bool = True) -> float:
    value = float(value)
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (ok_low and ok_high and math.isfinite(value)):
        lo = "(" if low_open else "["
        hi = ")" if high_open else "]"
        raise ValueError(f"{owner}: {name} must be in {lo}{low}, {high}{hi}, got {value}")
    return value


class BaseOptimizer:
    """Base class (the seed's): ``BaseOptimizer(lr, weight_decay).compute_step(grads, params)``.

    Subclasses name their per-parameter state buffers in ``state_names`` and
    implement :meth:`_update`, which writes the step for gradient ``g`` and
    parameters ``p`` (flat arrays) into ``out``.

    Args:
        lr: learning rate, >= 0.
        weight_decay: L2 coefficient, >= 0.
        clip_norm: if set, the largest global gradient L2 norm.
        param_groups: ``[{"params": [pattern, ...], "lr": ..., "weight_decay": ...}, ...]``
            (``lr`` and ``weight_decay`` optional; ``lr_scale``, the group's rate as a
            multiple of ``lr``, instead of ``lr``); see the module docstring.
    """

    state_names: tuple[str, ...] = ()

    def __init__(self, lr: float, weight_decay: float = 0.0, clip_norm: float | None = None,
                 param_groups: Sequence[Mapping[str, Any]] | None = None) -> None:
        owner = type(self).__name__
        self.lr = _check(owner, "lr", lr, 0.0)
        self.weight_decay = _check(owner, "weight_decay", weight_decay, 0.0)
        self.clip_norm = None if clip_norm is None else _check(owner, "clip_norm", clip_norm, 0.0, low_open=True)
        self.iterations = 0
        self._layout: ParamLayout | None = None
        self.state: dict[str, ParamBuffer] = {}
        self._step: ParamBuffer | None = None
        self._grad_buf: Array | None = None  # clipped / decayed gradient
        self._tmp: Array | None = None  # scratch for subclasses
        # groups: patterns, lr as a multiple of self.lr, weight decay (None: the optimizer's)
        self._groups = _check_groups(owner, param_groups, self.lr)
        self._group_names: list[list[str]] = []  # names each group matched, in the bound layout
        self._lr_scale: Array | None = None  # (P,) per-element lr factor, None when all are 1
        self._decay: Array | None = None  # (P,) per-element weight decay, None when all share one

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The parameter groups: ``params`` (patterns), ``lr`` (at the current ``self.lr``),
        ``weight_decay``, and, once bound to a net, ``names`` (the parameters matched)."""
        groups = []
        for index, (patterns, scale, decay) in enumerate(self._groups):
            group: dict[str, Any] = {"params": list(patterns), "lr": self.lr * scale,
                                     "weight_decay": self.weight_decay if decay is None else decay}
            if self._group_names:
                group["names"] = list(self._group_names[index])
            groups.append(group)
        return groups

    def compute_step(self, grads: ParamBuffer | list, params: ParamBuffer | list) -> ParamBuffer:
        """Return the step to add to ``params``, given their gradients.

        Args:
            grads, params: :class:`ParamBuffer` (fast) or the seed's lists of
                per-layer dicts (copied into flat buffers first).
        """
        grads, params = as_buffer(grads), as_buffer(params)
        if grads.layout != params.layout:
            raise ValueError("compute_step: grads and params have different names, shapes or dtypes")
        self._bind(params.layout)
        self.iterations += 1
        g = self._effective_grad(grads.flat, params.flat)
        self._update(g, params.flat, self._step.flat)
        if self._lr_scale is not None:
            self._step.flat *= self._lr_scale  # every step is linear in lr: each group's rate
        return self._step

    #: ``True`` where weight decay is applied to the parameters directly (AdamW).
    decoupled_weight_decay = False

    def _effective_grad(self, g: Array, p: Array) -> Array:
        """The gradient after clipping and L2 decay, in a scratch buffer when changed."""
        xp = backend.xp()
        scale = 1.0
        if self.clip_norm is not None:
            norm = float(xp.sqrt(xp.dot(g, g)))
            if norm > self.clip_norm:
                scale = self.clip_norm / norm
        use_decay = self._has_decay() and not self.decoupled_weight_decay
        if scale == 1.0 and not use_decay:
            return g
        out = self._grad_buf
        xp.multiply(g, scale, out=out)
        if use_decay:
            xp.multiply(p, self.weight_decay if self._decay is None else self._decay, out=self._tmp)
            out += self._tmp
        return out

    def _has_decay(self) -> bool:
        return self.weight_decay > 0.0 if self._decay is None else True

    def _decayed(self, p: Array, factor: float, out: Array) -> Array:
        """``out = p * weight_decay * factor``, with each group's weight decay."""
        backend.xp().multiply(p, self.weight_decay * factor if self._decay is None else factor, out=out)
        if self._decay is not None:
            out *= self._decay
        return out

    def _update(self, g: Array, p: Array, out: Array) -> None:
        raise NotImplementedError

    def _bind(self, layout: ParamLayout) -> None:
        """Allocate state for ``layout``, keeping the values of names seen before."""
        if layout == self._layout and set(self.state) == set(self.state_names):
            return
        old = self.state
        self.state = {name: ParamBuffer(layout) for name in self.state_names}
        for buf_name, buf in self.state.items():
            if buf_name in old:
                for name in layout.names:
                    if name in old[buf_name] and old[buf_name][name].shape == buf[name].shape:
                        buf[name][...] = old[buf_name][name]
        self._step = ParamBuffer(layout)
        self._grad_buf = backend.xp().empty(layout.size, dtype=layout.dtype)
        self._tmp = backend.xp().empty(layout.size, dtype=layout.dtype)
        self._layout = layout
        self._bind_groups(layout)

    def _bind_groups(self, layout: ParamLayout) -> None:
        """Match the groups' patterns against ``layout``'s names; build the per-element factors."""
        if not self._groups:
            return
        owner = type(self).__name__
        xp = backend.xp()
        taken: dict[str, int] = {}
        self._group_names = []
        for index, (patterns, _, _) in enumerate(self._groups):
            names = [n for n in layout.names if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)]
            if not names:
                raise ValueError(f"{owner}: param_groups[{index}] {list(patterns)} matches no parameter; "
                                 f"the parameters are {list(layout.names)}")
            both = [n for n in names if n in taken]
            if both:
                raise ValueError(f"{owner}: parameters {both} are in param_groups[{taken[both[0]]}] and "
                                 f"param_groups[{index}]; each parameter may be in one group only")
            taken.update(dict.fromkeys(names, index))
            self._group_names.append(names)
        scale = np.ones(layout.size, dtype=layout.dtype)
        decay = np.full(layout.size, self.weight_decay, dtype=layout.dtype)
        for name, start, size in zip(layout.names, layout.offsets, layout.sizes, strict=True):
            if name in taken:
                _, lr_scale, weight_decay = self._groups[taken[name]]
                scale[start:start + size] = lr_scale
                if weight_decay is not None:
                    decay[start:start + size] = weight_decay
        self._lr_scale = None if (scale == 1).all() else xp.asarray(scale)
        self._decay = None if (decay == self.weight_decay).all() else xp.asarray(decay)

    # ------------------------------------------------------------------ state
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor arguments, as a JSON-serialisable dict."""
        config = {"lr": self.lr, "weight_decay": self.weight_decay, "clip_norm": self.clip_norm}
        if self._groups:
            config["param_groups"] = [
                {"params": list(patterns), **({} if decay is None else {"weight_decay": decay}),
                 **({"lr": self.lr * scale} if self.lr else {"lr_scale": scale})}  # lr 0 would lose the ratio
                for patterns, scale, decay in self._groups]
        return config

    def get_config(self) -> dict[str, Any]:
        """``{"class": name, **hyperparameters}`` (see :func:`get`)."""
        return {"class": type(self).__name__, **self.hyperparameters()}

    def state_dict(self) -> dict[str, Any]:
        """``{"iterations", "lr", "arrays": {"<buffer>.<param name>": host array}}``."""
        arrays = {
            f"{buf_name}.{name}": backend.to_host(view).copy()
            for buf_name, buf in self.state.items()
            for name, view in buf.items()
        }
        return {"iterations": self.iterations, "lr": self.lr, "arrays": arrays}

    def load_state_dict(self, state: Mapping[str, Any], layout: ParamLayout) -> None:
        """Restore :meth:`state_dict` output for parameters laid out as ``layout``.

        Raises:
            ValueError: listing every missing/unknown name and shape/dtype mismatch.
        """
        self._bind(layout)
        arrays = dict(state.get("arrays", {}))
        expected = {f"{b}.{n}": buf[n] for b, buf in self.state.items() for n in buf}
        problems = []
        if sorted(arrays) != sorted(expected):
            missing = sorted(set(expected) - set(arrays))
            unknown = sorted(set(arrays) - set(expected))
            if missing:
                problems.append(f"missing optimizer state: {missing}")
            if unknown:
                problems.append(f"unknown optimizer state: {unknown}")
        for key in sorted(set(arrays) & set(expected)):
            value, target = arrays[key], expected[key]
            if tuple(value.shape) != tuple(target.shape) or np.dtype(value.dtype) != target.dtype:
                problems.append(
                    f"{key}: expected {tuple(target.shape)} {target.dtype}, got {tuple(value.shape)} {value.dtype}"
                )
        if problems:
            raise ValueError("cannot load optimizer state: " + "; ".join(problems))
        xp = backend.xp()
        for key, target in expected.items():
            target[...] = xp.asarray(arrays[key])
        self.iterations = int(state["iterations"])
        self.lr = float(state["lr"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


def _check_beta(owner: str, name: str, value: float) -> float:
    return _check(owner, name, value, 0.0, 1.0)


def _check_groups(owner: str, groups: Any, lr: float) -> list[tuple[tuple[str, ...], float, float | None]]:
    """Validate ``param_groups``; return ``(patterns, lr / optimizer lr, weight decay or None)`` each."""
    if groups is None:
        return []
    if isinstance(groups, (str, bytes, Mapping)) or not isinstance(groups, Sequence):
        raise TypeError(f"{owner}: param_groups must be a list of dicts, got {type(groups).__name__}")
    checked = []
    for index, group in enumerate(groups):
        where = f"{owner}: param_groups[{index}]"
        if not isinstance(group, Mapping):
            raise TypeError(f"{where} must be a dict, got {type(group).__name__}")
        unknown = sorted(set(group) - {"params", "lr", "lr_scale", "weight_decay"})
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}; expected 'params', 'lr' (or 'lr_scale'), "
                             "'weight_decay'")
        if group.get("lr") is not None and group.get("lr_scale") is not None:
            raise ValueError(f"{where}: give 'lr' or 'lr_scale', not both")
        patterns = group.get("params")
        if isinstance(patterns, str):
            patterns = [patterns]
        if not patterns or not isinstance(patterns, Sequence) or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"{where}: 'params' must be a non-empty list of name patterns such as '*.b', "
                             f"got {group.get('params')!r}")
        scale = 1.0
        if group.get("lr") is not None:
            group_lr = _check(where, "lr", group["lr"], 0.0)
            if lr == 0.0 and group_lr != 0.0:
                raise ValueError(f"{where}: a group lr needs an optimizer lr > 0 (groups scale with it), got lr=0")
            scale = group_lr / lr if lr else 1.0
        elif group.get("lr_scale") is not None:
            scale = _check(where, "lr_scale", group["lr_scale"], 0.0)
        decay = None if group.get("weight_decay") is None else _check(where, "weight_decay",
                                                                      group["weight_decay"], 0.0)
        checked.append((tuple(patterns), scale, decay))
    return checked


class SGD(BaseOptimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as PyTorch's:
    ``b = momentum * b + g``; ``step = -lr * (g + momentum * b if nesterov else b)``.
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clip_norm: float | None = None,
                 param_groups: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(lr, weight_decay, clip_norm, param_groups)
        self.momentum = _check_beta("SGD", "momentum", momentum)
        if nesterov and self.momentum == 0.0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        """``("momentum",)`` while the momentum is non-zero (a scheduler may switch it on)."""
        return ("momentum",) if self.momentum else ()

    def _update(self, g: Array, p: Array, out: Array) -> None:
        xp = backend.xp()
        if not self.momentum:
            xp.multiply(g, -self.lr, out=out)
            return
        buf = self.state["momentum"].flat
        buf *= self.momentum
        buf += g
        if self.nesterov:
            xp.multiply(buf, self.momentum, out=out)
            out += g
            out *= -self.lr
        else:
            xp.multiply(buf, -self.lr, out=out)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(BaseOptimizer):
    """Adam (Kingma & Ba, 2015), with PyTorch's placement of ``eps``::

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        step = -lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)

    The bias corrections are folded into two scalars, so a step is ~12 passes
    over the flat buffers and allocates nothing.
    """

    state_names = ("m", "v")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, clip_norm: float | None = None,
                 param_groups: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(lr, weight_decay, clip_norm, param_groups)
        owner = type(self).__name__
        self.beta1 = _check_beta(owner, "beta1", beta1)
        self.beta2 = _check_beta(owner, "beta2", beta2)
        self.eps = _check(owner, "eps", eps, 0.0)

    def _moments(self, g: Array, out: Array) -> tuple[Array, Array]:
        """Update and return the first and second moments (``out`` is scratch)."""
        xp = backend.xp()
        m, v = self.state["m"].flat, self.state["v"].flat
        m *= self.beta1
        xp.multiply(g, 1.0 - self.beta1, out=out)
        m += out
        v *= self.beta2
        xp.multiply(g, g, out=out)
        out *= 1.0 - self.beta2
        v += out
        return m, v

    def _update(self, g: Array, p: Array, out: Array) -> None:
        xp = backend.xp()
        m, v = self._moments(g, out)
        t = self.iterations
        bc1, bc2 = 1.0 - self.beta1**t, 1.0 - self.beta2**t
        xp.sqrt(v, out=out)
        out += self.eps * math.sqrt(bc2)
        xp.divide(m, out, out=out)
        out *= -self.lr * math.sqrt(bc2) / bc1
        if self.decoupled_weight_decay and self._has_decay():
            out -= self._decayed(p, self.lr, self._tmp)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019):
    ``step = adam_step - lr * weight_decay * param``.
    """

    decoupled_weight_decay = True

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01, clip_norm: float | None = None,
                 param_groups: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay, clip_norm, param_groups)


class RAdam(Adam):
    """Rectified Adam (Liu et al., 2020), as PyTorch's: plain momentum SGD while the
    variance estimate is unreliable (``rho_t <= 5``), rectified Adam afterwards."""

    def _update(self, g: Array, p: Array, out: Array) -> None:
        xp = backend.xp()
        m, v = self._moments(g, out)
        t = self.iterations
        bc1, bc2 = 1.0 - self.beta1**t, 1.0 - self.beta2**t
        rho_inf = 2.0 / (1.0 - self.beta2) - 1.0
        rho_t = rho_inf - 2.0 * t * self.beta2**t / bc2
        if rho_t > 5.0:
            rect = math.sqrt(
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            )
            xp.sqrt(v, out=out)
            out += self.eps
            xp.divide(m, out, out=out)
            out *= -self.lr * rect * math.sqrt(bc2) / bc1
        else:
            xp.multiply(m, -self.lr / bc1, out=out)


class Adamax(Adam):
    """Adamax (Kingma & Ba, 2015, sec. 7.1), as PyTorch's:
    ``u = max(b2 u, |g| + eps)``; ``step = -lr / (1 - b1^t) * m / u``."""

    state_names = ("m", "u")

    def __init__(self, lr: float = 0.002, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0, clip_norm: float | None = None,
                 param_groups: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(lr, beta1, beta2, eps, weight_decay, clip_norm, param_groups)

    def _update(self, g: Array, p: Array, out: Array) -> None:
        xp = backend.xp()
        m, u = self.state["m"].flat, self.state["u"].flat
        m *= self.beta1
        xp.multiply(g, 1.0 - self.beta1, out=out)
        m += out
        u *= self.beta2
        xp.abs(g, out=out)
        out += self.eps
        xp.maximum(u, out, out=u)
        xp.divide(m, u, out=out)
        out *= -self.lr / (1.0 - self.beta1**self.iterations)


class RMSProp(BaseOptimizer):
    """RMSProp (Hinton, 2012), as PyTorch's ``RMSprop``::

        v = alpha v + (1 - alpha) g^2;  d = sqrt(v - gbar^2 if centered else v) + eps
        step = -lr * b  with  b = momentum b + g / d   (or -lr g / d without momentum)
    """

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, centered: bool = False, weight_decay: float = 0.0,
                 clip_norm: float | None = None,
                 param_groups: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(lr, weight_decay, clip_norm, param_groups)
        self.alpha = _check_beta("RMSProp", "alpha", alpha)
        self.eps = _check("RMSProp", "eps", eps, 0.0)
        self.momentum = _check_beta("RMSProp", "momentum", momentum)
        self.centered = bool(centered)

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        """``v``, ``gbar`` when centered, ``momentum`` while the momentum is non-zero."""
        return ("v",) + (("gbar",) if self.centered else ()) + (("momentum",) if self.momentum else ())

    def _update(self, g: Array, p: Array, out: Array) -> None:
        xp = backend.xp()
        v = self.state["v"].flat
        v *= self.alpha
        xp.multiply(g, g, out=out)
        out *= 1.0 - self.alpha
        v += out
        if self.centered:
            gbar = self.state["gbar"].flat
            gbar *= self.alpha
            xp.multiply(g, 1.0 - self.alpha, out=out)
            gbar += out
            xp.multiply(gbar, gbar, out=out)
            xp.subtract(v, out, out=out)
            xp.sqrt(out, out=out)
        else:
            xp.sqrt(v, out=out)
        out += self.eps
        xp.divide(g, out, out=out)
        if self.momentum:
            buf = self.state["momentum"].flat
            buf *= self.momentum
            buf += out
            xp.multiply(buf, -self.lr, out=out)
        else:
            out *= -self.lr

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "alpha": self.alpha, "eps": self.eps,
                "momentum": self.momentum, "centered": self.centered}


class Adagrad(BaseOptimizer):
    """Adagrad (Duchi et al., 2011), as PyTorch's:
    ``s += g^2``; ``step = -lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)``."""

    state_names = ("sum",)

    def __init__(self, lr: float = 0.01, lr_decay: float = 0.0, eps: float = 1e-10,
                 weight_decay: float = 0.0, clip_norm: float | None = None,
                 param_groups: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(lr, weight_decay, clip_norm, param_groups)
        self.lr_decay = _check("Adagrad", "lr_decay", lr_decay, 0.0)
        self.eps = _check("Adagrad", "eps", eps, 0.0)

    def _update(self, g: Array, p: Array, out: Array) -> None:
        xp = backend.xp()
        s = self.state["sum"].flat
        xp.multiply(g, g, out=out)
        s += out
        xp.sqrt(s, out=out)
        out += self.eps
        xp.divide(g, out, out=out)
        out *= -self.lr / (1.0 + (self.iterations - 1) * self.lr_decay)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "lr_decay": self.lr_decay, "eps": self.eps}


class Adadelta(BaseOptimizer):
    """Adadelta (Zeiler, 2012), as PyTorch's::

        v = rho v + (1 - rho) g^2;  d = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho u + (1 - rho) d^2;  step = -lr d
    """

    state_names = ("v", "u")

    def __init__(self, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, clip_norm: float | None = None,
                 param_groups: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(lr, weight_decay, clip_norm, param_groups)
        self.rho = _check_beta("Adadelta", "rho", rho)
        self.eps = _check("Adadelta", "eps", eps, 0.0)

    def _update(self, g: Array, p: Array, out: Array) -> None:
        xp = backend.xp()
        v, u, tmp = self.state["v"].flat, self.state["u"].flat, self._tmp
        v *= self.rho
        xp.multiply(g, g, out=out)
        out *= 1.0 - self.rho
        v += out
        xp.add(u, self.eps, out=out)
        xp.add(v, self.eps, out=tmp)
        xp.divide(out, tmp, out=out)
        xp.sqrt(out, out=out)
        out *= g  # out = d
        u *= self.rho
        xp.multiply(out, out, out=tmp)
        tmp *= 1.0 - self.rho
        u += tmp
        out *= -self.lr

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "rho": self.rho, "eps": self.eps}


_REGISTRY = {
    cls.__name__: cls for cls in (SGD, Adam, AdamW, RAdam, Adamax, RMSProp, Adagrad, Adadelta)
}


def get(spec: str | BaseOptimizer | dict[str, Any], **overrides: Any) -> BaseOptimizer:
    """Resolve an optimizer from an instance, a class name or ``{"class": ..., **config}``.

    Keyword ``overrides`` (e.g. ``lr=...``) are applied to a name or config.
    """
    if isinstance(spec, BaseOptimizer):
        return spec
    config = {"class": spec} if isinstance(spec, str) else dict(spec)
    name = config.pop("class", None)
    if name not in _REGISTRY:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(_REGISTRY)}")
    return _REGISTRY[name](**{**config, **overrides})
