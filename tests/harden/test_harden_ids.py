"""Fault 5: a NUL byte in an id (``%00`` in a path, ``\\u0000`` in a body
or a WebSocket frame) is answered like any unknown id (404) or a bad value
(400), never a 500, on SQLite and on PostgreSQL alike (PostgreSQL's text
type cannot hold NUL: the driver raised)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from responsa.api.app import create_app
from responsa.config import load_settings
from tests.helpers import serve_in_thread
from tests.store.backends import admin, in_own_loop, new_schema_name, reachable_postgres, with_search_path


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path_factory.mktemp('ids') / 'r.db'}"
        schema = None
    else:
        pg, errors = in_own_loop(reachable_postgres)
        if pg is None:
            pytest.skip("PostgreSQL not reachable: " + "; ".join(errors))
        schema = new_schema_name()
        in_own_loop(lambda: admin(pg, f'CREATE SCHEMA "{schema}"'))
        database_url = with_search_path(pg, schema)
    try:
        settings = load_settings(None, database_url=database_url, default_model="test/echo")
        with serve_in_thread(create_app(settings), lifespan="on") as url:
            yield url
    finally:
        if schema is not None:
            in_own_loop(lambda: admin(pg, f'DROP SCHEMA "{schema}" CASCADE'))


NUL = "%00"
PATHS = [
    ("GET", f"/v1/responses/resp_{NUL}x"), ("DELETE", f"/v1/responses/resp_{NUL}x"),
    ("POST", f"/v1/responses/resp_{NUL}x/cancel"), ("GET", f"/v1/responses/resp_{NUL}x/input_items"),
    ("GET", f"/v1/responses/{NUL}?stream=true"),
    ("GET", f"/v1/conversations/conv_{NUL}"), ("POST", f"/v1/conversations/conv_{NUL}"),
    ("DELETE", f"/v1/conversations/conv_{NUL}"), ("GET", f"/v1/conversations/conv_{NUL}/items"),
    ("POST", f"/v1/conversations/conv_{NUL}/items"), ("GET", f"/v1/conversations/conv_{NUL}/items/msg_{NUL}"),
    ("DELETE", f"/v1/conversations/conv_{NUL}/items/msg_{NUL}"), ("GET", f"/v1/prompts/pmpt_{NUL}"),
    ("DELETE", f"/v1/prompts/pmpt_{NUL}"), ("GET", f"/v1/prompts/pmpt_{NUL}/versions"),
    ("POST", f"/v1/prompts/pmpt_{NUL}/versions"), ("GET", f"/v1/models/{NUL}"),
]


def _check(r: httpx.Response, statuses: tuple[int, ...]) -> dict[str, Any]:
    assert r.status_code in statuses, (r.status_code, r.text)
    error: dict[str, Any] = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_nul_in_a_path_id_is_404(backend: str, method: str, path: str) -> None:
    body = {"items": [{"role": "user", "content": "x"}]} if path.endswith("items") else {}
    r = httpx.request(method, backend + path, json=body if method == "POST" else None, timeout=10,
                      headers={"authorization": "Bearer nul"})
    _check(r, (404,))


@pytest.mark.parametrize("query", ["after=resp_%00", "before=%00", "starting_after=%00", "order=%00",
                                   "include[]=%00"])
def test_nul_in_a_query_parameter_is_a_4xx(backend: str, query: str) -> None:
    created = httpx.post(f"{backend}/v1/responses", json={"model": "test/echo", "input": "hi"}, timeout=10,
                         headers={"authorization": "Bearer nul"}).json()
    for path in (f"/v1/responses/{created['id']}/input_items", f"/v1/responses/{created['id']}",
                 "/v1/prompts"):
        r = httpx.get(f"{backend}{path}?{query}", timeout=10, headers={"authorization": "Bearer nul"})
        assert r.status_code < 500, (path, query, r.text)


BODIES: list[tuple[str, dict[str, Any], int]] = [
    ("/v1/responses", {"previous_response_id": "resp_\x00"}, 404),
    ("/v1/responses", {"conversation": "conv_\x00"}, 404),
    ("/v1/responses", {"conversation": {"id": "conv_\x00"}}, 404),
    ("/v1/responses", {"input": [{"type": "item_reference", "id": "msg_\x00"}]}, 404),
    ("/v1/responses", {"input": [{"type": "message", "role": "user", "content": "x", "id": "msg_\x00"}]}, 400),
    ("/v1/responses", {"prompt": {"id": "pmpt_\x00"}}, 404),
    ("/v1/responses", {"input": [{"type": "function_call_output", "call_id": "c\x00", "output": "x"}]}, 400),
    ("/v1/responses/compact", {"previous_response_id": "resp_\x00"}, 404),
    ("/v1/responses/input_tokens", {"previous_response_id": "resp_\x00"}, 404),
    ("/v1/conversations", {"items": [{"type": "message", "role": "user", "content": "x", "id": "m\x00"}]}, 400),
]


@pytest.mark.parametrize(("path", "body", "status"), BODIES)
def test_nul_in_a_body_id(backend: str, path: str, body: dict[str, Any], status: int) -> None:
    full = {"model": "test/echo", "input": "hi", **body} if path.startswith("/v1/responses") else body
    r = httpx.post(backend + path, json=full, timeout=10, headers={"authorization": "Bearer nul"})
    _check(r, (status,))


def test_nul_in_a_websocket_frame(backend: str) -> None:
    with connect(backend.replace("http://", "ws://") + "/v1/responses") as conn:
        conn.send(json.dumps({"type": "response.create", "model": "test/echo", "input": "hi",
                              "previous_response_id": "resp_\x00"}))
        frame = json.loads(conn.recv(timeout=10))
    assert frame["type"] == "error" and frame["status"] == 404, frame


def test_text_with_nul_is_still_fine(backend: str) -> None:
    """Only ids are refused: NUL in content is data (stored as escaped JSON)."""
    r = httpx.post(f"{backend}/v1/responses", json={"model": "test/echo", "input": "a\x00b",
                                                    "metadata": {"k": "v\x00"}},
                   timeout=10, headers={"authorization": "Bearer nul"})
    assert r.status_code == 200, r.text
    got = httpx.get(f"{backend}/v1/responses/{r.json()['id']}", timeout=10, headers={"authorization": "Bearer nul"})
    assert got.json()["output"][0]["content"][0]["text"] == "a\x00b"
