// The playground: build a request, send it, watch its events arrive, continue the chain.

import { api, events } from "./api.js";
import { clear, errorBox, field, h, link, section } from "./dom.js";
import { TERMINAL, eventTable, foldOutput, renderItems, waterfall } from "./items.js";

const enc = encodeURIComponent;
const ACTIVE = new Set(["queued", "in_progress"]);

function hashParams(hash) {
  const i = hash.indexOf("?");
  return new URLSearchParams(i >= 0 ? hash.slice(i + 1) : "");
}

function functionToolEditor(onRemove) {
  const name = h("input", { placeholder: "get_weather", "data-testid": "tool-name", required: true });
  const description = h("input", { placeholder: "what it does", "data-testid": "tool-description" });
  const params = h("textarea", { rows: 4, class: "mono", "data-testid": "tool-parameters" },
    '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}');
  const el = h("div", { class: "tool-editor", "data-testid": "function-tool" }, h("b", {}, "function"),
    field("name", name), field("description", description), field("parameters (JSON schema)", params),
    h("button", { type: "button", class: "link", onclick: () => onRemove(el) }, "remove"));
  el.build = () => ({ type: "function", name: name.value.trim(), description: description.value.trim() || undefined,
    parameters: JSON.parse(params.value || "{}") });
  return el;
}

function mcpEditor(onRemove) {
  const label = h("input", { placeholder: "docs", "data-testid": "mcp-label", required: true });
  const url = h("input", { placeholder: "https://example.com/mcp", "data-testid": "mcp-url", required: true });
  const approval = h("select", { "data-testid": "mcp-approval" }, ["never", "always"].map((v) => h("option", { value: v }, v)));
  // Headers are sent with this request only; Responsa strips them before
  // storing, so they never come back into any page.
  const headers = h("input", { type: "password", placeholder: '{"Authorization": "Bearer …"} (optional)', autocomplete: "off", "data-testid": "mcp-headers" });
  const el = h("div", { class: "tool-editor", "data-testid": "mcp-tool" }, h("b", {}, "MCP server"),
    field("server_label", label), field("server_url", url), field("require_approval", approval), field("headers (JSON)", headers),
    h("button", { type: "button", class: "link", onclick: () => onRemove(el) }, "remove"));
  el.build = () => ({ type: "mcp", server_label: label.value.trim(), server_url: url.value.trim(),
    require_approval: approval.value, headers: headers.value.trim() ? JSON.parse(headers.value) : undefined });
  return el;
}

export async function playground(root, _arg, hash) {
  const p = hashParams(hash);
  let models = [];
  try {
    models = (await api("/v1/models")).data.map((m) => m.id);
  } catch {
    models = [];
  }
  const model = h("input", { list: "models", value: p.get("model") || (models.includes("test/echo") ? "test/echo" : models[0] || ""), "data-testid": "model" });
  const datalist = h("datalist", { id: "models" }, models.map((m) => h("option", { value: m })));
  const instructions = h("textarea", { rows: 2, placeholder: "You are a helpful assistant.", "data-testid": "instructions" });
  const input = h("textarea", { rows: 4, placeholder: "Say something", "data-testid": "input" });
  const previous = h("input", { class: "mono", placeholder: "resp_… (optional)", value: p.get("previous_response_id") || "", "data-testid": "previous" });
  const stream = h("input", { type: "checkbox", checked: true, "data-testid": "stream" });
  const background = h("input", { type: "checkbox", "data-testid": "background" });
  const store = h("input", { type: "checkbox", checked: true, "data-testid": "store" });
  const tools = h("div", { class: "tools" });
  const pending = h("div", {}); // tool outputs to send with the next turn
  const remove = (el) => el.remove();
  const addFunction = h("button", { type: "button", "data-testid": "add-function", onclick: () => tools.append(functionToolEditor(remove)) }, "+ function tool");
  const addMcp = h("button", { type: "button", "data-testid": "add-mcp", onclick: () => tools.append(mcpEditor(remove)) }, "+ MCP server");
  const send = h("button", { type: "submit", class: "primary", "data-testid": "send" }, "Send");
  const stop = h("button", { type: "button", hidden: true, "data-testid": "stop" }, "Stop");
  const status = h("div", { "data-testid": "run-status" });
  const output = h("div", { "data-testid": "playground-output" });
  const eventsBox = h("div", {});
  let controller = null;

  const form = h("form", { class: "playground card" },
    h("div", { class: "row" }, field("model", model), datalist, field("previous_response_id", previous)),
    field("instructions", instructions), field("input", input), pending,
    h("div", { class: "row" }, addFunction, addMcp), tools,
    h("div", { class: "row" },
      h("label", { class: "check" }, stream, " stream"), h("label", { class: "check" }, background, " background"),
      h("label", { class: "check" }, store, " store"), send, stop));

  function buildInput() {
    const items = [];
    for (const row of pending.querySelectorAll("[data-call-id]")) {
      items.push({ type: "function_call_output", call_id: row.dataset.callId, output: row.querySelector("textarea").value });
    }
    for (const row of pending.querySelectorAll("[data-approval-id]")) {
      items.push({ type: "mcp_approval_response", approval_request_id: row.dataset.approvalId, approve: row.querySelector("input").checked });
    }
    const text = input.value.trim();
    if (text) items.push({ type: "message", role: "user", content: text });
    return items;
  }

  function offerNextTurn(resp) {
    // Function calls wait for their outputs; approval requests for a decision.
    const calls = (resp.output || []).filter((it) => it.type === "function_call");
    const approvals = (resp.output || []).filter((it) => it.type === "mcp_approval_request");
    clear(pending,
      calls.map((c) => h("div", { class: "pending", dataset: { callId: c.call_id } },
        field(`output of ${c.name} (${c.call_id})`, h("textarea", { rows: 2, "data-testid": "tool-output" }, "")))),
      approvals.map((a) => h("div", { class: "pending", dataset: { approvalId: a.id } },
        h("label", { class: "check" }, h("input", { type: "checkbox", checked: true, "data-testid": "approve" }), ` approve ${a.server_label}.${a.name}`))));
    if (resp.store !== false && resp.status !== "failed") previous.value = resp.id;
  }

  function finished(resp, evts) {
    clear(status, h("span", { class: `badge ${resp.status}`, "data-testid": "status" }, resp.status), " ",
      resp.store !== false ? link(`#/responses/${enc(resp.id)}`, resp.id, { class: "mono", "data-testid": "result-link" }) : h("span", { class: "mono" }, `${resp.id} (not stored)`),
      resp.error ? h("div", { class: "error" }, resp.error.message) : null,
      resp.usage ? h("span", { class: "muted" }, ` ${resp.usage.input_tokens} → ${resp.usage.output_tokens} tokens`) : null);
    clear(output, renderItems(resp.output));
    if (evts) clear(eventsBox, waterfall(evts, resp), eventTable(evts));
    offerNextTurn(resp);
  }

  async function watch(evts, source) {
    for await (const ev of source) {
      evts.push(ev);
      clear(output, renderItems(foldOutput(evts)));
      clear(eventsBox, waterfall(evts), eventTable(evts));
      if (ev.data.response && ACTIVE.has(ev.data.response.status)) {
        clear(status, h("span", { class: `badge ${ev.data.response.status}`, "data-testid": "status" }, ev.data.response.status), " ",
          ev.data.response.store !== false
            ? link(`#/responses/${enc(ev.data.response.id)}`, ev.data.response.id, { class: "mono", "data-testid": "result-link" })
            : h("span", { class: "mono" }, ev.data.response.id));
      }
      if (TERMINAL.has(ev.type)) return ev.data.response;
      if (ev.type === "error") clear(status, errorBox(ev.data.error || ev.data));
    }
    return null;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    let body;
    try {
      body = { model: model.value.trim() || undefined, input: buildInput(), store: store.checked };
      if (instructions.value.trim()) body.instructions = instructions.value.trim();
      if (previous.value.trim()) body.previous_response_id = previous.value.trim();
      const built = [...tools.children].map((t) => t.build());
      if (built.length) body.tools = built;
      if (background.checked) body.background = true;
      if (stream.checked) body.stream = true;
    } catch (err) {
      clear(status, errorBox(`Tool definition: ${err.message}`));
      return;
    }
    send.disabled = true;
    stop.hidden = false;
    controller = new AbortController();
    clear(status, h("span", { class: "muted" }, "sending…"));
    clear(output);
    clear(eventsBox);
    const evts = [];
    try {
      let resp;
      if (body.stream) {
        resp = await watch(evts, events("/v1/responses", { method: "POST", body, signal: controller.signal }));
      } else {
        resp = await api("/v1/responses", { method: "POST", body });
        if (resp.background && ACTIVE.has(resp.status)) {
          clear(status, h("span", { class: `badge ${resp.status}`, "data-testid": "status" }, resp.status), " ",
            link(`#/responses/${enc(resp.id)}`, resp.id, { class: "mono", "data-testid": "result-link" }));
          resp = await watch(evts, events(`/v1/responses/${enc(resp.id)}?stream=true`, { signal: controller.signal }));
        }
      }
      if (resp) {
        input.value = "";
        finished(resp, evts.length ? evts : null);
      }
    } catch (err) {
      if (err.name === "AbortError") clear(status, h("span", { class: "muted" }, "stopped watching (a background response keeps running)"));
      else clear(status, errorBox(err));
    } finally {
      send.disabled = false;
      stop.hidden = true;
    }
  });
  stop.addEventListener("click", () => controller && controller.abort());

  clear(root, h("h1", {}, "Playground"), form,
    section("Result", status, output),
    section("Events", h("p", { class: "muted" }, "Each event as it arrives, timed in this browser."), eventsBox));
  return () => controller && controller.abort();
}
