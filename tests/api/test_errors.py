"""Bad input gets a clear 4xx in the OpenAI error shape, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest


def err(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    e: dict[str, Any] = body["error"]
    return e


@pytest.mark.parametrize(("body", "param"), [
    ({"input": "x", "temperature": "hot"}, "temperature"),
    ({"input": "x", "temperature": 3}, "temperature"),
    ({"input": "x", "top_p": 1.5}, "top_p"),
    ({"input": "x", "max_output_tokens": 5}, "max_output_tokens"),
    ({"input": "x", "top_logprobs": 21}, "top_logprobs"),
    ({"input": "x", "truncation": "sometimes"}, "truncation"),
    ({"input": "x", "service_tier": "gold"}, "service_tier"),
    ({"input": "x", "store": "yes"}, "store"),
    ({"input": 42}, "input"),
    ({"input": [{"role": "wizard", "content": "x"}]}, "input[0].role"),
    ({"input": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "input[0].content[0].type"),
    ({"input": [{"type": "function_call_output", "call_id": "c", "output": 5}]}, "input[0].output"),
    ({"input": [{"type": "telepathy"}]}, "input[0].type"),
    ({"input": "x", "include": ["everything"]}, "include[0]"),
    ({"input": "x", "metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
    ({"input": "x", "metadata": {"k": "v" * 513}}, "metadata.k"),
    ({"input": "x", "metadata": {"k" * 65: "v"}}, None),
    ({"input": "x", "text": {"format": {"type": "xml"}}}, "text.format.type"),
    ({"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}, "text.format.schema"),
    ({"input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"input": "x", "tool_choice": "sometimes"}, "tool_choice"),
    ({"input": "x", "tool_choice": "required"}, "tool_choice"),
    ({"input": "x", "tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name"),
    ({"input": "x", "tools": [{"type": "computer_use"}]}, "tools[0].type"),
    ({"input": "x", "stream_options": {"include_usage": True}}, "stream_options.include_usage"),
    ({"input": "x", "frobnicate": True}, "frobnicate"),
    ({"input": "x", "safety_identifier": "s" * 129}, "safety_identifier"),
    ({}, "input"),
])
def test_invalid_parameters_are_400_naming_the_param(http: httpx.Client, body: dict[str, Any],
                                                      param: str | None) -> None:
    e = err(http.post("/v1/responses", json={"model": "test/echo", **body}), 400)
    assert e["type"] == "invalid_request_error"
    if param is not None:
        assert e["param"] == param


def test_malformed_json_and_non_object(http: httpx.Client) -> None:
    e = err(http.post("/v1/responses", content=b"{not json", headers={"content-type": "application/json"}), 400)
    assert e["code"] == "invalid_json"
    err(http.post("/v1/responses", content=b"[1, 2]"), 400)
    err(http.post("/v1/responses", content=b""), 400)


def test_unknown_model_is_404(http: httpx.Client) -> None:
    e = err(http.post("/v1/responses", json={"model": "nowhere/model", "input": "x"}), 404)
    assert e["code"] == "model_not_found" and e["param"] == "model"


def test_unknown_ids_are_404(http: httpx.Client) -> None:
    assert err(http.get("/v1/responses/resp_missing"), 404)["param"] == "response_id"
    err(http.delete("/v1/responses/resp_missing"), 404)
    err(http.get("/v1/responses/resp_missing/input_items"), 404)
    e = err(http.post("/v1/responses", json={"model": "test/echo", "input": "x",
                                             "previous_response_id": "resp_missing"}), 404)
    assert e["code"] == "previous_response_not_found"
    e = err(http.post("/v1/responses", json={"model": "test/echo",
                                             "input": [{"type": "item_reference", "id": "msg_missing"}]}), 404)
    assert e["param"] == "input[0].id"


def test_bad_list_params(http: httpx.Client) -> None:
    rid = http.post("/v1/responses", json={"model": "test/echo", "input": "x"}).json()["id"]
    assert err(http.get(f"/v1/responses/{rid}/input_items", params={"limit": "0"}), 400)["param"] == "limit"
    assert err(http.get(f"/v1/responses/{rid}/input_items", params={"order": "up"}), 400)["param"] == "order"
    err(http.get(f"/v1/responses/{rid}", params={"stream": "true", "starting_after": "x"}), 400)


def test_oversize_body_is_413(http: httpx.Client) -> None:
    huge = {"model": "test/echo", "input": "x" * (17 * 1024 * 1024)}
    assert err(http.post("/v1/responses", json=huge), 413)["code"] == "request_too_large"


def test_unknown_route_and_method(http: httpx.Client) -> None:
    err(http.get("/v1/nothing-here"), 404)
    err(http.put("/v1/responses"), 405)


def test_item_reference_resolves_stored_items(http: httpx.Client) -> None:
    first = http.post("/v1/responses", json={"model": "test/echo", "input": "remember me"}).json()
    ref = {"type": "item_reference", "id": first["output"][0]["id"]}
    body = {"model": "test/echo", "input": [ref, {"role": "user", "content": "[[history]]"}]}
    r = http.post("/v1/responses", json=body)
    assert r.status_code == 200
    assert r.json()["output"][0]["content"][0]["text"].startswith("assistant: remember me")


@pytest.mark.parametrize("key", ["model", "stream", "messages", "store", "tools"])
def test_model_settings_cannot_override_what_the_server_builds(http: httpx.Client, key: str) -> None:
    body = {"model": {"model": "test/echo", "settings": {key: "x"}}, "input": "x"}
    e = err(http.post("/v1/responses", json=body), 400)
    assert e["param"] == f"model.settings.{key}"
    ok = http.post("/v1/responses", json={"model": {"model": "test/echo", "settings": {"seed": 7}}, "input": "x"})
    assert ok.status_code == 200
