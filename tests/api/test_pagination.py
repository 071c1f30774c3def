"""One pagination rule on every list endpoint (``store/paging.py``): cursors
are exclusive and follow ``order``; a cursor naming no entry of the list is
a 400 ``invalid_request_error`` naming the cursor, never an empty page."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI


def _ids(body: dict[str, Any], key: str = "id") -> list[Any]:
    assert body["object"] == "list"
    return [entry[key] for entry in body["data"]]


def _lists(client: OpenAI, http: httpx.Client) -> dict[str, tuple[str, list[str], str]]:
    """Each list endpoint with five entries: ``(path, keys oldest first, cursor field)``."""
    inputs = [{"type": "message", "role": "user", "content": f"m{i}"} for i in range(5)]
    resp = client.responses.create(model="test/echo", input=inputs)  # type: ignore[arg-type]
    input_ids = [it.id for it in client.responses.input_items.list(resp.id, order="asc").data]
    conv = client.conversations.create(items=inputs)  # type: ignore[arg-type]
    conv_ids = [it.id for it in client.conversations.items.list(conv.id, order="asc").data]  # type: ignore[union-attr]
    pid = f"pmpt_page_{uuid.uuid4().hex[:8]}"
    assert http.post("/v1/prompts", json={"id": pid, "instructions": "v1"}).status_code == 200
    for n in range(2, 6):
        assert http.post(f"/v1/prompts/{pid}/versions", json={"instructions": f"v{n}"}).status_code == 200
    return {
        "input_items": (f"/v1/responses/{resp.id}/input_items", input_ids, "id"),
        "conversation_items": (f"/v1/conversations/{conv.id}/items", conv_ids, "id"),
        "prompt_versions": (f"/v1/prompts/{pid}/versions", ["1", "2", "3", "4", "5"], "version"),
    }


@pytest.fixture(scope="module")
def lists(server: str) -> dict[str, tuple[str, list[str], str]]:
    with httpx.Client(base_url=server, headers={"authorization": "Bearer test-key"}, timeout=30) as http:
        return _lists(OpenAI(base_url=f"{server}/v1", api_key="test-key", max_retries=0), http)


@pytest.mark.parametrize("name", ["input_items", "conversation_items", "prompt_versions"])
def test_cursors_are_exclusive_and_follow_order(http: httpx.Client, lists: dict[str, Any], name: str) -> None:
    path, keys, field = lists[name]
    assert len(keys) == 5

    def page(**params: Any) -> tuple[list[Any], bool]:
        r = http.get(path, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        keys = _ids(body, field)
        # first_id/last_id are the cursors that page on from here
        assert (body["first_id"], body["last_id"]) == ((keys[0], keys[-1]) if keys else (None, None))
        return keys, body["has_more"]

    assert page(order="asc") == (keys, False)
    assert page(order="desc") == (keys[::-1], False)
    assert page(order="asc", limit=2) == (keys[:2], True)
    assert page(order="asc", limit=2, after=keys[1]) == (keys[2:4], True)
    assert page(order="asc", after=keys[3]) == (keys[4:], False)
    assert page(order="desc", after=keys[3]) == (keys[2::-1], False)
    assert page(order="asc", after=keys[4]) == ([], False)  # a real cursor at the end: an empty last page


@pytest.mark.parametrize("name", ["input_items", "conversation_items", "prompt_versions"])
def test_unknown_after_is_a_400_naming_it(http: httpx.Client, lists: dict[str, Any], name: str) -> None:
    path, _, _ = lists[name]
    for order in ("asc", "desc"):
        r = http.get(path, params={"after": "msg_never_existed", "order": order})
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == "after"
        assert "msg_never_existed" in error["message"]


def test_unknown_before_is_a_400_naming_it(http: httpx.Client, lists: dict[str, Any]) -> None:
    path, _, _ = lists["input_items"]
    r = http.get(path, params={"before": "msg_never_existed"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "before"
    path, _, _ = lists["prompt_versions"]
    r = http.get(path, params={"before": "99"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "before"


def test_prompt_list_cursors(http: httpx.Client, lists: dict[str, Any]) -> None:
    listed = http.get("/v1/prompts", params={"order": "asc", "limit": 100}).json()
    ids = _ids(listed)
    assert ids, "the module's prompt is listed"
    after_first = http.get("/v1/prompts", params={"order": "asc", "limit": 100, "after": ids[0]}).json()
    assert _ids(after_first) == ids[1:]
    r = http.get("/v1/prompts", params={"after": "pmpt_never_existed"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "after"


@pytest.mark.parametrize("call", [
    lambda c, rid, cid: c.responses.input_items.list(rid, after="msg_never_existed"),
    lambda c, rid, cid: c.conversations.items.list(cid, after="msg_never_existed"),
])
def test_openai_client_sees_a_bad_request(client: OpenAI, lists: dict[str, Any],
                                          call: Callable[[OpenAI, str, str], Any]) -> None:
    rid = lists["input_items"][0].split("/")[3]
    cid = lists["conversation_items"][0].split("/")[3]
    with pytest.raises(BadRequestError) as err:
        call(client, rid, cid)
    assert err.value.body["param"] == "after"  # type: ignore[index]
