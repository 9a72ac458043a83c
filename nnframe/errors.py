"""Exception types that carry enough context for a person to act on."""

from __future__ import annotations


class ShapeError(ValueError):
    """An array had a shape (or dtype) that the receiving object cannot use.

    The message states what was expected and what was received; :class:`nnframe.net.Net`
    prefixes it with the layer's index and name.
    """


class CheckpointError(ValueError):
    """A checkpoint file is malformed, truncated, hostile or does not fit the model.

    Also available as ``nnframe.io.CheckpointError``.
    """
