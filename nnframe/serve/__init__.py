"""``nnframe serve``: a trained classifier's web page and JSON prediction API.

::

    nnframe serve model.safetensors            # http://127.0.0.1:8000/

The page (``static/``) has a drawing canvas and an image upload, shows the top
classes as probability bars, and the model card (architecture, data set, input
normalisation, test accuracy, training curves). It uses only the JSON API:

* ``POST /api/predict``: a PNG or JPEG body (``Content-Type: image/png`` or
  ``image/jpeg``), or a JSON array of raw pixel values 0..255 of the input's shape
  ``(H, W, C)`` or a batch ``(N, H, W, C)``; returns the class probabilities and names.
* ``GET /api/model``: the model card's data. ``GET /healthz``: ``{"status": "ok"}``.

Pictures are fitted to the input by :func:`nnframe.data.fit_image`, the same function
``nnframe predict`` uses, then normalised as the checkpoint records. Concurrent
requests are batched: those arriving within ``max_wait_ms`` share one forward pass
(:class:`~nnframe.serve.batcher.MicroBatcher`).

The web stack (Starlette + uvicorn, and Pillow for JPEG) is the ``serve`` extra
(``pip install 'nnframe[serve]'``); this package imports it only when an app is made.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["MicroBatcher", "Predictor", "RequestError", "create_app", "model_card"]

# loaded on first use, so that ``nnframe --help`` does not import asyncio or the web stack
_WHERE = {"MicroBatcher": "batcher", "Predictor": "predictor", "RequestError": "predictor",
          "create_app": "app", "model_card": "card"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'nnframe.serve' has no attribute {name!r}")
    return getattr(importlib.import_module(f"nnframe.serve.{_WHERE[name]}"), name)
