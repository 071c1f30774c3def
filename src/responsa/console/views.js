// Read views: responses (list + detail), conversations, background jobs, prompts.

import { api, events, query } from "./api.js";
import { badge, clear, errorBox, field, h, json, latency, link, section, shortId, when } from "./dom.js";
import { TERMINAL, eventTable, foldOutput, renderItems, waterfall } from "./items.js";

const enc = encodeURIComponent;
const ACTIVE = new Set(["queued", "in_progress"]);
const FULL_ID = /^resp_[0-9a-f]{48}$/;

function hashParams(hash) {
  const i = hash.indexOf("?");
  return new URLSearchParams(i >= 0 ? hash.slice(i + 1) : "");
}

function every(ms, fn) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    try {
      await fn();
    } finally {
      if (!stopped) timer = setTimeout(tick, ms);
    }
  };
  timer = setTimeout(tick, ms);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function tokens(resp) {
  const u = resp.usage;
  return u ? `${u.input_tokens ?? "?"} → ${u.output_tokens ?? "?"}` : "—";
}

function metaText(meta) {
  return Object.entries(meta || {}).map(([k, v]) => `${k}=${v}`).join(" ");
}

function responseRow(r) {
  return h("tr", { "data-testid": "response-row", dataset: { id: r.id } },
    h("td", { class: "nowrap" }, when(r.created_at)),
    h("td", {}, link(`#/responses/${enc(r.id)}`, shortId(r.id), { title: r.id, class: "mono" })),
    h("td", {}, badge(r.status)),
    h("td", { class: "mono" }, r.model),
    h("td", {}, r.previous_response_id ? link(`#/responses/${enc(r.previous_response_id)}`, "↶ " + shortId(r.previous_response_id), { class: "mono muted" }) : ""),
    h("td", { class: "nowrap" }, tokens(r)),
    h("td", { class: "nowrap" }, latency(r)),
    h("td", {}, r.background ? "background" : ""),
    h("td", { class: "muted" }, metaText(r.metadata)));
}

function responseTable(rows) {
  return h("table", { class: "list", "data-testid": "responses" },
    h("thead", {}, h("tr", {}, ["created", "id", "status", "model", "previous", "tokens", "latency", "", "metadata"].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows.map(responseRow)));
}

// ---------------------------------------------------------------- responses

export async function responses(root, _arg, hash) {
  const p = hashParams(hash);
  const filters = {
    q: p.get("q") || "", model: p.get("model") || "", status: p.get("status") || "", meta: p.get("meta") || "",
  };
  const q = h("input", { name: "q", placeholder: "resp_… (id or prefix)", value: filters.q, "data-testid": "search" });
  const model = h("input", { name: "model", placeholder: "test/echo", value: filters.model, "data-testid": "filter-model" });
  const status = h("select", { name: "status", "data-testid": "filter-status" },
    ["", "queued", "in_progress", "completed", "incomplete", "failed", "cancelled"].map((s) =>
      h("option", { value: s, selected: s === filters.status }, s || "any status")));
  const meta = h("input", { name: "meta", placeholder: "key=value", value: filters.meta, "data-testid": "filter-metadata" });
  const form = h("form", { class: "filters" }, field("search", q), field("model", model), field("status", status),
    field("metadata", meta), h("button", { type: "submit", "data-testid": "apply-filters" }, "Apply"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const id = q.value.trim();
    if (FULL_ID.test(id)) {
      location.hash = `#/responses/${enc(id)}`;
      return;
    }
    const next = new URLSearchParams();
    if (id) next.set("q", id);
    if (model.value.trim()) next.set("model", model.value.trim());
    if (status.value) next.set("status", status.value);
    if (meta.value.trim()) next.set("meta", meta.value.trim());
    const s = next.toString();
    location.hash = `#/responses${s ? "?" + s : ""}`;
  });

  const params = { limit: 25, model: filters.model, status: filters.status, id_prefix: filters.q };
  if (filters.meta.includes("=")) {
    const [k, ...v] = filters.meta.split("=");
    params.metadata = { [k.trim()]: v.join("=").trim() };
  }
  const body = h("div", {});
  const pager = h("div", { class: "pager" });
  const cursors = []; // the `after` of each page shown before this one
  let after = null;

  let shown = null; // what the table shows (ids and statuses): redraw only on a change

  async function load() {
    const page = await api(`/v1/responses${query({ ...params, after })}`);
    shown = page.data.map((r) => `${r.id}:${r.status}`).join();
    clear(body, page.data.length ? responseTable(page.data) : h("div", { class: "muted empty" }, "No responses yet. Try the playground."));
    clear(pager,
      h("button", { type: "button", disabled: !cursors.length, "data-testid": "prev-page", onclick: () => { after = cursors.pop() ?? null; load(); } }, "← Newer"),
      h("span", { class: "muted" }, `${page.data.length} shown`),
      h("button", { type: "button", disabled: !page.has_more, "data-testid": "next-page", onclick: () => { cursors.push(after); after = page.last_id; load(); } }, "Older →"));
    return page;
  }

  clear(root, h("h1", {}, "Responses"), form, body, pager);
  try {
    await load();
  } catch (err) {
    clear(body, errorBox(err));
  }
  // Live list: the first page picks up new responses and status changes.
  return every(2500, async () => {
    if (after !== null || document.hidden) return;
    const page = await api(`/v1/responses${query(params)}`);
    if (page.data.map((r) => `${r.id}:${r.status}`).join() !== shown) await load();
  });
}

// ----------------------------------------------------------- response detail

async function allInputItems(id) {
  const items = [];
  let after = null;
  for (let i = 0; i < 20; i++) {
    const page = await api(`/v1/responses/${enc(id)}/input_items${query({ order: "asc", limit: 100, after })}`);
    items.push(...page.data);
    if (!page.has_more) break;
    after = page.last_id;
  }
  return items;
}

async function chainOf(resp) {
  const before = [];
  let prev = resp.previous_response_id;
  for (let hops = 0; prev && hops < 25; hops++) {
    try {
      const r = await api(`/v1/responses/${enc(prev)}`);
      before.unshift(r);
      prev = r.previous_response_id;
    } catch {
      before.unshift({ id: prev, status: "deleted", missing: true });
      break;
    }
  }
  let after = [];
  try {
    after = (await api(`/v1/responses${query({ previous_response_id: resp.id, limit: 10, order: "asc" })}`)).data;
  } catch {
    after = [];
  }
  return [...before, resp, ...after];
}

function chainTimeline(chain, current) {
  if (chain.length < 2) return h("div", { class: "muted" }, "A single turn: no previous_response_id chain.");
  return h("ol", { class: "chain", "data-testid": "chain" }, chain.map((r, i) => h("li", { class: r.id === current ? "current" : "" },
    r.missing ? h("span", { class: "muted" }, `${shortId(r.id)} (not found)`)
      : link(`#/responses/${enc(r.id)}`, h("span", {}, h("b", {}, `turn ${i + 1}`), " ", shortId(r.id), " ", badge(r.status)),
        { "data-testid": "chain-node", title: r.id }))));
}

const PARAMS = ["model", "instructions", "previous_response_id", "conversation_id", "prompt", "tool_choice",
  "parallel_tool_calls", "temperature", "top_p", "max_output_tokens", "max_tool_calls", "truncation", "text",
  "reasoning", "store", "background", "service_tier", "metadata", "user", "safety_identifier", "prompt_cache_key"];

function paramsTable(resp) {
  return h("table", { class: "kvtable", "data-testid": "params" }, h("tbody", {},
    PARAMS.filter((k) => resp[k] !== undefined && resp[k] !== null).map((k) => h("tr", {}, h("th", {}, k),
      h("td", {}, typeof resp[k] === "object" ? json(resp[k]) : String(resp[k])))),
    h("tr", {}, h("th", {}, "tools"), h("td", {}, resp.tools && resp.tools.length ? json(resp.tools) : "none"))));
}

function usageTable(resp) {
  const u = resp.usage || {};
  return h("table", { class: "kvtable", "data-testid": "usage" }, h("tbody", {},
    [["input tokens", u.input_tokens], ["cached input tokens", u.input_tokens_details?.cached_tokens],
      ["output tokens", u.output_tokens], ["reasoning tokens", u.output_tokens_details?.reasoning_tokens],
      ["total tokens", u.total_tokens], ["created", when(resp.created_at)], ["completed", when(resp.completed_at)],
      ["latency", latency(resp)]].map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v ?? "—")))));
}

export async function responseDetail(root, id) {
  let resp = await api(`/v1/responses/${enc(id)}`);
  const head = h("div", { class: "detail-head" });
  const conversation = h("div", {});
  const outputBox = h("div", {});
  const eventsBox = h("div", {});
  const chainBox = h("div", {});
  const errBox = h("div", {});
  let controller = null;
  let seen = [];

  function renderHead() {
    const active = ACTIVE.has(resp.status);
    clear(head,
      h("h1", {}, "Response ", h("span", { class: "mono", "data-testid": "response-id" }, resp.id)),
      h("div", { class: "row" }, badge(resp.status), h("span", { class: "mono" }, resp.model),
        h("span", { class: "muted" }, when(resp.created_at)), h("span", {}, `latency ${latency(resp)}`),
        resp.background ? h("span", { class: "tag" }, "background") : null,
        resp.background && active ? h("button", { type: "button", class: "danger", "data-testid": "cancel", onclick: cancel }, "Cancel") : null,
        link(`#/playground${query({ previous_response_id: resp.id, model: resp.model })}`, "Continue in playground →", { class: "button", "data-testid": "continue" }),
        resp.conversation_id ? link(`#/conversations/${enc(resp.conversation_id)}`, "conversation", { class: "button" }) : null),
      resp.error ? h("div", { class: "error", "data-testid": "response-error" }, `${resp.error.code || "error"}: ${resp.error.message}`) : null,
      resp.incomplete_details ? h("div", { class: "warn" }, `incomplete: ${resp.incomplete_details.reason}`) : null);
  }

  async function cancel() {
    try {
      resp = await api(`/v1/responses/${enc(resp.id)}/cancel`, { method: "POST" });
      renderHead();
    } catch (err) {
      clear(errBox, errorBox(err));
    }
  }

  function renderEvents(evts) {
    clear(eventsBox, waterfall(evts, resp), h("details", { open: evts.length <= 60 }, h("summary", {}, `${evts.length} events`), eventTable(evts)));
  }

  async function follow() {
    // Background responses stream their stored events live from any replica;
    // everything else replays the stored result as the same event stream.
    controller = new AbortController();
    seen = [];
    try {
      for await (const ev of events(`/v1/responses/${enc(resp.id)}?stream=true`, { signal: controller.signal })) {
        seen.push(ev);
        if (ACTIVE.has(resp.status)) {
          clear(outputBox, renderItems(foldOutput(seen)));
          renderEvents(seen);
        }
        if (TERMINAL.has(ev.type)) {
          resp = ev.data.response;
          break;
        }
      }
    } catch (err) {
      if (err.name !== "AbortError") clear(errBox, errorBox(err));
    }
    renderHead();
    clear(outputBox, renderItems(resp.output));
    renderEvents(seen);
  }

  const inputs = await allInputItems(resp.id);
  clear(conversation, renderItems(inputs));
  clear(outputBox, renderItems(resp.output));
  renderHead();
  clear(root, head, errBox,
    section("Chain", chainBox),
    h("div", { class: "columns" },
      h("div", {}, section("Input", conversation), section("Output", h("div", { "data-testid": "output" }, outputBox))),
      h("div", {}, section("Usage & latency", usageTable(resp)), section("Request parameters", paramsTable(resp)))),
    section("Events", eventsBox),
    section("Raw", h("details", {}, h("summary", {}, "Response JSON"), json(resp))));
  chainOf(resp).then((chain) => clear(chainBox, chainTimeline(chain, resp.id)));
  if (resp.background || !ACTIVE.has(resp.status)) {
    follow();
  } else {
    // A foreground response still streaming to its own client: poll until it ends.
    const stop = every(1000, async () => {
      resp = await api(`/v1/responses/${enc(resp.id)}`);
      if (!ACTIVE.has(resp.status)) {
        stop();
        follow();
      }
    });
    return () => stop();
  }
  return () => controller && controller.abort();
}

// ------------------------------------------------------------ conversations

export async function conversations(root) {
  const body = h("div", {});
  const pager = h("div", { class: "pager" });
  const cursors = [];
  let after = null;
  async function load() {
    const page = await api(`/v1/conversations${query({ limit: 25, after })}`);
    clear(body, page.data.length ? h("table", { class: "list", "data-testid": "conversations" },
      h("thead", {}, h("tr", {}, h("th", {}, "created"), h("th", {}, "id"), h("th", {}, "metadata"))),
      h("tbody", {}, page.data.map((c) => h("tr", { "data-testid": "conversation-row" },
        h("td", {}, when(c.created_at)), h("td", {}, link(`#/conversations/${enc(c.id)}`, c.id, { class: "mono" })),
        h("td", { class: "muted" }, metaText(c.metadata)))))) : h("div", { class: "muted empty" }, "No conversations yet."));
    clear(pager,
      h("button", { type: "button", disabled: !cursors.length, onclick: () => { after = cursors.pop() ?? null; load(); } }, "← Newer"),
      h("button", { type: "button", disabled: !page.has_more, onclick: () => { cursors.push(after); after = page.last_id; load(); } }, "Older →"));
  }
  clear(root, h("h1", {}, "Conversations"), body, pager);
  await load();
}

export async function conversationDetail(root, id) {
  const conv = await api(`/v1/conversations/${enc(id)}`);
  const items = [];
  let after = null;
  for (let i = 0; i < 20; i++) {
    const page = await api(`/v1/conversations/${enc(id)}/items${query({ order: "asc", limit: 100, after })}`);
    items.push(...page.data);
    if (!page.has_more) break;
    after = page.last_id;
  }
  const resps = await api(`/v1/responses${query({ conversation_id: id, limit: 100 })}`);
  clear(root, h("h1", {}, "Conversation ", h("span", { class: "mono" }, conv.id)),
    h("div", { class: "row muted" }, when(conv.created_at), " ", metaText(conv.metadata)),
    h("div", { class: "columns" },
      section(`Items (${items.length})`, renderItems(items)),
      section("Responses in it", resps.data.length ? responseTable(resps.data) : h("div", { class: "muted" }, "none"))));
}

// ---------------------------------------------------------- background jobs

export async function jobs(root) {
  const which = h("select", { "data-testid": "jobs-filter" },
    [["queued,in_progress", "running or queued"], ["failed", "failed"], ["cancelled", "cancelled"], ["", "all"]]
      .map(([v, t]) => h("option", { value: v }, t)));
  const body = h("div", {});
  const errBox = h("div", {});
  async function load() {
    const page = await api(`/v1/responses${query({ background: "true", status: which.value, limit: 100 })}`);
    clear(body, page.data.length ? h("table", { class: "list", "data-testid": "jobs" },
      h("thead", {}, h("tr", {}, ["created", "id", "status", "model", "reason", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, page.data.map((r) => h("tr", { "data-testid": "job-row", dataset: { id: r.id } },
        h("td", { class: "nowrap" }, when(r.created_at)),
        h("td", {}, link(`#/responses/${enc(r.id)}`, shortId(r.id), { class: "mono", title: r.id })),
        h("td", {}, badge(r.status)), h("td", { class: "mono" }, r.model),
        h("td", { class: "muted" }, r.error ? `${r.error.code || ""} ${r.error.message}` : (r.incomplete_details?.reason || "")),
        h("td", {}, ACTIVE.has(r.status) ? h("button", { type: "button", class: "danger", "data-testid": "cancel-job", onclick: async () => {
          try {
            await api(`/v1/responses/${enc(r.id)}/cancel`, { method: "POST" });
          } catch (err) {
            clear(errBox, errorBox(err));
          }
          await load();
        } }, "Cancel") : ""))))) : h("div", { class: "muted empty" }, "No background jobs here."));
  }
  which.addEventListener("change", load);
  clear(root, h("h1", {}, "Background jobs"), h("div", { class: "filters" }, field("show", which)), errBox, body);
  await load();
  return every(2000, load);
}

// ------------------------------------------------------------------ prompts

export async function prompts(root) {
  const page = await api("/v1/prompts?limit=100");
  clear(root, h("h1", {}, "Prompts"), page.data.length ? h("table", { class: "list", "data-testid": "prompts" },
    h("thead", {}, h("tr", {}, h("th", {}, "id"), h("th", {}, "latest version"), h("th", {}, "instructions"))),
    h("tbody", {}, page.data.map((p) => h("tr", {},
      h("td", {}, link(`#/prompts/${enc(p.id)}`, p.id, { class: "mono" })), h("td", {}, p.version),
      h("td", { class: "muted" }, String(p.instructions ?? "").slice(0, 120))))))
    : h("div", { class: "muted empty" }, "No prompts. Create them with POST /v1/prompts or the server's prompts_dir."));
}

// Line diff (longest common subsequence): fine for prompt-sized texts.
function diffLines(a, b) {
  const x = a.split("\n");
  const y = b.split("\n");
  const n = x.length;
  const m = y.length;
  const L = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; } else if (L[i + 1][j] >= L[i][j + 1]) out.push(["-", x[i++]]);
    else out.push(["+", y[j++]]);
  }
  while (i < n) out.push(["-", x[i++]]);
  while (j < m) out.push(["+", y[j++]]);
  return out;
}

// Multi-line strings (instructions) diff line by line; other fields as JSON.
function promptText(p) {
  const { version: _v, created_at: _c, ...rest } = p;
  return Object.keys(rest).sort().map((k) => {
    const v = rest[k];
    if (typeof v === "string") return `${k}:\n${v.split("\n").map((l) => `  ${l}`).join("\n")}`;
    return `${k}: ${JSON.stringify(v, null, 2)}`;
  }).join("\n");
}

export async function promptDetail(root, id) {
  const page = await api(`/v1/prompts/${enc(id)}/versions?limit=100`);
  const versions = [...page.data].sort((a, b) => Number(a.version) - Number(b.version));
  const pick = (sel) => h("select", { "data-testid": sel }, versions.map((v, i) => h("option", { value: i }, `version ${v.version}`)));
  const left = pick("diff-from");
  const right = pick("diff-to");
  left.value = String(Math.max(versions.length - 2, 0));
  right.value = String(versions.length - 1);
  const out = h("div", {});
  const show = () => clear(out, h("pre", { class: "diff", "data-testid": "diff" },
    diffLines(promptText(versions[left.value]), promptText(versions[right.value])).map(([op, line]) =>
      h("div", { class: op === "+" ? "add" : op === "-" ? "del" : "same" }, `${op} ${line}`))));
  left.addEventListener("change", show);
  right.addEventListener("change", show);
  clear(root, h("h1", {}, "Prompt ", h("span", { class: "mono" }, id)),
    section(`Versions (${versions.length})`, h("ul", {}, versions.map((v) => h("li", {}, `version ${v.version}`, " ",
      h("span", { class: "muted" }, when(v.created_at)))))),
    section("Diff", h("div", { class: "filters" }, field("from", left), field("to", right)), out));
  if (versions.length) show();
}
