// nnframe serve: the page. It talks to the server only through the JSON API
// (GET /api/model, POST /api/predict); all preprocessing happens on the server.
// The static page of `nnframe export --web` defines window.nnframeBackend first (web.js:
// the same two calls, answered in the browser by onnxruntime-web) and this file uses it.
"use strict";

const apiBackend = {
  async card() {
    const response = await fetch("api/model");
    return { ok: response.ok, answer: await response.json() };
  },
  async predict(body, type) {
    const response = await fetch("api/predict?preview=1", { method: "POST", headers: { "Content-Type": type }, body });
    return { ok: response.ok, answer: await response.json() };
  },
};
const backend = window.nnframeBackend || apiBackend;

const canvas = document.getElementById("canvas");
const ctx = canvas.getContext("2d");
const status = document.getElementById("status");
let inputShape = [28, 28, 1];
let drawing = false;
let dirty = false;
let timer = null;
let lastPoint = null;
const DEBOUNCE_MS = 150;

function setStatus(text, isError) {
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function clearCanvas() {
  ctx.fillStyle = "#fff";  // dark strokes on white paper; the server inverts the polarity
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  dirty = false;
}

function strokeWidth() {
  // about two input pixels wide, whatever the input size
  return Math.max(2, Math.round(2.2 * canvas.width / inputShape[1]));
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}

function line(from, to, pressure) {
  ctx.strokeStyle = "#000";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = strokeWidth() * (pressure > 0 && pressure !== 0.5 ? 0.6 + pressure : 1);
  ctx.beginPath();
  ctx.moveTo(from[0], from[1]);
  ctx.lineTo(to[0], to[1]);
  ctx.stroke();
}

canvas.addEventListener("pointerdown", (event) => {
  drawing = true;
  canvas.setPointerCapture(event.pointerId);
  lastPoint = point(event);
  line(lastPoint, lastPoint, event.pressure);
  dirty = true;
});
canvas.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const next = point(event);
  line(lastPoint, next, event.pressure);
  lastPoint = next;
  schedule();
});
function endStroke(event) {
  if (!drawing) return;
  drawing = false;
  if (canvas.hasPointerCapture(event.pointerId)) canvas.releasePointerCapture(event.pointerId);
  predictCanvas();
}
canvas.addEventListener("pointerup", endStroke);
canvas.addEventListener("pointercancel", endStroke);

// the page is busy while a prediction is scheduled or on its way (data-busy on <body>)
let pending = 0;
function updateBusy() {
  document.body.dataset.busy = pending > 0 || timer !== null ? "1" : "0";
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(predictCanvas, DEBOUNCE_MS);
  updateBusy();
}

function predictCanvas() {
  clearTimeout(timer);
  timer = null;
  if (!dirty) { updateBusy(); return; }
  pending++;  // toBlob answers later: count it as on its way already
  updateBusy();
  canvas.toBlob((blob) => { pending--; send(blob, "image/png", "drawing"); }, "image/png");
}

let requestId = 0;
async function send(body, type, what) {
  const id = ++requestId;
  pending++;
  updateBusy();
  try {
    const { ok, answer } = await backend.predict(body, type);
    if (id !== requestId) return;  // a newer request has been sent
    if (!ok) { setStatus(`${what}: ${answer.error}`, true); return; }
    showPrediction(answer.predictions[0]);
    if (answer.fitted) showFitted(answer.fitted);
    setStatus(`${what}: predicted ${answer.predictions[0].name}`);
  } catch (error) {
    setStatus(`${what}: ${error}`, true);
  } finally {
    pending--;
    updateBusy();
  }
}

function showPrediction(prediction) {
  document.getElementById("top-name").textContent = prediction.name;
  document.getElementById("top-name").dataset.class = prediction.class;
  document.getElementById("top-prob").textContent = `${(100 * prediction.probability).toFixed(1)}%`;
  const list = document.getElementById("predictions");
  list.replaceChildren(...prediction.top.map((entry) => {
    const item = document.createElement("li");
    item.dataset.class = entry.class;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = entry.name;
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${(100 * entry.probability).toFixed(1)}%`;
    bar.append(fill);
    const prob = document.createElement("span");
    prob.className = "prob";
    prob.textContent = `${(100 * entry.probability).toFixed(1)}%`;
    item.append(name, bar, prob);
    return item;
  }));
}

function showFitted(pixels) {
  const view = document.getElementById("fitted");
  const height = pixels.length, width = pixels[0].length;
  view.width = width; view.height = height;
  const image = view.getContext("2d").createImageData(width, height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const value = pixels[y][x];
      const rgb = Array.isArray(value) ? value : [value, value, value];
      image.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * (y * width + x));
    }
  }
  view.getContext("2d").putImageData(image, 0, 0);
}

function upload(file) {
  if (!file) return;
  if (!["image/png", "image/jpeg"].includes(file.type)) {
    setStatus(`${file.name}: not a PNG or JPEG image (${file.type || "unknown type"})`, true);
    return;
  }
  const picture = new Image();
  picture.onload = () => {
    clearCanvas();
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
    URL.revokeObjectURL(picture.src);
  };
  picture.src = URL.createObjectURL(file);
  send(file, file.type, file.name);  // the file's own bytes: the same pixels nnframe predict reads
}

document.getElementById("clear").addEventListener("click", () => {
  clearCanvas();
  document.getElementById("predictions").replaceChildren();
  document.getElementById("top-name").textContent = "–";
  document.getElementById("top-prob").textContent = "";
  setStatus("cleared");
});
document.getElementById("file").addEventListener("change", (event) => upload(event.target.files[0]));
const drop = document.getElementById("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  upload(event.dataTransfer.files[0]);
});

// ------------------------------------------------------------------ model card
function fact(label, value, id) {
  const box = document.createElement("div");
  const term = document.createElement("dt");
  term.textContent = label;
  const detail = document.createElement("dd");
  detail.textContent = value;
  if (id) detail.id = id;
  box.append(term, detail);
  return box;
}

function fmt(values) { return "[" + values.map((v) => Number(v).toFixed(4)).join(", ") + "]"; }

function chart(svgId, history, keys) {
  const svg = document.getElementById(svgId);
  const epochs = history.epoch || [];
  const series = keys.filter((key) => Array.isArray(history[key]) && history[key].some((v) => v !== null));
  if (!epochs.length || !series.length) {
    svg.innerHTML = '<text x="160" y="95" text-anchor="middle" fill="#5b6470">no history in the checkpoint</text>';
    return;
  }
  const values = series.flatMap((key) => history[key].filter((v) => v !== null));
  let low = Math.min(...values), high = Math.max(...values);
  if (high - low < 1e-9) { low -= 0.5; high += 0.5; }
  const [left, right, top, bottom] = [40, 310, 26, 160];
  const x = (i) => epochs.length === 1 ? (left + right) / 2 : left + (right - left) * i / (epochs.length - 1);
  const y = (v) => bottom - (bottom - top) * (v - low) / (high - low);
  const colours = ["#2f6fdb", "#e07b22"];
  let parts = `<line x1="${left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#999"/>`
    + `<line x1="${left}" y1="${top}" x2="${left}" y2="${bottom}" stroke="#999"/>`
    + `<text x="4" y="${top + 4}" font-size="10">${high.toFixed(3)}</text>`
    + `<text x="4" y="${bottom}" font-size="10">${low.toFixed(3)}</text>`
    + `<text x="${right}" y="${bottom + 14}" font-size="10" text-anchor="end">epoch ${epochs[epochs.length - 1]}</text>`;
  series.forEach((key, k) => {
    const points = history[key].map((v, i) => v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)
      .filter(Boolean).join(" ");
    const dots = history[key].map((v, i) => v === null ? "" :
      `<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5" fill="${colours[k % 2]}"/>`).join("");
    parts += `<polyline fill="none" stroke="${colours[k % 2]}" stroke-width="2" points="${points}"/>` + dots
      + `<text x="${left + 8 + 110 * k}" y="14" font-size="11" fill="${colours[k % 2]}">${key}</text>`;
  });
  svg.innerHTML = parts;
}

async function loadCard() {
  const { ok, answer: card } = await backend.card();
  if (!ok) { setStatus(`model card: ${card.error}`, true); return; }
  inputShape = card.input_shape;
  document.getElementById("title").textContent = card.dataset ? `${card.dataset} classifier` : "classifier";
  document.title = `nnframe · ${card.dataset || "model"}`;
  const facts = document.getElementById("facts");
  const test = card.test;
  facts.replaceChildren(
    fact("data set", card.dataset || "not recorded"),
    fact("input shape", `(${card.input_shape.join(", ")})`),
    fact("normalisation", card.normalization ? `(x − ${fmt(card.normalization.mean)}) / ${fmt(card.normalization.std)}` : "none"),
    fact("parameters", card.num_params.toLocaleString("en-US")),
    fact("test accuracy", test && test.accuracy != null ? `${test.accuracy.toFixed(4)}` : "not recorded", "test-accuracy"),
    fact("test loss", test && test.loss != null ? test.loss.toFixed(4) : "not recorded"),
    fact("trained", `${card.epochs} epoch(s), ${card.steps} step(s)`),
    fact("classes", (card.class_names || []).join(", ")),
  );
  document.getElementById("summary").textContent = card.summary;
  chart("chart-loss", card.history, ["loss", "val_loss"]);
  chart("chart-accuracy", card.history, ["accuracy", "val_accuracy"]);
  setStatus("ready: draw, or drop an image");
}

clearCanvas();
updateBusy();
loadCard().catch((error) => setStatus(`model card: ${error}`, true));
