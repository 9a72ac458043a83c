"""What the server does with a request's body, without any web code: validate, fit, predict, describe.

Every problem with a request raises :class:`RequestError` carrying the HTTP status
and a message that says what was wrong, what was expected and what was received.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from nnframe.data.images import ImageError, decode_image, fit_image
from nnframe.data.preprocessing import apply_stored_preprocessing, check_pixel_values, stored_pixel_range

if TYPE_CHECKING:
    from nnframe.model import Model

#: the most samples one JSON request may carry
MAX_JSON_SAMPLES = 256
IMAGE_TYPES = ("image/png", "image/jpeg")
JSON_TYPE = "application/json"


class RequestError(ValueError):
    """A bad request: ``status`` is the HTTP status (400, 413, 415), the message says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Predictor:
    """A loaded image classifier, ready to answer requests.

    Args:
        model: a model whose net maps ``(N, H, W, C)`` images (``C`` 1 or 3) to ``(N, K)``
            class scores, with a loss that defines class probabilities
            (:meth:`~nnframe.model.Model.predict_proba`).
        top: how many classes a prediction lists.

    Raises:
        ValueError: for a model that is not such a classifier, naming what it is.
    """

    def __init__(self, model: Model, top: int = 5) -> None:
        shape = tuple(model.input_shape or ())
        if len(shape) != 3 or shape[-1] not in (1, 3):
            raise ValueError(f"nnframe serve needs an image classifier with input (H, W, 1) or (H, W, 3); "
                             f"this model's input is {shape or 'unknown'}")
        self.model = model
        self.input_shape: tuple[int, int, int] = shape  # type: ignore[assignment]
        self.pixel_range = stored_pixel_range(model.metadata)
        try:
            scores = self.probabilities(np.zeros((1, *shape), dtype=model.net.dtype))
        except TypeError as exc:  # the loss defines no probabilities (e.g. MSE)
            raise ValueError(f"nnframe serve needs a classifier: {exc}") from None
        if scores.ndim != 2:
            raise ValueError(f"nnframe serve needs (N, K) class scores; this model gives {scores.shape[1:]}")
        self.num_classes = int(scores.shape[1])
        names = model.metadata.get("class_names")
        if isinstance(names, list) and len(names) == self.num_classes:
            self.class_names = [str(n) for n in names]
        else:
            self.class_names = [str(k) for k in range(self.num_classes)]
        self.top = max(1, min(int(top), self.num_classes))

    # ------------------------------------------------------------------ requests
    def inputs_from_body(self, body: bytes, content_type: str) -> tuple[np.ndarray, np.ndarray | None]:
        """The model inputs ``(N, H, W, C)`` for a request body, and the fitted uint8 picture (images only).

        Raises:
            RequestError: 415 for another content type, 400 for a body that does not decode
                or does not fit the input.
        """
        kind = content_type.split(";", 1)[0].strip().lower()
        if kind in IMAGE_TYPES:
            try:
                fitted = fit_image(decode_image(body, "the request body"), self.input_shape)
            except ImageError as exc:
                raise RequestError(400, str(exc)) from None
            return self.preprocess(fitted[None]), fitted  # (H, W, C) -> (1, H, W, C)
        if kind == JSON_TYPE:
            return self.preprocess(self._pixels_from_json(body)), None
        raise RequestError(415, f"unsupported Content-Type {content_type or '(none)'!r}: send a PNG or JPEG "
                                f"image (image/png, image/jpeg) or a JSON array (application/json) of shape "
                                f"{list(self.input_shape)}")

    def _pixels_from_json(self, body: bytes) -> np.ndarray:
        def refuse_constant(name: str) -> Any:
            raise RequestError(400, f"the JSON body holds {name}: pixel values must be finite numbers")

        try:
            value = json.loads(body, parse_constant=refuse_constant)
        except RequestError:
            raise
        except (ValueError, RecursionError) as exc:
            raise RequestError(400, f"the body is not valid JSON ({type(exc).__name__}: "
                                    f"{str(exc)[:120]})") from None
        try:
            array = np.array(value, dtype=np.float64)
        except (ValueError, TypeError, OverflowError):
            raise RequestError(400, f"expected a JSON array of numbers of shape {list(self.input_shape)} or "
                                    f"[N, {', '.join(map(str, self.input_shape))}], got a ragged or "
                                    f"non-numeric value") from None
        if array.shape == self.input_shape:
            array = array[None]  # (H, W, C) -> (1, H, W, C)
        if array.shape[1:] != self.input_shape or not 1 <= len(array) <= MAX_JSON_SAMPLES:
            raise RequestError(400, f"expected an array of shape {list(self.input_shape)} or [N, "
                                    f"{', '.join(map(str, self.input_shape))}] with 1 <= N <= {MAX_JSON_SAMPLES}, "
                                    f"got shape {list(array.shape)}")
        try:  # the same rule as nnframe predict's: the range the model was trained on
            pixels, _ = check_pixel_values(array, self.pixel_range)
        except ValueError as exc:
            raise RequestError(400, f"the JSON array {exc}") from None
        return pixels

    def preprocess(self, pixels: np.ndarray) -> np.ndarray:
        """Raw pixels ``(N, H, W, C)`` to the net's input: the checkpoint's normalisation, the net's dtype."""
        return apply_stored_preprocessing(pixels, self.model.metadata, self.model.net.dtype)

    # ---------------------------------------------------------------- inference
    def probabilities(self, inputs: np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, K)`` (float64) for preprocessed inputs ``(N, H, W, C)``
        (:meth:`nnframe.model.Model.predict_proba`: the loss's link on the net's outputs)."""
        return np.asarray(self.model.predict_proba(inputs, batch_size=max(1, len(inputs))), dtype=np.float64)

    def describe(self, probabilities: np.ndarray) -> list[dict[str, Any]]:
        """One JSON-ready dict per row: the best class, its name and probability, the top classes."""
        out = []
        for row in probabilities:
            order = np.argsort(-row, kind="stable")[: self.top]
            best = int(order[0])
            out.append({
                "class": best, "name": self.class_names[best], "probability": _finite(row[best]),
                "top": [{"class": int(k), "name": self.class_names[k], "probability": _finite(row[k])}
                        for k in order],
                "probabilities": [_finite(p) for p in row],
            })
        return out


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
