"""``POST /v1/messages`` driven by the real ``anthropic`` SDK against the
test model: text, streaming with Anthropic's event names (``ping``
included), tool_use / tool_result round trip, ``tool_choice`` forms,
thinking blocks (shown, omitted, carried back), ``output_config``,
``system`` as blocks and as messages, count_tokens, and errors in
Anthropic's shape wherever they are raised (the route, the body reader,
the key gate, the router). Every body is validated strictly with the SDK's
types (``tests.door_checks``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Message

from tests.door_checks import message_frames, validate_anthropic_error, validate_message
from tests.helpers import Serve, server_settings

WEATHER = {"name": "get_weather", "description": "Weather of a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
T2 = {"name": "t2", "input_schema": {"type": "object"}}
USER = [{"role": "user", "content": "hi"}]


def post(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/v1/messages", json={"model": "test/echo", "max_tokens": 64, **body})


def test_text_system_and_usage(claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(model="test/echo", max_tokens=64, system="be brief",
                                 messages=[{"role": "user", "content": "Reply with exactly: bonjour"}])
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == "bonjour"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens == 1 and msg.usage.input_tokens > 0
    cut = claude.messages.create(model="test/echo", max_tokens=2,
                                 messages=[{"role": "user", "content": "Reply with exactly: a b c d"}])
    assert cut.stop_reason == "max_tokens" and cut.content[0].text == "a b "  # type: ignore[union-attr]


def test_system_as_blocks_and_as_a_message_reach_the_model(claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(model="test/echo", max_tokens=64,
                                 system=[{"type": "text", "text": "one", "cache_control": {"type": "ephemeral"}},
                                         {"type": "text", "text": "two"}],
                                 messages=[{"role": "user", "content": "[[instructions]]"}])
    assert msg.content[0].text == "one\n\ntwo"  # type: ignore[union-attr]
    hist = claude.messages.create(model="test/echo", max_tokens=64, messages=[
        {"role": "system", "content": "sys"}, {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"}, {"role": "user", "content": "[[history]]"}])
    assert hist.content[0].text == "system: sys | user: a | assistant: b | user:"  # type: ignore[union-attr]


def test_stream_events(claude: anthropic.Anthropic, http: httpx.Client) -> None:
    with claude.messages.stream(model="test/echo", max_tokens=64,
                                messages=[{"role": "user", "content": "Reply with exactly: one two"}]) as s:
        types = [ev.type for ev in s]
        final = s.get_final_message()
    assert final.content[0].text == "one two"  # type: ignore[union-attr]
    assert types[0] == "message_start" and types[-1] == "message_stop" and "content_block_delta" in types
    events = message_frames(post(http, stream=True, messages=[{"role": "user", "content": "a b"}]).content)
    assert [e["type"] for e in events] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                           "content_block_delta", "content_block_stop", "message_delta",
                                           "message_stop"]
    assert events[-2]["usage"]["output_tokens"] == 2 and events[-2]["delta"]["stop_reason"] == "end_turn"


def test_tool_use_round_trip_and_tool_choice_forms(claude: anthropic.Anthropic) -> None:
    first = claude.messages.create(model="test/echo", max_tokens=64, tools=[WEATHER],  # type: ignore[list-item]
                                   tool_choice={"type": "any"},
                                   messages=[{"role": "user", "content": "weather in Paris?"}])
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "test"}
    second = claude.messages.create(model="test/echo", max_tokens=64, tools=[WEATHER], messages=[  # type: ignore[list-item]
        {"role": "user", "content": "weather in Paris?"}, first.to_param(),
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}])
    assert second.content[0].text == "The get_weather tool returned: sunny"  # type: ignore[union-attr]
    failed = claude.messages.create(model="test/echo", max_tokens=64, tools=[WEATHER], messages=[  # type: ignore[list-item]
        {"role": "user", "content": "weather in Paris?"}, first.to_param(),
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "is_error": True,
                                      "content": [{"type": "text", "text": "no network"}]}]}])
    assert failed.content[0].text == "The get_weather tool returned: Error: no network"  # type: ignore[union-attr]

    both = '[[call:get_weather {"city": "Oslo"}]] [[call:t2 {}]]'
    parallel = claude.messages.create(model="test/echo", max_tokens=64, tools=[WEATHER, T2],  # type: ignore[list-item]
                                      messages=[{"role": "user", "content": both}])
    assert [b.name for b in parallel.content if b.type == "tool_use"] == ["get_weather", "t2"]
    single = claude.messages.create(model="test/echo", max_tokens=64, tools=[WEATHER, T2],  # type: ignore[list-item]
                                    tool_choice={"type": "auto", "disable_parallel_tool_use": True},
                                    messages=[{"role": "user", "content": both}])
    assert [b.name for b in single.content if b.type == "tool_use"] == ["get_weather"]
    forced = claude.messages.create(model="test/echo", max_tokens=64, tools=[WEATHER, T2],  # type: ignore[list-item]
                                    tool_choice={"type": "tool", "name": "t2"}, messages=USER)  # type: ignore[arg-type]
    assert [b.name for b in forced.content if b.type == "tool_use"] == ["t2"]
    none = claude.messages.create(model="test/echo", max_tokens=64, tools=[WEATHER],  # type: ignore[list-item]
                                  tool_choice={"type": "none"},
                                  messages=[{"role": "user", "content": "Reply with exactly: no"}])
    assert none.stop_reason == "end_turn" and [b.type for b in none.content] == ["text"]


def test_thinking_blocks_shown_streamed_omitted_and_carried_back(claude: anthropic.Anthropic,
                                                                 http: httpx.Client) -> None:
    ask = [{"role": "user", "content": "[[reasoning:step one]] Reply with exactly: done"}]
    msg = claude.messages.create(model="test/echo", max_tokens=2048, messages=ask,  # type: ignore[arg-type]
                                 thinking={"type": "enabled", "budget_tokens": 1024})
    assert [b.type for b in msg.content] == ["thinking", "text"]
    thought = msg.content[0]
    assert thought.thinking == "step one" and thought.signature == "test:step one"  # type: ignore[union-attr]
    with claude.messages.stream(model="test/echo", max_tokens=2048, messages=ask,  # type: ignore[arg-type]
                                thinking={"type": "adaptive"}) as s:
        deltas = [ev.delta.type for ev in s if ev.type == "content_block_delta"]
        streamed = s.get_final_message()
    assert deltas[0] == "thinking_delta" and "signature_delta" in deltas
    assert streamed.content[0].model_dump() == thought.model_dump()
    hidden = claude.messages.create(model="test/echo", max_tokens=2048, messages=ask,  # type: ignore[arg-type]
                                    thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"})
    assert hidden.content[0].thinking == "" and hidden.content[0].signature == "test:step one"  # type: ignore[union-attr]
    # The assistant turn goes back whole (its thinking too: see the Anthropic family test).
    again = claude.messages.create(model="test/echo", max_tokens=2048, thinking={"type": "adaptive"}, messages=[
        *ask, msg.to_param(), {"role": "user", "content": "[[history]]"}])  # type: ignore[list-item]
    assert again.content[-1].text.startswith("user: Reply with exactly: done | assistant: done")  # type: ignore[union-attr]
    # A model that does not reason: a 400 naming thinking, in Anthropic's shape.
    r = post(http, model="local/smollm2", max_tokens=2048, messages=USER,
             thinking={"type": "enabled", "budget_tokens": 1024})
    assert r.status_code == 400 and "thinking" in r.json()["error"]["message"], r.text
    validate_anthropic_error(r.json())


def test_output_config_format_is_structured_output(claude: anthropic.Anthropic) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"],
              "additionalProperties": False}
    msg = claude.messages.create(model="test/echo", max_tokens=64, messages=USER,  # type: ignore[arg-type]
                                 output_config={"format": {"type": "json_schema", "schema": schema}})
    assert json.loads(msg.content[0].text) == {"answer": 1}  # the test model's instance of the schema  # type: ignore[union-attr]


def test_images_and_documents_reach_the_model(claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(model="test/echo", max_tokens=64, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "a note"}}]}])
    assert msg.content[0].text == "what is this?a note"  # the test model echoes the texts joined  # type: ignore[union-attr]


def test_count_tokens(claude: anthropic.Anthropic) -> None:
    small = claude.messages.count_tokens(model="test/echo", messages=[{"role": "user", "content": "hello"}])
    big = claude.messages.count_tokens(model="test/echo", system="a longer system prompt than none",
                                       tools=[WEATHER],  # type: ignore[list-item]
                                       messages=[{"role": "user", "content": "hello there, how are you?"}])
    assert 0 < small.input_tokens < big.input_tokens


@pytest.mark.parametrize(("body", "status", "etype", "needle"), [
    ({"top_k": "3"}, 400, "invalid_request_error", "top_k"),
    ({"container": "c1"}, 400, "invalid_request_error", "container"),
    ({"frobnicate": 1}, 400, "invalid_request_error", "frobnicate"),
    ({"max_tokens": 0}, 400, "invalid_request_error", "max_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": 10}}, 400, "invalid_request_error", "budget_tokens"),
    ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, 400, "invalid_request_error", "max_tokens"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, 400, "invalid_request_error", "server"),
    ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, 400, "invalid_request_error",
     "messages.0.content.0.type"),
    ({"model": "local/smollm2", "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}]},
     400, "invalid_request_error", "messages: Model 'local/smollm2' does not accept image input"),
    ({"model": "nope/none"}, 404, "not_found_error", "nope/none"),
    ({"messages": [{"role": "user", "content": "[[error:429]]"}]}, 429, "rate_limit_error", "429"),
    ({"messages": [{"role": "user", "content": "[[error:500]]"}]}, 502, "api_error", "500"),
])
def test_errors_in_anthropic_shape(http: httpx.Client, body: dict[str, Any], status: int, etype: str,
                                   needle: str) -> None:
    for stream in (False, True):
        r = post(http, **{"messages": USER, "stream": stream, **body})
        assert r.status_code == status, r.text
        validate_anthropic_error(r.json())
        assert r.json()["error"]["type"] == etype and needle in r.json()["error"]["message"], r.text


def test_sdk_raises_typed_errors(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="nope/none", max_tokens=8, messages=USER)  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError) as info:
        claude.messages.create(model="test/echo", max_tokens=8,
                               messages=[{"role": "user", "content": "[[error:429]]"}])
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_mid_stream_failure_is_an_error_event(http: httpx.Client) -> None:
    r = post(http, stream=True, messages=[{"role": "user", "content": "[[fail-after:2]] one two three four"}])
    events = message_frames(r.content)
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == "api_error"


def test_errors_outside_the_route_are_anthropic_shaped(serve_responsa: Serve, tmp_path: Path) -> None:
    """The key gate (401), the body reader (invalid JSON, 413) and the router
    (405) answer the Messages routes in Anthropic's shape; other routes keep OpenAI's."""
    settings = server_settings(tmp_path, api_keys=["sk-right"], max_body_bytes=4096)
    with serve_responsa(settings) as url:
        bad_key = anthropic.Anthropic(base_url=url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as info:
            bad_key.messages.create(model="test/echo", max_tokens=8, messages=USER)  # type: ignore[arg-type]
        validate_anthropic_error(info.value.body)  # type: ignore[arg-type]
        with httpx.Client(base_url=url, headers={"x-api-key": "sk-right"}) as http:
            for r, status in ((http.post("/v1/messages", content=b"{nope"), 400),
                              (http.post("/v1/messages", json={"pad": "x" * 5000}), 413),
                              (http.get("/v1/messages"), 405),
                              (http.post("/v1/messages/count_tokens", json={"model": "test/echo"}), 400)):
                assert r.status_code == status, r.text
                validate_anthropic_error(r.json())
            openai_shaped = http.post("/v1/responses", content=b"{nope").json()
            assert set(openai_shaped["error"]) == {"message", "type", "param", "code"}


def test_messages_are_not_stored(claude: anthropic.Anthropic, http: httpx.Client) -> None:
    """The Messages API has no ``store``: a message is never a stored Response."""
    raw = claude.messages.with_raw_response.create(model="test/echo", max_tokens=8, messages=USER)  # type: ignore[arg-type]
    msg: Message = raw.parse()
    validate_message(raw.http_response.json())
    assert http.get(f"/v1/responses/{msg.id}").status_code == 404
