"""``truncation``: a test model with a 60-token context window."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.helpers import Serve, server_settings, validate_response

WINDOW = 60


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, serve_responsa: Serve) -> Iterator[httpx.Client]:
    settings = server_settings(tmp_path_factory.mktemp("trunc"))
    settings.providers["test"].options["context_window"] = WINDOW
    with serve_responsa(settings) as url, \
            httpx.Client(base_url=url, headers={"authorization": "Bearer k"}, timeout=30) as c:
        yield c


def words(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def create(c: httpx.Client, **body: Any) -> httpx.Response:
    return c.post("/v1/responses", json=body)


def history_of(r: httpx.Response) -> str:
    assert r.status_code == 200, r.text
    body = r.json()
    validate_response(body)
    text: str = body["output"][0]["content"][0]["text"]
    return text


def test_fits_unchanged(small: httpx.Client) -> None:
    r = create(small, input=[user("a"), user("b"), user("[[history]]")], truncation="auto")
    assert history_of(r) == "user: a | user: b | user:"
    assert r.json()["truncation"] == "auto"


def test_disabled_is_a_clear_400(small: httpx.Client) -> None:
    r = create(small, input=[user(words(40, "old")), user("[[history]]")])
    assert r.status_code == 400
    err = r.json()["error"]
    assert (err["param"], err["code"]) == ("input", "context_length_exceeded")
    assert "truncation" in err["message"]
    assert small.post("/v1/responses/input_tokens", json={"input": [user(words(40, "old"))]}).status_code == 200


def test_auto_drops_the_oldest_items_keeps_instructions(small: httpx.Client) -> None:
    r = create(small, input=[user(words(40, "old")), user("recent"), user("[[history]]")], truncation="auto",
               instructions="Be brief.")
    assert history_of(r) == "user: recent | user:"
    r = create(small, input=[user(words(40, "old")), user("[[instructions]]")], truncation="auto",
               instructions="Be brief.")
    assert history_of(r) == "Be brief."


def test_auto_truncates_a_previous_response_chain(small: httpx.Client) -> None:
    first = create(small, input=f"Reply with exactly: {words(12, 'w')}")
    assert first.status_code == 200
    second = create(small, previous_response_id=first.json()["id"], input=words(12, "v"), truncation="auto")
    assert second.status_code == 200
    r = create(small, previous_response_id=second.json()["id"], input="[[history]]", truncation="auto")
    assert history_of(r).startswith("assistant: v0 v1")  # the first turn no longer fits


def test_never_splits_a_call_from_its_output(small: httpx.Client) -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "c1", "output": words(25, "out")}
    r = create(small, input=[user(words(20, "old")), call, output, user("[[history]]")], truncation="auto")
    # dropping only "old" still leaves 60+ tokens: the call cannot go without its output, so both go
    assert history_of(r) == "user:"
    r = create(small, input=[user(words(30, "old")), call, {**output, "output": "ok"}, user("[[history]]")],
               truncation="auto")
    assert r.status_code == 200
    body = small.post("/v1/responses/input_tokens", json={
        "input": [user(words(30, "old")), call, {**output, "output": "ok"}, user("x")], "truncation": "auto"}).json()
    assert body["input_tokens"] <= WINDOW


def test_reserve_for_max_output_tokens(small: httpx.Client) -> None:
    r = create(small, input=[user(words(25, "a")), user("[[history]]")], max_output_tokens=40)
    assert r.status_code == 400 and "max_output_tokens" in r.json()["error"]["message"]
    r = create(small, input=[user(words(25, "a")), user("[[history]]")], max_output_tokens=40, truncation="auto")
    assert history_of(r) == "user:"


def test_too_large_even_when_truncated(small: httpx.Client) -> None:
    r = create(small, input=[user("hi"), user(words(80, "big"))], truncation="auto")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"
