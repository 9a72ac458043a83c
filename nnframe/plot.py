"""Training curves as an image: ``plot_history(model.fit(...), "curves.png")``.

Needs matplotlib, an optional extra (``pip install 'nnframe[plot]'``); nnframe imports
it only when a plot is drawn, and draws on a bare ``Figure`` (no pyplot, no GUI
backend, no global figure state).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from nnframe.atomic import atomic_write

if TYPE_CHECKING:
    from nnframe.callbacks import History

MATPLOTLIB_MISSING = "plotting needs matplotlib, which is not installed: pip install 'nnframe[plot]'"


def require_matplotlib() -> None:
    """Raise ``ImportError`` with the install command if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401, PLC0415 - optional extra
    except ImportError:
        raise ImportError(MATPLOTLIB_MISSING) from None


def plot_history(history: History, path: str | os.PathLike, title: str = "") -> None:
    """Save loss and accuracy per epoch (train and validation) as an image, atomically.

    Two panels, ``loss`` and ``accuracy``; each shows the training curve and, where
    the history has them (``val_loss``, ``val_accuracy``), the validation curve.

    Args:
        history: the :class:`~nnframe.callbacks.History` that ``fit`` returns.
        path: the image file; its extension gives the format (png, pdf, svg...; png
            when there is none).
        title: a line above both panels.

    Raises:
        ImportError: matplotlib is not installed.
    """
    require_matplotlib()
    from matplotlib.figure import Figure  # noqa: PLC0415 - optional extra
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    epochs = [e + 1 for e in history.epoch]
    logs = history.history
    fig = Figure(figsize=(10, 4), layout="constrained")
    for axis, key in zip(fig.subplots(1, 2), ("loss", "accuracy"), strict=True):
        for prefix, name, style in (("", "train", "o-"), ("val_", "validation", "s--")):
            values = logs.get(prefix + key)
            if values:
                axis.plot(epochs, values, style, markersize=3, label=name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_ylabel(key)
        axis.grid(True, alpha=0.3)
        if axis.has_data():
            axis.legend()
    if title:
        fig.suptitle(title)
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    with atomic_write(path) as file:
        fig.savefig(file, format=fmt, dpi=120)
