// The explorer's state and wiring: which model, its reference set on the plane, and what each
// control does. Drawing, map and API each live in their own module.
import * as api from "./api.js";
import { LatentMap } from "./map.js";
import { DrawingPad } from "./pad.js";
import { Plane } from "./plane.js";

// Paul Tol's "muted" scheme (colour-blind safe) and black: ten classes.
const PALETTE = ["#332288", "#88ccee", "#44aa99", "#117733", "#999933", "#ddcc77", "#cc6677", "#882255", "#aa4499", "#000000"];
const NEAREST = 5;

const $ = (id) => document.getElementById(id);
const state = { model: null, description: null, reference: null, plane: null, ends: [] };

const map = new LatentMap($("map"), { onHover: hover, onClick: pin, onLeave: () => { $("coordinates").textContent = ""; } });
const pad = new DrawingPad($("pad"), (blob) => place(blob, "drawing"));
window.explorerMap = map; // for the console and the browser tests

function pngOf(base64) {
  return `data:image/png;base64,${base64}`;
}

function thumbnail(base64, caption) {
  const figure = document.createElement("figure");
  const image = document.createElement("img");
  image.src = pngOf(base64);
  image.alt = caption;
  const label = document.createElement("figcaption");
  label.textContent = caption;
  figure.append(image, label);
  return figure;
}

function status(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

function report(error) {
  if (error.status === 401) {
    $("key-dialog").showModal();
    status("This service needs an API key.", true);
  } else if (error.status) {
    status(`The service said: ${error.detail}`, true);
  } else {
    status(`Cannot reach the service (${error.message}).`, true);
  }
}

function format(z) {
  return `(${z.map((value) => value.toFixed(2)).join(", ")})`;
}

// --- models -------------------------------------------------------------------------------------

async function start() {
  try {
    const listing = await api.models();
    const select = $("model");
    select.replaceChildren(...listing.models.map((model) => new Option(`${model.name} (${model.dataset}, K=${model.latent_size})`, model.name)));
    select.value = listing.default;
    $("model-field").hidden = listing.models.length < 2;
    await useModel(listing.default);
  } catch (error) {
    report(error);
  }
}

async function useModel(name) {
  state.model = name;
  state.description = await api.description(name);
  const { latent_size: size, reference } = state.description;
  state.reference = reference ? await api.reference(name, reference.count, size) : null;
  state.plane = new Plane(state.reference ? state.reference.mu : new Float32Array(size), size);
  state.ends = [];
  map.markers = [];
  map.manifold = null;
  $("manifold").checked = false;
  buildSliders(size);
  buildLegend();
  placeReference();
  const plane = size > 2 ? `, on the first two of ${size} principal axes` : "";
  status(state.reference ? `${state.reference.labels.length} test images of ${state.description.dataset}${plane}` : "This model has no reference set: only the prior is drawn.");
}

function placeReference() {
  const { reference, plane } = state;
  if (!reference) {
    map.setPoints(new Float32Array(0), new Uint8Array(0), PALETTE);
    return;
  }
  const size = plane.size, count = reference.labels.length;
  const uv = new Float32Array(2 * count);
  for (let n = 0; n < count; n++) {
    const [u, v] = plane.project(reference.mu.subarray(n * size, (n + 1) * size));
    uv[2 * n] = u;
    uv[2 * n + 1] = v;
  }
  map.setPoints(uv, reference.labels, PALETTE);
}

function buildLegend() {
  const legend = $("legend");
  map.hidden.clear();
  legend.replaceChildren(...state.description.classes.map((name, label) => {
    const item = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = true;
    box.addEventListener("change", () => {
      if (box.checked) map.hidden.delete(label); else map.hidden.add(label);
      map.redraw();
    });
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = PALETTE[label % PALETTE.length];
    item.append(box, swatch, ` ${name}`);
    return item;
  }));
}

function buildSliders(size) {
  const box = $("sliders");
  box.hidden = size <= 2;
  box.replaceChildren(...state.plane.offsets.map((_, index) => {
    const label = document.createElement("label");
    const slider = document.createElement("input");
    Object.assign(slider, { type: "range", min: -3, max: 3, step: 0.05, value: 0 });
    slider.addEventListener("input", () => { state.plane.offsets[index] = Number(slider.value); });
    label.append(`principal axis ${index + 3}`, slider);
    return label;
  }));
}

// --- point to see: at most one decode in flight; the latest position wins ------------------------

let hovering = false;
let latest = null; // {z, at}: the newest position not yet sent, and when the pointer got there
let shown = 0;

function hover([u, v]) {
  latest = { z: state.plane.lift(u, v), at: performance.now() };
  $("coordinates").textContent = `z = ${format(latest.z)}`;
  if (!hovering) decodeLatest();
}

async function decodeLatest() {
  const { z, at } = latest;
  latest = null;
  hovering = true;
  try {
    const [image] = await api.decode(state.model, [z]);
    const preview = $("preview");
    preview.src = pngOf(image.png_base64);
    await preview.decode();
    performance.measure("pointer-to-image", { start: at }); // read by benchmarks/explorer.py
    preview.dataset.z = JSON.stringify(z);
    preview.dataset.shown = String(++shown);
  } catch (error) {
    report(error);
  } finally {
    hovering = false;
    if (latest) decodeLatest();
  }
}

async function pin([u, v]) {
  const z = state.plane.lift(u, v);
  map.markers.push({ u, v, kind: "pin" });
  map.redraw();
  remember(z, `pin ${format(z)}`);
  try {
    const [image] = await api.decode(state.model, [z]);
    $("pins").prepend(thumbnail(image.png_base64, format(z)));
  } catch (error) {
    report(error);
  }
}

function remember(z, name) {
  state.ends = [...state.ends, { z, name }].slice(-2);
  $("walk-ends").textContent = state.ends.map((end) => end.name).join(" -> ") || "pick two points";
  $("walk").disabled = state.ends.length < 2;
}

// --- draw or bring a picture: where it lands ------------------------------------------------------

async function place(picture, source) {
  try {
    const result = await api.reconstruct(state.model, picture);
    const [u, v] = state.plane.project(result.mu);
    map.markers = map.markers.filter((marker) => marker.kind !== "drawing" && marker.kind !== "digit");
    $("number").hidden = true;
    map.markers.push({ u, v, kind: "drawing", ellipse: state.plane.covariance(result.sigma) });
    map.redraw();
    remember(result.mu, `${source} ${format(result.mu)}`);
    $("landed").hidden = false;
    $("mu").textContent = format(result.mu);
    $("sigma").textContent = format(result.sigma);
    $("novelty").textContent = `${result.novelty.percentile.toFixed(1)} % of test images score lower (ELBO ${result.novelty.elbo.toFixed(1)} nats)`;
    $("model-input").src = pngOf(result.model_input.png_base64);
    $("reconstruction").src = pngOf(result.images[0].png_base64);
    $("landed").dataset.mu = JSON.stringify(result.mu);
    await showNearest(result.mu);
  } catch (error) {
    if (error.status === 422 && error.detail.includes("/encode/digits")) await placeNumber(picture, source);
    else report(error);
  }
}

/** A picture of a number, which /encode refuses: each digit where it lands, numbered left to right. */
async function placeNumber(picture, source) {
  try {
    const { items } = await api.encodeDigits(state.model, picture);
    map.markers = map.markers.filter((marker) => marker.kind !== "drawing" && marker.kind !== "digit");
    items.forEach((item, index) => {
      const [u, v] = state.plane.project(item.mu);
      map.markers.push({ u, v, kind: "digit", label: String(index + 1) });
    });
    map.redraw();
    $("landed").hidden = true;
    $("number").hidden = false;
    $("number-count").textContent = `${items.length} digits in ${source}`;
    $("digits").replaceChildren(...items.map((item, index) => thumbnail(item.model_input.png_base64, `${index + 1}: ${format(item.mu)}`)));
  } catch (error) {
    report(error);
  }
}

async function showNearest(mu) {
  const { reference, plane, description } = state;
  if (!reference) return;
  const size = plane.size, count = reference.labels.length;
  const distances = new Float32Array(count);
  for (let n = 0; n < count; n++) {
    let sum = 0;
    for (let k = 0; k < size; k++) sum += (reference.mu[n * size + k] - mu[k]) ** 2;
    distances[n] = sum;
  }
  const nearest = [...distances.keys()].sort((a, b) => distances[a] - distances[b]).slice(0, NEAREST);
  const zs = nearest.map((n) => Array.from(reference.mu.subarray(n * size, (n + 1) * size)));
  const images = await api.decode(state.model, zs);
  $("nearest").replaceChildren(...images.map((image, i) => thumbnail(image.png_base64, description.classes[reference.labels[nearest[i]]])));
}

$("upload").addEventListener("change", (event) => {
  if (event.target.files[0]) place(event.target.files[0], event.target.files[0].name);
});
document.addEventListener("dragover", (event) => event.preventDefault());
document.addEventListener("drop", (event) => {
  event.preventDefault();
  const file = event.dataTransfer.files[0];
  if (file) place(file, file.name);
});
document.addEventListener("paste", (event) => {
  const file = [...event.clipboardData.files][0];
  if (file) place(file, "pasted picture");
});
$("clear").addEventListener("click", () => pad.clear());

// --- walk, sample, manifold ---------------------------------------------------------------------

/** The decoded images' points on the map, in place of the earlier ones of their kind. */
function mark(kind, images) {
  map.markers = map.markers.filter((marker) => marker.kind !== kind);
  for (const image of images) {
    const [u, v] = state.plane.project(image.z);
    map.markers.push({ u, v, kind });
  }
  map.redraw();
}

$("walk").addEventListener("click", async () => {
  const [start, end] = state.ends.map((item) => item.z);
  try {
    const answer = await api.interpolate(state.model, start, end, Number($("steps").value), $("path").value);
    mark("walk", answer.images);
    $("strip").replaceChildren(...answer.images.map((image) => thumbnail(image.png_base64, format(image.z))));
  } catch (error) {
    report(error);
  }
});

$("sample").addEventListener("click", async () => {
  const seedText = $("seed").value.trim();
  try {
    const answer = await api.sample(state.model, Number($("count").value), seedText === "" ? null : Number(seedText), Number($("temperature").value));
    mark("sample", answer.images);
    $("samples").replaceChildren(...answer.images.map((image) => thumbnail(image.png_base64, format(image.z))));
    $("seed-used").textContent = `seed ${answer.seed}: enter it for the same draw`;
  } catch (error) {
    report(error);
  }
});

$("manifold").addEventListener("change", async (event) => {
  if (!event.target.checked) {
    map.manifold = null;
    map.redraw();
    return;
  }
  const [uMin, vMin, uMax, vMax] = map.extent();
  const cells = 15;
  const size = Math.max(uMax - uMin, vMax - vMin) / cells;
  const centres = [];
  for (let i = 0; i < cells; i++) for (let j = 0; j < cells; j++) centres.push([uMin + (i + 0.5) * size, vMin + (j + 0.5) * size]);
  try {
    const images = await api.decode(state.model, centres.map(([u, v]) => state.plane.lift(u, v)));
    const loaded = await Promise.all(images.map((image) => {
      const element = new Image();
      element.src = pngOf(image.png_base64);
      return element.decode().then(() => element);
    }));
    map.manifold = { cells: centres.map(([u, v], index) => ({ u, v, image: loaded[index] })), size };
    map.redraw();
  } catch (error) {
    report(error);
  }
});

$("model").addEventListener("change", (event) => useModel(event.target.value).catch(report));
$("key-form").addEventListener("submit", () => {
  api.setApiKey($("key").value);
  $("key").value = "";
  start();
});

start();
