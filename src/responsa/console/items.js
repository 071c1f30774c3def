// Input/output items rendered as a conversation, and events as a waterfall.

import { h, json, pretty } from "./dom.js";

function partText(part) {
  if (!part || typeof part !== "object") return String(part ?? "");
  switch (part.type) {
    case "input_text":
    case "output_text":
    case "text":
    case "summary_text":
    case "reasoning_text":
      return part.text ?? "";
    case "refusal":
      return part.refusal ?? "";
    case "input_image":
      return `[image${part.image_url ? ": " + String(part.image_url).slice(0, 80) : ""}]`;
    case "input_file":
      return `[file ${part.filename || part.file_id || ""}]`;
    default:
      return JSON.stringify(part);
  }
}

function kv(label, value) {
  return h("div", { class: "kv" }, h("span", { class: "k" }, label), h("span", { class: "v" }, value ?? "—"));
}

function code(text) {
  return h("pre", { class: "code" }, pretty(text ?? ""));
}

function card(kind, title, ...body) {
  return h("div", { class: `item ${kind}`, "data-testid": `item-${kind}` },
    h("div", { class: "item-head" }, title), ...body);
}

export function renderItem(item) {
  if (!item || typeof item !== "object") return h("div", { class: "item" }, String(item));
  switch (item.type ?? (item.role ? "message" : undefined)) {
    case "message": {
      const parts = typeof item.content === "string" ? [item.content] : (item.content || []).map(partText);
      const refusal = Array.isArray(item.content) && item.content.some((p) => p.type === "refusal");
      return h("div", { class: `item message ${item.role}${refusal ? " refusal" : ""}`, "data-testid": "item-message" },
        h("div", { class: "item-head" }, item.role || "message"),
        h("div", { class: "text" }, parts.join("\n")));
    }
    case "reasoning": {
      const summary = (item.summary || []).map(partText).join("\n");
      const content = (item.content || []).map(partText).join("\n");
      return card("reasoning", "reasoning",
        summary ? h("div", { class: "text" }, summary) : null,
        content ? h("details", {}, h("summary", {}, "reasoning text"), h("div", { class: "text" }, content)) : null,
        !summary && !content ? h("div", { class: "muted" }, "(no summary)") : null);
    }
    case "function_call":
      return card("function_call", h("span", {}, "function call ", h("b", { class: "name" }, item.name)),
        kv("call_id", item.call_id), code(item.arguments));
    case "function_call_output":
      return card("function_call_output", "function output", kv("call_id", item.call_id), code(
        typeof item.output === "string" ? item.output : JSON.stringify(item.output)));
    case "mcp_list_tools":
      return card("mcp_list_tools", h("span", {}, "MCP tools of ", h("b", {}, item.server_label)),
        h("ul", { class: "tools" }, (item.tools || []).map((t) => h("li", {}, h("b", {}, t.name), " ",
          h("span", { class: "muted" }, t.description || "")))),
        item.error ? h("div", { class: "error" }, item.error) : null);
    case "mcp_call":
      return card("mcp_call", h("span", {}, "MCP call ", h("b", { class: "name" }, `${item.server_label}.${item.name}`)),
        code(item.arguments),
        item.output !== undefined && item.output !== null ? h("div", {}, h("div", { class: "k" }, "output"), code(item.output)) : null,
        item.error ? h("div", { class: "error" }, typeof item.error === "string" ? item.error : JSON.stringify(item.error)) : null);
    case "mcp_approval_request":
      return card("mcp_approval_request",
        h("span", {}, "MCP approval requested: ", h("b", { class: "name" }, `${item.server_label}.${item.name}`)),
        code(item.arguments));
    case "mcp_approval_response":
      return card("mcp_approval_response", `MCP approval: ${item.approve ? "approved" : "denied"}`,
        kv("request", item.approval_request_id), item.reason ? kv("reason", item.reason) : null);
    case "web_search_call":
      return card("web_search_call", "web search", kv("status", item.status), item.action ? json(item.action) : null);
    case "file_search_call":
      return card("file_search_call", "file search", kv("queries", (item.queries || []).join(", ")),
        item.results ? json(item.results) : null);
    case "compaction":
      return card("compaction", "compacted context", h("div", { class: "muted" }, "earlier turns, summarised"));
    case "item_reference":
      return card("item_reference", "item reference", kv("id", item.id));
    default:
      return card("other", item.type || "item", json(item));
  }
}

export function renderItems(items) {
  if (!items || !items.length) return h("div", { class: "muted" }, "(none)");
  return h("div", { class: "items" }, items.map(renderItem));
}

function eventSummary(ev) {
  const d = ev.data || {};
  if (d.delta !== undefined) return JSON.stringify(d.delta).slice(0, 80);
  if (d.item) return `${d.item.type}${d.item.name ? " " + d.item.name : ""}`;
  if (d.response) return d.response.status;
  if (d.error) return d.error.message || d.message || "";
  if (d.message) return d.message;
  return "";
}

// Spans of output items between their added and done events: on the time
// axis when the events were watched arriving, else on the sequence axis.
// MCP calls also carry their measured duration (the Response's
// mcp_tool_results), which a replayed stream cannot time.
export function waterfall(evts, resp) {
  if (!evts.length) return h("div", { class: "muted" }, "(no events)");
  const timed = evts.length > 1 && evts[evts.length - 1].at - evts[0].at > 5;
  const t0 = evts[0].at ?? 0;
  const pos = (ev, i) => (timed ? ev.at - t0 : i);
  const end = Math.max(pos(evts[evts.length - 1], evts.length - 1), 1);
  const spans = new Map();
  evts.forEach((ev, i) => {
    const d = ev.data || {};
    if (ev.type === "response.output_item.added") {
      spans.set(d.output_index, { start: pos(ev, i), end: null, item: d.item });
    } else if (ev.type === "response.output_item.done" && spans.has(d.output_index)) {
      const s = spans.get(d.output_index);
      s.end = pos(ev, i);
      s.item = d.item;
    }
  });
  const whole = { start: 0, end };
  const rows = [["response", "response", whole]];
  const measured = [...((resp && resp.mcp_tool_results) || [])];
  for (const [idx, s] of spans) {
    const tool = ["function_call", "mcp_call", "mcp_list_tools", "web_search_call", "file_search_call"].includes(s.item.type);
    let label = `#${idx} ${s.item.type}${s.item.name ? " " + s.item.name : ""}`;
    if (s.item.type === "mcp_call") {
      const i = measured.findIndex((r) => r.tool_name === s.item.name);
      if (i >= 0 && typeof measured[i].duration_ms === "number") label += ` (${Math.round(measured.splice(i, 1)[0].duration_ms)} ms)`;
    }
    rows.push([label, tool ? "tool" : "model", { start: s.start, end: s.end ?? end }]);
  }
  const unit = timed ? (v) => `${Math.round(v)} ms` : (v) => `#${v}`;
  return h("div", { class: "waterfall", "data-testid": "waterfall" },
    h("div", { class: "muted" }, timed ? "timed as the events arrived in this browser" : "by sequence number (replayed from the store: arrival times were not recorded)"),
    rows.map(([label, kind, span]) => h("div", { class: "wf-row" },
      h("span", { class: "wf-label" }, label),
      h("span", { class: "wf-track" }, h("span", {
        class: `wf-bar ${kind}`,
        style: { left: `${(100 * span.start) / end}%`, width: `${Math.max((100 * (span.end - span.start)) / end, 0.5)}%` },
        title: `${unit(span.start)} → ${unit(span.end)}`,
      })),
      h("span", { class: "wf-time" }, `${unit(span.start)} → ${unit(span.end)}`))));
}

export function eventTable(evts) {
  const t0 = evts.length ? evts[0].at : 0;
  return h("table", { class: "events", "data-testid": "events" },
    h("thead", {}, h("tr", {}, h("th", {}, "seq"), h("th", {}, "+ms"), h("th", {}, "type"), h("th", {}, "detail"))),
    h("tbody", {}, evts.map((ev) => h("tr", { class: ev.type.startsWith("response.output_text") ? "delta" : "" },
      h("td", {}, ev.data.sequence_number ?? ""),
      h("td", {}, ev.at !== undefined ? Math.round(ev.at - t0) : ""),
      h("td", { class: "etype" }, ev.type),
      h("td", { class: "edetail" }, eventSummary(ev))))));
}

// Output items as they stand after the events so far (for live views).
export function foldOutput(evts) {
  const out = [];
  for (const ev of evts) {
    const d = ev.data || {};
    if (ev.type === "response.output_item.added" || ev.type === "response.output_item.done") {
      out[d.output_index] = structuredClone(d.item);
    } else if (ev.type === "response.output_text.delta" && out[d.output_index]) {
      const item = out[d.output_index];
      item.content = item.content || [];
      const part = item.content[d.content_index] || (item.content[d.content_index] = { type: "output_text", text: "" });
      part.text = (part.text || "") + d.delta;
    } else if (ev.type === "response.function_call_arguments.delta" && out[d.output_index]) {
      out[d.output_index].arguments = (out[d.output_index].arguments || "") + d.delta;
    } else if (ev.type === "response.content_part.added" && out[d.output_index]) {
      const item = out[d.output_index];
      item.content = item.content || [];
      item.content[d.content_index] = structuredClone(d.part);
    }
  }
  return out.filter(Boolean);
}

export const TERMINAL = new Set(["response.completed", "response.failed", "response.incomplete", "response.cancelled"]);
