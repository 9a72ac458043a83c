"""Host-side preparation of data sets: one-hot labels, a seeded split, normalisation.

These work on host (NumPy) arrays, once, before training; the batch iterator then
moves batches to the backend.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnframe import backend, functional
from nnframe.data.batching import is_multi
from nnframe.random import get_rng

_CHUNK_ELEMENTS = 1 << 22  # elements per pass in standardize: no float64 copy of the whole data set


def one_hot(labels: Any, num_classes: int, dtype: Any = None) -> np.ndarray:
    """``(N, K)`` one-hot rows for integer class labels, as a host array.

    Args:
        labels: integer labels of shape ``(N,)`` in ``[0, num_classes)``.
        num_classes: ``K``.
        dtype: float dtype of the result (default: the framework dtype).

    Raises:
        ValueError: for non-integer labels, a wrong shape, or a label out of range.
    """
    labels = np.asarray(labels)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"one_hot: num_classes must be a positive integer, got {num_classes!r}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"one_hot: labels must be integers, got dtype {labels.dtype}")
    return backend.to_host(functional.one_hot(labels.astype(np.int64), int(num_classes), dtype=dtype))


def train_val_split(x: Any, y: Any, val_fraction: float = 0.1,
                    rng: int | np.random.Generator | None = None) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """Split ``(x, y)`` into training and validation parts at random (seeded).

    Each part keeps the original order of its samples.

    Args:
        x: inputs of shape ``(N, ...)`` (a list of them for several inputs).
        y: targets of shape ``(N, ...)`` (a list for several outputs), or ``None``.
        val_fraction: share of samples for validation, in ``(0, 1)``; the validation
            part has ``round(N * val_fraction)`` samples (at least one of each part).
        rng: int seed or ``numpy.random.Generator``.

    Returns:
        ``(x_train, y_train), (x_val, y_val)``.

    Raises:
        ValueError: for a fraction outside ``(0, 1)``, mismatched lengths, or too few samples.
    """
    n = len(x[0]) if is_multi(x) else len(x)
    ny = None if y is None else len(y[0]) if is_multi(y) else len(y)
    if y is not None and ny != n:
        raise ValueError(f"train_val_split: x and y must have the same length, got {n} and {ny}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"train_val_split: val_fraction must lie in (0, 1), got {val_fraction!r}")
    n_val = int(round(n * val_fraction))
    if n_val < 1 or n_val > n - 1:
        raise ValueError(
            f"train_val_split: {n} samples with val_fraction={val_fraction} leave "
            f"{n_val} for validation and {n - n_val} for training; both need at least one"
        )
    perm = get_rng(rng).permutation(n)
    val_idx = np.sort(perm[:n_val])
    train_idx = np.sort(perm[n_val:])

    def pick(a: Any, i: np.ndarray) -> Any:
        if a is None:
            return None
        return [part[i] for part in a] if is_multi(a) else a[i]

    return (pick(x, train_idx), pick(y, train_idx)), (pick(x, val_idx), pick(y, val_idx))


def scale_pixels(x: Any, dtype: Any = None) -> np.ndarray:
    """uint8 pixels 0..255 to floats in ``[0, 1]``: ``x / 255`` in the framework dtype.

    Args:
        x: uint8 array of any shape (a batch or a whole data set).
        dtype: float32 or float64 (default: the framework dtype).

    Raises:
        ValueError: if ``x`` is not uint8 (already scaled data would be scaled twice).
    """
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"scale_pixels: expected uint8 pixels in 0..255, got dtype {x.dtype}")
    dtype = backend.get_default_dtype() if dtype is None else backend.as_float_dtype(dtype)
    return np.divide(x, 255, dtype=dtype)  # correctly rounded, 255 -> exactly 1.0


def standardize(x: Any, mean: Any = None, std: Any = None,
                dtype: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-channel standardisation ``(x - mean) / std`` over the last axis (NHWC: C).

    Compute the statistics on the training set and pass them for the test set::

        x_train, mean, std = standardize(x_train)
        x_test, _, _ = standardize(x_test, mean, std)

    Args:
        x: array of shape ``(N, ..., C)``; uint8 is cast (not scaled) first.
        mean: per-channel means of shape ``(C,)`` (or a scalar); computed from ``x`` if ``None``.
        std: per-channel standard deviations (population, ddof=0); computed if ``None``.
            Channels with zero deviation use 1, so constant features map to 0.
        dtype: float32 or float64 (default: the framework dtype).

    Returns:
        ``(x_std, mean, std)``: ``x_std`` like ``x`` in ``dtype``; ``mean``, ``std`` of shape ``(C,)``.

    Shapes:
        ``x``: ``(N, ..., C)``; ``mean``, ``std``: ``(C,)``.
    """
    x = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if x.ndim < 2:
        raise ValueError(f"standardize: x must have shape (N, ..., C), got {x.shape}")
    if x.size == 0 and (mean is None or std is None):
        raise ValueError(f"standardize: cannot compute statistics of an empty array {x.shape}")
    dtype = backend.get_default_dtype() if dtype is None else backend.as_float_dtype(dtype)
    channels = x.shape[-1]
    rows = x.reshape(-1, channels)  # (N * ..., C); a view for contiguous x
    step = max(1, _CHUNK_ELEMENTS // channels)
    if mean is None:
        total = np.zeros(channels)
        for s in range(0, len(rows), step):
            total += rows[s:s + step].sum(axis=0, dtype=np.float64)
        mean = total / len(rows)
    mean = _per_channel(mean, channels, "mean")
    if std is None:
        sq = np.zeros(channels)
        for s in range(0, len(rows), step):
            sq += ((rows[s:s + step] - mean) ** 2).sum(axis=0)
        std = np.sqrt(sq / len(rows))
        std[std == 0] = 1.0
    std = _per_channel(std, channels, "std")
    if np.any(std <= 0):
        raise ValueError(f"standardize: std must be positive, got {std}")
    mean, std = mean.astype(dtype), std.astype(dtype)
    out = np.empty(x.shape, dtype=dtype)
    step = max(1, _CHUNK_ELEMENTS // max(1, int(np.prod(x.shape[1:]))))
    for s in range(0, len(x), step):
        out[s:s + step] = (x[s:s + step].astype(dtype) - mean) / std
    return out, mean, std


def _per_channel(value: Any, channels: int, name: str) -> np.ndarray:
    value = np.asarray(value, dtype=np.float64)
    if value.ndim == 0:
        return np.full(channels, float(value))
    if value.shape != (channels,):
        raise ValueError(f"standardize: {name} must be a scalar or have shape ({channels},), got {value.shape}")
    return value


def stored_standardization(metadata: Any, where: str = "checkpoint") -> tuple[np.ndarray, np.ndarray] | None:
    """The per-channel ``(mean, std)`` a checkpoint's metadata records, or ``None`` if it records none.

    ``nnframe train`` stores ``{"preprocessing": {"standardize": {"mean": [...], "std": [...]}}}``.

    Raises:
        ValueError: naming ``where`` for a malformed entry (not lists of numbers of one
            length, a non-finite mean or a non-positive std).
    """
    prep = metadata.get("preprocessing") if isinstance(metadata, dict) else None
    if prep is None:
        return None
    try:
        mean = np.asarray(prep["standardize"]["mean"], dtype=np.float64)
        std = np.asarray(prep["standardize"]["std"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}: metadata 'preprocessing' must be "
                         '{"standardize": {"mean": [...], "std": [...]}}') from None
    if mean.ndim != 1 or mean.shape != std.shape or not np.all(np.isfinite(mean)) \
            or not np.all(np.isfinite(std)) or not np.all(std > 0):
        raise ValueError(f"{where}: bad standardisation in the metadata (mean {mean}, std {std})")
    return mean, std


def apply_stored_preprocessing(x: Any, metadata: Any, dtype: Any, where: str = "checkpoint") -> np.ndarray:
    """Raw pixels ``(N, ..., C)`` to the input a checkpoint's net was trained on.

    Applies the standardisation recorded in ``metadata`` (see :func:`stored_standardization`);
    without one the values are only cast to ``dtype``.

    Raises:
        ValueError: for malformed metadata, or a channel count that differs from the stored one.
    """
    stats = stored_standardization(metadata, where)
    if stats is None:
        return np.asarray(x, dtype=dtype)
    mean, std = stats
    if np.shape(x)[-1] != mean.shape[0]:
        raise ValueError(f"{where}: the stored normalisation has {mean.shape[0]} channel(s), "
                         f"the input has {np.shape(x)[-1]}")
    return standardize(x, mean, std, dtype=dtype)[0]


def value_range(x: Any) -> list[float]:
    """The range a training set's raw values can take: its integer dtype's (``[0, 255]`` for uint8),
    else its own minimum and maximum. ``nnframe train`` stores it as the checkpoint's ``pixel_range``."""
    x = np.asarray(x)
    if x.dtype.kind in "ui":
        info = np.iinfo(x.dtype)
        return [int(info.min), int(info.max)]
    return [float(x.min()), float(x.max())]


def stored_pixel_range(metadata: Any, where: str = "checkpoint") -> tuple[float, float] | None:
    """The raw pixel range a checkpoint was trained on: its ``pixel_range``, else 0..255 for a
    checkpoint of a built-in data set written before the range was stored, else ``None``.

    Raises:
        ValueError: naming ``where`` for a ``pixel_range`` that is not ``[low, high]``.
    """
    from nnframe.data.datasets import CLASS_NAMES  # the built-in data sets

    meta = metadata if isinstance(metadata, dict) else {}
    stored = meta.get("pixel_range")
    if stored is not None:
        if not (isinstance(stored, list) and len(stored) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in stored)
                and np.all(np.isfinite(stored)) and stored[0] < stored[1]):
            raise ValueError(f"{where}: metadata 'pixel_range' must be [low, high] with low < high, got {stored!r}")
        return float(stored[0]), float(stored[1])
    if meta.get("dataset") in CLASS_NAMES:
        return 0.0, 255.0
    return None


def check_pixel_values(images: Any, pixel_range: tuple[float, float] | None) -> tuple[np.ndarray, bool]:
    """Check raw pixels against the range a model was trained on (``nnframe predict`` and ``serve``).

    NaN and infinite values are refused; values outside ``pixel_range`` too, except that float
    pixels lying in 0..1 for a 0..255 model are taken as 0..255 (multiplied by 255).

    Returns:
        ``(images, rescaled)``: the pixels to use and whether they were multiplied by 255.

    Raises:
        ValueError: saying what was found and what was expected.
    """
    images = np.asarray(images)
    expected = "" if pixel_range is None else f" in {pixel_range[0]:g}..{pixel_range[1]:g}"
    if images.dtype.kind == "f" and not np.all(np.isfinite(images)):
        raise ValueError(f"holds NaN or infinite values; expected pixel values{expected}")
    if pixel_range is None or images.size == 0:
        return images, False
    low, high = pixel_range
    lo, hi = float(images.min()), float(images.max())
    if images.dtype.kind == "f" and (low, high) == (0.0, 255.0) and lo >= 0.0 and 0.0 < hi <= 1.0:
        return images * 255.0, True
    if lo < low or hi > high:
        raise ValueError(f"pixel values must lie in {low:g}..{high:g}, the range the model was trained on; "
                         f"got values in {lo:g}..{hi:g}")
    return images, False
