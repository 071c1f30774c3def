from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from responsa.api.app import create_app
from responsa.config import ProviderConfig, load_settings
from responsa.providers.base import (
    Capabilities,
    Finish,
    ModelEvent,
    ModelRequest,
    Provider,
    ProviderError,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from tests.fakes.openai_chat import MODELS, FakeChat
from tests.helpers import free_port, serve_in_thread, wait_healthy
from tests.providers.support import collect, text_of, user_request

FAKE = Path(__file__).resolve().parents[1] / "fakes" / "openai_chat.py"
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}


def user(text: str, **fields: Any) -> ModelRequest:
    return user_request("fake-model", text, **fields)


async def test_text_stream_ends_with_usage_then_one_finish(chat: Provider, chat_fake: FakeChat) -> None:
    events = await collect(chat, user("hello there", instructions="Be brief."))
    assert text_of(events) == "You said: hello there"
    assert [type(e) for e in events[-2:]] == [Usage, Finish]
    assert sum(isinstance(e, Finish) for e in events) == 1
    assert events[-1] == Finish("stop")
    body = chat_fake.last
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "hello there"}]
    for absent in ("tools", "tool_choice", "response_format", "temperature", "max_tokens", "logprobs"):
        assert absent not in body


async def test_usage_reads_cached_and_reasoning_tokens(chat: Provider) -> None:
    events = await collect(chat, ModelRequest(model="m", items=[
        {"type": "message", "role": "developer", "content": "one two three four"},
        {"type": "message", "role": "user", "content": "think"}]))
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage == Usage(input_tokens=5, output_tokens=4, cached_tokens=2, reasoning_tokens=2)


async def test_items_translate_to_messages(chat: Provider, chat_fake: FakeChat) -> None:
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Use tools."}]},
        {"role": "user", "content": [
            {"type": "input_text", "text": "What is here?"},
            {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"},
            {"type": "input_file", "filename": "notes.txt", "file_data": "data:text/plain;base64,aGk="},
            {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
        ]},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hmm"}]},
        {"type": "message", "role": "assistant", "id": "msg_1",
         "content": [{"type": "output_text", "text": "Let me check.", "annotations": []}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "c2", "name": "get_time", "arguments": ""},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2",
         "output": [{"type": "input_text", "text": "noon"}]},
        {"type": "mcp_list_tools", "server_label": "x", "tools": []},
        {"type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
        {"type": "function_call", "call_id": "c3", "name": "get_time", "arguments": "{}"},
        {"type": "message", "role": "user", "content": "thanks"},
    ]
    await collect(chat, ModelRequest(model="fake-model", items=items))
    assert chat_fake.last["messages"] == [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is here?"},
            {"type": "image_url", "image_url": {"url": "https://x.test/a.png", "detail": "low"}},
            {"type": "text", "text": "notes.txt:\nhi"},
            {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
        ]},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "noon"},
        {"role": "assistant", "content": "", "refusal": "No.",
         "tool_calls": [{"id": "c3", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
        {"role": "user", "content": "thanks"},
    ]


async def test_image_file_id_is_rejected_as_invalid_request(chat: Provider) -> None:
    req = ModelRequest(model="m", items=[{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}])
    with pytest.raises(ProviderError) as err:
        await collect(chat, req)
    assert err.value.status == 400 and err.value.retryable is False


async def test_tools_sampling_and_extra_are_passed(chat: Provider, chat_fake: FakeChat) -> None:
    await collect(chat, user("hi", tools=[WEATHER, TIME, {"type": "web_search"}],
                             tool_choice={"type": "function", "name": "get_weather"}, parallel_tool_calls=False,
                             temperature=0.2, top_p=0.9, presence_penalty=0.1, frequency_penalty=0.3,
                             max_output_tokens=50, user="u1", reasoning={"effort": "low"},
                             extra={"top_k": 5, "temperature": 0.7}))
    body = chat_fake.last
    assert body["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                          "parameters": WEATHER["parameters"], "strict": True}},
        {"type": "function", "function": {"name": "get_time", "parameters": TIME["parameters"]}},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert (body["top_p"], body["presence_penalty"], body["frequency_penalty"]) == (0.9, 0.1, 0.3)
    assert (body["max_tokens"], body["user"], body["reasoning_effort"]) == (50, "u1", "low")
    assert (body["top_k"], body["temperature"]) == (5, 0.7)  # extra wins


@pytest.mark.parametrize(("choice", "expected"), [
    ("none", "none"), ("required", "required"),
    ({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]},
     "required"),
])
async def test_tool_choice_mapping(chat: Provider, chat_fake: FakeChat, choice: Any, expected: str) -> None:
    await collect(chat, user("hi", tools=[WEATHER, TIME], tool_choice=choice))
    assert chat_fake.last["tool_choice"] == expected
    names = [t["function"]["name"] for t in chat_fake.last["tools"]]
    assert names == (["get_time"] if isinstance(choice, dict) else ["get_weather", "get_time"])


@pytest.mark.parametrize("script", ["call", "ollama-call"])
async def test_parallel_tool_calls_with_split_arguments(chat: Provider, script: str) -> None:
    events = await collect(chat, user(f"{script}:get_weather,get_time", tools=[WEATHER, TIME]))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert starts == [ToolCallStart(0, "call_fake_0", "get_weather"), ToolCallStart(1, "call_fake_1", "get_time")]
    for index in (0, 1):
        deltas = [e.arguments for e in events if isinstance(e, ToolCallDelta) and e.index == index]
        assert len(deltas) == 3
        assert orjson.loads("".join(deltas)) == {"city": "Paris", "n": index}
    assert events[-1] == Finish("tool_calls")


@pytest.mark.parametrize(("fmt", "expected"), [
    ({"type": "json_schema", "name": "person", "strict": True,
      "schema": {"type": "object", "properties": {"name": {"type": "string"}}}},
     {"type": "json_schema", "json_schema": {
         "name": "person", "strict": True,
         "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}}),
    ({"type": "json_object"}, {"type": "json_object"}),
])
async def test_response_format(chat: Provider, chat_fake: FakeChat, fmt: Any, expected: Any) -> None:
    await collect(chat, user("hi", text_format=fmt))
    assert chat_fake.last["response_format"] == expected


async def test_logprobs_are_requested_and_converted(chat: Provider, chat_fake: FakeChat) -> None:
    events = await collect(chat, user("hi", top_logprobs=2))
    assert (chat_fake.last["logprobs"], chat_fake.last["top_logprobs"]) == (True, 2)
    first = next(e for e in events if isinstance(e, TextDelta))
    assert first.logprobs == [{"token": "You", "logprob": -0.1, "bytes": list(b"You"), "top_logprobs": [
        {"token": "You", "logprob": -0.1, "bytes": list(b"You")},
        {"token": "<alt>", "logprob": -2.5, "bytes": list(b"<alt>")}]}]


async def test_finish_length(chat: Provider, chat_fake: FakeChat) -> None:
    events = await collect(chat, user("length", max_output_tokens=3))
    assert chat_fake.last["max_tokens"] == 3
    assert text_of(events) == "This is cut" and events[-1] == Finish("length")


async def test_reasoning_content_and_refusal(chat: Provider) -> None:
    events = await collect(chat, user("think"))
    assert [e for e in events if isinstance(e, ReasoningDelta)] == [ReasoningDelta("Let me "),
                                                                    ReasoningDelta("think.")]
    assert text_of(events) == "Thought done."
    refusal = await collect(chat, user("refuse"))
    assert "".join(e.text for e in refusal if isinstance(e, RefusalDelta)) == "I can't help with that."


async def test_retries_5xx_before_first_byte(chat: Provider, chat_fake: FakeChat) -> None:
    events = await collect(chat, user("fail-once"))
    assert text_of(events) == "You said: fail-once"
    assert len(chat_fake.requests) == 2


async def test_persistent_5xx_becomes_502_with_upstream_message(chat: Provider, chat_fake: FakeChat) -> None:
    with pytest.raises(ProviderError) as err:
        await collect(chat, user("fail"))
    assert (err.value.status, err.value.message, err.value.retryable) == (502, "fake upstream failure", True)
    assert len(chat_fake.requests) == 3


async def test_rate_limit_passes_through(chat: Provider) -> None:
    with pytest.raises(ProviderError) as err:
        await collect(chat, user("rate-limit"))
    assert (err.value.status, err.value.code) == (429, "rate_limit_exceeded")
    assert err.value.message == "Rate limit reached for fake-model"


async def test_upstream_400_is_not_retried(chat: Provider, chat_fake: FakeChat) -> None:
    with pytest.raises(ProviderError) as err:
        await collect(chat, user("bad-request"))
    e = err.value
    assert (e.status, e.type, e.param, e.code, e.retryable) == (
        400, "invalid_request_error", "messages", "invalid_value", False)
    assert e.message == "Invalid value for 'messages': fake bad request."
    assert len(chat_fake.requests) == 1


async def test_mid_stream_cut_raises_after_partial_output(chat: Provider, chat_fake: FakeChat) -> None:
    seen: list[ModelEvent] = []
    with pytest.raises(ProviderError) as err:
        async for ev in chat.stream(user("cut")):
            seen.append(ev)
    assert text_of(seen) == "You said:"
    assert err.value.status == 502 and len(chat_fake.requests) == 1


async def test_read_timeout_is_504(chat_fake_server: tuple[FakeChat, str],
                                   make_provider: Callable[..., Provider]) -> None:
    provider = make_provider("chat-completions", chat_fake_server[1], timeout=0.2)
    with pytest.raises(ProviderError) as err:
        await collect(provider, user("slow"))
    assert err.value.status == 504


async def test_unreachable_upstream_is_502_after_retries(make_provider: Callable[..., Provider]) -> None:
    provider = make_provider("chat-completions", f"http://127.0.0.1:{free_port()}/v1")
    with pytest.raises(ProviderError) as err:
        await collect(provider, user("hi"))
    assert (err.value.status, err.value.code, err.value.retryable) == (502, "upstream_unavailable", True)


async def test_list_models_merges_config_and_falls_back(chat: Provider,
                                                        make_provider: Callable[..., Provider]) -> None:
    assert await chat.list_models() == [*MODELS, "configured-model"]
    down = make_provider("chat-completions", f"http://127.0.0.1:{free_port()}/v1")
    assert await down.list_models() == ["configured-model"]


def test_capabilities_from_config(chat_fake_server: tuple[FakeChat, str],
                                  make_provider: Callable[..., Provider]) -> None:
    provider = make_provider("chat-completions", chat_fake_server[1], capabilities={"vision": False},
                             model_capabilities={"big": {"context_window": 1_000_000}})
    assert provider.capabilities("small") == Capabilities(vision=False, reasoning=True, logprobs=True)
    assert provider.capabilities("big").context_window == 1_000_000
    assert provider.capabilities("big").vision is False
    with pytest.raises(ProviderError):
        make_provider("chat-completions", chat_fake_server[1], capabilities={"telepathy": True})


async def test_fake_runs_standalone_for_benchmarks(make_provider: Callable[..., Provider]) -> None:
    """As benchmarks/overhead.py runs it: a script, with only the repository root on PYTHONPATH."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(FAKE.parents[2])}
    proc = subprocess.Popen([sys.executable, str(FAKE), "--port", str(port)], env=env)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        await asyncio.to_thread(wait_healthy, f"{base}/models", proc, 30)
        async with httpx.AsyncClient(base_url=base) as client:
            resp = await client.post("chat/completions", json={
                "model": "fake-model", "messages": [{"role": "user", "content": "ping"}]})
        assert resp.json()["choices"][0]["message"]["content"] == "You said: ping"
        events = await collect(make_provider("chat-completions", base), user("pong"))
        assert text_of(events) == "You said: pong"
    finally:
        proc.terminate()
        proc.wait(5)


def test_a_model_without_vision_refuses_an_image_however_far_back(chat_fake_server: tuple[FakeChat, str],
                                                                  tmp_path: Path) -> None:
    """An image in this turn or deep in the ``previous_response_id`` history
    is a 400 for a model configured without vision; a history of text is not."""
    settings = load_settings(None, database_url=f"sqlite:///{tmp_path}/r.db", default_model="seeing/fake-model")
    for name, vision in (("seeing", True), ("blind", False)):
        settings.providers[name] = ProviderConfig(name=name, kind="chat-completions", base_url=chat_fake_server[1],
                                                  api_key_env="PATH", options={"max_retries": 0,
                                                                               "capabilities": {"vision": vision}})
    image = {"role": "user", "content": [{"type": "input_text", "text": "what is this?"},
                                         {"type": "input_image", "image_url": "https://example.com/a.png"}]}
    with serve_in_thread(create_app(settings), lifespan="on") as url, \
            httpx.Client(base_url=url, headers={"authorization": "Bearer k"}, timeout=60) as http:
        def turn(model: str, previous: str | None, item: Any) -> httpx.Response:
            body = {"model": model, "input": [item], **({"previous_response_id": previous} if previous else {})}
            return http.post("/v1/responses", json=body)

        text = turn("seeing/fake-model", None, {"role": "user", "content": "hello"}).json()["id"]
        pictured = turn("seeing/fake-model", text, image).json()["id"]
        later = pictured
        for n in range(5):
            later = turn("seeing/fake-model", later, {"role": "user", "content": f"turn {n}"}).json()["id"]
        assert turn("blind/fake-model", text, {"role": "user", "content": "more"}).status_code == 200
        for previous, item in ((None, image), (later, {"role": "user", "content": "more"})):
            r = turn("blind/fake-model", previous, item)
            assert r.status_code == 400, r.text
            assert "does not accept image input" in r.json()["error"]["message"]
