from __future__ import annotations

from typing import Any

import orjson
import pytest

from responsa.config import ProviderConfig
from responsa.providers.base import (
    Finish,
    ModelEvent,
    ModelRequest,
    Provider,
    ProviderError,
    ReasoningDelta,
    ReasoningDone,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from responsa.providers.openai_responses import make
from tests.fakes.openai_responses import MODELS, FakeResponses
from tests.providers.support import collect, text_of, user_request

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}},
           "strict": True}


def user(text: str, **fields: Any) -> ModelRequest:
    return user_request("gpt-fake", text, **fields)


async def test_text_stream_and_request_body(responses: Provider, responses_fake: FakeResponses) -> None:
    fmt = {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": True}
    events = await collect(responses, user("hello", instructions="Be brief.", tools=[WEATHER],
                                           tool_choice="required", temperature=0.5, max_output_tokens=99,
                                           text_format=fmt, extra={"service_tier": "flex"}))
    assert text_of(events) == "You said: hello "
    assert events[-2:] == [Usage(input_tokens=20, output_tokens=6, cached_tokens=8, reasoning_tokens=2),
                           Finish("stop")]
    body = responses_fake.last
    assert (body["stream"], body["store"], body["instructions"]) == (True, False, "Be brief.")
    assert body["input"] == [{"type": "message", "role": "user", "content": "hello"}]
    assert (body["tools"], body["tool_choice"], body["parallel_tool_calls"]) == ([WEATHER], "required", True)
    assert (body["temperature"], body["max_output_tokens"], body["service_tier"]) == (0.5, 99, "flex")
    assert body["text"] == {"format": fmt}
    for absent in ("include", "reasoning", "top_p", "top_logprobs"):
        assert absent not in body


async def test_input_items_drop_ids_and_unresolvable_reasoning(responses: Provider,
                                                               responses_fake: FakeResponses) -> None:
    items: list[dict[str, Any]] = [
        {"type": "message", "id": "msg_ours", "role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_a", "summary": [], "content": [{"type": "reasoning_text", "text": "x"}]},
        {"type": "reasoning", "id": "rs_b", "summary": [{"type": "summary_text", "text": "s"}],
         "encrypted_content": "openai:rs_up:enc"},
        {"type": "reasoning", "id": "rs_c", "summary": [], "encrypted_content": "openai::enc-no-id"},
        {"type": "reasoning", "id": "rs_d", "summary": [], "encrypted_content": "anthropic:c2lnbmF0dXJl",
         "content": [{"type": "reasoning_text", "text": "claude thought"}]},
        {"type": "reasoning", "id": "rs_e", "summary": [], "encrypted_content": "untagged-legacy"},
        {"type": "function_call", "id": "fc_ours", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "id": "fco_ours", "call_id": "c1", "output": "sunny"},
        {"type": "mcp_list_tools", "id": "mcpl_1", "server_label": "x", "tools": []},
        {"role": "user", "content": "again"},
    ]
    await collect(responses, ModelRequest(model="o-fake", items=items))
    body = responses_fake.last
    assert body["input"] == [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}], "id": "rs_up",
         "encrypted_content": "enc"},
        {"type": "reasoning", "summary": [], "encrypted_content": "enc-no-id"},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "message", "role": "user", "content": "again"},
    ]
    assert body["include"] == ["reasoning.encrypted_content"]


async def test_own_reasoning_round_trips_exactly(responses: Provider, responses_fake: FakeResponses) -> None:
    """The upstream's own item id and encrypted content go back as it issued
    them, whatever id Responsa gave the item."""
    events = await collect(responses, user("think", reasoning={"effort": "low"}))
    (done,) = [e for e in events if isinstance(e, ReasoningDone)]
    reasoning = {"type": "reasoning", "id": "rs_responsa", "encrypted_content": done.encrypted_content,
                 "summary": [{"type": "summary_text", "text": "Plan first.\n\nThen answer."}]}
    answer = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Thought done."}]}
    await collect(responses, ModelRequest(model="o-fake", items=[
        {"type": "message", "role": "user", "content": "think"}, reasoning, answer,
        {"type": "message", "role": "user", "content": "more"}]))
    sent = responses_fake.last["input"][1]
    assert (sent["type"], sent["id"], sent["encrypted_content"]) == ("reasoning", "rs_0", "enc-opaque-state")
    assert "rs_responsa" not in orjson.dumps(responses_fake.last).decode()


async def test_parallel_tool_calls(responses: Provider) -> None:
    events = await collect(responses, user("call:get_weather,get_time", tools=[WEATHER]))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert starts == [ToolCallStart(0, "call_0", "get_weather"), ToolCallStart(1, "call_1", "get_time")]
    for index in (0, 1):
        deltas = [e.arguments for e in events if isinstance(e, ToolCallDelta) and e.index == index]
        assert len(deltas) == 2 and orjson.loads("".join(deltas)) == {"city": "Paris", "n": index}
    assert events[-1] == Finish("tool_calls")


async def test_reasoning_summary_and_encrypted_content(responses: Provider,
                                                       responses_fake: FakeResponses) -> None:
    events = await collect(responses, user("think", reasoning={"effort": "low", "summary": "auto"},
                                           include=["message.output_text.logprobs"]))
    body = responses_fake.last
    assert body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert body["include"] == ["message.output_text.logprobs", "reasoning.encrypted_content"]
    summary = "".join(e.text for e in events if isinstance(e, ReasoningDelta) and e.summary)
    assert summary == "Plan first.\n\nThen answer."
    done = ReasoningDone("openai:rs_0:enc-opaque-state")
    assert [e for e in events if isinstance(e, ReasoningDone)] == [done]
    assert text_of(events) == "Thought done."
    done_at = events.index(done)
    assert all(isinstance(e, ReasoningDelta) for e in events[:done_at])


async def test_logprobs_pass_through(responses: Provider, responses_fake: FakeResponses) -> None:
    events = await collect(responses, user("hi", top_logprobs=1))
    assert responses_fake.last["top_logprobs"] == 1
    first = next(e for e in events if isinstance(e, TextDelta))
    assert first.logprobs == [{"token": "You ", "logprob": -0.1, "bytes": list(b"You "),
                               "top_logprobs": [{"token": "You ", "logprob": -0.1, "bytes": list(b"You ")}]}]


@pytest.mark.parametrize(("script", "reason"), [("length", "length"), ("filtered", "content_filter")])
async def test_incomplete_maps_to_finish_reason(responses: Provider, script: str, reason: str) -> None:
    events = await collect(responses, user(script))
    assert isinstance(events[-2], Usage) and events[-1] == Finish(reason)  # type: ignore[arg-type]


@pytest.mark.parametrize(("script", "message"), [("failed", "The model crashed."),
                                                 ("error-event", "The model exploded.")])
async def test_failure_events_raise(responses: Provider, script: str, message: str) -> None:
    with pytest.raises(ProviderError) as err:
        await collect(responses, user(script))
    assert (err.value.status, err.value.message, err.value.code) == (502, message, "server_error")


async def test_retry_then_errors(responses: Provider, responses_fake: FakeResponses) -> None:
    assert text_of(await collect(responses, user("fail-once"))) == "You said: fail-once "
    assert len(responses_fake.requests) == 2
    with pytest.raises(ProviderError) as err:
        await collect(responses, user("bad-request"))
    assert (err.value.status, err.value.param, err.value.retryable) == (400, "input", False)
    assert err.value.message == "Invalid 'input[0]': fake bad request."
    assert len(responses_fake.requests) == 3


async def test_mid_stream_cut_raises(responses: Provider, responses_fake: FakeResponses) -> None:
    seen: list[ModelEvent] = []
    with pytest.raises(ProviderError):
        async for ev in responses.stream(user("cut")):
            seen.append(ev)
    assert text_of(seen) == "You " and len(responses_fake.requests) == 1


async def test_list_models(responses: Provider) -> None:
    assert await responses.list_models() == [*MODELS, "configured-model"]


async def test_api_key_and_headers(responses_fake_server: tuple[FakeResponses, str],
                                   responses_fake: FakeResponses, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPONSA_TEST_OPENAI_KEY", "sk-test")
    cfg = ProviderConfig(name="openai", kind="openai-responses", base_url=responses_fake_server[1],
                         api_key_env="RESPONSA_TEST_OPENAI_KEY", options={"headers": {"OpenAI-Project": "p1"}})
    provider = make(cfg)
    try:
        await collect(provider, user("hi"))
    finally:
        await provider.aclose()
    headers = responses_fake.headers[-1]
    assert (headers["authorization"], headers["openai-project"]) == ("Bearer sk-test", "p1")
