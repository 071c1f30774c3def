"""``POST /v1/chat/completions`` driven by the real ``openai`` SDK against
the test model: JSON, SSE chunks, tools, structured output, logprobs,
errors naming the chat parameter, storage visible as a Response. Every
completion and chunk is validated with the SDK's own pydantic types
(strictly, ``tests.door_checks``: a missing required field fails)."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from openai import BadRequestError, OpenAI
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

from tests.door_checks import chat_frames, validate_chat_completion
from tests.helpers import validate_response

pytestmark = pytest.mark.slow


def create(client: OpenAI, **kwargs: Any) -> ChatCompletion:
    raw = client.chat.completions.with_raw_response.create(**kwargs)
    validate_chat_completion(raw.http_response.json())
    return raw.parse()


def chunks(http: httpx.Client, **body: Any) -> tuple[list[dict[str, Any]], bytes]:
    raw = http.post("/v1/chat/completions", json={"stream": True, **body}).content
    return chat_frames(raw), raw


def test_create_echoes_and_counts(client: OpenAI) -> None:
    done = create(client, model="test/echo", messages=[{"role": "system", "content": "be brief"},
                                                        {"role": "user", "content": "Reply with exactly: hi there"}])
    assert done.choices[0].message.content == "hi there"
    assert done.choices[0].finish_reason == "stop"
    assert done.choices[0].message.role == "assistant"
    assert done.usage is not None and done.usage.completion_tokens == 2
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens


def test_history_is_the_messages(client: OpenAI) -> None:
    done = create(client, model="test/echo", messages=[
        {"role": "developer", "content": "dev"},
        {"role": "user", "content": [{"type": "text", "text": "one"}]},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three [[history]]"}])
    assert done.choices[0].message.content == "developer: dev | user: one | assistant: two | user: three"


def test_stream_chunks_and_usage(client: OpenAI, http: httpx.Client) -> None:
    got, _ = chunks(http, model="test/echo", messages=[{"role": "user", "content": "Reply with exactly: a b c"}],
                    stream_options={"include_usage": True})
    assert got[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in got if c["choices"])
    assert text == "a b c"
    assert got[-2]["choices"][0]["finish_reason"] == "stop"
    assert got[-1]["choices"] == [] and got[-1]["usage"]["completion_tokens"] == 3
    assert all(c["usage"] is None for c in got[:-1])
    assert len({c["id"] for c in got}) == 1
    # The SDK's stream helper folds the same chunks.
    with client.chat.completions.stream(model="test/echo",
                                        messages=[{"role": "user", "content": "Reply with exactly: x y"}]) as s:
        final = s.get_final_completion()
    assert final.choices[0].message.content == "x y"


def test_n_choices_streamed_interleave_by_index(http: httpx.Client) -> None:
    got, _ = chunks(http, model="test/echo", n=2, stream_options={"include_usage": True},
                    messages=[{"role": "user", "content": "Reply with exactly: a b c"}])
    assert len({c["id"] for c in got}) == 1
    text: dict[int, str] = {0: "", 1: ""}
    finish: dict[int, str] = {}
    for c in got[:-1]:
        (choice,) = c["choices"]
        text[choice["index"]] += choice["delta"].get("content") or ""
        if choice["finish_reason"]:
            finish[choice["index"]] = choice["finish_reason"]
    assert text == {0: "a b c", 1: "a b c"} and finish == {0: "stop", 1: "stop"}
    assert got[-1]["choices"] == [] and got[-1]["usage"]["completion_tokens"] == 6
    failing, _ = chunks(http, model="test/echo", n=2,
                        messages=[{"role": "user", "content": "[[fail-after:1]] one two three"}])
    assert [c["error"]["code"] for c in failing if "error" in c] == ["upstream_error", "upstream_error"]
    early = http.post("/v1/chat/completions", json={"model": "test/echo", "n": 2, "stream": True,
                                                    "messages": [{"role": "user", "content": "[[error:429]]"}]})
    assert early.status_code == 429


def test_stream_without_usage_has_no_usage_key(http: httpx.Client) -> None:
    got, _ = chunks(http, model="test/echo", messages=[{"role": "user", "content": "hi"}])
    assert all("usage" not in c for c in got)
    assert got[-1]["choices"][0]["finish_reason"] == "stop"


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_tool_call_round_trip(client: OpenAI) -> None:
    first = create(client, model="test/echo", tools=[WEATHER],
                   messages=[{"role": "user", "content": "weather in Paris?"}])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and orjson.loads(call.function.arguments) == {"city": "test"}
    second = create(client, model="test/echo", tools=[WEATHER], messages=[
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"}])
    assert second.choices[0].message.content == "The get_weather tool returned: sunny"


def test_parallel_tool_calls_stream(http: httpx.Client) -> None:
    tools = [WEATHER, {"type": "function", "function": {"name": "t2", "parameters": {"type": "object"}}}]
    got, _ = chunks(http, model="test/echo", tools=tools, messages=[
        {"role": "user", "content": '[[call:get_weather {"city": "Oslo"}]] [[call:t2 {}]]'}])
    calls: dict[int, dict[str, str]] = {}
    for c in got:
        for tc in c["choices"][0]["delta"].get("tool_calls") or []:
            slot = calls.setdefault(tc["index"], {"name": "", "arguments": ""})
            slot["name"] += (tc.get("function") or {}).get("name") or ""
            slot["arguments"] += (tc.get("function") or {}).get("arguments") or ""
    assert calls == {0: {"name": "get_weather", "arguments": '{"city": "Oslo"}'}, 1: {"name": "t2", "arguments": "{}"}}
    assert got[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_parallel_tool_calls_false_and_tool_choice(client: OpenAI) -> None:
    tools = [WEATHER, {"type": "function", "function": {"name": "t2", "parameters": {"type": "object"}}}]
    done = create(client, model="test/echo", tools=tools, parallel_tool_calls=False,
                  tool_choice={"type": "function", "function": {"name": "t2"}},
                  messages=[{"role": "user", "content": "go"}])
    calls = done.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["t2"]
    none = create(client, model="test/echo", tools=tools, tool_choice="none",
                  messages=[{"role": "user", "content": "Reply with exactly: no"}])
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content == "no"


class City(BaseModel):
    name: str
    population: int


def test_parse_structured_output(client: OpenAI) -> None:
    done = client.chat.completions.parse(model="test/echo", response_format=City,
                                         messages=[{"role": "user", "content": "a city"}])
    assert done.choices[0].message.parsed == City(name="test", population=1)
    obj = create(client, model="test/echo", response_format={"type": "json_object"},
                 messages=[{"role": "user", "content": "json please"}])
    assert orjson.loads(obj.choices[0].message.content or "") == {"answer": "json please"}


def test_logprobs_and_limits(client: OpenAI) -> None:
    done = create(client, model="test/echo", logprobs=True, top_logprobs=1, max_completion_tokens=2,
                  messages=[{"role": "user", "content": "Reply with exactly: one two three"}])
    choice = done.choices[0]
    assert choice.message.content == "one two "
    assert choice.finish_reason == "length"
    assert choice.logprobs is not None and [t.token for t in choice.logprobs.content or []] == ["one ", "two "]
    tiny = create(client, model="test/echo", max_tokens=1, seed=7, stop=["zzz"],
                  messages=[{"role": "user", "content": "Reply with exactly: a b"}])
    assert tiny.choices[0].message.content == "a " and tiny.choices[0].finish_reason == "length"


def test_image_input_reaches_the_model(client: OpenAI) -> None:
    done = create(client, model="test/echo", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}]}])
    assert done.choices[0].message.content == "what is this?"


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"messages": [{"role": "user", "content": "x"}], "n": 9}, "n", "integer_above_max_value"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 0}, "n", "integer_below_min_value"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 2, "store": True}, "store", "unsupported_value"),
    ({"messages": [{"role": "user", "content": "x"}], "frobnicate": 1}, "frobnicate", "unknown_parameter"),
    ({"messages": [{"role": "user", "content": "x"}], "audio": {"voice": "x"}}, "audio", "unsupported_parameter"),
    ({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"},
                   {"role": "user", "content": 5}]}, "messages[2].content", "invalid_type"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x",
                                                                                    "detail": "huge"}}]}]},
     "messages[0].content[0].detail", "invalid_value"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "invalid_value"),
    ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {}}]},
     "tools[0].function.name", "missing_required_parameter"),
    ({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}},
     "response_format.type", "invalid_value"),
    ({"messages": [{"role": "user", "content": "x"}],
      "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     "response_format.json_schema.schema", "missing_required_parameter"),
    ({"messages": [{"role": "user", "content": "x"}], "temperature": 3}, "temperature", "invalid_value"),
    ({"messages": []}, "messages", "empty_array"),
    ({"messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "function",
                                                                       "function": {"name": "nope"}}},
     "tool_choice.function.name", "invalid_value"),
])
def test_errors_name_the_chat_parameter(http: httpx.Client, body: dict[str, Any], param: str, code: str) -> None:
    r = http.post("/v1/chat/completions", json={"model": "test/echo", **body})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert (err["param"], err["code"], err["type"]) == (param, code, "invalid_request_error"), err


def test_sdk_raises_typed_errors(client: OpenAI) -> None:
    with pytest.raises(BadRequestError) as info:
        client.chat.completions.create(model="test/echo", n=30, messages=[{"role": "user", "content": "x"}])
    assert info.value.param == "n"


def test_upstream_failure_is_an_http_error_streamed_or_not(http: httpx.Client) -> None:
    for stream in (False, True):
        r = http.post("/v1/chat/completions", json={"model": "test/echo", "stream": stream,
                                                    "messages": [{"role": "user", "content": "[[error:429]]"}]})
        assert r.status_code == 429, r.text
        assert r.json()["error"]["type"] == "rate_limit_error"


def test_mid_stream_failure_is_an_error_frame(http: httpx.Client) -> None:
    raw = http.post("/v1/chat/completions", json={
        "model": "test/echo", "stream": True,
        "messages": [{"role": "user", "content": "[[fail-after:2]] one two three four"}]}).content
    frames = [f for f in raw.split(b"\n\n") if f]
    assert frames[-1] == b"data: [DONE]"
    assert orjson.loads(frames[-2][6:])["error"]["code"] == "upstream_error"


def test_stored_completion_is_a_response(client: OpenAI, http: httpx.Client) -> None:
    done = create(client, model="test/echo", store=True, metadata={"k": "v"},
                  messages=[{"role": "user", "content": "Reply with exactly: kept"}])
    found = http.get(f"/v1/responses/{done.id}")
    assert found.status_code == 200
    validate_response(found.json())
    assert found.json()["output"][0]["content"][0]["text"] == "kept"
    assert found.json()["metadata"] == {"k": "v"}
    items = http.get(f"/v1/responses/{done.id}/input_items").json()["data"]
    assert items[0]["content"][0]["text"] == "Reply with exactly: kept"
    # Not stored unless asked (OpenAI's default for chat completions).
    other = create(client, model="test/echo", messages=[{"role": "user", "content": "gone"}])
    assert http.get(f"/v1/responses/{other.id}").status_code == 404


def test_stored_streamed_tool_call_is_a_response_with_its_items(http: httpx.Client) -> None:
    got = chat_frames(http.post("/v1/chat/completions", json={
        "model": "test/echo", "store": True, "stream": True, "tools": [WEATHER],
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "weather in Oslo?"}]}).content)
    rid = got[0]["id"]
    found = http.get(f"/v1/responses/{rid}").json()
    validate_response(found)
    (call,) = found["output"]
    assert call["type"] == "function_call" and call["name"] == "get_weather" and found["status"] == "completed"
    items = http.get(f"/v1/responses/{rid}/input_items", params={"order": "asc"}).json()["data"]
    assert [(i["role"], i["content"][0]["text"]) for i in items] == [("system", "be brief"),
                                                                     ("user", "weather in Oslo?")]
    # The tool result sent back through the door continues the same engine state.
    done = http.post("/v1/chat/completions", json={
        "model": "test/echo", "store": True, "tools": [WEATHER], "messages": [
            {"role": "user", "content": "weather in Oslo?"},
            {"role": "assistant", "tool_calls": [{"id": call["call_id"], "type": "function", "function": {
                "name": "get_weather", "arguments": call["arguments"]}}]},
            {"role": "tool", "tool_call_id": call["call_id"], "content": "rain"}]}).json()
    second = http.get(f"/v1/responses/{done['id']}").json()
    validate_response(second)
    assert second["output"][0]["content"][0]["text"] == "The get_weather tool returned: rain"
    kinds = [i["type"] for i in http.get(f"/v1/responses/{done['id']}/input_items",
                                         params={"order": "asc"}).json()["data"]]
    assert kinds == ["message", "function_call", "function_call_output"]


def test_idempotency_key_names_one_completion(http: httpx.Client) -> None:
    body = {"model": "test/echo", "store": True, "messages": [{"role": "user", "content": "once"}]}
    a = http.post("/v1/chat/completions", json=body, headers={"idempotency-key": "chat-k1"}).json()
    b = http.post("/v1/chat/completions", json=body, headers={"idempotency-key": "chat-k1"}).json()
    assert a["id"] == b["id"]


def test_models_fit_every_sdk_model_type(client: OpenAI, server: str) -> None:
    """OpenAI's ``Model`` and Dedalus' ``Model`` (which requires
    ``created_at`` and ``provider``), validated strictly from the raw JSON."""
    from dedalus_labs import Dedalus
    from dedalus_labs.types import Model as DedalusModel
    from openai.types import Model as OpenAIModel

    data = httpx.get(f"{server}/v1/models").json()["data"]
    assert "test/echo" in {m["id"] for m in data}
    for m in data:
        OpenAIModel.model_validate(m)
        # Dedalus' provider list names hosted providers only; the rest of the type must hold as sent.
        DedalusModel.model_validate({**m, "provider": "openai"})
        assert m["provider"] and m["created_at"]
    echo = next(m for m in data if m["id"] == "test/echo")
    assert echo["capabilities"]["tools"] is True and echo["provider"] == "test"
    listed = Dedalus(api_key="k", base_url=server, max_retries=0).models.list()
    assert "test/echo" in {m.id for m in listed.data}
    assert client.models.retrieve("test/echo").owned_by == "test"
