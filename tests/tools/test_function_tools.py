"""Client-executed function tools: tool_choice, strict schemas,
parallel_tool_calls and call ids, enforced by the engine even when the
provider does not comply (the test model's ``[[disobey]]``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI

from responsa.config import ProviderConfig
from tests.helpers import Serve, parse_sse, server_settings, validate_stream
from tests.tools.support import create

WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}


@pytest.fixture(scope="module")
def weak_server(tmp_path_factory: pytest.TempPathFactory, serve_responsa: Serve) -> Iterator[str]:
    """A server whose ``weak/...`` model cannot be forced to call a tool."""
    settings = server_settings(tmp_path_factory.mktemp("weak"))
    settings.providers["weak"] = ProviderConfig(name="weak", kind="test", options={"tool_choice_required": False})
    with serve_responsa(settings) as url:
        yield url


def test_forced_tool_choice_on_a_provider_that_cannot_force_is_a_400(weak_server: str) -> None:
    weak = OpenAI(base_url=f"{weak_server}/v1", api_key="k", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        weak.responses.create(model="weak/echo", input="hi", tools=[TIME], tool_choice="required")
    assert err.value.body["param"] == "tool_choice"  # type: ignore[index]
    ok = weak.responses.create(model="weak/echo", input="hi", tools=[TIME], tool_choice="auto")
    assert ok.output[0].type == "function_call"


def test_required_tool_choice_is_enforced_on_the_output(http: httpx.Client) -> None:
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "[[disobey]] just talk",
                                         "tools": [TIME], "tool_choice": "required"})
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "invalid_tool_call"
    assert "did not call a tool" in r.json()["error"]["message"]


def test_forced_function_must_be_the_one_called(http: httpx.Client) -> None:
    r = http.post("/v1/responses", json={
        "model": "test/echo", "input": "[[disobey]] [[call:get_time {}]]", "tools": [WEATHER, TIME],
        "tool_choice": {"type": "function", "name": "get_weather"}})
    assert r.status_code == 502 and "get_weather" in r.json()["error"]["message"]


def test_strict_arguments_are_validated(client: OpenAI, http: httpx.Client) -> None:
    ok = create(client, model="test/echo", input='[[call:get_weather {"city": "Oslo"}]]', tools=[WEATHER])
    assert ok.output[0].type == "function_call" and ok.output[0].arguments == '{"city": "Oslo"}'
    with http.stream("POST", "/v1/responses", json={
            "model": "test/echo", "input": '[[call:get_weather {"city": 5}]]', "tools": [WEATHER],
            "stream": True}) as r:
        events, done = parse_sse(r.read())
    validate_stream(events)
    assert done and events[-1]["type"] == "response.failed"
    error = next(e for e in events if e["type"] == "error")["error"]
    assert error["code"] == "invalid_tool_call" and "strict schema" in error["message"] and "city" in error["message"]


def test_invalid_strict_schema_is_a_400(http: httpx.Client) -> None:
    bad = {**WEATHER, "parameters": {"type": "object", "properties": {"city": {"type": 7}}}}
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "hi", "tools": [bad]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "tools[0].parameters"


def test_parallel_tool_calls_false_keeps_the_first_call(client: OpenAI) -> None:
    two = '[[call:get_time {}]] [[call:get_weather {"city": "Rome"}]]'
    both = client.responses.create(model="test/echo", input=two, tools=[WEATHER, TIME])
    assert [o.type for o in both.output] == ["function_call", "function_call"]
    one = create(client, model="test/echo", input="[[disobey]] " + two, tools=[WEATHER, TIME],
                 parallel_tool_calls=False)
    assert [(o.type, getattr(o, "name", None)) for o in one.output] == [("function_call", "get_time")]


def test_hallucinated_tool_fails_clearly(http: httpx.Client) -> None:
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "[[call:rm_rf {}]]", "tools": [TIME]})
    assert r.status_code == 502 and "rm_rf" in r.json()["error"]["message"]


def test_function_call_output_continues_and_unknown_call_id_is_a_400(client: OpenAI) -> None:
    first = client.responses.create(model="test/echo", input="[[call:get_time {}]]", tools=[TIME])
    call = first.output[0]
    assert call.type == "function_call"
    second = create(client, model="test/echo", previous_response_id=first.id, tools=[TIME],
                    input=[{"type": "function_call_output", "call_id": call.call_id, "output": "12:00"}])
    assert second.output_text == "The get_time tool returned: 12:00"
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="test/echo", previous_response_id=first.id, tools=[TIME],
                                input=[{"type": "function_call_output", "call_id": "call_nope", "output": "x"}])
    assert err.value.body["code"] == "tool_call_not_found"  # type: ignore[index]
    assert err.value.body["param"] == "input[0].call_id"  # type: ignore[index]
