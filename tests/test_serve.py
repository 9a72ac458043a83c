"""nnframe serve: the JSON API on a real uvicorn server on a free loopback port, the batcher, the command."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import band_images, make_checkpoint
from test_cli import encode_png

import nnframe
from nnframe import cli, layer, loss, model, net, optimizer
from nnframe.serve.batcher import MicroBatcher
from nnframe.serve.command import ServeError, bind
from nnframe.serve.predictor import Predictor

ROOT = Path(__file__).resolve().parent.parent
uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("starlette")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("serve") / "tiny.safetensors")


class Server:
    """uvicorn serving an app in a background thread, on a socket bound to 127.0.0.1:0."""

    def __init__(self, app):
        self.app = app
        self.sock = bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="error", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
            return response.status, json.loads(data) if response.getheader("content-type", "").startswith(
                "application/json") else data
        finally:
            conn.close()

    def post_json(self, value):
        return self.request("POST", "/api/predict", json.dumps(value), {"Content-Type": "application/json"})


@pytest.fixture(scope="module")
def server(checkpoint):
    from nnframe.serve import create_app

    app = create_app(nnframe.load(checkpoint), max_body=64 * 1024, max_wait_ms=5)
    with Server(app) as running:
        yield running


def _expected(checkpoint, pixels):
    """Probabilities straight from the model, with the stored normalisation."""
    m = nnframe.load(checkpoint)
    x = cli.preprocess(pixels, m)
    logits = np.asarray(m.predict(x), dtype=np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_health_and_model_card(server, checkpoint):
    assert server.request("GET", "/healthz") == (200, {"status": "ok"})
    status, card = server.request("GET", "/api/model")
    meta = nnframe.load(checkpoint).metadata
    assert status == 200
    assert card["test"]["accuracy"] == meta["test"]["accuracy"] and card["dataset"] == "fashion-mnist"
    assert card["input_shape"] == [28, 28, 1] and card["num_params"] == 25450
    assert card["normalization"]["mean"] == meta["preprocessing"]["standardize"]["mean"]
    assert card["history"]["epoch"] == [1, 2, 3] and len(card["history"]["val_accuracy"]) == 3
    assert "Dense" in card["summary"] and card["class_names"][9] == "Ankle boot"


def test_page_and_its_script_are_served(server):
    status, page = server.request("GET", "/")
    assert status == 200 and b'id="canvas"' in page and b'src="static/app.js"' in page
    status, script = server.request("GET", "/static/app.js")
    assert status == 200 and b"/api/predict" in script and b"pointerdown" in script


def test_json_predictions_match_the_model(server, checkpoint):
    pixels = band_images(np.array([2, 7, 4]), np.random.default_rng(1))
    status, answer = server.post_json(pixels.tolist())
    assert status == 200
    expected = _expected(checkpoint, pixels)
    got = np.array([p["probabilities"] for p in answer["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert [p["class"] for p in answer["predictions"]] == [2, 7, 4]
    assert answer["predictions"][1]["name"] == "Sneaker" and len(answer["predictions"][0]["top"]) == 5
    status, single = server.post_json(pixels[0].tolist())  # one image without the batch axis
    assert status == 200 and single["predictions"][0]["class"] == 2


def test_png_prediction_is_the_same_as_nnframe_predict(server, checkpoint, tmp_path, capsys):
    picture = np.full((140, 140), 255, np.uint8)  # dark strokes on white, 5x the input size
    picture[40:55, 20:120] = 0
    path = tmp_path / "drawing.png"
    path.write_bytes(encode_png(picture[..., None]))
    status, answer = server.request("POST", "/api/predict?preview=1", path.read_bytes(),
                                    {"Content-Type": "image/png"})
    assert status == 200 and np.array(answer["fitted"]).shape == (28, 28)
    assert cli.main(["predict", str(checkpoint), str(path), "--top", "1"]) == 0
    out = capsys.readouterr().out
    best = answer["predictions"][0]
    assert f"class {best['class']} ({best['name']}) p={best['probability']:.4f}" in out


@pytest.mark.parametrize("body, content_type, status, match", [
    (b"x" * (64 * 1024 + 1), "image/png", 413, "over the limit"),
    (b"hello", "text/plain", 415, "unsupported Content-Type"),
    (b"hello", "", 415, "unsupported Content-Type"),
    (b"GIF89a....", "image/png", 400, "not a PNG or JPEG"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "image/png", 400, "request body"),
    (b"", "application/json", 400, "no body"),
    (b"[1, 2", "application/json", 400, "not valid JSON"),
    (b"[[1, 2], [3]]", "application/json", 400, "ragged"),
    (b'"abc"', "application/json", 400, "shape"),
    (json.dumps(np.zeros((27, 28, 1)).tolist()).encode(), "application/json", 400, r"\[28, 28, 1\]"),
    (b"[" * 100000 + b"]" * 100000, "application/json", 413, "over the limit"),
    (("[" * 5000 + "]" * 5000).encode(), "application/json", 400, "JSON|shape"),
    (json.dumps(np.full((28, 28, 1), 300).tolist()).encode(), "application/json", 400, "0..255"),
    (json.dumps(np.full((28, 28, 1), -1).tolist()).encode(), "application/json", 400, "0..255"),
    (json.dumps(np.zeros((28, 28, 1)).tolist()).replace("0.0", "NaN", 1).encode(), "application/json", 400,
     "NaN"),
    (json.dumps(np.zeros((28, 28, 1)).tolist()).replace("0.0", "1e999", 1).encode(), "application/json", 400,
     "finite"),
])
def test_bad_requests_get_a_clear_json_error(server, body, content_type, status, match):
    headers = {"Content-Type": content_type} if content_type else {}
    got, answer = server.request("POST", "/api/predict", body, headers)
    assert got == status and answer["status"] == status
    assert __import__("re").search(match, answer["error"]), answer["error"]
    assert server.request("GET", "/healthz")[0] == 200  # still serving


def test_wrong_paths_and_methods_are_json_errors(server):
    assert server.request("GET", "/nothing-here") == (404, {"error": "no such path '/nothing-here'", "status": 404})
    status, answer = server.request("GET", "/api/predict")
    assert status == 405 and "GET is not allowed" in answer["error"]


def test_a_concurrent_flood_is_batched_and_every_request_answered(server, checkpoint):
    labels = np.arange(48) % 10
    pixels = band_images(labels, np.random.default_rng(2))
    batcher = server.app.state.batcher
    calls_before, samples_before = batcher.calls, batcher.samples

    def one(i):
        if i % 8 == 7:  # some bad requests among the good ones
            return server.request("POST", "/api/predict", b"junk", {"Content-Type": "image/png"})
        return server.post_json(pixels[i].tolist())

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(48)))
    good = [(i, a) for i, (s, a) in enumerate(answers) if i % 8 != 7]
    assert all(answers[i][0] == 400 for i in range(7, 48, 8))
    assert all(s == 200 for s, _ in (answers[i] for i, _ in good))
    assert [a["predictions"][0]["class"] for _, a in good] == [int(labels[i]) for i, _ in good]
    assert batcher.samples - samples_before == len(good)
    assert batcher.calls - calls_before < len(good)  # some requests shared a forward pass


# ------------------------------------------------------------------------- the batcher
def _run(coroutine):
    return asyncio.run(coroutine)


def test_batcher_routes_rows_back_and_respects_max_batch():
    sizes = []

    def double(x):
        sizes.append(len(x))
        return x * 2

    async def main():
        batcher = MicroBatcher(double, max_batch=4, max_wait=0.05)
        await batcher.start()
        inputs = [np.full((n, 3), i, float) for i, n in enumerate([1, 2, 1, 3, 1])]
        results = await asyncio.gather(*(batcher.submit(x) for x in inputs))
        await batcher.stop()
        return inputs, results

    inputs, results = _run(main())
    for x, y in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(y, x * 2)
    assert max(sizes) <= 4 and sum(sizes) == 8 and len(sizes) < 5


def test_batcher_failure_reaches_every_caller_and_it_keeps_working():
    def fragile(x):
        if np.any(x < 0):
            raise RuntimeError("negative")
        return x + 1

    async def main():
        batcher = MicroBatcher(fragile, max_batch=8, max_wait=0.05)
        await batcher.start()
        first = await asyncio.gather(batcher.submit(np.ones((1, 1))), batcher.submit(-np.ones((1, 1))),
                                     return_exceptions=True)
        later = await batcher.submit(np.zeros((1, 1)))
        await batcher.stop()
        return first, later

    first, later = _run(main())
    assert all(isinstance(r, RuntimeError) for r in first) and later.tolist() == [[1.0]]


def test_batcher_disabled_runs_each_request_alone_and_checks_options():
    sizes = []

    async def main():
        batcher = MicroBatcher(lambda x: sizes.append(len(x)) or x, enabled=False)
        await batcher.start()
        await asyncio.gather(*(batcher.submit(np.zeros((1, 2))) for _ in range(5)))
        await batcher.stop()

    _run(main())
    assert sizes == [1] * 5
    for bad in ({"max_batch": 0}, {"max_batch": True}, {"max_wait": -1}, {"max_wait": "1"}):
        with pytest.raises(ValueError, match="MicroBatcher"):
            MicroBatcher(lambda x: x, **bad)
    with pytest.raises(RuntimeError, match="before start"):
        _run(MicroBatcher(lambda x: x).submit(np.zeros((1, 1))))


# ------------------------------------------------------------------ models and command
def test_predictor_refuses_models_that_are_not_image_classifiers():
    flat = model.Model(net.Net([layer.Dense(3)]), loss.SoftmaxCrossEntropy(), optimizer.SGD(lr=0.1))
    flat.net.build((1, 10))
    flat.input_shape = (10,)
    with pytest.raises(ValueError, match=r"input \(H, W, 1\)"):
        Predictor(flat)
    regression = model.Model(net.Net([layer.Flatten(), layer.Dense(1)]), loss.MSE(), optimizer.SGD(lr=0.1))
    regression.net.build((1, 4, 4, 1))
    regression.input_shape = (4, 4, 1)
    with pytest.raises(ValueError, match="MSE"):
        Predictor(regression)


def test_bind_refuses_an_address_in_use():
    sock = bind("127.0.0.1", 0)
    try:
        with pytest.raises(ServeError, match=f"cannot listen on 127.0.0.1:{sock.getsockname()[1]}"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


def test_serve_command_errors(tmp_path, capsys):
    assert cli.main(["serve", str(tmp_path / "missing.safetensors")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["serve", "x.safetensors", "--port", "70000"]) == 2
    assert "0..65535" in capsys.readouterr().err


def test_serve_command_serves_until_stopped(checkpoint):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "nnframe", "serve", str(checkpoint), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line, (line, proc.stderr.read() if proc.poll() is not None else "")
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status == 200
    finally:
        proc.terminate()
        proc.wait(20)


def test_load_test_benchmark_runs_bounded_and_reports(capsys):
    from benchmarks import serve as serve_bench

    assert serve_bench.main(["--clients", "3", "--requests", "4", "--modes", "batched,unbatched"]) == 0
    out = capsys.readouterr().out
    results = json.loads(out.strip().splitlines()[-1])["serve"]
    for mode in ("batched", "unbatched"):
        r = results[mode]
        assert r["requests"] == 12 and r["errors"] == 0 and r["rps"] > 0 and r["p50_ms"] <= r["p99_ms"]
    assert "3 clients x 4 requests" in out
