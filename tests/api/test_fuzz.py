"""Bad input never produces a 500 or a traceback, anywhere on the surface.

Deterministic fuzzing against the real server: every top-level parameter
of ``CreateResponse`` and every field of every input item type replaced by
hostile values, hostile tools / tool choices / formats / prompts / MCP
servers / credentials / model forms, junk ids and list parameters on every
GET route, malformed HTTP bodies and junk WebSocket frames. Each answer
must be < 500, in the OpenAI error shape when it is an error, and never
carry a traceback. Each test collects every offending case before failing,
so one run reports them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect

from responsa.api.app import create_app
from responsa.config import load_settings
from responsa.protocol.request import CreateResponse
from tests.helpers import serve_in_thread

BASE = {"model": "test/echo", "input": "hi"}
NESTED = [{"type": "message", "role": "user", "content": [{"type": "input_image"}]}]
HOSTILE: list[Any] = [None, 0, -1, 1e308, -1e308, 2**63, "x", "", [], {}, [1], [{}], {"type": 5}, True, False,
                      "\u0000", "²", "A" * 10_000, NESTED, [None], {"": ""}, {"id": []}]
FEW: list[Any] = [None, 0, 2**63, "", [], {}, [{}], "A" * 10_000]
"""Enough to re-run the shared item validation through the other endpoints."""
_MISSING = object()
"""Stands for "leave the field out"."""

Problem = str


def problem(r: httpx.Response, case: str) -> Problem | None:
    """Why ``r`` breaks the contract, or ``None``."""
    text = r.text
    if r.status_code == 502 and '"code":"invalid_tool_call"' in text:
        return None  # the (test) model broke the request's tool contract: a model fault, reported as one
    if r.status_code >= 500:
        return f"{case}: HTTP {r.status_code} {text[:200]}"
    if "Traceback" in text or '"code":"server_error"' in text:
        return f"{case}: server fault in body {text[:300]}"
    if r.status_code >= 400:
        try:
            body = r.json()
        except ValueError:
            return f"{case}: HTTP {r.status_code} with a non-JSON body {text[:200]}"
        err = body.get("error") if isinstance(body, dict) else None
        if set(body) != {"error"} or not isinstance(err, dict) or set(err) != {"message", "type", "param", "code"} \
                or not isinstance(err["message"], str) or not err["message"]:
            return f"{case}: HTTP {r.status_code} not in the error shape {text[:200]}"
    return None


def _answer(case: str, call: Callable[[], httpx.Response]) -> Problem | None:
    try:
        return problem(call(), case)
    except httpx.TransportError as exc:  # the server dropped the connection
        return f"{case}: no answer ({exc!r})"


def run(cases: Iterable[tuple[str, Callable[[], httpx.Response]]]) -> None:
    found = [p for case, call in cases if (p := _answer(case, call)) is not None]
    assert not found, f"{len(found)} bad answers:\n" + "\n".join(found[:40])


def short(value: Any) -> str:
    text = "<missing>" if value is _MISSING else json.dumps(value)
    return text if len(text) < 40 else text[:37] + "..."


def mutations(template: dict[str, Any], values: list[Any] = HOSTILE) -> Iterator[tuple[str, dict[str, Any]]]:
    """``template`` with each key in turn left out or replaced by each value."""
    for key in template:
        for value in [_MISSING, *values]:
            out = dict(template)
            if value is _MISSING:
                del out[key]
            else:
                out[key] = value
            yield f"{key}={short(value)}", out


def posts(http: httpx.Client, path: str, bodies: Iterable[tuple[str, Any]]
          ) -> Iterator[tuple[str, Callable[[], httpx.Response]]]:
    for case, body in bodies:
        yield f"POST {path} {case}", lambda body=body: http.post(path, json=body)


# -- POST /v1/responses -------------------------------------------------------

def test_every_create_parameter_with_hostile_values(http: httpx.Client) -> None:
    def bodies() -> Iterator[tuple[str, Any]]:
        for name in CreateResponse.model_fields:
            for value in HOSTILE:
                yield f"{name}={short(value)}", {**BASE, name: value}
    run(posts(http, "/v1/responses", bodies()))


_TEXT = {"type": "input_text", "text": "hi"}
ITEMS: dict[str, list[dict[str, Any]]] = {
    # A list of valid items per type; each is mutated in place at its last position.
    "message": [{"type": "message", "role": "user", "content": [_TEXT], "id": "msg_fuzz", "status": "completed"}],
    "message_str": [{"role": "user", "content": "hi"}],
    "assistant": [{"role": "assistant", "content": [{"type": "output_text", "text": "x", "annotations": [],
                                                     "logprobs": []}]}, {"role": "user", "content": "hi"}],
    "refusal": [{"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
                {"role": "user", "content": "hi"}],
    "function_call": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "id": "fc_1",
                       "status": "completed"}],
    "function_call_output": [{"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                             {"type": "function_call_output", "call_id": "c1", "output": "ok", "id": "fco_1",
                              "status": "completed"}],
    "reasoning": [{"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "t"}],
                   "content": [{"type": "reasoning_text", "text": "t"}], "encrypted_content": "e"},
                  {"role": "user", "content": "hi"}],
    "compaction": [{"type": "compaction", "id": "cmp_1", "encrypted_content": "v1.abc.def"}],
    "item_reference": [{"type": "item_reference", "id": "msg_unknown"}],
    "mcp_approval_response": [{"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True,
                               "id": "mcpa_1", "reason": "ok"}],
    "mcp_approval_request": [{"type": "mcp_approval_request", "id": "mcpr_1", "server_label": "s", "name": "t",
                              "arguments": "{}"}, {"role": "user", "content": "hi"}],
    "mcp_call": [{"type": "mcp_call", "id": "mcp_1", "server_label": "s", "name": "t", "arguments": "{}",
                  "output": "o", "error": None, "status": "completed", "approval_request_id": "mcpr_1"},
                 {"role": "user", "content": "hi"}],
    "mcp_list_tools": [{"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "s",
                        "tools": [{"name": "t", "input_schema": {}}], "error": None},
                       {"role": "user", "content": "hi"}],
}
PARTS: dict[str, dict[str, Any]] = {
    "input_text": _TEXT,
    "input_image": {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "auto",
                    "file_id": None},
    "input_file": {"type": "input_file", "filename": "a.txt", "file_data": "data:text/plain;base64,aGk=",
                   "file_url": None, "file_id": None},
}


def _item_bodies(values: list[Any] = HOSTILE) -> Iterator[tuple[str, Any]]:
    for kind, items in ITEMS.items():
        target = next(i for i, it in enumerate(items) if it.get("type", "message") != "message" or kind.startswith(
            ("message", "assistant", "refusal")))
        for case, mutated in mutations(items[target], values):
            yield f"{kind}.{case}", {"model": "test/echo",
                                     "input": [*items[:target], mutated, *items[target + 1:]]}
    for kind, part in PARTS.items():
        for case, mutated in mutations(part, values):
            yield f"content[{kind}].{case}", {"model": "test/echo", "input": [{"role": "user", "content": [mutated]}]}
    for value in values:
        yield f"input=[{short(value)}]", {"model": "test/echo", "input": [value]}
        yield f"content=[{short(value)}]", {"model": "test/echo", "input": [{"role": "user", "content": [value]}]}
        yield f"output=[{short(value)}]", {"model": "test/echo", "input": [
            *ITEMS["function_call"], {"type": "function_call_output", "call_id": "c1", "output": [value]}]}


def test_hostile_input_items(http: httpx.Client) -> None:
    run(posts(http, "/v1/responses", _item_bodies()))


FUNCTION = {"type": "function", "name": "f", "description": "d", "strict": True,
            "parameters": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                           "additionalProperties": False}}
MCP_TOOL = {"type": "mcp", "server_label": "s", "server_url": "http://127.0.0.1:9/mcp", "headers": {"k": "v"},
            "allowed_tools": ["t"], "require_approval": "never", "server_description": "d", "authorization": "t"}
JUNK_SCHEMAS: list[Any] = [
    {"type": "nope"}, {"type": "object", "properties": []}, {"type": "object", "properties": {"a": 5}},
    {"type": "object", "required": "a"}, {"$ref": "#/nowhere"}, {"type": ["object", "null"]}, {"enum": []},
    {"type": "array", "items": 5}, {"anyOf": []}, {"type": "object", "properties": {"a": {"$ref": "#"}}},
]


def _tool_bodies() -> Iterator[tuple[str, Any]]:
    for case, tool in mutations(FUNCTION):
        for choice in ("auto", "required"):
            yield f"function.{case} tool_choice={choice}", {**BASE, "tools": [tool], "tool_choice": choice}
    for case, tool in mutations(MCP_TOOL):  # each valid one costs a (refused) connection: once is enough
        yield f"mcp.{case}", {**BASE, "tools": [tool]}
    for headers in ({"a b": "v"}, {"k": "v\r\nX-Injected: 1"}, {"k": "\u00e9"}, {"": "v"}):
        yield f"mcp.headers={short(headers)}", {**BASE, "tools": [{**MCP_TOOL, "headers": headers}]}
    for schema in JUNK_SCHEMAS:
        for strict in (True, False):
            tool = {**FUNCTION, "parameters": schema, "strict": strict}
            yield f"schema={short(schema)} strict={strict}", {**BASE, "tools": [tool], "tool_choice": "required"}
    for value in HOSTILE:
        yield f"tools=[{short(value)}]", {**BASE, "tools": [value]}
    yield "duplicate names", {**BASE, "tools": [FUNCTION, FUNCTION]}
    yield "duplicate mcp labels", {**BASE, "tools": [MCP_TOOL, MCP_TOOL]}
    filters: list[Any] = [{"always": 5}, {"never": {"tool_names": 5}}, {"always": {"read_only": "x"}}, {"x": {}},
                          {"tool_names": [5]}, {"read_only": []}, ["t", 5], "sometimes"]
    for flt in filters:
        yield f"require_approval={short(flt)}", {**BASE, "tools": [{**MCP_TOOL, "require_approval": flt}]}
        yield f"allowed_tools={short(flt)}", {**BASE, "tools": [{**MCP_TOOL, "allowed_tools": flt}]}
    listing = ITEMS["mcp_list_tools"][0]
    for case, tool in mutations({"name": "t", "description": "d", "input_schema": {"type": "object"},
                                 "annotations": {"readOnlyHint": True}}):
        # A replayed listing for the request's own server is reused, not fetched again.
        yield f"replayed mcp_list_tools.tools[0].{case}", {
            "model": "test/echo", "tools": [{**MCP_TOOL, "server_label": "s"}],
            "input": [{**listing, "tools": [tool]}, {"role": "user", "content": "hi"}]}
    for url in ("ftp://x", "http://x:abc/", "http://x:99999/", "http://", "http://[::1", "http://10.0.0.1/",
                "https://exa mple.com", "http://\u0000/"):
        yield f"server_url={url!r}", {**BASE, "tools": [{**MCP_TOOL, "server_url": url}]}


def test_hostile_tools(http: httpx.Client) -> None:
    run(posts(http, "/v1/responses", _tool_bodies()))


def _choice_bodies() -> Iterator[tuple[str, Any]]:
    tools = [FUNCTION]
    choices: list[Any] = [
        {"type": "function"}, {"type": "function", "name": None}, {"type": "function", "name": ["f"]},
        {"type": "function", "name": {"a": 1}}, {"type": "function", "name": "g"}, {"type": "mcp"},
        {"type": "allowed_tools"}, {"type": "allowed_tools", "tools": []}, {"type": "allowed_tools", "tools": [5]},
        {"type": "allowed_tools", "tools": [{"name": ["f"]}]}, {"type": "allowed_tools", "tools": [{"name": {}}]},
        {"type": "allowed_tools", "mode": ["auto"], "tools": [{"type": "function", "name": "f"}]},
        {"type": "allowed_tools", "mode": {}, "tools": [{"name": "f"}]}, {"type": []}, {"type": {}},
        {"type": "allowed_tools", "tools": "f"}, {"type": "file_search"}, {},
    ]
    for choice in [*HOSTILE, *choices]:
        yield f"tool_choice={short(choice)}", {**BASE, "tools": tools, "tool_choice": choice}
        yield f"tool_choice={short(choice)} without tools", {**BASE, "tool_choice": choice}


def _format_bodies() -> Iterator[tuple[str, Any]]:
    fmt = {"type": "json_schema", "name": "n", "strict": True, "description": "d",
           "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                      "additionalProperties": False}}
    for case, mutated in mutations(fmt):
        yield f"text.format.{case}", {**BASE, "text": {"format": mutated}}
    for schema in JUNK_SCHEMAS:
        yield f"text.format.schema={short(schema)}", {**BASE, "text": {"format": {**fmt, "schema": schema}}}
    for value in HOSTILE:
        yield f"text.format={short(value)}", {**BASE, "text": {"format": value}}
        yield f"text.verbosity={short(value)}", {**BASE, "text": {"verbosity": value}}
        yield f"text.{short(value)}", {**BASE, "text": {"junk": value}}
        yield f"reasoning.effort={short(value)}", {**BASE, "reasoning": {"effort": value}}
        yield f"reasoning.summary={short(value)}", {**BASE, "reasoning": {"summary": value}}
        yield f"reasoning.junk={short(value)}", {**BASE, "reasoning": {"junk": value}}
        yield f"stream_options.include_obfuscation={short(value)}", {
            **BASE, "stream": True, "stream_options": {"include_obfuscation": value}}
        yield f"metadata.k={short(value)}", {**BASE, "metadata": {"k": value}}
        yield f"include=[{short(value)}]", {**BASE, "include": [value]}


def test_hostile_tool_choice_and_formats(http: httpx.Client) -> None:
    run(posts(http, "/v1/responses", [*_choice_bodies(), *_format_bodies()]))


def _reference_bodies() -> Iterator[tuple[str, Any]]:
    for value in HOSTILE:
        v = short(value)
        yield f"conversation={{id:{v}}}", {**BASE, "conversation": {"id": value}}
        yield f"conversation.junk={v}", {**BASE, "conversation": {"id": "conv_x", "junk": value}}
        yield f"previous_response_id={v}", {**BASE, "previous_response_id": value}
        for case, prompt in mutations({"id": "pmpt_nope", "version": "2", "variables": {"a": "b"}}, [value]):
            yield f"prompt.{case}", {**BASE, "prompt": prompt}
        yield f"prompt.variables.a={v}", {**BASE, "prompt": {"id": "pmpt_nope", "variables": {"a": value}}}
        yield f"mcp_servers=[{v}]", {**BASE, "mcp_servers": [value]}
        for case, entry in mutations({"slug": "org/name", "version": "v1", "name": "n"}, [value]):
            yield f"mcp_servers[0].{case}", {**BASE, "mcp_servers": [entry]}
        yield f"mcp_servers[0].url={v}", {**BASE, "mcp_servers": [{"url": value}]}
        yield f"credentials=[{v}]", {**BASE, "mcp_servers": "https://example.invalid/mcp", "credentials": [value]}
        for case, cred in mutations({"connection_name": "example.invalid", "values": {"token": "t"}}, [value]):
            yield f"credentials.{case}", {**BASE, "mcp_servers": "https://example.invalid/mcp", "credentials": cred}
        yield f"credentials.values.k={v}", {**BASE, "mcp_servers": "https://example.invalid/mcp",
                                            "credentials": {"connection_name": "x", "values": {"token": value}}}
        yield f"model=[{v}]", {**BASE, "model": [value]}
        yield f"model={{model:{v}}}", {**BASE, "model": {"model": value}}
        yield f"model.settings={v}", {**BASE, "model": {"model": "test/echo", "settings": value}}
        yield f"model.name={v}", {**BASE, "model": {"name": value}}
    for slug in ("org/name@", "@v1", "org/name@v1@v2", "a/b/c", "org/", "/name", "http:/x", "org/name@\u0000"):
        yield f"mcp_servers={slug!r}", {**BASE, "mcp_servers": slug}
    for model in ("test/", "/echo", "x" * 10_000, "test/echo\u0000", "\u00ff/\u00ff", "openai/", "a/b/c"):
        yield f"model={short(model)}", {**BASE, "model": model}
    yield "model=[]", {**BASE, "model": []}
    yield "conversation+previous", {**BASE, "conversation": "conv_x", "previous_response_id": "resp_x"}
    yield "background+store=false", {**BASE, "background": True, "store": False}


def test_hostile_references_prompts_mcp_and_models(http: httpx.Client) -> None:
    run(posts(http, "/v1/responses", _reference_bodies()))


# -- the other POST endpoints -----------------------------------------------

def test_compact_and_input_tokens(http: httpx.Client) -> None:
    def bodies(allowed: Iterable[str]) -> Iterator[tuple[str, Any]]:
        for name in allowed:
            for value in HOSTILE:
                yield f"{name}={short(value)}", {**BASE, name: value}
        yield from _item_bodies(FEW)
    compact = ("model", "input", "instructions", "previous_response_id", "prompt_cache_key", "stream")
    count = ("model", "input", "instructions", "previous_response_id", "conversation", "tools", "tool_choice",
             "parallel_tool_calls", "reasoning", "text", "truncation", "prompt", "store")
    run([*posts(http, "/v1/responses/compact", bodies(compact)),
         *posts(http, "/v1/responses/input_tokens", bodies(count))])


def test_conversations(http: httpx.Client) -> None:
    cid = http.post("/v1/conversations", json={}).json()["id"]

    def create_bodies() -> Iterator[tuple[str, Any]]:
        for value in HOSTILE:
            yield f"items={short(value)}", {"items": value}
            yield f"items=[{short(value)}]", {"items": [value]}
            yield f"metadata={short(value)}", {"metadata": value}
            yield f"junk={short(value)}", {"junk": value}
            yield f"body={short(value)}", value
        for case, body in _item_bodies(FEW):
            yield case, {"items": body["input"]}
        yield "21 items", {"items": [{"role": "user", "content": "x"}] * 21}

    def add_bodies() -> Iterator[tuple[str, Any]]:
        for case, body in create_bodies():
            if not case.startswith("metadata="):
                yield case, body

    def update_bodies() -> Iterator[tuple[str, Any]]:
        for value in HOSTILE:
            yield f"metadata={short(value)}", {"metadata": value}
            yield f"body={short(value)}", value
    run([*posts(http, "/v1/conversations", create_bodies()),
         *posts(http, f"/v1/conversations/{cid}/items", add_bodies()),
         *posts(http, f"/v1/conversations/{cid}", update_bodies()),
         *posts(http, "/v1/conversations/conv_nope/items", [("unknown conversation", {"items": [_TEXT]})])])


def test_prompts(http: httpx.Client) -> None:
    template = {"id": "fuzz_prompt", "instructions": "Be {{tone}}.", "input": [{"role": "user", "content": "hi"}],
                "model": "test/echo", "metadata": {"k": "v"}}
    assert http.post("/v1/prompts", json=template).status_code < 500

    def bodies() -> Iterator[tuple[str, Any]]:
        yield from mutations(template)
        for value in HOSTILE:
            yield f"body={short(value)}", value
            yield f"input=[{short(value)}]", {**template, "input": [value]}
        yield "item_reference", {**template, "input": [{"type": "item_reference", "id": "x"}]}
        yield "bad id", {**template, "id": "a b"}
    version_bodies = [(c, {k: v for k, v in b.items() if k != "id"} if isinstance(b, dict) else b)
                      for c, b in bodies()]
    variables: list[tuple[str, Any]] = [
        (f"prompt.variables.tone={short(v)}", {**BASE, "prompt": {"id": "fuzz_prompt", "variables": {"tone": v}}})
        for v in [*HOSTILE, {"type": "input_image", "image_url": "data:image/png;base64,AA"},
                  {"type": "input_file", "file_data": "x"}, {"type": "input_text"}, {"type": "input_text", "text": 5}]]
    variables += [(f"prompt.version={short(v)}", {**BASE, "prompt": {"id": "fuzz_prompt", "version": v,
                                                                      "variables": {"tone": "calm"}}})
                  for v in ["²", "0", "-1", "1.5", "99999999999999999999999", 2**63 - 1, 2**64 - 1, 1.0, "٣"]]
    run([*posts(http, "/v1/prompts", [(c, {**b, "id": f"fz{i}"} if isinstance(b, dict) and "id" in b and
                                       b["id"] == "fuzz_prompt" else b) for i, (c, b) in enumerate(bodies())]),
         *posts(http, "/v1/prompts/fuzz_prompt/versions", version_bodies),
         *posts(http, "/v1/prompts/nope/versions", [("unknown prompt", {"instructions": "x"})]),
         *posts(http, "/v1/responses", variables)])


# -- GET / DELETE / cancel with junk ids and query parameters ----------------

JUNK_IDS = ["x", "resp_nope", "%00", "%FF", "a" * 5000, "..", "%2F..%2F", "%20", "null", "'; DROP TABLE responses;--",
            "\u00e9", "%F0%9F%98%80"]
JUNK_QUERIES: list[dict[str, str]] = [
    {"limit": "-1"}, {"limit": "0"}, {"limit": "101"}, {"limit": "x"}, {"limit": "²"}, {"limit": "٣"},
    {"limit": "99999999999999999999999"}, {"limit": ""}, {"order": "x"}, {"order": ""}, {"after": "unknown"},
    {"before": "unknown"}, {"after": ""}, {"after": "\u0000"}, {"starting_after": "abc"},
    {"stream": "true", "starting_after": "abc"}, {"stream": "true", "starting_after": "²"},
    {"stream": "true", "starting_after": "99999999999999999999999"}, {"stream": "true", "starting_after": "-5"},
    {"stream": "true", "starting_after": "--1"}, {"stream": "junk"}, {"include": "junk"}, {"include[]": "x"},
    {"version": "x"}, {"version": "0"}, {"version": "²"}, {"version": "99999999999999999999999"},
    {"version": "٣"},
]


def test_reads_deletes_and_cancels_with_junk(http: httpx.Client) -> None:
    rid = http.post("/v1/responses", json=BASE).json()["id"]
    bg = http.post("/v1/responses", json={**BASE, "background": True}).json()["id"]
    cid = http.post("/v1/conversations", json={"items": [{"role": "user", "content": "x"}]}).json()["id"]
    http.post("/v1/prompts", json={"id": "fuzz_get", "instructions": "x"})
    real = {"rid": rid, "bg": bg, "cid": cid, "pid": "fuzz_get"}
    gets = ["/v1/responses/{rid}", "/v1/responses/{bg}", "/v1/responses/{rid}/input_items", "/v1/conversations/{cid}",
            "/v1/conversations/{cid}/items", "/v1/conversations/{cid}/items/{x}", "/v1/prompts",
            "/v1/prompts/{pid}", "/v1/prompts/{pid}/versions", "/v1/models", "/v1/models/{x}"]
    cases: list[tuple[str, Callable[[], httpx.Response]]] = []
    for template in gets:
        for query in JUNK_QUERIES:
            url = template.format(**real, x="x")
            cases.append((f"GET {url} {query}", lambda url=url, query=query: http.get(url, params=query)))
    for junk in JUNK_IDS:
        ids = dict.fromkeys(real, junk)
        for template in [*gets, "/v1/responses/{rid}/cancel", "/v1/conversations/{cid}/items/{x}"]:
            url = template.format(**ids, x=junk)
            cases.append((f"GET {url[:80]}", lambda url=url: http.get(url)))
            cases.append((f"DELETE {url[:80]}", lambda url=url: http.delete(url)))
            cases.append((f"POST {url[:80]}", lambda url=url: http.post(url, json={})))
    for path in (f"/v1/responses/{rid}/cancel", f"/v1/responses/{bg}/cancel"):
        cases.append((f"POST {path}", lambda path=path: http.post(path)))
        cases.append((f"POST {path} junk body", lambda path=path: http.post(path, content=b"\xff")))
    run(cases)


# -- malformed HTTP ----------------------------------------------------------

MALFORMED: list[tuple[str, bytes, dict[str, Any]]] = [
    ("non-UTF-8", b'{"model": "test/echo", "input": "\xff\xfe"}', {}),
    ("raw 0xff", b"\xff\xfe\xfd", {}),
    ("duplicate keys", b'{"model": "test/echo", "input": "a", "input": 5}', {}),
    ("duplicate keys ok", b'{"model": "test/echo", "input": 5, "input": "a"}', {}),
    ("deep array", b"[" * 10_000 + b"]" * 10_000, {}),
    ("deep object", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, {}),
    ("deep input", b'{"model": "test/echo", "input": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", {}),
    ("deep metadata", b'{"model": "test/echo", "input": "x", "metadata": ' + b'{"a":' * 500 + b"1" + b"}" * 500
     + b"}", {}),
    ("NaN", b'{"model": "test/echo", "input": "x", "temperature": NaN}', {}),
    ("Infinity", b'{"model": "test/echo", "input": "x", "temperature": Infinity}', {}),
    ("big int", b'{"model": "test/echo", "input": "x", "max_output_tokens": 1' + b"0" * 400 + b"}", {}),
    ("big float", b'{"model": "test/echo", "input": "x", "temperature": 1e999}', {}),
    ("lone surrogate", b'{"model": "test/echo", "input": "\\ud800"}', {}),
    ("BOM", b'\xef\xbb\xbf{"model": "test/echo", "input": "x"}', {}),
    ("trailing garbage", b'{"model": "test/echo", "input": "x"} x', {}),
    ("text/plain", b'{"model": "test/echo", "input": "x"}', {"content-type": "text/plain"}),
    ("form", b"model=test%2Fecho&input=x", {"content-type": "application/x-www-form-urlencoded"}),
    ("multipart", b"--b\r\n\r\nx\r\n--b--", {"content-type": "multipart/form-data; boundary=b"}),
    ("gzip claimed", b'{"model": "test/echo", "input": "x"}', {"content-encoding": "gzip"}),
    ("bad content-length", b'{"model": "test/echo", "input": "x"}', {"content-length": "abc"}),
    ("bad idempotency key", b'{"model": "test/echo", "input": "x"}', {"idempotency-key": b"\xff" * 300}),
    ("empty", b"", {}),
    ("whitespace", b"   ", {}),
    ("null", b"null", {}),
    ("string", b'"x"', {}),
]
POST_PATHS = ["/v1/responses", "/v1/responses/compact", "/v1/responses/input_tokens", "/v1/conversations",
              "/v1/prompts"]


def test_malformed_bodies(server: str) -> None:
    cases: list[tuple[str, Callable[[], httpx.Response]]] = []
    with httpx.Client(base_url=server, headers={"authorization": "Bearer test-key"}, timeout=30) as http:
        cid = http.post("/v1/conversations", json={}).json()["id"]
        for path in [*POST_PATHS, f"/v1/conversations/{cid}", f"/v1/conversations/{cid}/items"]:
            for name, raw, headers in MALFORMED:
                if name == "bad content-length":
                    continue  # h11 refuses it on the client side already
                cases.append((f"POST {path} {name}",
                              lambda path=path, raw=raw, headers=headers: http.post(path, content=raw,
                                                                                   headers=headers)))
        run(cases)


def test_hostile_headers(server: str) -> None:
    """Keys configured: odd Authorization / x-api-key values are 401s, not crashes."""
    app = create_app(load_settings(None, database_url="sqlite:///:memory:", default_model="test/echo",
                                   api_keys=["sk-right"]))
    values = ["Bearer \u00ff\u00fe", "Bearer", "bearer sk-right\u00e9", "Basic xyz", "\u00ff",
              "Bearer " + "k" * 10_000, "Bearer sk-right sk-right"]
    with serve_in_thread(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=30) as http:
        cases: list[tuple[str, Callable[[], httpx.Response]]] = []
        for value in values:
            for header in ("authorization", "x-api-key"):
                cases.append((f"{header}: {value[:20]!r}", lambda h=header, v=value: http.post(
                    "/v1/responses", json=BASE, headers={h: v.encode("latin-1")})))  # type: ignore[dict-item]
                cases.append((f"GET {header}: {value[:20]!r}", lambda h=header, v=value: http.get(
                    "/v1/responses/x", headers={h: v.encode("latin-1")})))  # type: ignore[dict-item]
        run(cases)
        ws_url = url.replace("http://", "ws://") + "/v1/responses"
        for value in values:
            if len(value) > 8000:
                continue  # uvicorn's websockets handshake never answers a header line past its 8 KiB limit
            try:
                with connect(ws_url, additional_headers={"Authorization": value}, open_timeout=5) as conn:
                    conn.recv(timeout=1)
            except Exception as exc:  # the handshake is refused: an HTTP status or a close
                assert "500" not in str(exc), f"websocket with Authorization {value[:20]!r}: {exc}"


# -- WebSocket mode ----------------------------------------------------------

def _frames() -> Iterator[tuple[str, str | bytes]]:
    yield "non-JSON", "{not json"
    yield "binary non-UTF-8", b"\xff\xfe\xfd"
    yield "binary JSON", json.dumps({"type": "response.create", "model": 5}).encode()
    yield "empty", ""
    yield "array", "[1, 2]"
    yield "string", '"response.create"'
    yield "null", "null"
    yield "deep", "[" * 10_000 + "]" * 10_000
    yield "huge non-JSON", "x" * 2_000_000
    yield "huge metadata", json.dumps({"type": "response.create", **BASE, "metadata": {"k": "v" * 2_000_000}})
    yield "no type", json.dumps(BASE)
    for value in HOSTILE:
        yield f"type={short(value)}", json.dumps({**BASE, "type": value})
    for key in ("stream", "stream_options", "background"):
        yield key, json.dumps({"type": "response.create", **BASE, key: True})
    for name in CreateResponse.model_fields:
        if name in ("stream", "stream_options", "background"):
            continue
        for value in (None, 5, "x", [], {}, [{}], {"type": 5}, NESTED):
            yield f"{name}={short(value)}", json.dumps({"type": "response.create", **BASE, name: value})


def _turn(conn: ClientConnection, frame: str | bytes) -> list[dict[str, Any]]:
    conn.send(frame)
    frames = []
    while True:
        ev = json.loads(conn.recv(timeout=10))
        frames.append(ev)
        if ev["type"] in ("error", "response.completed", "response.incomplete", "response.failed"):
            return frames


def test_websocket_junk_frames_get_an_error_frame_and_the_socket_stays_open(server: str) -> None:
    found = []
    url = server.replace("http://", "ws://") + "/v1/responses"
    with connect(url, additional_headers={"Authorization": "Bearer test-key"}, max_size=2**24) as conn:
        for case, frame in _frames():
            frames = _turn(conn, frame)
            last = frames[-1]
            text = json.dumps(frames)
            if "Traceback" in text or "server_error" in text or last.get("status", 0) >= 500:
                found.append(f"{case}: {text[:200]}")
            elif last["type"] == "error" and not (isinstance(last.get("error"), dict) and last["error"].get("message")
                                                  and 400 <= last.get("status", 0) < 500):
                found.append(f"{case}: error frame not in shape {text[:200]}")
        # Still open and still serving after all that.
        assert _turn(conn, json.dumps({"type": "response.create", **BASE}))[-1]["type"] == "response.completed"
    assert not found, f"{len(found)} bad frames:\n" + "\n".join(found[:40])


# -- property-based: arbitrary JSON anywhere in the body ----------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
_KEYS = st.sampled_from(sorted(CreateResponse.model_fields))
_ITEM_TYPES = st.sampled_from(sorted({it.get("type", "message") for items in ITEMS.values() for it in items}))
_ITEM = st.fixed_dictionaries({"type": _ITEM_TYPES}, optional={
    k: _JSON for k in ("role", "content", "id", "call_id", "name", "arguments", "output", "status", "summary",
                       "encrypted_content", "approve", "approval_request_id", "server_label", "tools", "error")})


@pytest.fixture(scope="module")
def shared_http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, headers={"authorization": "Bearer test-key"}, timeout=30) as c:
        yield c


@settings(max_examples=40, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(params=st.dictionaries(_KEYS, _JSON, max_size=4), items=st.lists(_ITEM, max_size=3))
def test_random_json_bodies(shared_http: httpx.Client, params: dict[str, Any], items: list[Any]) -> None:
    for path in ("/v1/responses", "/v1/responses/input_tokens"):
        body = {**BASE, **params, "input": items or params.get("input", "hi")}
        body.pop("background", None)  # background turns outlive the example; covered above
        bad = problem(shared_http.post(path, json=body), f"POST {path} {json.dumps(body)[:300]}")
        assert bad is None, bad


# -- what the fuzzing found: each now a 400 that names the param -------------

@pytest.mark.parametrize(("body", "param"), [
    ({"input": [{"role": "user", "content": "x", "id": 5}]}, "input[0].id"),
    ({"input": [{"role": "user", "content": "x", "status": ["done"]}]}, "input[0].status"),
    ({"input": [{"type": "reasoning", "id": {"a": 1}, "summary": []}]}, "input[0].id"),
    ({"input": [{"type": "reasoning", "summary": [1]}]}, "input[0].summary[0]"),
    ({"input": [{"type": "reasoning", "summary": [], "content": True}]}, "input[0].content"),
    ({"input": [{"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": 5}]}]},
     "input[0].content[0].text"),
    ({"input": [{"type": "compaction", "id": 2**63, "encrypted_content": "x"}]}, "input[0].id"),
    ({"tools": [FUNCTION], "tool_choice": {"type": "function", "name": ["f"]}}, "tool_choice.name"),
    ({"tools": [FUNCTION], "tool_choice": {"type": "allowed_tools", "tools": [{"name": {}}]}}, "tool_choice.tools[0]"),
    ({"tools": [{**FUNCTION, "parameters": {"$ref": "#/nowhere"}}]}, "tools[0].parameters"),
    ({"tools": [{**FUNCTION, "parameters": {"$ref": "#"}}]}, "tools[0].parameters"),
    ({"text": {"format": {"type": "json_schema", "name": "n", "strict": True, "schema": {"$ref": "#/x"}}}},
     "text.format.schema"),
    ({"tools": [{**MCP_TOOL, "server_url": "http://[::1"}]}, "tools[0].server_url"),
    ({"tools": [{**MCP_TOOL, "server_url": "http://x:99999/"}]}, "tools[0].server_url"),
    ({"mcp_servers": "http://x:abc/"}, "mcp_servers"),
    ({"tools": [{**MCP_TOOL, "headers": {"k": "v\r\nX-Injected: 1"}}]}, "tools[0].headers.k"),
    ({"tools": [{**MCP_TOOL, "authorization": "\u00e9"}]}, "tools[0].authorization"),
    ({"mcp_servers": "https://example.invalid/mcp", "credentials": {"connection_name": "example.invalid",
                                                                    "values": {"token": "\u00e9"}}},
     "credentials.values"),
    ({"prompt": {"id": "p", "version": "²"}}, "prompt.version"),
    ({"prompt": {"id": "p", "version": 2**63}}, "prompt.version"),
    ({"text": {"junk": 1}}, "text.junk"),
    ({"text": {"verbosity": "loud"}}, "text.verbosity"),
    ({"text": {"format": {"type": "text", "name": "n"}}}, "text.format.name"),
    ({"text": {"format": {"type": "json_schema", "name": "n", "schema": {}, "strict": "yes"}}}, "text.format.strict"),
    ({"reasoning": {"junk": 1}}, "reasoning.junk"),
])
def test_found_cases_name_the_param(http: httpx.Client, body: dict[str, Any], param: str) -> None:
    r = http.post("/v1/responses", json={**BASE, **body})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param


@pytest.mark.parametrize(("path", "query", "param"), [
    ("/v1/prompts", {"limit": "²"}, "limit"),
    ("/v1/prompts/p", {"version": "²"}, "version"),
    ("/v1/prompts/p", {"version": "99999999999999999999999"}, "version"),
    ("/v1/responses/{rid}", {"stream": "true", "starting_after": "--1"}, "starting_after"),
    ("/v1/responses/{rid}", {"stream": "true", "starting_after": "²"}, "starting_after"),
])
def test_found_query_cases_name_the_param(http: httpx.Client, path: str, query: dict[str, str], param: str) -> None:
    rid = http.post("/v1/responses", json=BASE).json()["id"]
    r = http.get(path.format(rid=rid), params=query)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
