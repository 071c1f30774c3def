"""``GET /v1/responses/{id}?stream=true`` replays the live stream: for every
kind of turn the server makes, the replayed events are the live events
(same types, order, payloads and sequence numbers), and ``starting_after=N``
resumes after the same event in both. Only ``obfuscation`` (a per-request
option of the live stream) is not replayed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import parse_sse, serve_in_thread, validate_event, validate_stream
from tests.tools.support import make_server

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                          "required": ["location"]}}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
ENCRYPTED = ["reasoning.encrypted_content"]


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with serve_in_thread(make_server("calc").streamable_http_app(), lifespan="on") as url:
        yield f"{url}/mcp"


def _sse(r: httpx.Response, *, whole: bool = True) -> list[dict[str, Any]]:
    assert r.status_code == 200, r.text
    events, done = parse_sse(r.content)
    assert done
    if whole:
        validate_stream(events)
    else:
        for ev in events:
            validate_event(ev)
    return events


def live_then_replay(http: httpx.Client, include: list[str] | None = None,
                     **body: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    live = _sse(http.post("/v1/responses", json={"model": "test/echo", "stream": True, **body,
                                                   **({"include": include} if include else {})}))
    rid = live[0]["response"]["id"]
    params: list[tuple[str, str]] = [("stream", "true"), *(("include[]", i) for i in include or [])]
    replayed = _sse(http.get(f"/v1/responses/{rid}", params=params))
    assert [e["type"] for e in replayed] == [e["type"] for e in live]
    assert replayed == live
    for after in (0, len(live) // 2, len(live) - 2):
        resumed = _sse(http.get(f"/v1/responses/{rid}", params=[*params, ("starting_after", str(after))]),
                       whole=False)
        assert resumed == live[after + 1:]
    return live, replayed


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_text(http: httpx.Client) -> None:
    live, _ = live_then_replay(http, input="[[long:12]]")
    assert types(live).count("response.output_text.delta") == 12


def test_logprobs(http: httpx.Client) -> None:
    live, _ = live_then_replay(http, input="[[long:6]]", top_logprobs=2, include=["message.output_text.logprobs"])
    assert all(e["logprobs"] for e in live if e["type"] == "response.output_text.delta")


def test_reasoning_with_summary_and_encrypted_content(http: httpx.Client) -> None:
    live, _ = live_then_replay(http, input="[[summary:first I think about it]] hello", include=ENCRYPTED)
    assert "response.reasoning_summary_text.delta" in types(live)
    assert "response.reasoning_summary_part.done" in types(live)
    assert live[-1]["response"]["output"][0]["encrypted_content"].startswith("test:")
    live, _ = live_then_replay(http, input="[[reasoning:think hard]] hello")
    assert "response.reasoning.delta" in types(live)
    assert "encrypted_content" not in live[-1]["response"]["output"][0]


def test_function_calls_single_and_parallel(http: httpx.Client) -> None:
    live, _ = live_then_replay(http, input="Weather in Paris?", tools=[WEATHER])
    assert "response.function_call_arguments.done" in types(live)
    live, _ = live_then_replay(http, input='[[call:get_weather {"location": "Paris"}]] [[call:get_time {}]]',
                               tools=[WEATHER, TIME])
    calls = [e["item"] for e in live if e["type"] == "response.output_item.done"]
    assert [c["name"] for c in calls] == ["get_weather", "get_time"]
    # Each item's events are contiguous: the second call is added after the first is done.
    added = [i for i, e in enumerate(live) if e["type"] == "response.output_item.added"]
    done = [i for i, e in enumerate(live) if e["type"] == "response.output_item.done"]
    assert done[0] < added[1]


def test_mcp_calls_with_approvals(http: httpx.Client, mcp_url: str) -> None:
    tools = [{"type": "mcp", "server_label": "calc", "server_url": mcp_url,
              "require_approval": {"never": {"tool_names": ["shout", "nap"]}}}]
    asked, _ = live_then_replay(http, input='[[call:add {"a": 20, "b": 22}]]', tools=tools)
    request = asked[-1]["response"]["output"][-1]
    assert request["type"] == "mcp_approval_request"
    approved, _ = live_then_replay(http, previous_response_id=asked[-1]["response"]["id"], tools=tools,
                                   input=[{"type": "mcp_approval_response", "approval_request_id": request["id"],
                                           "approve": True}])
    assert "response.mcp_call.completed" in types(approved)
    parallel, _ = live_then_replay(http, tools=tools,
                                   input='[[call:nap {"seconds": 0.2}]] [[call:shout {"text": "hi"}]]')
    assert types(parallel).count("response.mcp_call.completed") == 2


def test_refusal(http: httpx.Client) -> None:
    live, _ = live_then_replay(http, input="[[refuse]] no way")
    assert "response.refusal.done" in types(live)


def test_failure_before_output_keeps_its_error_type(http: httpx.Client) -> None:
    live, _ = live_then_replay(http, input="[[error:429]]")
    assert types(live)[-2:] == ["error", "response.failed"]
    assert live[-2]["error"]["type"] == "rate_limit_error"
    live, _ = live_then_replay(http, input="[[error]]")
    assert live[-2]["error"]["type"] == "server_error"


def test_failure_mid_stream(http: httpx.Client) -> None:
    live, _ = live_then_replay(http, input="[[long:10]] [[fail-after:3]]")
    assert types(live).count("response.output_text.delta") == 3
    assert live[-1]["response"]["output"][0]["status"] == "incomplete"


def test_incomplete(http: httpx.Client) -> None:
    live, _ = live_then_replay(http, input="[[long:40]]", max_output_tokens=16)
    assert live[-1]["type"] == "response.incomplete"


def test_obfuscation_is_the_only_difference(http: httpx.Client) -> None:
    live = _sse(http.post("/v1/responses", json={"model": "test/echo", "stream": True, "input": "[[long:5]]",
                                                   "stream_options": {"include_obfuscation": True}}))
    replayed = _sse(http.get(f"/v1/responses/{live[0]['response']['id']}", params={"stream": "true"}))
    assert any("obfuscation" in e for e in live)
    assert replayed == [{k: v for k, v in e.items() if k != "obfuscation"} for e in live]


def test_idempotent_stream_retry_replays_the_same_events(http: httpx.Client) -> None:
    body = {"model": "test/echo", "stream": True, "input": "[[summary:hmm]] [[long:8]]"}
    headers = {"idempotency-key": "replay-retry-1"}
    first = _sse(http.post("/v1/responses", json=body, headers=headers))
    again = _sse(http.post("/v1/responses", json=body, headers=headers))
    assert again == first
