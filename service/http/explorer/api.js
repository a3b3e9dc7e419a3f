// Every call the page makes to the service, in one place (the Python client's twin: client/vae_client/calls.py).
// The API key, when the service asks for one, lives in sessionStorage for this tab only, never in a URL.

const KEY = "vae-api-key";

export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export function hasApiKey() {
  return sessionStorage.getItem(KEY) !== null;
}

async function call(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const key = sessionStorage.getItem(KEY);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  const response = await fetch(path, { ...options, headers });
  if (!response.ok) {
    let detail = response.statusText;
    try {
      const problem = await response.json();
      detail = problem.detail || problem.error || detail;
    } catch { /* not JSON: keep the status text */ }
    throw new ApiError(response.status, detail);
  }
  return response;
}

const JSON_HEADERS = { "Content-Type": "application/json", Accept: "application/json" };
const prefix = (model) => `/models/${encodeURIComponent(model)}`;

export async function models() {
  return (await call("/models")).json();
}

export async function description(model) {
  return (await call(prefix(model))).json();
}

/** The reference set: {mu: Float32Array (count*K), sigma: Float32Array, labels: Uint8Array}. */
export async function reference(model, count, latentSize) {
  const buffer = await (await call(`${prefix(model)}/reference`)).arrayBuffer();
  const floats = count * latentSize;
  return {
    mu: new Float32Array(buffer, 0, floats),
    sigma: new Float32Array(buffer, 4 * floats, floats),
    labels: new Uint8Array(buffer, 8 * floats, count),
  };
}

/** Decoded images for a list of latent vectors: [{z, png_base64}], in batches the service takes. */
export async function decode(model, zs, signal) {
  const images = [];
  for (let start = 0; start < zs.length; start += 64) {
    const body = JSON.stringify({ z: zs.slice(start, start + 64) });
    const answer = await (await call(`${prefix(model)}/decode`, { method: "POST", headers: JSON_HEADERS, body, signal })).json();
    images.push(...answer.images);
  }
  return images;
}

/** A picture (Blob) -> {mu, sigma, novelty, model_input, images: [reconstruction]}. */
export async function reconstruct(model, picture) {
  const headers = { "Content-Type": picture.type || "application/octet-stream", Accept: "application/json" };
  const response = await call(`${prefix(model)}/reconstruct?model_input=true`, { method: "POST", headers, body: picture });
  return response.json();
}

/** A picture of a number: each digit found, left to right, with its box, mu, sigma and model input. */
export async function encodeDigits(model, picture) {
  const headers = { "Content-Type": picture.type || "application/octet-stream" };
  const response = await call(`${prefix(model)}/encode/digits?model_input=true`, { method: "POST", headers, body: picture });
  return response.json();
}

export async function interpolate(model, start, end, steps, path) {
  const body = JSON.stringify({ start, end, steps, path });
  return (await call(`${prefix(model)}/interpolate`, { method: "POST", headers: JSON_HEADERS, body })).json();
}

export async function sample(model, n, seed, temperature) {
  const body = JSON.stringify({ n, temperature, ...(seed === null ? {} : { seed }) });
  return (await call(`${prefix(model)}/sample`, { method: "POST", headers: JSON_HEADERS, body })).json();
}
