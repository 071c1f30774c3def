"""``POST /v1/messages`` driven by the real ``anthropic`` SDK against the
test model: text, streaming with Anthropic's event names, tool_use /
tool_result round trip, count_tokens, errors in Anthropic's shape. Raw
bodies validated with the SDK's pydantic types (``Message.model_validate``)."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

pytestmark = pytest.mark.slow

WEATHER = {"name": "get_weather", "description": "Weather of a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def claude(server: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server, api_key="test-key", max_retries=0)


def create(claude: anthropic.Anthropic, **kwargs: object) -> Message:
    raw = claude.messages.with_raw_response.create(**kwargs)  # type: ignore[call-overload]
    Message.model_validate(raw.http_response.json())
    parsed: Message = raw.parse()
    return parsed


def test_text_system_and_usage(claude: anthropic.Anthropic) -> None:
    msg = create(claude, model="test/echo", max_tokens=64, system="be brief",
                 messages=[{"role": "user", "content": "Reply with exactly: bonjour"}])
    assert [b.type for b in msg.content] == ["text"] and msg.content[0].text == "bonjour"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn" and msg.usage.output_tokens == 1
    cut = create(claude, model="test/echo", max_tokens=2, messages=[{"role": "user",
                                                                     "content": "Reply with exactly: a b c d"}])
    assert cut.stop_reason == "max_tokens"


def test_stream_events(claude: anthropic.Anthropic, http: httpx.Client) -> None:
    with claude.messages.stream(model="test/echo", max_tokens=64,
                                messages=[{"role": "user", "content": "Reply with exactly: one two"}]) as s:
        types = [ev.type for ev in s]
        final = s.get_final_message()
    assert final.content[0].text == "one two"  # type: ignore[union-attr]
    assert types[0] == "message_start" and types[-1] == "message_stop" and "content_block_delta" in types
    raw = http.post("/v1/messages", json={"model": "test/echo", "max_tokens": 32, "stream": True,
                                          "messages": [{"role": "user", "content": "hi"}]}).text
    adapter: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)
    frames = [f for f in raw.split("\n\n") if f]
    for f in frames:
        event_line, data_line = f.split("\n")
        ev = adapter.validate_json(data_line.removeprefix("data: "))
        assert event_line == f"event: {ev.type}"


def test_tool_use_round_trip(claude: anthropic.Anthropic) -> None:
    first = create(claude, model="test/echo", max_tokens=64, tools=[WEATHER], tool_choice={"type": "any"},
                   messages=[{"role": "user", "content": "weather in Paris?"}])
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "test"}
    second = create(claude, model="test/echo", max_tokens=64, tools=[WEATHER], messages=[
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]}])
    assert second.content[0].text == "The get_weather tool returned: sunny"  # type: ignore[union-attr]


def test_count_tokens_and_errors(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model="test/echo", messages=[{"role": "user", "content": "hello there"}])
    assert counted.input_tokens > 0
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(model="test/echo", max_tokens=8, extra_body={"top_k": 3},
                               messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="nope/none", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model="test/echo", max_tokens=8, messages=[{"role": "user", "content": "[[error:429]]"}])


def test_models_list_fits_anthropic_model_info(claude: anthropic.Anthropic, server: str) -> None:
    from anthropic.types import ModelInfo

    raw = httpx.get(f"{server}/v1/models", headers={"anthropic-version": "2023-06-01"}).json()
    for m in raw["data"]:
        ModelInfo.model_validate(m)
    assert "test/echo" in {m.id for m in claude.models.list()}
