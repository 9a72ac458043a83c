"""nnframe serve as a person uses it: Debian's headless Chromium draws on the canvas and uploads a picture.

Needs the ``serve`` and ``browser`` extras and Debian's ``chromium`` and ``chromium-driver``
(``.ci/run`` installs them); skips cleanly without them. Nothing is downloaded: Selenium
is pointed at the system driver and browser. The screenshot goes to ``$NNFRAME_SCREENSHOT``
when set (the docs' picture is made that way), else into the test's temporary directory.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import band_images, make_checkpoint
from test_cli import encode_png
from test_serve import Server

import nnframe
from nnframe import cli

webdriver = pytest.importorskip("selenium.webdriver")
pytest.importorskip("uvicorn")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")]
FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A classifier of Fashion-MNIST (an MLP, 3 epochs on 12k images) where installed, else the tiny band set."""
    path = tmp_path_factory.mktemp("browser") / "model.safetensors"
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        return make_checkpoint(path), None
    from nnframe import data, layer, loss, model, net, optimizer
    from nnframe import random as nn_random

    nn_random.set_seed(0)
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist(data_dir=FASHION, download=False)
    x, mean, std = data.standardize(x_train[:12000], dtype="float32")
    m = model.Model(net.Net([layer.Flatten(), layer.Dense(128), layer.ReLU(), layer.Dense(10)]),
                    loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=1e-3))
    m.fit(x, y_train[:12000], epochs=3, batch_size=128, validation_split=0.1, verbose=0, rng=0)
    results = m.evaluate(data.standardize(x_test, mean, std, dtype="float32")[0], y_test)
    m.metadata = {"dataset": "fashion-mnist", "class_names": list(data.CLASS_NAMES["fashion-mnist"]),
                  "preprocessing": {"standardize": {"mean": mean.tolist(), "std": std.tolist()}},
                  "test": {**{k: float(v) for k, v in results.items()}, "samples": len(x_test)}}
    m.save(path)
    return path, x_test[:20]


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1500",
                 "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait_for(driver, script, timeout=20):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script))
    except TimeoutException:
        status = driver.execute_script("return document.getElementById('status').textContent")
        raise AssertionError(f"the page did not get there ({script}); its status line: {status!r}") from None


def _predicted_by_cli(ckpt, path, capsys) -> str:
    assert cli.main(["predict", str(ckpt), str(path), "--top", "1"]) == 0
    line = capsys.readouterr().out
    return line.split(" (", 1)[1].split(") p=", 1)[0]  # "...: class 9 (Ankle boot) p=0.9..."


def test_draw_upload_and_read_the_card(checkpoint, browser, tmp_path, capsys):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from nnframe.serve import create_app

    ckpt, test_images = checkpoint
    with Server(create_app(nnframe.load(ckpt))) as server:
        browser.get(f"http://127.0.0.1:{server.port}/")
        _wait_for(browser, "return document.getElementById('status').textContent.startsWith('ready')")
        accuracy = nnframe.load(ckpt).metadata["test"]["accuracy"]
        assert browser.find_element(By.ID, "test-accuracy").text == f"{accuracy:.4f}"
        assert "Dense" in browser.find_element(By.ID, "summary").get_attribute("textContent")
        assert browser.execute_script("return document.querySelectorAll('#chart-loss polyline').length") == 2

        # draw: pointer events from real mouse input, several strokes
        canvas = browser.find_element(By.ID, "canvas")
        actions = ActionChains(browser)
        for (x0, y0), (x1, y1) in [((-60, -80), (60, -80)), ((-60, -80), (-60, 90)), ((60, -80), (60, 90))]:
            actions.move_to_element_with_offset(canvas, x0, y0).click_and_hold()
            for t in np.linspace(0, 1, 8)[1:]:
                actions.move_to_element_with_offset(canvas, int(x0 + t * (x1 - x0)), int(y0 + t * (y1 - y0)))
            actions.release()
        actions.perform()
        _wait_for(browser, "return document.body.dataset.busy === '0' && "
                           "document.getElementById('status').textContent.startsWith('drawing: predicted')")
        shown = browser.find_element(By.ID, "top-name").text
        bars = browser.find_elements(By.CSS_SELECTOR, "#predictions li")
        assert len(bars) == 5 and bars[0].find_element(By.CLASS_NAME, "name").text == shown
        drawn = tmp_path / "drawn.png"  # the canvas's own pixels, as the page sent them
        drawn.write_bytes(base64.b64decode(browser.execute_script(
            "return document.getElementById('canvas').toDataURL('image/png').split(',')[1]")))
        assert _predicted_by_cli(ckpt, drawn, capsys) == shown

        # upload a test image saved as PNG: the page shows nnframe predict's class
        image = test_images[3] if test_images is not None else band_images(np.array([7]), np.random.default_rng(0))[0]
        upload = tmp_path / "upload.png"
        upload.write_bytes(encode_png(image))
        browser.find_element(By.ID, "file").send_keys(str(upload))
        _wait_for(browser, "return document.body.dataset.busy === '0' && "
                           "document.getElementById('status').textContent.startsWith('upload.png: predicted')")
        status = browser.find_element(By.ID, "status").text
        assert browser.find_element(By.ID, "top-name").text == _predicted_by_cli(ckpt, upload, capsys), status

        shot = Path(os.environ.get("NNFRAME_SCREENSHOT") or tmp_path / "serve.png")
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
