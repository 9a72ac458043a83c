"""nnframe.plot: the training curves image, and a clear error without matplotlib."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from nnframe.callbacks import History
from nnframe.data.png import read_png
from nnframe.plot import plot_history

# matplotlib's font cache stays where it is (rebuilding it under a fresh HOME takes a minute)
os.environ.setdefault("MPLCONFIGDIR", os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "matplotlib"))


def _history(validation: bool) -> History:
    history = History()
    for epoch in range(4):
        logs = {"loss": 1.0 / (epoch + 1), "accuracy": 0.5 + 0.1 * epoch}
        if validation:
            logs |= {"val_loss": 1.2 / (epoch + 1), "val_accuracy": 0.45 + 0.1 * epoch}
        history.on_epoch_end(epoch, logs)
    return history


def _colours(image: np.ndarray) -> int:
    return len(np.unique(image.reshape(-1, image.shape[-1]), axis=0))


@pytest.mark.parametrize("validation", [True, False])
def test_plot_history_writes_a_png_with_curves(tmp_path, validation):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    plot_history(_history(validation), path, title="a title")
    image = read_png(path)
    assert image.shape == (480, 1200, 4)  # 10 x 4 inches at 120 dpi, RGBA
    assert _colours(image) > 20  # lines, text, grid: not a blank canvas
    assert os.listdir(tmp_path) == ["curves.png"]


def test_plot_history_takes_the_format_from_the_extension(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.svg"
    plot_history(_history(True), path)
    assert path.read_text().lstrip().startswith("<?xml") and "<svg" in path.read_text()


def test_plot_history_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'nnframe\[plot\]'"):
        plot_history(_history(True), tmp_path / "c.png")
    assert os.listdir(tmp_path) == []
