"""MCP in the OpenAI form (``tools: [{"type": "mcp", ...}]``) against real
MCP servers, driven with the ``openai`` client: listing, calls, approvals,
failures, limits, streaming events and secrets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.helpers import Serve, parse_sse, server_settings, validate_stream
from tests.tools.support import TOKEN, create

TWO_CALLS = '[[call:add {"a": 2, "b": 3}]] [[call:shout {"text": "hi"}]]'


def mcp_tool(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mcp", "server_label": "calc", "server_url": url, "require_approval": "never", **extra}


def stream(http: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    with http.stream("POST", "/v1/responses", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        events, done = parse_sse(r.read())
    assert done
    validate_stream(events)
    return events


def test_two_parallel_calls_stream_every_step_in_order(http: httpx.Client, mcp_http: str) -> None:
    events = stream(http, {"model": "test/echo", "input": TWO_CALLS, "tools": [mcp_tool(mcp_http)]})
    for ev in events:  # the trace quoted in the closing note of issue 5
        item = ev.get("item") or {}
        print(ev["sequence_number"], ev["type"], ev.get("output_index", ""), item.get("type", ""),
              item.get("name", ""), item.get("status", ""), ev.get("delta", ev.get("arguments", "")))
    types = [e["type"] for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[2:6] == ["response.output_item.added", "response.mcp_list_tools.in_progress",
                          "response.mcp_list_tools.completed", "response.output_item.done"]
    listed = events[5]["item"]
    assert listed["type"] == "mcp_list_tools" and {"add", "shout"} <= {t["name"] for t in listed["tools"]}
    add_tool = next(t for t in listed["tools"] if t["name"] == "add")
    assert add_tool["input_schema"]["required"] == ["a", "b"]
    for index in (1, 2):
        mine = [e["type"] for e in events if e.get("output_index") == index]
        assert mine[:2] == ["response.output_item.added", "response.mcp_call.in_progress"]
        assert mine[-3:] == ["response.mcp_call_arguments.done", "response.mcp_call.completed",
                             "response.output_item.done"]
        assert "response.mcp_call_arguments.delta" in mine
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert [(o["type"], o.get("name"), o.get("output")) for o in final["output"]] == [
        ("mcp_list_tools", None, None), ("mcp_call", "add", "5"), ("mcp_call", "shout", "HI"),
        ("message", None, None)]
    assert final["output"][-1]["content"][0]["text"] == "The shout tool returned: HI"
    assert final["tools_executed"] == ["add", "shout"]


def test_openai_sdk_parses_the_mcp_stream(client: OpenAI, mcp_sse: str) -> None:
    with client.responses.stream(model="test/echo", input=TWO_CALLS, tools=[mcp_tool(mcp_sse)]) as s:
        seen = [type(ev).__name__ for ev in s]
        final = s.get_final_response()
    for name in ("ResponseMcpListToolsInProgressEvent", "ResponseMcpListToolsCompletedEvent",
                 "ResponseMcpCallInProgressEvent", "ResponseMcpCallArgumentsDeltaEvent",
                 "ResponseMcpCallArgumentsDoneEvent", "ResponseMcpCallCompletedEvent"):
        assert name in seen
    assert [o.type for o in final.output] == ["mcp_list_tools", "mcp_call", "mcp_call", "message"]
    assert [type(o).__name__ for o in final.output][:3] == ["McpListTools", "McpCall", "McpCall"]
    assert final.output_text == "The shout tool returned: HI"


def test_calls_run_in_parallel_unless_disallowed(client: OpenAI, mcp_http: str) -> None:
    naps = '[[call:nap {"seconds": 0.6}]] [[call:nap {"seconds": 0.6}]]'
    started = time.monotonic()
    both = create(client, model="test/echo", input=naps, tools=[mcp_tool(mcp_http)])
    assert time.monotonic() - started < 1.1
    assert [o.type for o in both.output].count("mcp_call") == 2
    one = create(client, model="test/echo", input=naps, tools=[mcp_tool(mcp_http)], parallel_tool_calls=False)
    assert [o.type for o in one.output].count("mcp_call") == 1


def test_listing_is_cached_across_a_chain(client: OpenAI, mcp_http: str) -> None:
    first = create(client, model="test/echo", input='[[call:add {"a": 1, "b": 1}]]', tools=[mcp_tool(mcp_http)])
    assert first.output[0].type == "mcp_list_tools"
    second = create(client, model="test/echo", previous_response_id=first.id, input='[[call:add {"a": 4, "b": 4}]]',
                    tools=[mcp_tool(mcp_http)])
    assert [o.type for o in second.output] == ["mcp_call", "message"]
    assert second.output_text == "The add tool returned: 8"


def test_approval_approve_and_deny(client: OpenAI, mcp_http: str) -> None:
    tools = [mcp_tool(mcp_http, require_approval={"never": {"tool_names": ["shout"]}})]
    asked = create(client, model="test/echo", input='[[call:add {"a": 20, "b": 22}]]', tools=tools)
    assert asked.status == "completed"
    request = asked.output[-1]
    assert request.type == "mcp_approval_request" and request.name == "add"
    assert request.arguments == '{"a": 20, "b": 22}'
    approved = create(client, model="test/echo", previous_response_id=asked.id, tools=tools,
                      input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}])
    call = approved.output[0]
    assert call.type == "mcp_call" and call.approval_request_id == request.id and call.output == "42"
    assert approved.output_text == "The add tool returned: 42"
    denied = create(client, model="test/echo", previous_response_id=asked.id, tools=tools,
                    input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": False}])
    assert [o.type for o in denied.output] == ["message"]
    assert "denied" in denied.output_text
    not_asked = create(client, model="test/echo", input='[[call:shout {"text": "ok"}]]', tools=tools)
    assert [o.type for o in not_asked.output] == ["mcp_list_tools", "mcp_call", "message"]
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="test/echo", previous_response_id=asked.id, tools=tools,
                                input=[{"type": "mcp_approval_response", "approval_request_id": "mcpr_x",
                                        "approve": True}])
    assert err.value.body["code"] == "approval_request_not_found"  # type: ignore[index]


def test_default_is_to_ask_for_approval(client: OpenAI, mcp_http: str) -> None:
    tool = {"type": "mcp", "server_label": "calc", "server_url": mcp_http}
    out = create(client, model="test/echo", input='[[call:shout {"text": "x"}]]', tools=[tool])
    assert out.output[-1].type == "mcp_approval_request"


def test_tool_errors_and_huge_outputs_do_not_stop_the_loop(client: OpenAI, mcp_http: str) -> None:
    out = create(client, model="test/echo", input="[[call:explode {}]] [[call:huge {}]]", tools=[mcp_tool(mcp_http)])
    failed, big = out.output[1], out.output[2]
    assert failed.type == "mcp_call" and failed.status == "failed" and failed.output is None
    assert failed.error is not None and failed.error.type == "mcp_tool_execution_error"
    assert big.status == "completed" and big.output is not None
    assert len(big.output) < 101_000 and "output truncated" in big.output
    assert out.status == "completed" and out.output[-1].type == "message"


def test_max_tool_calls_stops_incomplete(client: OpenAI, mcp_http: str) -> None:
    out = create(client, model="test/echo", input=TWO_CALLS, tools=[mcp_tool(mcp_http)], max_tool_calls=1)
    assert out.status == "incomplete" and out.incomplete_details is not None
    assert out.incomplete_details.reason == "max_tool_calls"
    assert [(o.type, o.status) for o in out.output[1:]] == [("mcp_call", "completed"), ("mcp_call", "incomplete")]


def test_server_that_is_down_is_reported_not_500(client: OpenAI) -> None:
    dead = "http://127.0.0.1:9/mcp"
    out = create(client, model="test/echo", input="hello", tools=[mcp_tool(dead)])
    listed = out.output[0]
    assert listed.type == "mcp_list_tools" and listed.error and listed.tools == []
    assert out.status == "completed" and out.output_text == "hello"
    assert out.model_extra is not None and "calc" in out.model_extra["mcp_server_errors"]


def test_disallowed_tools_are_not_offered(http: httpx.Client, mcp_http: str) -> None:
    tool = mcp_tool(mcp_http, allowed_tools=["add"])
    r = http.post("/v1/responses", json={"model": "test/echo", "input": '[[call:shout {"text": "x"}]]',
                                         "tools": [tool]})
    assert r.status_code == 502 and "shout" in r.json()["error"]["message"]


def test_headers_are_redacted_and_never_stored(http: httpx.Client, mcp_private: str, db_file: Path) -> None:
    tool = mcp_tool(mcp_private, headers={"Authorization": f"Bearer {TOKEN}"})
    r = http.post("/v1/responses", json={"model": "test/echo", "input": '[[call:add {"a": 1, "b": 2}]]',
                                         "tools": [tool]})
    body = r.json()
    assert body["output"][1]["output"] == "3"
    assert body["tools"][0]["headers"] == {"Authorization": "[redacted]"}
    stored = http.get(f"/v1/responses/{body['id']}").text
    assert TOKEN not in stored and TOKEN not in r.text
    for path in (db_file, db_file.with_name(db_file.name + "-wal")):
        if path.exists():
            assert TOKEN.encode() not in path.read_bytes()
    wrong = mcp_tool(mcp_private, headers={"Authorization": "Bearer wrong"})
    denied = http.post("/v1/responses", json={"model": "test/echo", "input": "hi", "tools": [wrong]}).json()
    assert denied["output"][0]["error"] and "calc" in denied["mcp_server_errors"]


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory, serve_responsa: Serve) -> Iterator[str]:
    """A server with no private-address allow-list."""
    with serve_responsa(server_settings(tmp_path_factory.mktemp("strict"))) as url:
        yield url


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/mcp", "http://169.254.169.254/latest", "http://10.1.2.3/mcp",
                                 "http://[::1]:80/mcp", "file:///etc/passwd"])
def test_private_urls_are_refused(strict_server: str, url: str) -> None:
    r = httpx.post(f"{strict_server}/v1/responses", json={"model": "test/echo", "input": "hi",
                                                          "tools": [mcp_tool(url)]})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "tools[0].server_url"


def test_bad_mcp_tool_shapes_are_400(http: httpx.Client, mcp_http: str) -> None:
    for tool, param in [({"type": "mcp", "server_url": mcp_http}, "tools[0].server_label"),
                        (mcp_tool(mcp_http, require_approval="sometimes"), "tools[0].require_approval"),
                        (mcp_tool(mcp_http, connector_id="connector_gmail"), "tools[0].connector_id"),
                        (mcp_tool(mcp_http, headers={"a": 1}), "tools[0].headers")]:
        r = http.post("/v1/responses", json={"model": "test/echo", "input": "hi", "tools": [tool]})
        assert r.status_code == 400 and r.json()["error"]["param"] == param, json.dumps(r.json())


def test_stored_mcp_response_replays_as_a_stream(http: httpx.Client, mcp_http: str) -> None:
    live = stream(http, {"model": "test/echo", "input": TWO_CALLS, "tools": [mcp_tool(mcp_http)]})
    rid = live[-1]["response"]["id"]
    with http.stream("GET", f"/v1/responses/{rid}", params={"stream": "true"}) as r:
        replayed, _ = parse_sse(r.read())
    validate_stream(replayed)
    def per_item(events: list[dict[str, Any]], index: int) -> list[str]:
        return [e["type"] for e in events if e.get("output_index") == index and "delta" not in e["type"]]

    for index in (0, 1, 2):  # the list and both calls, each in the same order (live calls interleave)
        assert per_item(replayed, index) == per_item(live, index)
    assert replayed[-1]["response"]["output"] == live[-1]["response"]["output"]
