"""``nnframe export --web``: the static page runs the model in headless Chromium with onnxruntime-web.

Needs the ``onnx``, ``browser`` extras, Debian's chromium/chromium-driver and onnxruntime-web
from npm (``.ci/run`` runs ``npm install --no-save onnxruntime-web`` in the repository);
skips cleanly without them. The page is served by Python's own static file server on
127.0.0.1, as any static host would.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import band_images, make_checkpoint
from test_cli import encode_png
from test_serve_browser import CHROMIUM, DRIVER, _wait_for

import nnframe
from nnframe import cli
from nnframe.data import fit_image, read_png
from nnframe.serve.web import MARKER, WebExportError, export_web, find_ort_dist

pytest.importorskip("onnx")
webdriver = pytest.importorskip("selenium.webdriver")
ROOT = Path(__file__).resolve().parent.parent
try:
    ORT = find_ort_dist(None)
except WebExportError:
    try:
        ORT = find_ort_dist(ROOT / "node_modules" / "onnxruntime-web" / "dist")
    except WebExportError:
        ORT = None


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("web") / "tiny.safetensors")


def test_export_refuses_a_directory_that_is_not_its_own(tmp_path, checkpoint):
    occupied = tmp_path / "site"
    occupied.mkdir()
    (occupied / "index.html").write_text("someone else's page")
    with pytest.raises(WebExportError, match="not an empty directory or an earlier nnframe web export"):
        export_web(nnframe.load(checkpoint), occupied, ort_dist=tmp_path)
    assert (occupied / "index.html").read_text() == "someone else's page"
    with pytest.raises(WebExportError, match="onnxruntime-web"):
        export_web(nnframe.load(checkpoint), tmp_path / "new", ort_dist=tmp_path)  # no ort files there
    assert not (tmp_path / "new").exists() and not list(tmp_path.glob(".new.*"))


@pytest.mark.skipif(ORT is None, reason="needs onnxruntime-web from npm (npm install --no-save onnxruntime-web)")
def test_export_writes_the_page_and_replaces_an_earlier_export(tmp_path, checkpoint, capsys):
    site = tmp_path / "site"
    assert cli.main(["export", str(checkpoint), "--web", str(site), "--ort", str(ORT)]) == 0
    assert "wrote" in capsys.readouterr().out
    files = json.loads((site / MARKER).read_text())["files"]
    assert {"index.html", "model.onnx", "model.json", "static/app.js", "static/web.js", "ort/ort.wasm.min.js"} <= set(
        files)
    page = (site / "index.html").read_text()
    assert page.index("ort/ort.wasm.min.js") < page.index("static/web.js") < page.index("static/app.js")
    card = json.loads((site / "model.json").read_text())
    assert card["probability_link"] == "softmax" and card["input_shape"] == [28, 28, 1]
    (site / "model.json").write_text("{}")
    export_web(nnframe.load(checkpoint), site, ort_dist=ORT)  # an earlier export is replaced whole
    assert json.loads((site / "model.json").read_text())["fit"]["object_fraction"] == pytest.approx(24 / 28)
    assert not list(tmp_path.glob(".site.*"))


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript"}

    def log_message(self, *args):  # quiet
        pass


@pytest.mark.slow
@pytest.mark.skipif(ORT is None or not (CHROMIUM and DRIVER), reason="needs onnxruntime-web and chromium")
def test_static_page_predicts_in_the_browser_as_nnframe_does(tmp_path, checkpoint, capsys):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    site = export_web(nnframe.load(checkpoint), tmp_path / "site", ort_dist=ORT)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1500"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    try:
        browser.get(f"http://127.0.0.1:{server.server_address[1]}/")
        _wait_for(browser, "return document.getElementById('status').textContent.startsWith('ready')", 60)
        accuracy = nnframe.load(checkpoint).metadata["test"]["accuracy"]
        assert browser.find_element(By.ID, "test-accuracy").text == f"{accuracy:.4f}"

        m = nnframe.load(checkpoint)
        for name, picture in [("band.png", band_images(np.array([6]), np.random.default_rng(3))[0]),
                              ("drawing.png", _drawing())]:
            path = tmp_path / name
            path.write_bytes(encode_png(picture))
            browser.find_element(By.ID, "file").send_keys(str(path))
            _wait_for(browser, "return document.body.dataset.busy === '0' && "
                               f"document.getElementById('status').textContent.startsWith('{name}: predicted')", 60)
            fitted_in_browser = np.array(browser.execute_script(
                "const v = document.getElementById('fitted'); const d = v.getContext('2d')"
                ".getImageData(0, 0, v.width, v.height).data; return Array.from(d).filter((_, i) => i % 4 === 0);"),
                dtype=np.int64).reshape(28, 28)
            fitted = fit_image(read_png(path), (28, 28, 1))[..., 0].astype(np.int64)
            assert np.abs(fitted_in_browser - fitted).max() <= 1, name  # web.js == nnframe.data.fit_image
            probabilities = m.predict_proba(cli.preprocess(fitted[None, ..., None], m))[0]
            shown = browser.find_element(By.ID, "top-prob").text  # "99.8%"
            assert float(shown.rstrip("%")) == pytest.approx(100 * probabilities.max(), abs=0.11)
            assert cli.main(["predict", str(checkpoint), str(path), "--top", "1"]) == 0
            line = capsys.readouterr().out
            assert f"({browser.find_element(By.ID, 'top-name').text})" in line

        canvas = browser.find_element(By.ID, "canvas")
        ActionChains(browser).move_to_element_with_offset(canvas, -80, 0).click_and_hold() \
            .move_to_element_with_offset(canvas, 0, 10).move_to_element_with_offset(canvas, 80, 0).release().perform()
        _wait_for(browser, "return document.body.dataset.busy === '0' && "
                           "document.getElementById('status').textContent.startsWith('drawing: predicted')", 60)
    finally:
        browser.quit()
        server.shutdown()


def _drawing() -> np.ndarray:
    """A 140x140 picture of dark strokes on white: fitting crops, inverts and resizes it."""
    picture = np.full((140, 140, 1), 255, np.uint8)
    picture[30:44, 15:125] = 0
    picture[44:100, 60:70] = 40
    return picture
