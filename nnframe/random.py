"""Seeds and generators: the one allowed piece of global random state.

Everything random in nnframe (initializers, dropout, shuffling) takes a
``numpy.random.Generator`` or an integer seed (scikit-learn's ``random_state``
convention). Objects given neither draw from the global generator, which
:func:`set_seed` resets, so the same seed and the same code give bit-identical
runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_global = np.random.default_rng(0)


def set_seed(seed: int) -> None:
    """Reset the global generator so that everything random is reproducible.

    Raises:
        TypeError: if ``seed`` is not a non-negative integer.
    """
    global _global
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
    _global = np.random.default_rng(int(seed))


def global_generator() -> np.random.Generator:
    """Return the global generator (the one :func:`set_seed` resets)."""
    return _global


def get_rng(rng: int | np.random.Generator | None = None) -> np.random.Generator:
    """Resolve a seed-or-generator argument into a ``numpy.random.Generator``.

    Args:
        rng: ``None`` for a child of the global generator, an ``int`` seed for a
            fresh generator, or a ``Generator`` which is returned as is.

    Raises:
        TypeError: for any other type.
    """
    if rng is None:
        return np.random.default_rng(_global.integers(0, 2**63 - 1))
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise TypeError(f"expected an int seed, a numpy Generator or None, got {rng!r}")


def get_state() -> dict[str, Any]:
    """Return the global generator's state as a JSON-serialisable dict."""
    return _global.bit_generator.state


def set_state(state: dict[str, Any]) -> None:
    """Restore the global generator's state from :func:`get_state`'s output."""
    _global.bit_generator.state = state
