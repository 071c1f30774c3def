"""One conformance suite, every provider, through the real server.

Each scenario runs against ``chat`` (Chat Completions fake), ``native``
(Responses fake), ``claude`` (Anthropic fake), the deterministic ``test``
model and the real embedded ``local`` model, all behind one Responsa server
and driven with the ``openai`` client. The fakes speak their upstream's wire
format and record what they were sent, so translation is asserted on the
upstream request itself; ``test`` and ``local`` are checked by behaviour.
The local model's content is not asserted, only its shape; every request is
bounded (``max_output_tokens``, greedy decoding) to keep it fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response

from responsa.config import ProviderConfig
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai_chat import FakeChat
from tests.fakes.openai_responses import FakeResponses
from tests.helpers import Serve, parse_sse, server_settings, validate_response, validate_stream

Json = dict[str, Any]
Fake = FakeChat | FakeResponses | FakeAnthropic

PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVO"
       "RK5CYII=")
WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
# Bounded: an unbounded integer lets a 135M model emit digits until the token cap.
ANSWER = {"type": "object", "properties": {"answer": {"type": "integer", "minimum": 0, "maximum": 100}},
          "required": ["answer"], "additionalProperties": False}
LIMITS: Json = {"max_output_tokens": 48, "temperature": 0}


@dataclass(frozen=True)
class Target:
    model: str
    wire: str | None = None
    """Upstream wire format of the fake behind it; None: no recorded requests."""
    scripted: bool = True
    """Its answers reflect its input (fakes, test model), so content is asserted."""
    vision: bool = True

    def __str__(self) -> str:
        return self.model


TARGETS = [
    Target("chat/fake-model", wire="chat"),
    Target("native/gpt-fake", wire="responses"),
    Target("claude/claude-sonnet-4-5", wire="anthropic"),
    Target("test/echo"),
    Target("local/smollm2", scripted=False, vision=False),
]


@pytest.fixture(scope="module")
def fakes(chat_fake_server: tuple[FakeChat, str], responses_fake_server: tuple[FakeResponses, str],
          anthropic_fake_server: FakeAnthropic) -> dict[str, Fake]:
    return {"chat": chat_fake_server[0], "responses": responses_fake_server[0], "anthropic": anthropic_fake_server}


@pytest.fixture(scope="module")
def client(fake_providers: dict[str, ProviderConfig], tmp_path_factory: pytest.TempPathFactory,
           serve_responsa: Serve) -> Iterator[OpenAI]:
    settings = server_settings(tmp_path_factory.mktemp("conf"))
    settings.providers.update(fake_providers)
    with serve_responsa(settings) as url:
        yield OpenAI(base_url=f"{url}/v1", api_key="test-key", max_retries=0, timeout=60)


@pytest.fixture(params=TARGETS, ids=str)
def target(request: pytest.FixtureRequest) -> Target:
    return request.param  # type: ignore[no-any-return]


def create(client: OpenAI, target: Target, **body: Any) -> Response:
    """A non-streamed response, its raw JSON validated against the spec."""
    raw = client.responses.with_raw_response.create(model=target.model, **LIMITS, **body)
    validate_response(raw.http_response.json())
    response: Response = raw.parse()
    return response


def stream(client: OpenAI, target: Target, **body: Any) -> list[Json]:
    """The events of a streamed response, each validated, framing checked."""
    with client.responses.with_streaming_response.create(model=target.model, stream=True, **LIMITS,
                                                         **body) as raw:
        events, done = parse_sse(raw.read())
    assert done, "stream must end with data: [DONE]"
    validate_stream(events)
    return events


def stored(client: OpenAI, response_id: str, include: list[str] | None = None) -> Json:
    retrieve = client.responses.with_raw_response.retrieve
    raw: Json = (retrieve(response_id, include=include) if include else retrieve(response_id)).http_response.json()
    validate_response(raw)
    return raw


def upstream(fakes: dict[str, Fake], target: Target) -> Json:
    """The request body the target's fake received last."""
    assert target.wire is not None
    return fakes[target.wire].last


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or () if p.get("type") in ("text", "input_text", "output_text"))


def conversation(wire: str, body: Json) -> list[tuple[str, str]]:
    """(role, text) of every message in an upstream request, in any wire format."""
    messages = body["input"] if wire == "responses" else body["messages"]
    return [(m["role"], _text(m["content"])) for m in messages if m.get("type", "message") == "message"]


def test_text(client: OpenAI, target: Target) -> None:
    r = create(client, target, input="What is the capital of France?")
    assert r.status == "completed" and r.output_text.strip()
    assert r.usage is not None and r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    if target.scripted:
        assert "What is the capital of France?" in r.output_text


def test_streaming_events(client: OpenAI, target: Target) -> None:
    events = stream(client, target, input="Say hello.")
    types = [e["type"] for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert "response.output_text.delta" in types
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    final = events[-1]["response"]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    done_text = next(e["text"] for e in events if e["type"] == "response.output_text.done")
    assert deltas == done_text == final["output"][0]["content"][0]["text"] and deltas.strip()
    assert final["status"] == "completed" and final["usage"]["output_tokens"] > 0
    assert [e["item"] for e in events if e["type"] == "response.output_item.done"] == final["output"]
    assert stored(client, final["id"]) == final


def test_function_calling(client: OpenAI, target: Target, fakes: dict[str, Fake]) -> None:
    events = stream(client, target, input="weather in Paris?", tools=[WEATHER], tool_choice="required")
    first = events[-1]["response"]
    assert first["status"] == "completed" and stored(client, first["id"]) == first
    (call,) = [item for item in first["output"] if item["type"] == "function_call"]
    assert call["name"] == "get_weather"
    args = json.loads(call["arguments"])
    assert isinstance(args, dict)
    jsonschema.validate(args, WEATHER["parameters"])
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    (done,) = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert deltas == done["arguments"] == call["arguments"]

    result = '{"temp_c": 21}'
    second = create(client, target, previous_response_id=first["id"], tools=[WEATHER], tool_choice="none",
                    input=[{"type": "function_call_output", "call_id": call["call_id"], "output": result}])
    assert second.status == "completed" and second.output_text.strip()
    assert [item.type for item in second.output] == ["message"]
    if target.scripted:
        assert result in second.output_text
    if target.wire is not None:
        assert _tool_result(target.wire, upstream(fakes, target)) == (call["call_id"], result)


def _tool_result(wire: str, body: Json) -> tuple[str, str]:
    """(call id, output) of the tool result that ends an upstream request."""
    if wire == "chat":
        last = body["messages"][-1]
        assert last["role"] == "tool"
        return last["tool_call_id"], last["content"]
    if wire == "responses":
        last = body["input"][-1]
        assert last["type"] == "function_call_output"
        return last["call_id"], last["output"]
    (block,) = body["messages"][-1]["content"]
    assert body["messages"][-1]["role"] == "user" and block["type"] == "tool_result"
    return block["tool_use_id"], block["content"]


def test_json_schema_output(client: OpenAI, target: Target) -> None:
    fmt = {"type": "json_schema", "name": "answer", "schema": ANSWER, "strict": True}
    r = create(client, target, input="json please, what is six times seven?", text={"format": fmt})
    assert r.status == "completed"
    jsonschema.validate(json.loads(r.output_text), ANSWER)
    assert r.text is not None and r.text.format is not None and r.text.format.type == "json_schema"


def test_multi_turn_previous_response_id(client: OpenAI, target: Target, fakes: dict[str, Fake]) -> None:
    first = create(client, target, input="My name is Ada.")
    directive = " [[history]]" if target.model.startswith("test/") else ""
    second = create(client, target, input="What is my name?" + directive, previous_response_id=first.id)
    assert second.status == "completed" and second.output_text.strip()
    assert second.previous_response_id == first.id
    expected = [("user", "My name is Ada."), ("assistant", first.output_text), ("user", "What is my name?")]
    if target.wire is not None:
        assert conversation(target.wire, upstream(fakes, target)) == expected
    elif directive:  # the test model's [[history]] lists what it was sent (directives stripped)
        assert second.output_text == " | ".join(f"{role}: {text}" for role, text in expected)
    else:  # the model was prompted with the whole first turn
        assert first.usage is not None and second.usage is not None
        assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens


def test_image_input(client: OpenAI, target: Target, fakes: dict[str, Fake]) -> None:
    content = [{"type": "input_text", "text": "What is in this image?"},
               {"type": "input_image", "image_url": PNG, "detail": "auto"}]
    message = [{"type": "message", "role": "user", "content": content}]
    if not target.vision:
        with pytest.raises(openai.BadRequestError) as exc:
            create(client, target, input=message)
        assert exc.value.param == "input" and "image" in exc.value.message
        return
    r = create(client, target, input=message)
    assert r.status == "completed" and r.output_text.strip()
    if target.wire is not None:
        parts = _upstream_parts(target.wire, upstream(fakes, target))
        assert _image_of(target.wire, parts) == PNG


def _upstream_parts(wire: str, body: Json) -> list[Json]:
    last = (body["input"] if wire == "responses" else body["messages"])[-1]
    assert last["role"] == "user"
    return last["content"]  # type: ignore[no-any-return]


def _image_of(wire: str, parts: list[Json]) -> str:
    """The image of an upstream user message, back as a data URL."""
    (image,) = [p for p in parts if p["type"] in ("image_url", "input_image", "image")]
    if wire == "chat":
        return image["image_url"]["url"]  # type: ignore[no-any-return]
    if wire == "responses":
        return image["image_url"]  # type: ignore[no-any-return]
    source = image["source"]
    return f"data:{source['media_type']};{source['type']},{source['data']}"



# --- switching provider mid-chain ---------------------------------------------------

NATIVE, CLAUDE = TARGETS[1], TARGETS[2]


def _reasoning_blocks(wire: str, body: Json) -> list[Json]:
    """Reasoning an upstream request carries back: Responses reasoning items or
    Anthropic thinking blocks."""
    if wire == "responses":
        return [i for i in body["input"] if i["type"] == "reasoning"]
    return [b for m in body["messages"] for b in m["content"] if b["type"] in ("thinking", "redacted_thinking")]


@pytest.mark.parametrize(("thinker", "other"), [(NATIVE, CLAUDE), (CLAUDE, NATIVE)], ids=str)
def test_reasoning_state_only_returns_to_its_provider(client: OpenAI, fakes: dict[str, Fake], thinker: Target,
                                                      other: Target) -> None:
    """Reasoning state is opaque to every upstream but the one that issued it:
    another upstream would reject it with a 400, so it must never be sent
    there, yet it must still come back intact when the chain returns."""
    assert thinker.wire is not None and other.wire is not None
    prompt = "think hard" if thinker is CLAUDE else "think"
    first = create(client, thinker, input=prompt, reasoning={"effort": "low"})
    kept = stored(client, first.id, ["reasoning.encrypted_content"])
    (reasoning,) = [i for i in kept["output"] if i["type"] == "reasoning"]
    family, _, opaque = reasoning["encrypted_content"].partition(":")
    assert family == ("anthropic" if thinker is CLAUDE else "openai")
    secret = opaque.rsplit(":", 1)[-1]  # openai state is "<upstream id>:<encrypted>"

    second = create(client, other, input="Hello again.", previous_response_id=first.id)
    assert second.status == "completed" and "Hello again." in second.output_text
    body = upstream(fakes, other)
    assert _reasoning_blocks(other.wire, body) == []
    assert secret not in json.dumps(body) and reasoning["id"] not in json.dumps(body)
    assert conversation(other.wire, body) == [("user", prompt), ("assistant", first.output_text),
                                              ("user", "Hello again.")]

    third = create(client, thinker, input="And now?", previous_response_id=second.id)
    assert third.status == "completed"
    body = upstream(fakes, thinker)
    (back,) = _reasoning_blocks(thinker.wire, body)
    if thinker is NATIVE:  # upstream's own item id and encrypted content, as it issued them
        assert (back["id"], back["encrypted_content"]) == ("rs_0", "enc-opaque-state")
    else:
        assert (back["thinking"], back["signature"]) == ("Let me think.", secret)
    assert reasoning["id"] not in json.dumps(body)
