from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from responsa.config import ProviderConfig, Settings
from responsa.providers.anthropic import AnthropicProvider, build_body
from responsa.providers.base import (
    Finish,
    ModelEvent,
    ModelRequest,
    ProviderError,
    ReasoningDelta,
    ReasoningDone,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from responsa.providers.registry import Registry
from tests.fakes.anthropic import MODELS, SIGNATURE, FakeAnthropic
from tests.providers.support import collect, text_of

PNG = "data:image/png;base64,iVBORw0KGgo="
PDF = "data:application/pdf;base64,JVBERi0xLjQ="
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture
def fake(anthropic_fake_server: FakeAnthropic) -> FakeAnthropic:
    return anthropic_fake_server


def _cfg(url: str, **options: Any) -> ProviderConfig:
    return ProviderConfig(name="anthropic", kind="anthropic", base_url=url, api_key_env="RESPONSA_TEST_AK",
                          models=["configured-model"], options={"retry_backoff": 0.001, **options})


@pytest.fixture
async def provider(fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AnthropicProvider]:
    monkeypatch.setenv("RESPONSA_TEST_AK", "sk-ant-test")
    p = AnthropicProvider(_cfg(fake.url))
    yield p
    await p.aclose()


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def req(*items: dict[str, Any], **kw: Any) -> ModelRequest:
    return ModelRequest(model="claude-sonnet-4-5", items=list(items), **kw)


async def test_text_streaming(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    events = await collect(provider, req(user("hello there")))
    assert events == [TextDelta("Echo: "), TextDelta("hello there"), Usage(12, 7), Finish("stop")]
    assert fake.headers[-1]["x-api-key"] == "sk-ant-test"
    assert fake.headers[-1]["anthropic-version"] == "2023-06-01"
    assert fake.last == {"model": "claude-sonnet-4-5", "max_tokens": 4096, "stream": True,
                         "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}]}


async def test_system_instructions_and_sampling(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    await collect(provider, req(
        {"role": "system", "content": "Be terse."},
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Use French."}]},
        user("hi"),
        instructions="You are Responsa.", temperature=0.2, top_p=0.9, max_output_tokens=100, user="u-1"))
    body = fake.last
    assert body["system"] == "You are Responsa.\n\nBe terse.\n\nUse French."
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.9, 100)
    assert body["metadata"] == {"user_id": "u-1"}


async def test_alternation_merge_and_media(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    await collect(provider, req(
        {"role": "user", "content": "first"},
        {"type": "message", "role": "user", "content": [
            {"type": "input_image", "image_url": PNG},
            {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
            {"type": "input_file", "filename": "a.pdf", "file_data": PDF}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "more"}]},
        user("second")))
    assert fake.last["messages"] == [
        {"role": "user", "content": [
            {"type": "text", "text": "first"},
            {"type": "image",
             "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "document",
             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0xLjQ="}}]},
        {"role": "assistant", "content": [{"type": "text", "text": "ok"}, {"type": "text", "text": "more"}]},
        {"role": "user", "content": [{"type": "text", "text": "second"}]}]


async def test_tool_use_stream(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    events = await collect(provider, req(user("tool please"), tools=[WEATHER], parallel_tool_calls=False))
    assert events == [
        TextDelta("Let me check."),
        ToolCallStart(0, "toolu_01", "get_weather"),
        ToolCallDelta(0, '{"city": '),
        ToolCallDelta(0, '"Paris"}'),
        ToolCallStart(1, "toolu_02", "get_time"),
        ToolCallDelta(1, "{}"),
        Usage(12, 7),
        Finish("tool_calls"),
    ]
    assert fake.last["tools"] == [{"name": "get_weather", "description": "Weather for a city",
                                   "input_schema": WEATHER["parameters"]}]
    assert fake.last["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(("choice", "expected"), [
    ("required", {"type": "any"}),
    ("none", {"type": "none"}),
    ({"type": "function", "name": "get_weather"}, {"type": "tool", "name": "get_weather"}),
])
def test_tool_choice_mapping(choice: Any, expected: dict[str, Any]) -> None:
    assert build_body(req(user("x"), tools=[WEATHER], tool_choice=choice))["tool_choice"] == expected


async def test_function_call_output_round_trip(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    events = await collect(provider, req(
        user("tool please"),
        {"role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
        {"type": "function_call", "call_id": "toolu_01", "name": "get_weather",
         "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "toolu_02", "name": "get_time", "arguments": ""},
        {"type": "function_call_output", "call_id": "toolu_01", "output": "sunny"},
        {"type": "function_call_output", "call_id": "toolu_02", "output": "noon"},
        tools=[WEATHER]))
    assert fake.last["messages"][1:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_02", "content": "noon"}]}]
    assert text_of(events) == "Echo: tool_result sunny | noon"


async def test_thinking_and_round_trip(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    events = await collect(provider, req(user("think hard"), reasoning={"effort": "medium"}))
    assert events[:4] == [ReasoningDelta("Let me "), ReasoningDelta("think."),
                          ReasoningDone(encrypted_content=f"anthropic:{SIGNATURE}"), TextDelta("Done thinking.")]
    assert fake.last["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert fake.last["max_tokens"] > 4096

    state = f"anthropic:{SIGNATURE}"  # as the first turn emitted it
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": state,
                 "content": [{"type": "reasoning_text", "text": "Let me think."}]}
    answer = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Done."}]}
    await collect(provider, req(user("think hard"), reasoning, answer, user("again"),
                                reasoning={"effort": "low"}))
    assert fake.last["messages"][1] == {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Let me think.", "signature": SIGNATURE},
        {"type": "text", "text": "Done."}]}


async def test_redacted_thinking_still_yields_a_reasoning_item(provider: AnthropicProvider) -> None:
    events = await collect(provider, req(user("redacted please"), reasoning={"effort": "low"}))
    assert events[:3] == [ReasoningDelta(""), ReasoningDone(encrypted_content="anthropic:redacted:QUJD"),
                          TextDelta("ok")]


def test_foreign_reasoning_dropped_and_redacted_round_trip() -> None:
    thought = [{"type": "reasoning_text", "text": "from another model"}]
    body = build_body(req(
        user("x"),
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "from another model"}]},
        {"type": "reasoning", "summary": [], "content": thought, "encrypted_content": "openai:rs_9:gAAAenc"},
        {"type": "reasoning", "summary": [], "content": thought, "encrypted_content": SIGNATURE},  # untagged
        {"type": "reasoning", "summary": [], "encrypted_content": "anthropic:redacted:QUJD"},
        {"role": "assistant", "content": "y"}))
    assert body["messages"][1]["content"] == [{"type": "redacted_thinking", "data": "QUJD"},
                                              {"type": "text", "text": "y"}]


async def test_json_schema_emulation(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    events = await collect(provider, req(user("json please"), text_format={
        "type": "json_schema", "name": "answer", "schema": schema, "strict": True}))
    assert orjson.loads(text_of(events)) == {"answer": 42}
    assert not any(isinstance(e, ToolCallStart | ToolCallDelta) for e in events)
    assert events[-1] == Finish("stop")
    assert fake.last["tools"][0]["input_schema"] == schema
    assert fake.last["tool_choice"] == {"type": "tool", "name": "json_output",
                                        "disable_parallel_tool_use": True}


def test_json_object_with_user_tools_lets_model_call_them_first() -> None:
    body = build_body(req(user("x"), tools=[WEATHER], text_format={"type": "json_object"}))
    assert [t["name"] for t in body["tools"]] == ["get_weather", "json_output"]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_forced_tool_with_reasoning_is_rejected() -> None:
    with pytest.raises(ProviderError) as exc:
        build_body(req(user("x"), text_format={"type": "json_object"}, reasoning={"effort": "high"}))
    assert (exc.value.status, exc.value.param) == (400, "reasoning.effort")


async def test_max_tokens_is_length(provider: AnthropicProvider) -> None:
    events = await collect(provider, req(user("long story")))
    assert events[-2:] == [Usage(12, 5), Finish("length")]


async def test_usage_with_cache_tokens(provider: AnthropicProvider) -> None:
    events = await collect(provider, req(user("cache me")))
    assert Usage(input_tokens=130, output_tokens=5, cached_tokens=100) in events


async def test_overloaded_is_retried(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    fake.overloaded_failures, before = 2, len(fake.requests)
    events = await collect(provider, req(user("overloaded now")))
    assert text_of(events) == "Echo: overloaded now"
    assert len(fake.requests) - before == 3


async def test_overloaded_gives_up_after_retries(fake: FakeAnthropic) -> None:
    fake.overloaded_failures = 5
    p = AnthropicProvider(_cfg(fake.url, max_retries=1))
    try:
        with pytest.raises(ProviderError) as exc:
            await collect(p, req(user("overloaded now")))
    finally:
        await p.aclose()
    assert exc.value.status >= 500 and exc.value.retryable and exc.value.message == "Overloaded"


async def test_400_message_propagated(provider: AnthropicProvider, fake: FakeAnthropic) -> None:
    before = len(fake.requests)
    with pytest.raises(ProviderError) as exc:
        await collect(provider, req(user("bad request")))
    err = exc.value
    assert (err.status, err.type, err.message, err.retryable) == (
        400, "invalid_request_error", "messages.0: bad block", False)
    assert len(fake.requests) - before == 1


async def test_mid_stream_error(provider: AnthropicProvider) -> None:
    seen: list[ModelEvent] = []
    with pytest.raises(ProviderError) as exc:
        async for ev in provider.stream(req(user("crash soon"))):
            seen.append(ev)
    assert seen == [TextDelta("partial")]
    assert (exc.value.status, exc.value.message, exc.value.retryable) == (503, "Overloaded", True)


@pytest.mark.parametrize("param", ["presence_penalty", "frequency_penalty"])
async def test_penalties_rejected(provider: AnthropicProvider, fake: FakeAnthropic, param: str) -> None:
    before = len(fake.requests)
    with pytest.raises(ProviderError) as exc:
        await collect(provider, req(user("hi"), **{param: 0.5}))
    assert (exc.value.status, exc.value.type, exc.value.param, exc.value.retryable) == (
        400, "invalid_request_error", param, False)
    assert len(fake.requests) == before
    await collect(provider, req(user("hi"), **{param: 0.0}))


async def test_list_models(provider: AnthropicProvider) -> None:
    assert await provider.list_models() == [*MODELS, "configured-model"]
    offline = AnthropicProvider(_cfg("http://127.0.0.1:9"))
    try:
        assert await offline.list_models() == ["configured-model"]
    finally:
        await offline.aclose()


async def test_registered_and_capabilities(fake: FakeAnthropic) -> None:
    registry = Registry(Settings(providers={"anthropic": _cfg(fake.url)}))
    p, model = registry.resolve("anthropic/claude-sonnet-4-5")
    assert isinstance(p, AnthropicProvider) and model == "claude-sonnet-4-5"
    caps = p.capabilities(model)
    assert (caps.tools, caps.vision, caps.json_schema, caps.reasoning, caps.logprobs) == (
        True, True, True, True, False)
    await registry.aclose()
