"""The model card: what a checkpoint says about its model, as one JSON-ready dict.

Everything comes from the loaded checkpoint (architecture, metadata written by
``nnframe train``, the training history); nothing is recomputed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nnframe.data.preprocessing import stored_standardization

if TYPE_CHECKING:
    from nnframe.model import Model


def model_card(model: Model, class_names: list[str] | None = None) -> dict[str, Any]:
    """The card's data for ``GET /api/model``.

    Returns:
        ``{"dataset", "class_names", "input_shape", "normalization" ({"mean", "std"} or None),
        "num_params", "summary" (the layer table as text), "test" ({"loss", "accuracy",
        "samples"} as ``nnframe train`` recorded it, or None), "epochs", "steps",
        "history" ({"epoch": [...], "loss": [...], "val_accuracy": [...], ...}),
        "loss", "optimizer"}``.
    """
    meta = model.metadata if isinstance(model.metadata, dict) else {}
    stats = stored_standardization(meta)
    history: dict[str, list[float | None]] = {}
    if model.history is not None and model.history.epoch:
        history["epoch"] = [int(e) + 1 for e in model.history.epoch]
        for key, values in model.history.history.items():
            history[key] = [_json_number(v) for v in values]
    test = meta.get("test") if isinstance(meta.get("test"), dict) else None
    return {
        "dataset": meta.get("dataset"),
        "class_names": class_names if class_names is not None else meta.get("class_names"),
        "input_shape": None if model.input_shape is None else list(model.input_shape),
        "normalization": None if stats is None else {"mean": stats[0].tolist(), "std": stats[1].tolist()},
        "num_params": int(model.net.num_params),
        "summary": model.summary_text(),
        "test": None if test is None else {k: _json_number(v) for k, v in test.items()},
        "epochs": int(model.epoch),
        "steps": int(model.global_step),
        "history": history,
        "loss": repr(model.loss),
        "optimizer": repr(model.optimizer),
    }


def _json_number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
