"""The embedded model, for real: SmolLM2-135M is small enough to run in CI.

Only the *shape* of constrained output is asserted; a 135M model's content
is not something a test can rely on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import jsonschema
import pytest

from responsa.config import ProviderConfig
from responsa.providers.base import (
    Finish,
    ModelRequest,
    Provider,
    ProviderError,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from responsa.providers.local import LocalProvider, chat_body
from responsa.providers.registry import _FACTORIES
from tests.providers.support import collect, text_of

QUESTION = [{"type": "message", "role": "user", "content": "What is the capital of France?"}]
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False},
}


@pytest.fixture(scope="module")
async def local() -> AsyncIterator[LocalProvider]:
    provider = LocalProvider(ProviderConfig(name="local", kind="local"))
    yield provider
    await provider.aclose()


def req(**kw: object) -> ModelRequest:
    return ModelRequest(**{"model": "smollm2", "items": QUESTION, "max_output_tokens": 48, **kw})  # type: ignore[arg-type]


def test_registered_and_conforms() -> None:
    provider = _FACTORIES["local"](ProviderConfig(name="local", kind="local"))
    assert isinstance(provider, Provider)
    assert provider.capabilities("smollm2").context_window == 8192
    assert not provider.capabilities("smollm2").vision


async def test_plain_answer(local: LocalProvider) -> None:
    events = await collect(local, req())
    assert text_of(events).strip()
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert isinstance(events[-1], Finish)
    assert events.index(usage) < len(events) - 1  # usage before finish


async def test_streams_many_deltas_and_reports_length(local: LocalProvider) -> None:
    prompt = [{"type": "message", "role": "user", "content": "Write a long story about a dragon."}]
    events = await collect(local, req(items=prompt, max_output_tokens=20))
    assert sum(isinstance(e, TextDelta) for e in events) > 5
    assert events[-1] == Finish("length")
    assert next(e for e in events if isinstance(e, Usage)).output_tokens == 20


async def test_json_schema_output_validates(local: LocalProvider) -> None:
    schema = {"type": "object",
              "properties": {"city": {"type": "string"}, "country": {"type": "string"},
                             "population": {"type": "integer", "minimum": 0, "maximum": 10**8}},
              "required": ["city", "country", "population"], "additionalProperties": False}
    fmt = {"type": "json_schema", "name": "place", "schema": schema, "strict": True}
    # Bounded integer: unbounded ones let a 135M model emit digits until max tokens.
    events = await collect(local, req(text_format=fmt, max_output_tokens=200))
    assert events[-1] == Finish("stop")
    jsonschema.validate(json.loads(text_of(events)), schema)


@pytest.mark.parametrize("choice", ["required", {"type": "function", "name": "get_weather"}, "auto"])
async def test_tool_calls_are_valid_function_calls(local: LocalProvider, choice: str | dict[str, str]) -> None:
    items = [{"type": "message", "role": "user", "content": "What's the weather in Paris?"}]
    events = await collect(local, req(items=items, tools=[WEATHER_TOOL], tool_choice=choice,
                                      max_output_tokens=120))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    if choice == "auto" and not starts:  # the model may answer in text instead
        assert text_of(events) and not text_of(events).startswith("<")
        return
    assert starts and not any(isinstance(e, TextDelta) for e in events)
    for start in starts:
        assert start.name == "get_weather" and start.call_id.startswith("call_")
        args = json.loads("".join(e.arguments for e in events
                                  if isinstance(e, ToolCallDelta) and e.index == start.index))
        jsonschema.validate(args, WEATHER_TOOL["parameters"])
    assert events[-1] == Finish("tool_calls")


def test_history_renders_tool_traffic() -> None:
    items = [*QUESTION,
             {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
             {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
             {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]}]
    body = chat_body(req(items=items, instructions="Be nice.", tools=[WEATHER_TOOL],
                         tool_choice={"type": "function", "name": "get_weather"}, parallel_tool_calls=False))
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user", "system"]
    assert body["messages"][0]["content"].startswith("Be nice.")
    assert body["messages"][2]["content"] == \
        '<tool_call>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</tool_call>'
    assert '"name": "get_weather", "content": "sunny"' in body["messages"][3]["content"]
    assert "| answer" not in body["grammar"] and '"maxItems": 1' in body["grammar"]
    assert body["max_tokens"] == 48 and body["temperature"] == 0.2


async def test_cancellation_does_not_wedge(local: LocalProvider) -> None:
    prompt = [{"type": "message", "role": "user", "content": "Count from 1 to 1000."}]
    gen = local.stream(req(items=prompt, max_output_tokens=2000))
    assert isinstance(await anext(gen), TextDelta)
    await gen.aclose()  # type: ignore[attr-defined]
    started = time.monotonic()
    events = await collect(local, req(max_output_tokens=8))
    assert isinstance(events[-1], Finish)
    assert time.monotonic() - started < 5  # the 2000-token decode was aborted, not waited for


async def test_concurrent_requests_both_complete(local: LocalProvider) -> None:
    a, b = await asyncio.gather(collect(local, req(max_output_tokens=16)),
                                collect(local, req(max_output_tokens=16)))
    assert isinstance(a[-1], Finish) and isinstance(b[-1], Finish)
    assert text_of(a) and text_of(b)


async def test_errors_are_provider_errors(local: LocalProvider) -> None:
    with pytest.raises(ProviderError) as unknown:
        await collect(local, req(model="nope"))
    assert unknown.value.status == 404
    small = LocalProvider(ProviderConfig(name="local", kind="local", options={"n_ctx": 256}))
    try:
        long = [{"type": "message", "role": "user", "content": "hello " * 400}]
        with pytest.raises(ProviderError) as overflow:
            await collect(small, req(items=long))
        assert overflow.value.code == "context_length_exceeded" and overflow.value.status == 400
    finally:
        await small.aclose()
