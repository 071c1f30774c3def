"""The reference client's own agent loop, ``dedalus_labs.DedalusRunner``
(0.3.0), against a live Responsa: it only speaks ``chat.completions``.

A Python function runs in the runner's local loop; a real MCP server (the
bearer-token one from tests/tools) is called server-side with the
request's credentials; the test model scripts the calls. The runner sees
the server's ``mcp_tool_results`` (on the completion, and on the chunks
when streaming)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from dedalus_labs import Dedalus, DedalusRunner
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.helpers import validate_response
from tests.tools.support import TOKEN

pytestmark = pytest.mark.slow

WEATHER_CALLS: list[str] = []


def get_weather(city: str) -> str:
    """The weather of a city."""
    WEATHER_CALLS.append(city)
    return f"sunny in {city}"


def dedalus(base_url: str) -> Dedalus:
    # as_base_url="" makes the client send credentials as plain JSON (not
    # encrypted for Dedalus' own authorization server).
    return Dedalus(api_key="test-key", base_url=base_url, as_base_url="", max_retries=0)


def creds(mcp_url: str) -> list[dict[str, Any]]:
    return [{"connection_name": urlsplit(mcp_url).netloc, "values": {"token": TOKEN}}]


def test_runner_mcp_server_side_with_credentials(server: str, mcp_private: str) -> None:
    runner = DedalusRunner(dedalus(server))
    result = runner.run(input='[[call:add {"a": 40, "b": 2}]]', model="test/echo", mcp_servers=[mcp_private],
                        credentials=creds(mcp_private), max_steps=3)
    assert result.final_output == "The add tool returned: 42"
    assert result.steps_used == 1 and result.tools_called == []
    [mcp] = result.mcp_results
    assert (mcp.server_name, mcp.tool_name, mcp.arguments, mcp.result, mcp.is_error) == \
        (urlsplit(mcp_private).netloc, "add", {"a": 40, "b": 2}, "42", False)


def test_runner_local_tool_and_model_list(server: str) -> None:
    WEATHER_CALLS.clear()
    runner = DedalusRunner(dedalus(server))
    # The first model of the list fails (scripted); the list is a fallback chain.
    result = runner.run(input="[[error-model:test/primary]] weather in Oslo?", tools=[get_weather],
                        model=["test/primary", "test/backup"], max_steps=4)
    assert WEATHER_CALLS == ["test"]
    assert result.tools_called == ["get_weather"]
    assert result.final_output == "The get_weather tool returned: sunny in test"
    assert result.steps_used == 2


def test_runner_max_steps_stops_the_local_loop(server: str) -> None:
    WEATHER_CALLS.clear()
    result = DedalusRunner(dedalus(server)).run(input="weather?", tools=[get_weather], model="test/echo",
                                                max_steps=1)
    assert result.steps_used == 1 and WEATHER_CALLS == ["test"] and result.final_output == ""


def test_runner_streaming_local_and_mcp_tools(server: str, mcp_private: str) -> None:
    """Step 1: the model calls the MCP ``add`` (run by the server) and the
    local ``get_weather`` (returned to the runner) in parallel; step 2
    answers from the local tool's result. The runner's stream carries both
    steps' chunks (validated as OpenAI chunks); the first step's last chunks
    carry the MCP result."""
    WEATHER_CALLS.clear()
    runner = DedalusRunner(dedalus(server))
    # A model list: its first model fails (scripted) on every step, the second answers.
    stream = runner.run(input='[[error-model:test/primary]] [[call:add {"a": 1, "b": 2}]] '
                              '[[call:get_weather {"city": "Oslo"}]]',
                        tools=[get_weather], model=["test/primary", "test/backup"], mcp_servers=[mcp_private],
                        credentials=creds(mcp_private), max_steps=4, stream=True,
                        stream_options={"include_usage": True})
    seen_mcp: list[dict[str, Any]] = []
    text = ""
    finishes = []
    for chunk in stream:
        ChatCompletionChunk.model_validate(chunk.model_dump(exclude_unset=True), strict=True)
        extra = chunk.__pydantic_extra__ or {}
        seen_mcp += extra.get("mcp_tool_results") or []
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            if chunk.choices[0].finish_reason:
                finishes.append(chunk.choices[0].finish_reason)
    assert WEATHER_CALLS == ["Oslo"]
    assert finishes == ["tool_calls", "stop"]
    assert text == "The get_weather tool returned: sunny in Oslo"
    assert {(r["tool_name"], r["result"], r["is_error"]) for r in seen_mcp} == {("add", "3", False)}


def test_dedalus_completion_fields_and_refusals(server: str, mcp_private: str) -> None:
    """The raw completion carries the runner's fields and validates as an
    OpenAI ``ChatCompletion``; what the engine cannot honour is a 400."""
    with httpx.Client(base_url=server, headers={"x-api-key": "test-key"}) as http:
        r = http.post("/v1/chat/completions", json={
            "model": {"model": "test/echo", "settings": {"seed": 1}},
            "messages": [{"role": "user", "content": '[[call:shout {"text": "hi"}]]'}],
            "mcp_servers": [mcp_private], "credentials": creds(mcp_private), "tools": None,
            "automatic_tool_execution": True})
        assert r.status_code == 200, r.text
        body = r.json()
        ChatCompletion.model_validate(body)
        assert body["tools_executed"] == ["shout"] and body["mcp_server_errors"] == {}
        assert body["choices"][0]["message"]["content"] == "The shout tool returned: HI"
        for extra, param in (({"handoff_config": {"x": 1}}, "handoff_config"),
                             ({"automatic_tool_execution": False, "mcp_servers": [mcp_private]},
                              "automatic_tool_execution"),
                             ({"guardrails": [{}]}, "guardrails")):
            bad = http.post("/v1/chat/completions", json={"model": "test/echo",
                                                          "messages": [{"role": "user", "content": "x"}], **extra})
            assert bad.status_code == 400 and bad.json()["error"]["param"] == param, bad.text


def test_max_turns_bounds_the_server_side_loop(server: str, mcp_private: str) -> None:
    body = {"messages": [{"role": "user", "content": '[[call:add {"a": 2, "b": 2}]]'}], "model": "test/echo",
            "mcp_servers": [mcp_private], "credentials": creds(mcp_private)}
    with httpx.Client(base_url=server, headers={"authorization": "Bearer test-key"}) as http:
        cut = http.post("/v1/chat/completions", json={**body, "max_turns": 1}).json()
        assert cut["choices"][0]["finish_reason"] == "length" and cut["choices"][0]["message"]["content"] is None
        assert [r["result"] for r in cut["mcp_tool_results"]] == ["4"]
        full = http.post("/v1/chat/completions", json={**body, "max_turns": 2}).json()
        assert full["choices"][0]["message"]["content"] == "The add tool returned: 4"


def test_stored_chat_turn_with_server_side_mcp_is_a_response(server: str, mcp_private: str) -> None:
    """One engine: the MCP call the chat door ran server-side is an ``mcp_call``
    item of the stored Response, next to the answer it led to."""
    with httpx.Client(base_url=server, headers={"authorization": "Bearer test-key"}) as http:
        done = http.post("/v1/chat/completions", json={
            "model": "test/echo", "store": True, "mcp_servers": [mcp_private], "credentials": creds(mcp_private),
            "messages": [{"role": "user", "content": '[[call:add {"a": 20, "b": 22}]]'}]}).json()
        assert done["choices"][0]["message"]["content"] == "The add tool returned: 42"
        found = http.get(f"/v1/responses/{done['id']}").json()
    validate_response(found)
    kinds = [i["type"] for i in found["output"]]
    assert kinds == ["mcp_list_tools", "mcp_call", "message"], kinds
    call = found["output"][1]
    assert (call["name"], call["output"], call.get("error")) == ("add", "42", None)
