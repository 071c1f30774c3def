// A tiny DOM builder. Everything from the server (model output, metadata,
// tool arguments) becomes text nodes: nothing is ever parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style") Object.assign(el.style, v); // CSSOM, which the page's CSP allows (style="" is not)
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

export function pretty(text) {
  // Tool arguments and outputs are JSON strings more often than not.
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function when(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const d = new Date(seconds * 1000);
  return d.toLocaleString(undefined, { hour12: false });
}

export function latency(resp) {
  if (!resp || !resp.completed_at || !resp.created_at) return "—";
  const s = resp.completed_at - resp.created_at;
  return s < 1 ? "<1 s" : `${s} s`;
}

export function badge(status) {
  return h("span", { class: `badge ${status || "unknown"}`, "data-testid": "status" }, status || "?");
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

export function shortId(id) {
  if (!id) return "";
  const cut = id.indexOf("_");
  return id.length > 20 ? `${id.slice(0, cut + 9)}…` : id;
}

export function errorBox(err) {
  return h("div", { class: "error", role: "alert" }, err && err.message ? err.message : String(err));
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

export function field(label, input) {
  return h("label", { class: "field" }, h("span", {}, label), input);
}
