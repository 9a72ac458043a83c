"""``nnframe export --web DIR CKPT``: the serve page as static files that run the model in the browser.

The directory holds everything a static host needs (no Python, no server of ours):

* ``index.html`` and ``static/`` — the same page as ``nnframe serve``, whose two calls
  (model card, predict) ``static/web.js`` answers in the browser;
* ``model.onnx`` — the net, exported by :func:`nnframe.onnx.export`, run by
  onnxruntime-web (WebAssembly, one thread: threads would need cross-origin isolation
  headers that a plain static host does not send);
* ``model.json`` — the model card plus what the page needs to prepare a picture: the
  probability link and the fitting constants of :mod:`nnframe.data.images`, which
  ``web.js`` re-implements step for step (a browser test compares the two);
* ``ort/`` — onnxruntime-web's WebAssembly build, copied from npm's package
  (``npm install onnxruntime-web``); nnframe does not ship it.

The directory is built beside its destination and moved into place, so a failed export
leaves nothing half-written; an existing destination is replaced only if it is empty or
an earlier export (it holds ``nnframe-web.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnframe.data import images
from nnframe.serve.card import model_card
from nnframe.serve.predictor import Predictor

if TYPE_CHECKING:
    from nnframe.model import Model

STATIC = Path(__file__).resolve().parent / "static"
#: what the page loads from onnxruntime-web's ``dist/`` directory
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.wasm", "ort-wasm-simd-threaded.mjs")
MARKER = "nnframe-web.json"
ORT_MISSING = ("needs onnxruntime-web from npm: run 'npm install onnxruntime-web' in this directory (or set "
               "NNFRAME_ORT_WEB to its dist/ directory, or pass --ort DIR)")


class WebExportError(ValueError):
    """The page cannot be written; the message says why and what to do."""


def find_ort_dist(ort_dist: str | os.PathLike | None = None) -> Path:
    """onnxruntime-web's ``dist/`` directory: ``ort_dist``, ``$NNFRAME_ORT_WEB``, ``./node_modules``,
    then npm's global ``node_modules``.

    Raises:
        WebExportError: listing the places tried when none holds :data:`ORT_FILES`.
    """
    candidates = [Path(ort_dist)] if ort_dist is not None else []
    if ort_dist is None:
        if os.environ.get("NNFRAME_ORT_WEB"):
            candidates.append(Path(os.environ["NNFRAME_ORT_WEB"]))
        candidates.append(Path.cwd() / "node_modules" / "onnxruntime-web" / "dist")
        npm = shutil.which("npm")
        if npm:
            try:
                root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=30).stdout.strip()
            except (OSError, subprocess.SubprocessError):
                root = ""
            if root:
                candidates.append(Path(root) / "onnxruntime-web" / "dist")
    for candidate in candidates:
        if all((candidate / name).is_file() for name in ORT_FILES):
            return candidate
    tried = ", ".join(str(c) for c in candidates) or "nowhere"
    raise WebExportError(f"the web page {ORT_MISSING}; looked in {tried} for {', '.join(ORT_FILES)}")


def web_card(model: Model) -> dict[str, Any]:
    """``model.json``: the model card plus the probability link and the picture-fitting constants."""
    predictor = Predictor(model)  # refuses models that are not image classifiers
    return {**model_card(model, predictor.class_names), "probability_link": model.probability_link,
            "fit": {"object_fraction": images.OBJECT_FRACTION, "ink_threshold": images.INK_THRESHOLD}}


def export_web(model: Model, directory: str | os.PathLike, ort_dist: str | os.PathLike | None = None,
               opset: int | None = None) -> Path:
    """Write the static page of ``model`` to ``directory`` (see the module docstring).

    Args:
        model: a loaded image classifier.
        directory: where the page goes; replaced if it is empty or an earlier export.
        ort_dist: onnxruntime-web's ``dist/`` directory (default: :func:`find_ort_dist`).
        opset: ONNX opset (default :data:`nnframe.onnx.DEFAULT_OPSET`).

    Returns:
        The directory.

    Raises:
        WebExportError: for a destination that is something else, or no onnxruntime-web.
        ValueError: for a model that is not an image classifier or cannot be exported.
    """
    from nnframe import onnx as nnframe_onnx  # the onnx extra, on use only

    target = Path(directory).expanduser().absolute()
    if target.exists() and not (target.is_dir() and (not any(target.iterdir()) or (target / MARKER).is_file())):
        raise WebExportError(f"--web {str(directory)!r} exists and is not an empty directory or an earlier "
                             f"nnframe web export (no {MARKER}); choose a new directory")
    if not target.parent.is_dir():
        raise WebExportError(f"--web {str(directory)!r}: directory {str(target.parent)!r} does not exist")
    ort = find_ort_dist(ort_dist)
    card = web_card(model)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        (build / "static").mkdir()
        (build / "ort").mkdir()
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        page = page.replace("<!-- nnframe: backend scripts -->",
                            '<script src="ort/ort.wasm.min.js"></script>\n<script src="static/web.js"></script>')
        (build / "index.html").write_text(page, encoding="utf-8")
        for name in ("app.js", "style.css", "web.js"):
            shutil.copyfile(STATIC / name, build / "static" / name)
        for name in ORT_FILES:
            shutil.copyfile(ort / name, build / "ort" / name)
        nnframe_onnx.export(model, build / "model.onnx", opset=opset or nnframe_onnx.DEFAULT_OPSET)
        (build / "model.json").write_text(json.dumps(card), encoding="utf-8")
        (build / MARKER).write_text(json.dumps({"files": sorted(str(p.relative_to(build)) for p in build.rglob("*")
                                                               if p.is_file())}), encoding="utf-8")
        build.chmod(0o755)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
        build.rename(target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return target
