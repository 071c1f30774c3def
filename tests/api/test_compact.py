"""``POST /v1/responses/compact`` and continuing from its compaction item."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.helpers import Serve, server_settings, validate_response

CONVERSATION = [
    {"type": "message", "role": "user", "content": "Remember the code word: slate."},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "OK."}]},
    {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Compress this."}]},
]


def compact(http: httpx.Client, **body: Any) -> dict[str, Any]:
    r = http.post("/v1/responses/compact", json={"model": "test/echo", **body})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    result: dict[str, Any] = r.json()
    return result


def test_compact_returns_user_messages_and_one_compaction_item(http: httpx.Client) -> None:
    out = compact(http, input=CONVERSATION, prompt_cache_key="k")
    assert out["object"] == "response.compaction" and out["id"].startswith("resp_")
    assert isinstance(out["created_at"], int)
    usage = out["usage"]
    assert usage["input_tokens"] > 0 and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_tokens_details"] == {"cached_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}
    *kept, item = out["output"]
    assert [(m["type"], m["role"], m["content"][0]["text"]) for m in kept] == [
        ("message", "user", "Remember the code word: slate."), ("message", "user", "Compress this.")]
    assert all(m["id"].startswith("msg_") and m["status"] == "completed" for m in kept)
    assert set(item) == {"type", "id", "encrypted_content"}
    assert item["type"] == "compaction" and item["id"].startswith("cmp_")
    assert "slate" not in item["encrypted_content"], "opaque, not readable JSON"


def test_continue_from_compacted_output(http: httpx.Client, client: OpenAI) -> None:
    out = compact(http, input=CONVERSATION)
    raw = http.post("/v1/responses", json={"input": [*out["output"], {"role": "user", "content": "[[history]]"}]})
    assert raw.status_code == 200, raw.text
    validate_response(raw.json())
    # the compacted context comes back in its original order, without duplicated user messages
    assert raw.json()["output"][0]["content"][0]["text"].startswith(
        "user: Remember the code word: slate. | assistant: OK. | user: Compress this. | user:")
    # the compaction item may also arrive without the verbatim copies, and through a stored chain
    again = client.responses.create(model="test/echo", input=[out["output"][-1]])
    follow = client.responses.create(model="test/echo", previous_response_id=again.id, input="[[history]]")
    assert follow.output_text.startswith("user: Remember the code word: slate. | assistant: OK. | user: Compress")


def test_compact_a_stored_chain(http: httpx.Client, client: OpenAI) -> None:
    first = client.responses.create(model="test/echo", input="Reply with exactly: alpha")
    out = compact(http, previous_response_id=first.id, input="and beta")
    resp = client.responses.create(model="test/echo",
                                   input=[out["output"][-1], {"role": "user", "content": "[[history]]"}])
    assert resp.output_text.startswith("user: Reply with exactly: alpha | assistant: alpha | user: and beta | user:")


def _tamper(content: str) -> str:
    version, payload, mac = content.split(".")
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged = base64.urlsafe_b64encode(raw[:-1] + bytes([raw[-1] ^ 1])).rstrip(b"=").decode()
    return f"{version}.{forged}.{mac}"


@pytest.mark.parametrize("mangle", [_tamper, lambda c: c[:-2], lambda c: "v1.AAAA.AAAA", lambda c: "garbage"])
def test_tampered_compaction_is_rejected(http: httpx.Client, mangle: Any) -> None:
    item = compact(http, input=CONVERSATION)["output"][-1]
    r = http.post("/v1/responses", json={"input": [{**item, "encrypted_content": mangle(item["encrypted_content"])},
                                                   {"role": "user", "content": "go on"}]})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_encrypted_content"
    assert r.json()["error"]["param"] == "input[0].encrypted_content"


def test_compaction_is_bound_to_the_api_key(server: str, http: httpx.Client) -> None:
    item = compact(http, input=CONVERSATION)["output"][-1]
    r = httpx.post(f"{server}/v1/responses", headers={"authorization": "Bearer someone-else"},
                   json={"input": [item, {"role": "user", "content": "go on"}]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_encrypted_content"


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"input": CONVERSATION}, "model", "missing_required_parameter"),
    ({"model": "test/echo", "input": "x", "stream": True}, "stream", "unknown_parameter"),
    ({"model": "test/echo", "input": "x", "tools": []}, "tools", "unknown_parameter"),
    ({"model": "test/echo"}, "input", "missing_required_parameter"),
    ({"model": "test/echo", "input": 5}, "input", "invalid_type"),
    ({"model": "test/echo", "input": "x", "previous_response_id": "resp_nope"}, "previous_response_id",
     "previous_response_not_found"),
])
def test_compact_rejects_bad_requests(http: httpx.Client, body: dict[str, Any], param: str, code: str) -> None:
    r = http.post("/v1/responses/compact", json=body)
    assert r.status_code in (400, 404), r.text
    assert (r.json()["error"]["param"], r.json()["error"]["code"]) == (param, code)


def test_compaction_item_survives_a_restart_without_configured_secret(tmp_path: Any, serve_responsa: Serve) -> None:
    settings = server_settings(tmp_path)
    assert settings.secret_key is None
    headers = {"authorization": "Bearer restart-key"}
    with serve_responsa(settings) as url:
        out = httpx.post(f"{url}/v1/responses/compact", json={"model": "test/echo", "input": CONVERSATION},
                         headers=headers).json()
    with serve_responsa(settings) as url:
        r = httpx.post(f"{url}/v1/responses", headers=headers, json={
            "model": "test/echo", "input": [*out["output"], {"role": "user", "content": "[[history]]"}]})
    assert r.status_code == 200, r.text
    assert "slate" in r.json()["output"][0]["content"][0]["text"]
