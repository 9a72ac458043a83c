"""Normalization layers: ``BatchNorm`` (over the batch) and ``LayerNorm`` (over features).

Both normalize channels-last data, so the features are always the last axis: ``(N, D)``
rows, ``(N, T, C)`` sequences and ``(N, H, W, C)`` images alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from nnframe import backend, threads
from nnframe import functional as F
from nnframe import initializer as init_mod
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer, check_rate


def _check_eps(owner: str, eps: float) -> float:
    eps = float(eps)
    if not eps > 0.0:
        raise ValueError(f"{owner}: eps must be > 0, got {eps}")
    return eps


class _Affine(Layer):
    """Per-feature scale ``gamma`` (ones) and shift ``beta`` (zeros), built from the last axis."""

    def __init__(self, eps: float, name: str | None) -> None:
        super().__init__(name)
        self.eps = _check_eps(type(self).__name__, eps)
        self.initializers = {"gamma": init_mod.Ones(), "beta": init_mod.Zeros()}
        self.shapes = {"gamma": [None], "beta": [None]}

    @property
    def param_names(self) -> tuple[str, ...]:
        return ("gamma", "beta")

    #: the smallest input rank: (N, D) for BatchNorm, (D,) for LayerNorm
    _min_ndim = 1

    def build(self, input_shape: tuple[int, ...]) -> None:
        self._check_rank(input_shape)
        self.shapes = {name: (input_shape[-1],) for name in (*self.param_names, *self.nt_param_names)}

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        self._check_rank(input_shape)
        features = self.shapes["gamma"][0]
        if features is not None and input_shape[-1] != features:
            raise ShapeError(f"{self.name} was built for {features} features (last axis), got input of "
                             f"shape {tuple(input_shape)}")
        return tuple(input_shape)

    def _check_rank(self, shape: tuple[int, ...]) -> None:
        if len(shape) < self._min_ndim:
            raise ShapeError(
                f"{self.name} expects input with features on the last axis, at least {self._min_ndim}-D "
                f"((N, D) or (N, H, W, C)), got shape {tuple(shape)}"
            )

    def _prepare(self, inputs: Array) -> None:
        if not self.is_init:
            self.build(inputs.shape)
            self._init_params()
        self.compute_output_shape(inputs.shape)
        self._check_dtype(inputs)

    def _affine_grads(self, g2: Array, xhat: Array) -> None:
        """Write ``dgamma = sum(g * xhat)`` and ``dbeta = sum(g)`` over the rows of ``(M, D)`` arrays."""
        xp = backend.xp()
        xp.einsum("md,md->d", g2, xhat, out=self._grad_buffer("gamma"))  # no (M, D) product (2x faster)
        xp.dot(xp.ones(g2.shape[0], dtype=g2.dtype), g2, out=self._grad_buffer("beta"))  # one BLAS call


#: BatchNorm's element-wise passes run over blocks of about this many values (256 KB of
#: float32), so that a block's temporaries are still in cache for the next operation on it
_BLOCK_ELEMENTS = 1 << 16


def _blocks(part: slice, per_item: int) -> Iterator[slice]:
    """Consecutive slices of ``part`` of about :data:`_BLOCK_ELEMENTS` values (``per_item`` per item)."""
    step = max(1, _BLOCK_ELEMENTS // max(per_item, 1))
    for start in range(part.start, part.stop, step):
        yield slice(start, min(start + step, part.stop))


class BatchNorm(_Affine):
    """Batch normalization (Ioffe & Szegedy, 2015, https://arxiv.org/abs/1502.03167).

    Training: ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` with the batch mean and
    (biased) variance of each feature over every axis but the last: per feature for
    ``(N, D)`` input, per channel over ``N, H, W`` for ``(N, H, W, C)`` input. The running
    statistics are updated as in PyTorch, with the unbiased variance::

        running_mean = (1 - momentum) running_mean + momentum mean
        running_var  = (1 - momentum) running_var  + momentum var * M / (M - 1)

    (``M`` values per feature). Evaluation uses the running statistics instead.

    Args:
        momentum: weight of the new batch in the running statistics, in ``[0, 1)``.
        eps: added to the variance, > 0.

    Shapes:
        input and output ``(N, D)`` or ``(N, H, W, C)`` (any ``(..., C)``);
        ``params["gamma"]``, ``params["beta"]``, ``nt_params["running_mean"]``,
        ``nt_params["running_var"]``: ``(C,)``.
    """

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5, name: str | None = None) -> None:
        super().__init__(eps, name)
        self.momentum = check_rate(type(self).__name__, "momentum", momentum)
        self.initializers.update(running_mean=init_mod.Zeros(), running_var=init_mod.Ones())
        self.shapes.update(running_mean=[None], running_var=[None])

    @property
    def nt_param_names(self) -> tuple[str, ...]:
        return ("running_mean", "running_var")

    _min_ndim = 2

    def forward(self, inputs: Array) -> Array:
        xp = backend.xp()
        self._prepare(inputs)
        x = xp.ascontiguousarray(inputs)
        channels, n = x.shape[-1], x.shape[0]
        count, per_item = x.size // channels, x.size // max(n, 1)
        reps = x.shape[-2] if x.ndim >= 3 else 1  # channel vectors tiled to F.channel_rows' row width
        slices = threads.batch_slices(n, per_item)  # each thread takes some samples
        out = xp.empty_like(x)
        if not self.is_training:  # out = x * scale + shift with the running statistics
            mean = self.nt_params["running_mean"].copy()
            inv_std = 1.0 / xp.sqrt(self.nt_params["running_var"] + self.eps)
            scale = self.params["gamma"] * inv_std
            scale_t, shift_t = xp.tile(scale, reps), xp.tile(self.params["beta"] - mean * scale, reps)

            def affine(part: slice) -> None:
                rows = F.channel_rows(out[part])[0]
                xp.multiply(F.channel_rows(x[part])[0], scale_t, out=rows)
                rows += shift_t

            threads.map_slices(affine, slices)
            self.ctx = {"x": x, "mean": mean, "inv_std": inv_std, "slices": slices, "train": False}
            return out.reshape(inputs.shape)
        if count < 2:
            raise ShapeError(f"{self.name}: training needs more than one value per feature, got input "
                             f"of shape {tuple(inputs.shape)}")
        mean = threads.sum_parts(threads.map_slices(lambda s: F.channel_sums(x[s]), slices)) * (1.0 / count)
        mean_t = xp.tile(mean, reps)
        centred = xp.empty_like(x)  # x - mean, kept for backward

        def centre(part: slice) -> Array:  # the part's sums of squares about the mean
            squares, scratch = xp.zeros(channels, dtype=x.dtype), None
            for block in _blocks(part, per_item):
                rows = F.channel_rows(centred[block])[0]
                xp.subtract(F.channel_rows(x[block])[0], mean_t, out=rows)
                scratch = xp.empty_like(rows) if scratch is None else scratch
                squares += F.channel_sums(xp.square(rows, out=scratch[: rows.shape[0]]).reshape(-1, channels))
            return squares

        var = threads.sum_parts(threads.map_slices(centre, slices)) * (1.0 / count)  # (C,)
        self._update_running(mean, var, count)
        inv_std = 1.0 / xp.sqrt(var + self.eps)  # (C,)
        scale_t, beta_t = xp.tile(self.params["gamma"] * inv_std, reps), xp.tile(self.params["beta"], reps)

        def normalize(part: slice) -> None:  # out = (x - mean) * gamma / std + beta
            for block in _blocks(part, per_item):
                rows = F.channel_rows(out[block])[0]
                xp.multiply(F.channel_rows(centred[block])[0], scale_t, out=rows)
                rows += beta_t

        threads.map_slices(normalize, slices)
        self.ctx = {"centred": centred, "inv_std": inv_std, "slices": slices, "train": True}
        return out.reshape(inputs.shape)

    def _update_running(self, mean: Array, var: Array, count: int) -> None:
        m = self.momentum
        for name, value in (("running_mean", mean), ("running_var", var * (count / (count - 1)))):
            state = self.nt_params[name]
            state *= 1.0 - m
            state += m * value

    def backward(self, grad: Array) -> Array | None:
        xp = backend.xp()
        inv_std, slices = self.ctx["inv_std"], self.ctx["slices"]
        channels = inv_std.shape[0]
        if not self.ctx["train"]:  # evaluation mode: an affine map with the running statistics
            xhat = (self.ctx["x"] - self.ctx["mean"]) * inv_std
            g2 = grad.reshape(-1, channels)
            F.channel_sums(g2 * xhat.reshape(-1, channels), out=self._grad_buffer("gamma"))
            F.channel_sums(g2, out=self._grad_buffer("beta"))
            return (grad * (self.params["gamma"] * inv_std)).reshape(grad.shape) if self.requires_input_grad else None
        centred = self.ctx["centred"]
        count = centred.size // channels
        reps = centred.shape[-2] if centred.ndim >= 3 else 1
        g = xp.ascontiguousarray(grad).reshape(centred.shape)

        def sums(part: slice) -> tuple[Array, Array]:  # sum(g * (x - mean)) and sum(g) over the part
            g2 = g[part].reshape(-1, channels)
            return F.channel_sums(g2 * centred[part].reshape(-1, channels)), F.channel_sums(g2)

        parts = threads.map_slices(sums, slices)
        dgamma, dbeta = self._grad_buffer("gamma"), self._grad_buffer("beta")
        dgamma[...] = threads.sum_parts([p[0] for p in parts]) * inv_std  # sum(g * xhat)
        dbeta[...] = threads.sum_parts([p[1] for p in parts])
        if not self.requires_input_grad:
            return None
        # dx = gamma / std * (g - mean(g) - xhat * mean(g * xhat)), means over the count values per channel
        # (whole-slice passes: measured faster here than the forward's cache-sized blocks)
        k_centred = xp.tile(inv_std * dgamma * (-1.0 / count), reps)
        k_mean = xp.tile(dbeta * (1.0 / count), reps)
        scale_t = xp.tile(self.params["gamma"] * inv_std, reps)
        dx = xp.empty_like(g)

        def input_grad(part: slice) -> None:
            rows = F.channel_rows(dx[part])[0]
            xp.multiply(F.channel_rows(centred[part])[0], k_centred, out=rows)
            rows += F.channel_rows(g[part])[0]
            rows -= k_mean
            rows *= scale_t

        threads.map_slices(input_grad, slices)
        return dx.reshape(grad.shape)

    def get_config(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "eps": self.eps, **super().get_config()}


class LayerNorm(_Affine):
    """Layer normalization (Ba et al., 2016, https://arxiv.org/abs/1607.06450) over the last axis.

    ``y = gamma * (x - mean) / sqrt(var + eps) + beta`` with the mean and biased variance
    of each sample's last axis; the same in training and evaluation.

    Args:
        eps: added to the variance, > 0.

    Shapes: input and output ``(..., D)``; ``params["gamma"]``, ``params["beta"]``: ``(D,)``.
    """

    propagates_mask: ClassVar[bool] = True  # per position: padded steps do not touch the others

    def __init__(self, eps: float = 1e-5, name: str | None = None) -> None:
        super().__init__(eps, name)

    def forward(self, inputs: Array) -> Array:
        """Normalise each row of the last axis. In evaluation mode the scale and shift are
        applied in place (one array allocated) and only the input is kept: a backward pass
        after it recomputes the normalised rows."""
        self._prepare(inputs)
        xhat, inv_std = self._normalize(inputs)
        if self.is_training:
            self.ctx = {"xhat": xhat, "inv_std": inv_std}
            out = xhat * self.params["gamma"]
        else:
            self.ctx = {"x": inputs}
            out = xhat
            out *= self.params["gamma"]
        out += self.params["beta"]
        return out.reshape(inputs.shape)

    def _normalize(self, inputs: Array) -> tuple[Array, Array]:
        """``((x - mean) / std, 1 / std)`` of each row: ``(M, D)`` and ``(M, 1)`` for ``M`` rows."""
        xp = backend.xp()
        features = inputs.shape[-1]
        x2 = inputs.reshape(-1, features)  # (M, D) rows
        mean = x2 @ xp.ones(features, dtype=inputs.dtype)  # (M,) row sums: one BLAS matrix-vector product
        mean /= features
        xhat = x2 - mean[:, None]  # centred, (M, D)
        var = xp.einsum("md,md->m", xhat, xhat)  # (M,) sums of squares in one pass, no (M, D) square
        var /= features
        var += self.eps
        inv_std = xp.reciprocal(xp.sqrt(var, out=var), out=var)[:, None]  # (M, 1)
        xhat *= inv_std
        return xhat, inv_std

    def backward(self, grad: Array) -> Array | None:
        xp = backend.xp()
        if "x" in self.ctx:  # after an evaluation-mode forward
            self.ctx = dict(zip(("xhat", "inv_std"), self._normalize(self.ctx["x"]), strict=True))
        xhat, inv_std = self.ctx["xhat"], self.ctx["inv_std"]  # (M, D), (M, 1)
        features = xhat.shape[-1]
        g2 = grad.reshape(-1, features)  # (M, D)
        self._affine_grads(g2, xhat)
        if not self.requires_input_grad:
            return None
        # dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / std, means over the last axis
        dxhat = g2 * self.params["gamma"]  # (M, D)
        mean_d = dxhat @ xp.ones(features, dtype=dxhat.dtype)  # (M,)
        mean_d /= features
        mean_dx = xp.einsum("md,md->m", dxhat, xhat)  # (M,)
        mean_dx /= features
        dx = dxhat
        dx -= mean_d[:, None]
        dx -= xhat * mean_dx[:, None]
        dx *= inv_std
        return dx.reshape(grad.shape)

    def get_config(self) -> dict[str, Any]:
        return {"eps": self.eps, **super().get_config()}
