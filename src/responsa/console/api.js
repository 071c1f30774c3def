// Talking to the Responsa API with the key the person typed.
// The key lives in sessionStorage (gone when the tab closes) and travels only
// in the Authorization header: never in a URL, never written into the page.

const KEY = "responsa.console.key";

export function getKey() {
  return sessionStorage.getItem(KEY);
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || null;
    this.param = err.param || null;
  }
}

function headers(extra) {
  const h = { ...extra };
  const key = getKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

export async function api(path, { method = "GET", body, key } = {}) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (key !== undefined) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    // The stored key stopped working (removed from the server): back to sign-in.
    if (res.status === 401 && key === undefined) window.dispatchEvent(new CustomEvent("responsa:unauthorized"));
    throw new ApiError(res.status, data);
  }
  return data;
}

// Query string from an object; arrays repeat the key, objects become key[sub]=v.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else if (typeof v === "object") Object.entries(v).forEach(([sk, sv]) => q.append(`${k}[${sk}]`, sv));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

// Server-sent events over fetch (EventSource cannot send an Authorization
// header). Yields {type, data, at}: `at` is the arrival time in ms
// (performance.now()), which is what the waterfall plots.
export async function* events(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: headers({ Accept: "text/event-stream" }), signal };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) {
    let data = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    throw new ApiError(res.status, data);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let type = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (!data.length) continue;
      const raw = data.join("\n");
      if (raw === "[DONE]") return;
      let parsed;
      try {
        parsed = JSON.parse(raw);
      } catch {
        continue;
      }
      yield { type: type || parsed.type, data: parsed, at: performance.now() };
    }
  }
}
