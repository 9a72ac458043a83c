"""The Starlette application: the page, the JSON API, JSON errors, and the micro-batcher's lifetime.

Why Starlette + uvicorn: a small, well-kept ASGI toolkit (Starlette is what FastAPI is
built on) and the reference ASGI server; together a few MB of pure Python plus
uvicorn's optional C speedups, asynchronous so that waiting requests can be
gathered into one forward pass, and no HTTP parsing of our own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from nnframe.serve.batcher import MicroBatcher
from nnframe.serve.card import model_card
from nnframe.serve.predictor import Predictor, RequestError

if TYPE_CHECKING:
    from nnframe.model import Model

STATIC = Path(__file__).resolve().parent / "static"
#: the largest request body accepted (a 280x280 RGBA PNG is ~20 KB; a 16-Mpixel JPEG a few MB)
DEFAULT_MAX_BODY = 4 * 1024 * 1024


def create_app(model: Model, *, batching: bool = True, max_batch: int = 64, max_wait_ms: float = 2.0,
               max_body: int = DEFAULT_MAX_BODY, top: int = 5) -> Starlette:
    """A Starlette application serving ``model``'s page and API (see :mod:`nnframe.serve`).

    Args:
        model: a loaded image classifier (e.g. ``nnframe.load("model.safetensors")``).
        batching: gather concurrent requests into one forward pass.
        max_batch: the most samples in one forward pass.
        max_wait_ms: how long the first waiting request waits for company, in milliseconds.
        max_body: the largest request body in bytes (larger ones get 413).
        top: how many classes a prediction lists.

    Raises:
        ValueError: for a model that is not an image classifier, or bad options.
    """
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ValueError(f"create_app: max_body must be a positive number of bytes, got {max_body!r}")
    predictor = Predictor(model, top=top)
    card = model_card(model, predictor.class_names)
    model.net.eval()
    batcher = MicroBatcher(predictor.probabilities, max_batch=max_batch, max_wait=max_wait_ms / 1000,
                           enabled=batching)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def model_info(request: Request) -> Response:
        return JSONResponse(card)

    async def predict(request: Request) -> Response:
        body = await _read_body(request, max_body)
        inputs, fitted = predictor.inputs_from_body(body, request.headers.get("content-type", ""))
        probabilities = await batcher.submit(inputs)
        payload: dict[str, Any] = {"predictions": predictor.describe(probabilities),
                                   "class_names": predictor.class_names}
        if fitted is not None and request.query_params.get("preview") == "1":
            payload["fitted"] = fitted[..., 0].tolist() if fitted.shape[-1] == 1 else fitted.tolist()
        return JSONResponse(payload)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/api/model", model_info, methods=["GET"]),
            Route("/api/predict", predict, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={RequestError: _request_error, HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    app.state.predictor = predictor
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestError(400, f"Content-Length must be a number of bytes, got {declared!r}")
        if int(declared) > limit:
            raise RequestError(413, f"the body of {int(declared)} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    if not size:
        raise RequestError(400, "the request has no body: send a PNG/JPEG image or a JSON array")
    return b"".join(chunks)


async def _request_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return JSONResponse({"error": str(exc), "status": exc.status}, status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no such path {request.url.path!r}",
               405: f"{request.method} is not allowed on {request.url.path!r}"}.get(exc.status_code, exc.detail)
    return JSONResponse({"error": message, "status": exc.status_code}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}", "status": 500}, status_code=500)
