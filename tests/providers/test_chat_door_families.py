"""``/v1/chat/completions`` in front of every provider family (Chat
Completions, Responses and Anthropic upstreams — the fakes speaking their
real wire formats — and the test model), driven by the ``openai`` SDK:
text, streamed chunks, a tool call round trip, structured output. Every
completion and chunk validated with the SDK's pydantic types."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from responsa.api.app import create_app
from responsa.config import ProviderConfig, load_settings
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai_chat import FakeChat
from tests.fakes.openai_responses import FakeResponses
from tests.helpers import serve_in_thread

pytestmark = pytest.mark.slow

MODELS = ["chat/fake-model", "native/gpt-fake", "claude/claude-sonnet-4-5", "test/echo"]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def client(chat_fake_server: tuple[FakeChat, str], responses_fake_server: tuple[FakeResponses, str],
           anthropic_fake_server: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenAI]:
    settings = load_settings(None, database_url=f"sqlite:///{tmp_path_factory.mktemp('door')}/r.db",
                             default_model="test/echo")
    for name, kind, url in (("chat", "chat-completions", chat_fake_server[1]),
                            ("native", "openai-responses", responses_fake_server[1]),
                            ("claude", "anthropic", anthropic_fake_server.url)):
        settings.providers[name] = ProviderConfig(name=name, kind=kind, base_url=url, options={"max_retries": 0})
    with serve_in_thread(create_app(settings), lifespan="on") as url:
        yield OpenAI(base_url=f"{url}/v1", api_key="test-key", max_retries=0, timeout=60)


def create(client: OpenAI, **body: Any) -> ChatCompletion:
    raw = client.chat.completions.with_raw_response.create(max_completion_tokens=64, **body)
    ChatCompletion.model_validate(raw.http_response.json())
    return raw.parse()


@pytest.mark.parametrize("model", MODELS)
def test_text_and_stream(client: OpenAI, model: str) -> None:
    done = create(client, model=model, messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert done.choices[0].finish_reason == "stop"
    assert "What is the capital of France?" in (done.choices[0].message.content or "")
    assert done.usage is not None and done.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(model=model, stream=True, stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "Say hello."}]))
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and chunks[-1].usage is not None and chunks[-1].choices == []


@pytest.mark.parametrize("model", MODELS)
def test_tool_round_trip(client: OpenAI, model: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = create(client, model=model, messages=messages, tools=[WEATHER], tool_choice="required")
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments), dict)
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}]
    second = create(client, model=model, messages=messages, tools=[WEATHER], tool_choice="none")
    assert second.choices[0].finish_reason == "stop"
    assert '{"temp_c": 21}' in (second.choices[0].message.content or "")


def test_stop_and_seed_reach_a_chat_upstream(client: OpenAI, chat_fake_server: tuple[FakeChat, str]) -> None:
    fake = chat_fake_server[0]
    create(client, model="chat/fake-model", stop=["END"], seed=42, messages=[{"role": "user", "content": "hi"}])
    assert (fake.last["stop"], fake.last["seed"]) == (["END"], 42)
