"""The Chat Completions and Messages front doors in front of every provider
family: the test model, the fake upstreams speaking their real wire formats
(Chat Completions, Responses, Anthropic) and the embedded model
``local/smollm2``, driven by the real ``openai`` SDK
(``chat.completions.create``/``.stream``/``.parse``) and the real
``anthropic`` SDK (``messages.create``/``.stream``/``.parse``), with function tools
round-tripped (call -> the client sends the result -> the final answer).

Every completion, chunk, message and stream event the server sends is
validated strictly with the SDKs' own types (``tests.door_checks``: the
clients' HTTP transport checks each body it reads).

The embedded model is not scripted: its cases assert the shape (a call of
the forced tool with schema-valid arguments, then an answer), not words."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from responsa.api.app import create_app
from responsa.config import ProviderConfig, load_settings
from tests.door_checks import checked_http
from tests.fakes.anthropic import SIGNATURE, FakeAnthropic
from tests.fakes.openai_chat import FakeChat
from tests.helpers import serve_in_thread

SCRIPTED = ["test/echo", "chat/fake-model", "native/gpt-fake", "claude/claude-sonnet-4-5"]
LOCAL = "local/smollm2"
EVERY = [*SCRIPTED, LOCAL]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CLAUDE_WEATHER = {"name": "get_weather", "description": "Current weather for a city",
                  "input_schema": WEATHER["function"]["parameters"]}  # type: ignore[index]
RESULT = '{"temp_c": 21}'


@pytest.fixture(scope="module")
def server(fake_providers: dict[str, ProviderConfig], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = load_settings(None, database_url=f"sqlite:///{tmp_path_factory.mktemp('door')}/r.db",
                             default_model="test/echo")
    settings.providers.update(fake_providers)
    with serve_in_thread(create_app(settings), lifespan="on") as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[OpenAI]:
    with checked_http() as http:
        yield OpenAI(base_url=f"{server}/v1", api_key="test-key", max_retries=0, http_client=http)


def _limits(model: str) -> dict[str, Any]:
    """The embedded model answers greedily and briefly (a tool call needs room)."""
    return {"temperature": 0} if model == LOCAL else {}


def _answered(model: str, text: str | None) -> None:
    """The final answer after the tool result: scripted models report it."""
    assert text and text.strip()
    if model != LOCAL:
        assert RESULT in text or "21" in text, text


# -- Chat Completions ----------------------------------------------------------


@pytest.mark.parametrize("model", SCRIPTED)
def test_chat_text_and_stream(client: OpenAI, model: str) -> None:
    done = client.chat.completions.create(model=model, max_completion_tokens=16,
                                          messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert done.choices[0].finish_reason == "stop"
    assert "What is the capital of France?" in (done.choices[0].message.content or "")
    assert done.usage is not None and done.usage.completion_tokens > 0
    chunks = list(client.chat.completions.create(model=model, stream=True, stream_options={"include_usage": True},
                                                 max_completion_tokens=16,
                                                 messages=[{"role": "user", "content": "Say hello."}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and chunks[-1].usage is not None and chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("model", EVERY)
def test_chat_create_tool_round_trip(client: OpenAI, model: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER],  # type: ignore[list-item]
                                           tool_choice="required", max_completion_tokens=128, **_limits(model))
    assert first.choices[0].finish_reason == "tool_calls"
    (call,) = first.choices[0].message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": RESULT}]
    second = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER],  # type: ignore[list-item]
                                            tool_choice="none", max_completion_tokens=24, **_limits(model))
    assert second.choices[0].finish_reason in (("stop", "length") if model == LOCAL else ("stop",))
    assert not second.choices[0].message.tool_calls
    _answered(model, second.choices[0].message.content)


@pytest.mark.parametrize("model", EVERY)
def test_chat_stream_helper_tool_round_trip(client: OpenAI, model: str) -> None:
    """``chat.completions.stream``: the SDK folds the chunks (tool call
    deltas included) into the final completion."""
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    with client.chat.completions.stream(model=model, messages=messages, tools=[WEATHER],  # type: ignore[list-item]
                                        tool_choice="required", max_completion_tokens=128,
                                        **_limits(model)) as stream:
        kinds = {ev.type for ev in stream}
        first = stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in kinds
    (call,) = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather" and isinstance(json.loads(call.function.arguments), dict)
    messages += [{"role": "assistant", "tool_calls": [{"id": call.id, "type": "function", "function": {
                     "name": call.function.name, "arguments": call.function.arguments}}]},
                 {"role": "tool", "tool_call_id": call.id, "content": RESULT}]
    with client.chat.completions.stream(model=model, messages=messages, tools=[WEATHER],  # type: ignore[list-item]
                                        tool_choice="none", max_completion_tokens=24, **_limits(model)) as stream:
        second = stream.get_final_completion()
    _answered(model, second.choices[0].message.content)


class Answer(BaseModel):
    answer: int


class GetWeather(BaseModel):
    """Current weather for a city."""

    city: str


@pytest.mark.parametrize("model", EVERY)
def test_chat_parse_structured_output_and_strict_tool(client: OpenAI, model: str) -> None:
    """``chat.completions.parse``: a pydantic ``response_format`` (a strict
    json_schema) comes back parsed; a pydantic function tool's arguments too."""
    done = client.chat.completions.parse(model=model, response_format=Answer, max_completion_tokens=48,
                                         **_limits(model),
                                         messages=[{"role": "user", "content": "json what is 6 times 7?"}])
    parsed = done.choices[0].message.parsed
    assert isinstance(parsed, Answer)
    tool = openai.pydantic_function_tool(GetWeather, name="get_weather")
    called = client.chat.completions.parse(model=model, tools=[tool], tool_choice="required",
                                           parallel_tool_calls=False, max_completion_tokens=128, **_limits(model),
                                           messages=[{"role": "user", "content": "weather in Paris?"}])
    (call,) = called.choices[0].message.tool_calls or []
    assert isinstance(call.function.parsed_arguments, GetWeather)


def test_stop_and_seed_reach_a_chat_upstream(client: OpenAI, chat_fake_server: tuple[FakeChat, str]) -> None:
    fake = chat_fake_server[0]
    client.chat.completions.create(model="chat/fake-model", stop=["END"], seed=42,
                                   messages=[{"role": "user", "content": "hi"}])
    assert (fake.last["stop"], fake.last["seed"]) == (["END"], 42)


# -- Anthropic Messages --------------------------------------------------------


@pytest.mark.parametrize("model", EVERY)
def test_messages_create_tool_round_trip(claude: anthropic.Anthropic, model: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = claude.messages.create(model=model, max_tokens=128, messages=messages, tools=[CLAUDE_WEATHER],
                                   tool_choice={"type": "any", "disable_parallel_tool_use": True})  # type: ignore[arg-type]
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input["city"], str)  # type: ignore[index]
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": RESULT}]}]
    second = claude.messages.create(model=model, max_tokens=24, messages=messages, tools=[CLAUDE_WEATHER],
                                    tool_choice={"type": "none"})  # type: ignore[arg-type]
    assert second.stop_reason in (("end_turn", "max_tokens") if model == LOCAL else ("end_turn",))
    assert [b.type for b in second.content] == ["text"]
    _answered(model, second.content[0].text)  # type: ignore[union-attr]


@pytest.mark.parametrize("model", EVERY)
def test_messages_stream_tool_round_trip(claude: anthropic.Anthropic, model: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    with claude.messages.stream(model=model, max_tokens=128, messages=messages, tools=[CLAUDE_WEATHER],
                                tool_choice={"type": "any", "disable_parallel_tool_use": True}) as stream:  # type: ignore[arg-type]
        types = [ev.type for ev in stream]
        first = stream.get_final_message()
    assert types[0] == "message_start" and types[-1] == "message_stop" and "content_block_stop" in types
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input, dict) and "city" in use.input
    messages += [first.to_param(),
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": RESULT}]}]
    with claude.messages.stream(model=model, max_tokens=24, messages=messages, tools=[CLAUDE_WEATHER],
                                tool_choice={"type": "none"}) as stream:  # type: ignore[arg-type]
        text = stream.get_final_text()
    _answered(model, text)


@pytest.mark.parametrize("model", SCRIPTED)
def test_messages_text_system_blocks_and_stop_sequences(claude: anthropic.Anthropic, model: str) -> None:
    msg = claude.messages.create(model=model, max_tokens=64, system=[{"type": "text", "text": "Be brief."}],
                                 messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert msg.stop_reason == "end_turn" and "What is the capital of France?" in msg.content[0].text  # type: ignore[union-attr]
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


def test_chat_params_reach_each_upstream(client: OpenAI, chat_fake_server: tuple[FakeChat, str],
                                         anthropic_fake_server: FakeAnthropic) -> None:
    """``stop``/``seed``/``logprobs`` on a Chat Completions upstream, ``stop``
    as Anthropic's ``stop_sequences``; images in each upstream's form."""
    chat = chat_fake_server[0]
    done = client.chat.completions.create(model="chat/fake-model", stop=["END"], seed=42, logprobs=True,
                                          top_logprobs=2, messages=[{"role": "user", "content": "hi"}])
    assert (chat.last["stop"], chat.last["seed"], chat.last["logprobs"], chat.last["top_logprobs"]) == \
        (["END"], 42, True, 2)
    assert done.choices[0].logprobs is not None and done.choices[0].logprobs.content
    assert all(len(t.top_logprobs) == 2 for t in done.choices[0].logprobs.content)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    client.chat.completions.create(model="claude/claude-sonnet-4-5", stop=["END"], max_completion_tokens=32,
                                   messages=[{"role": "user", "content": [{"type": "text", "text": "see"}, image]}])
    sent = anthropic_fake_server.last
    assert sent["stop_sequences"] == ["END"] and sent["max_tokens"] == 32
    assert sent["messages"][0]["content"][1] == {"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    client.chat.completions.create(model="chat/fake-model", messages=[{"role": "user", "content": [image]}])
    assert chat.last["messages"][0]["content"][0]["image_url"]["url"] == image["image_url"]["url"]  # type: ignore[index]


@pytest.mark.parametrize("model", SCRIPTED)
def test_chat_n_choices_are_n_turns(client: OpenAI, model: str) -> None:
    """``n`` > 1 on every provider: each choice is its own engine turn (the
    tools round trip included); streamed, the SDK folds the interleaved
    chunks by ``index``."""
    ask = [{"role": "user", "content": "weather in Paris?"}]
    done = client.chat.completions.create(model=model, n=3, tools=[WEATHER], tool_choice="required",  # type: ignore[list-item]
                                          messages=ask)  # type: ignore[arg-type]
    assert [c.index for c in done.choices] == [0, 1, 2]
    assert all(c.finish_reason == "tool_calls" and (c.message.tool_calls or [])[0].function.name == "get_weather"
               for c in done.choices)
    one = client.chat.completions.create(model=model, tools=[WEATHER], tool_choice="required",  # type: ignore[list-item]
                                         messages=ask)  # type: ignore[arg-type]
    assert done.usage is not None and one.usage is not None
    assert done.usage.completion_tokens == 3 * one.usage.completion_tokens
    with client.chat.completions.stream(model=model, n=2, stream_options={"include_usage": True},
                                        messages=[{"role": "user", "content": "Say hello."}]) as stream:
        final = stream.get_final_completion()
    assert [c.index for c in final.choices] == [0, 1]
    assert final.choices[0].message.content and final.choices[0].message.content == final.choices[1].message.content
    assert final.usage is not None and final.usage.completion_tokens > 0


def test_messages_thinking_goes_back_to_anthropic_with_its_signature(
        claude: anthropic.Anthropic, anthropic_fake_server: FakeAnthropic) -> None:
    """A Claude thinking block, shown to the client, sent back with the next
    turn: the upstream gets its own signature back (not another family's)."""
    fake = anthropic_fake_server
    first = claude.messages.create(model="claude/claude-sonnet-4-5", max_tokens=2048,
                                   thinking={"type": "enabled", "budget_tokens": 1024},
                                   messages=[{"role": "user", "content": "think"}])
    assert fake.last["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    thought, text = first.content
    assert thought.type == "thinking" and thought.thinking == "Let me think." and text.type == "text"
    claude.messages.create(model="claude/claude-sonnet-4-5", max_tokens=2048,
                           thinking={"type": "enabled", "budget_tokens": 1024},
                           messages=[{"role": "user", "content": "think"}, first.to_param(),
                                     {"role": "user", "content": "and now?"}])
    assert fake.last["messages"][1]["content"][0] == {"type": "thinking", "thinking": "Let me think.",
                                                      "signature": SIGNATURE}


@pytest.mark.parametrize("model", SCRIPTED)
def test_messages_parse_structured_output(claude: anthropic.Anthropic, model: str) -> None:
    """``messages.parse(output_format=...)``: ``output_config.format`` is the
    engine's json_schema output on every family (emulated with a forced tool
    on Anthropic upstreams)."""
    done = claude.messages.parse(model=model, max_tokens=64, output_format=Answer,
                                 messages=[{"role": "user", "content": "json what is 6 times 7?"}])
    assert isinstance(done.parsed_output, Answer)
