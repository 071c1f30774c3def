"""``/v1/responses`` end to end through a real server, with the real
``openai`` client and raw HTTP, every object validated against the spec."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import jsonschema
import pytest
from openai import NotFoundError, OpenAI

from tests.helpers import parse_sse, validate_response, validate_stream, wait_until


def create(http: httpx.Client, **body: Any) -> dict[str, Any]:
    r = http.post("/v1/responses", json={"model": "test/echo", **body})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    validate_response(data)
    return data


def stream(http: httpx.Client, **body: Any) -> list[dict[str, Any]]:
    r = http.post("/v1/responses", json={"model": "test/echo", "stream": True, **body})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events, done = parse_sse(r.content)
    assert done, "stream must end with data: [DONE]"
    validate_stream(events)
    return events


def text_of(response: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for it in response["output"] if it["type"] == "message"
                   for p in it["content"])


def test_openai_client_basic_create(client: OpenAI) -> None:
    r = client.responses.create(model="test/echo", input="What is the capital of France?",
                                instructions="You are a helpful geography assistant.", temperature=0.7)
    assert r.status == "completed"
    assert r.output_text == "What is the capital of France?"
    assert r.instructions == "You are a helpful geography assistant."
    assert r.temperature == 0.7
    assert r.usage is not None and r.usage.output_tokens > 0
    assert r.model == "test/echo"


def test_previous_response_id_carries_items_not_instructions(client: OpenAI) -> None:
    r1 = client.responses.create(model="test/echo", input="My name is Alice.", instructions="Be terse.")
    r2 = client.responses.create(model="test/echo", input="[[history]]", previous_response_id=r1.id)
    assert r2.output_text == "user: My name is Alice. | assistant: My name is Alice. | user:"
    assert r2.previous_response_id == r1.id
    r3 = client.responses.create(model="test/echo", input="[[instructions]]", previous_response_id=r2.id)
    assert r3.output_text == "(no instructions)"
    assert r3.instructions is None


def test_long_chain_context_in_order(http: httpx.Client) -> None:
    prev = None
    for i in range(12):
        body: dict[str, Any] = {"input": f"turn{i}"}
        if prev:
            body["previous_response_id"] = prev
        prev = create(http, **body)["id"]
    last = create(http, input="[[history]]", previous_response_id=prev)
    said = [part.split(": ")[1] for part in text_of(last).split(" | ")[:-1]]
    assert said == [f"turn{i}" for i in range(12) for _ in range(2)]


def test_stream_events_and_fold_match_stored(http: httpx.Client) -> None:
    events = stream(http, input="one two three four")
    types = [e["type"] for e in events]
    assert types[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert types[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "one two three four"
    final = events[-1]["response"]
    stored = http.get(f"/v1/responses/{final['id']}").json()
    assert stored == final
    done_items = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert done_items == final["output"]


def test_openai_typed_stream(client: OpenAI) -> None:
    with client.responses.stream(model="test/echo", input="hi there") as s:
        kinds = [ev.type for ev in s]
        final = s.get_final_response()
    assert "response.output_text.delta" in kinds
    assert final.output_text == "hi there"
    assert client.responses.retrieve(final.id).output_text == "hi there"


def test_replay_stored_stream_with_starting_after(http: httpx.Client) -> None:
    rid = create(http, input="alpha beta")["id"]
    r = http.get(f"/v1/responses/{rid}", params={"stream": "true"})
    events, done = parse_sse(r.content)
    assert done
    validate_stream(events)
    assert events[-1]["response"]["id"] == rid
    r = http.get(f"/v1/responses/{rid}", params={"stream": "true", "starting_after": "3"})
    tail, _ = parse_sse(r.content)
    assert [e["sequence_number"] for e in tail] == list(range(4, len(events)))


def test_input_items_pagination_and_delete(client: OpenAI, http: httpx.Client) -> None:
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    rid = create(http, input=items)["id"]
    page = client.responses.input_items.list(rid, order="asc", limit=2)
    texts = [it.content[0].text for it in page.data]  # type: ignore[union-attr]
    assert texts == ["m0", "m1"] and page.has_more
    rest = client.responses.input_items.list(rid, order="asc", after=page.data[-1].id)
    assert [it.content[0].text for it in rest.data] == ["m2", "m3", "m4"]  # type: ignore[union-attr]
    assert not rest.has_more
    desc = http.get(f"/v1/responses/{rid}/input_items").json()
    assert [it["content"][0]["text"] for it in desc["data"]] == ["m4", "m3", "m2", "m1", "m0"]
    assert desc["first_id"] == desc["data"][0]["id"] and desc["object"] == "list"
    deleted = client.responses.delete(rid)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(NotFoundError):
        client.responses.retrieve(rid)
    assert http.get(f"/v1/responses/{rid}/input_items").status_code == 404


def test_store_false_is_not_retrievable(http: httpx.Client) -> None:
    data = create(http, input="secret", store=False)
    assert data["store"] is False
    assert http.get(f"/v1/responses/{data['id']}").status_code == 404
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "x", "previous_response_id": data["id"]})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "previous_response_not_found"
    assert r.json()["error"]["param"] == "previous_response_id"


def test_max_output_tokens_gives_incomplete(http: httpx.Client) -> None:
    data = create(http, input="[[long:40]]", max_output_tokens=16)
    assert data["status"] == "incomplete"
    assert data["incomplete_details"] == {"reason": "max_output_tokens"}
    assert data["usage"]["output_tokens"] == 16
    assert data["output"][0]["status"] == "incomplete"
    events = stream(http, input="[[long:40]]", max_output_tokens=16)
    assert events[-1]["type"] == "response.incomplete"


def test_upstream_failure_non_stream_is_502_and_stored_failed(http: httpx.Client) -> None:
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "[[error]]"})
    assert r.status_code == 502
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and "Scripted" in err["message"]
    stored = http.get(f"/v1/responses/{r.headers['x-response-id']}").json()
    validate_response(stored)
    assert stored["status"] == "failed" and stored["error"]["code"] == "upstream_error"
    assert http.post("/v1/responses", json={"model": "test/echo", "input": "[[error:429]]"}).status_code == 429


def test_upstream_failure_mid_stream_ends_with_error_then_failed(http: httpx.Client) -> None:
    events = stream(http, input="[[long:10]] [[fail-after:3]]")
    types = [e["type"] for e in events]
    assert types.count("response.output_text.delta") == 3
    assert types[-2:] == ["error", "response.failed"]
    failed = events[-1]["response"]
    assert failed["output"][0]["status"] == "incomplete"
    assert http.get(f"/v1/responses/{failed['id']}").json()["status"] == "failed"


def test_model_fallback_list_uses_next_model_on_failure(server: str) -> None:
    from dedalus_labs import Dedalus

    d = Dedalus(api_key="k", base_url=server, max_retries=0)
    r = d.responses.create(model=["test/broken", "test/echo"], input="[[error-model:broken]] hello")
    assert r.status == "completed"
    assert r.model == "test/echo"  # the model that answered, not the one that failed
    assert httpx.get(f"{server}/v1/responses/{r.id}", headers={"authorization": "Bearer k"}).json()["model"] \
        == "test/echo"


def test_json_schema_output_validates(client: OpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"], "additionalProperties": False}
    r = client.responses.create(model="test/echo", input="Biggest city?",
                                text={"format": {"type": "json_schema", "name": "city", "schema": schema,
                                                 "strict": True}})
    jsonschema.validate(json.loads(r.output_text), schema)
    assert r.text.format.type == "json_schema"  # type: ignore[union-attr]


def test_function_call_round_trip(client: OpenAI, http: httpx.Client) -> None:
    tools = [{"type": "function", "name": "get_weather", "description": "Weather for a city",
              "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                             "required": ["location"]}}]
    r = client.responses.create(model="test/echo", input="Weather in Paris?", tools=tools)  # type: ignore[arg-type]
    call = r.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == {"location": "test"}
    events = stream(http, input="Weather in Paris?", tools=tools)
    types = [e["type"] for e in events]
    assert "response.function_call_arguments.delta" in types and "response.function_call_arguments.done" in types
    r2 = client.responses.create(model="test/echo", previous_response_id=r.id, tools=tools,  # type: ignore[arg-type]
                                 input=[{"type": "function_call_output", "call_id": call.call_id,
                                         "output": '{"temp": 21}'}])
    assert r2.output_text == 'The get_weather tool returned: {"temp": 21}'
    bad = http.post("/v1/responses", json={"model": "test/echo", "previous_response_id": r.id, "input": [
        {"type": "function_call_output", "call_id": "call_nope", "output": "x"}]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "input[0].call_id"


def test_reasoning_and_logprobs_events_validate(http: httpx.Client) -> None:
    events = stream(http, input="[[reasoning:think hard]] answer", top_logprobs=2,
                    include=["message.output_text.logprobs"])
    types = [e["type"] for e in events]
    assert "response.reasoning.delta" in types
    final = events[-1]["response"]
    assert [it["type"] for it in final["output"]] == ["reasoning", "message"]
    assert final["output"][0]["content"] == [{"type": "reasoning_text", "text": "think hard"}]
    delta = next(e for e in events if e["type"] == "response.output_text.delta")
    assert delta["logprobs"][0]["token"] == delta["delta"]


def test_obfuscation_only_when_asked(http: httpx.Client) -> None:
    plain = stream(http, input="a b")
    assert all("obfuscation" not in e for e in plain)
    padded = stream(http, input="a b", stream_options={"include_obfuscation": True})
    assert all(e.get("obfuscation") for e in padded if e["type"] == "response.output_text.delta")


def test_idempotency_key_returns_first_response(http: httpx.Client) -> None:
    key = f"idem-{uuid.uuid4()}"
    a = http.post("/v1/responses", json={"model": "test/echo", "input": "once"}, headers={"idempotency-key": key})
    b = http.post("/v1/responses", json={"model": "test/echo", "input": "once"}, headers={"idempotency-key": key})
    assert a.json()["id"] == b.json()["id"]
    c = http.post("/v1/responses", json={"model": "test/echo", "input": "once", "stream": True},
                  headers={"idempotency-key": key})
    events, _ = parse_sse(c.content)
    validate_stream(events)
    assert events[-1]["response"]["id"] == a.json()["id"]
    other = http.post("/v1/responses", json={"model": "test/echo", "input": "something else"},
                      headers={"idempotency-key": key})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"


def test_tenants_are_isolated(server: str, http: httpx.Client) -> None:
    rid = create(http, input="mine")["id"]
    other = httpx.get(f"{server}/v1/responses/{rid}", headers={"authorization": "Bearer someone-else"})
    assert other.status_code == 404
    other = httpx.post(f"{server}/v1/responses", headers={"x-api-key": "someone-else"},
                       json={"model": "test/echo", "input": "x", "previous_response_id": rid})
    assert other.status_code == 404
    same_key_other_header = httpx.get(f"{server}/v1/responses/{rid}", headers={"x-api-key": "test-key"})
    assert same_key_other_header.status_code == 200


def test_models_list(client: OpenAI) -> None:
    ids = [m.id for m in client.models.list()]
    assert "test/echo" in ids


def test_client_disconnect_mid_stream_leaves_a_failed_record(server: str, http: httpx.Client) -> None:
    body = {"model": "test/echo", "input": "[[long:300]] [[delay:20]]", "stream": True}
    auth = {"authorization": "Bearer test-key"}  # the `http` fixture's tenant
    with httpx.Client(base_url=server, headers=auth, timeout=30) as c, \
            c.stream("POST", "/v1/responses", json=body) as r:
        lines = r.iter_lines()
        created = next(json.loads(line[6:]) for line in lines if line.startswith("data: "))
        rid = created["response"]["id"]
        for _, _line in zip(range(20), lines, strict=False):
            pass
    assert http.get(f"/v1/responses/{rid}").json()["status"] in ("in_progress", "failed")

    def settled() -> dict[str, Any] | None:
        r: dict[str, Any] = http.get(f"/v1/responses/{rid}").json()
        return None if r["status"] == "in_progress" else r

    stored = wait_until(settled, what="a dropped stream must not stay in_progress")
    validate_response(stored)
    assert stored["status"] == "failed" and stored["error"]["code"] == "client_disconnected"


def test_encrypted_reasoning_only_when_included(http: httpx.Client) -> None:
    plain = create(http, input="[[reasoning:secret plan]] hi")
    reasoning = plain["output"][0]
    assert reasoning["type"] == "reasoning" and "encrypted_content" not in reasoning
    events = stream(http, input="[[reasoning:secret plan]] hi")
    assert "encrypted_content" not in json.dumps(events)
    rid = plain["id"]
    assert "encrypted_content" not in http.get(f"/v1/responses/{rid}").json()["output"][0]
    kept = http.get(f"/v1/responses/{rid}", params={"include[]": "reasoning.encrypted_content"}).json()
    assert kept["output"][0]["encrypted_content"] == "test:secret plan"  # stored for the chain all along
    asked = create(http, input="[[reasoning:secret plan]] hi", include=["reasoning.encrypted_content"])
    assert asked["output"][0]["encrypted_content"] == "test:secret plan"
