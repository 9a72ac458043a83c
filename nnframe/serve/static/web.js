// The backend of the static page that `nnframe export --web DIR CKPT` writes: the page's two
// calls (card, predict) answered in the browser, with onnxruntime-web running DIR/model.onnx.
// fitImage is nnframe.data.images.fit_image step for step (same constants, same rounding);
// the export's browser test checks that both give the same pixels for the same picture.
"use strict";

window.nnframeBackend = (() => {
  let card = null;
  let session = null;

  async function ready() {
    if (session) return;
    card = await (await fetch("model.json")).json();
    ort.env.wasm.wasmPaths = new URL("ort/", document.baseURI).href;  // a URL, not a bare module name
    ort.env.wasm.numThreads = 1;  // threads need cross-origin isolation, which a plain static host lacks
    session = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });
  }

  async function decode(blob) {
    const bitmap = await createImageBitmap(blob, { premultiplyAlpha: "none", colorSpaceConversion: "none" });
    const surface = new OffscreenCanvas(bitmap.width, bitmap.height);
    const context = surface.getContext("2d");
    context.drawImage(bitmap, 0, 0);
    const { data, width, height } = context.getImageData(0, 0, bitmap.width, bitmap.height);
    return { rgba: data, width, height };
  }

  // (H, W, C) uint8 planes as a flat array, row-major, channels last
  function fitImage(rgba, width, height, shape, fit) {
    const [outH, outW, channels] = shape;
    const pixels = width * height;
    let image = new Float64Array(pixels * channels);
    for (let p = 0; p < pixels; p++) {  // alpha over white, then the model's channels
      const alpha = rgba[4 * p + 3] / 255;
      const rgb = [0, 1, 2].map((c) => Math.round(rgba[4 * p + c] * alpha + 255 * (1 - alpha)));
      if (channels === 1) {
        image[p] = Math.min(255, Math.max(0, Math.round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])));
      } else {
        image.set(rgb, 3 * p);
      }
    }
    if (channels === 1 && lightBorder(image, width, height)) {
      for (let p = 0; p < pixels; p++) image[p] = 255 - image[p];
    }
    if (height === outH && width === outW) return Uint8Array.from(image);
    let cropped;
    if (channels === 1) {
      cropped = cropToObject(image, width, height, fit.ink_threshold);
    } else {
      const side = Math.min(width, height);
      const top = Math.floor((height - side) / 2), left = Math.floor((width - side) / 2);
      const square = new Float64Array(side * side * channels);
      for (let y = 0; y < side; y++) {
        square.set(image.subarray(((top + y) * width + left) * channels, ((top + y) * width + left + side) * channels),
          y * side * channels);
      }
      cropped = { image: square, h: side, w: side };
    }
    return resize(cropped.image, cropped.h, cropped.w, channels, outH, outW, channels === 1 ? fit.object_fraction : 1.0);
  }

  function median(values) {
    const sorted = Float64Array.from(values).sort();
    const n = sorted.length;
    return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }

  function lightBorder(image, width, height) {
    const border = [];
    for (let x = 0; x < width; x++) border.push(image[x], image[(height - 1) * width + x]);
    for (let y = 0; y < height; y++) border.push(image[y * width], image[y * width + width - 1]);
    return median(border) >= 128;
  }

  function cropToObject(image, width, height, threshold) {
    let peak = 0;
    for (const v of image) peak = Math.max(peak, v);
    if (peak === 0) return { image, h: height, w: width };  // a blank picture: nothing to crop
    let top = height, bottom = -1, left = width, right = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (image[y * width + x] > threshold * peak) {
          top = Math.min(top, y); bottom = Math.max(bottom, y);
          left = Math.min(left, x); right = Math.max(right, x);
        }
      }
    }
    const boxH = bottom - top + 1, boxW = right - left + 1, side = Math.max(boxH, boxW);
    const offY = Math.floor((side - boxH) / 2), offX = Math.floor((side - boxW) / 2);
    const square = new Float64Array(side * side);
    for (let y = 0; y < boxH; y++) {
      for (let x = 0; x < boxW; x++) square[(offY + y) * side + offX + x] = image[(top + y) * width + left + x];
    }
    return { image: square, h: side, w: side };
  }

  // (nOut, nIn) weights, as nnframe.data.images._area_weights
  function areaWeights(nIn, nOut) {
    const weights = Array.from({ length: nOut }, () => new Float64Array(nIn));
    if (nOut >= nIn) {
      for (let k = 0; k < nOut; k++) {
        const centre = Math.min(Math.max((k + 0.5) * nIn / nOut - 0.5, 0), nIn - 1);
        const low = Math.floor(centre), high = Math.min(low + 1, nIn - 1), frac = centre - low;
        weights[k][low] += 1 - frac;
        weights[k][high] += frac;
      }
      return weights;
    }
    for (let k = 0; k < nOut; k++) {
      const start = k * nIn / nOut, end = (k + 1) * nIn / nOut;
      let total = 0;
      for (let p = 0; p < nIn; p++) {
        const overlap = Math.max(0, Math.min(end, p + 1) - Math.max(start, p));
        weights[k][p] = overlap;
        total += overlap;
      }
      for (let p = 0; p < nIn; p++) weights[k][p] /= total;
    }
    return weights;
  }

  function resize(image, inH, inW, channels, outH, outW, fill) {
    const innerH = Math.max(1, Math.round(outH * fill)), innerW = Math.max(1, Math.round(outW * fill));
    const rows = areaWeights(inH, innerH), cols = areaWeights(inW, innerW);
    const top = Math.floor((outH - innerH) / 2), left = Math.floor((outW - innerW) / 2);
    const out = new Uint8Array(outH * outW * channels);
    const tmp = new Float64Array(innerH * inW * channels);  // rows first: (innerH, inW, C)
    for (let h = 0; h < innerH; h++) {
      for (let y = 0; y < inH; y++) {
        const w = rows[h][y];
        if (!w) continue;
        for (let i = 0; i < inW * channels; i++) tmp[h * inW * channels + i] += w * image[y * inW * channels + i];
      }
    }
    for (let h = 0; h < innerH; h++) {
      for (let k = 0; k < innerW; k++) {
        for (let c = 0; c < channels; c++) {
          let value = 0;
          for (let x = 0; x < inW; x++) value += cols[k][x] * tmp[(h * inW + x) * channels + c];
          out[((top + h) * outW + left + k) * channels + c] = Math.min(255, Math.max(0, Math.round(value)));
        }
      }
    }
    return out;
  }

  function link(scores) {
    if (card.probability_link === "softmax") {
      const top = Math.max(...scores);
      const exps = scores.map((s) => Math.exp(s - top));
      const total = exps.reduce((a, b) => a + b, 0);
      return exps.map((e) => e / total);
    }
    if (card.probability_link === "sigmoid") return scores.map((s) => 1 / (1 + Math.exp(-s)));
    return scores.map((s) => Math.exp(s));
  }

  return {
    fitImage,
    async card() {
      await ready();
      return { ok: true, answer: card };
    },
    async predict(blob, type) {
      try {
        await ready();
        const { rgba, width, height } = await decode(blob);
        const shape = card.input_shape;
        const fitted = fitImage(rgba, width, height, shape, card.fit);
        const input = new Float32Array(fitted.length);
        const channels = shape[2];
        const norm = card.normalization;
        for (let i = 0; i < fitted.length; i++) {
          const c = i % channels;
          input[i] = norm ? (fitted[i] - norm.mean[c]) / norm.std[c] : fitted[i];
        }
        const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", input, [1, ...shape]) };
        const output = (await session.run(feeds))[session.outputNames[0]];
        const probabilities = link(Array.from(output.data, Number));
        const order = probabilities.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, k]) => k);
        const names = card.class_names;
        const best = order[0];
        const top = order.slice(0, 5).map((k) => ({ class: k, name: names[k], probability: probabilities[k] }));
        const picture = [];
        for (let y = 0; y < shape[0]; y++) {
          const row = [];
          for (let x = 0; x < shape[1]; x++) {
            const at = (y * shape[1] + x) * channels;
            row.push(channels === 1 ? fitted[at] : Array.from(fitted.subarray(at, at + channels)));
          }
          picture.push(row);
        }
        return { ok: true, answer: { predictions: [{ class: best, name: names[best], probability: probabilities[best],
          top, probabilities }], class_names: names, fitted: picture } };
      } catch (error) {
        return { ok: false, answer: { error: `${error.message || error}` } };
      }
    },
  };
})();
