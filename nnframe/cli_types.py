"""Option types for the ``nnframe`` command and its sub-command modules: numbers within bounds.

Each is an ``argparse`` ``type=``: it turns the option's text into a number or raises
``argparse.ArgumentTypeError`` saying what was expected and what was received.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number_type(kind: type, expected: str, low: float | None = None, high: float | None = None,
                high_inclusive: bool = True, low_exclusive: bool = False) -> Callable[[str], int | float]:
    """An argparse type accepting ``kind`` (``int`` or ``float``) values within the bounds.

    Args:
        kind: ``int`` or ``float`` (a float must also be finite).
        expected: the phrase of the error, e.g. ``"a positive integer"``.
        low, high: the bounds (``None``: unbounded).
        high_inclusive: whether ``high`` itself is allowed.
        low_exclusive: whether ``low`` itself is refused.

    Returns:
        A function ``text -> number``.
    """
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        too_low = low is not None and (value <= low if low_exclusive else value < low)
        too_high = high is not None and (value > high if high_inclusive else value >= high)
        if too_low or too_high or (kind is float and not math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = number_type(int, "a positive integer", low=1)
non_negative_int = number_type(int, "a non-negative integer", low=0)
positive_float = number_type(float, "a positive number", low=0, low_exclusive=True)
fraction = number_type(float, "a number in [0, 1)", low=0, high=1, high_inclusive=False)
port = number_type(int, "a port number 0..65535", low=0, high=65535)
milliseconds = number_type(float, "milliseconds 0..1000", low=0, high=1000)
