"""Two real server processes sharing one PostgreSQL database, as replicas
behind a load balancer would: any replica serves any request."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import httpx
import openai
import pytest
from openai import OpenAI

from tests.helpers import parse_sse, server_process, validate_response, validate_stream, wait_healthy
from tests.store.backends import admin, in_own_loop, new_schema_name, with_search_path

KEY = "replica-test-key"


@pytest.fixture(scope="module")
def replicas(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """``(replica A, replica B, database URL)``: both start at once on an
    empty schema, so their migrations race for real."""
    schema = new_schema_name()
    in_own_loop(lambda: admin(pg_url, f'CREATE SCHEMA "{schema}"'))
    database_url = with_search_path(pg_url, schema)
    logs = tmp_path_factory.mktemp("replicas")
    try:
        with server_process(database_url, clean_env=True, log=logs / "a.log", wait=False) as (a, url_a), \
                server_process(database_url, clean_env=True, log=logs / "b.log", wait=False) as (b, url_b):
            wait_healthy(f"{url_a}/health", a, log=logs / "a.log")
            wait_healthy(f"{url_b}/health", b, log=logs / "b.log")
            yield url_a, url_b, database_url
    finally:
        in_own_loop(lambda: admin(pg_url, f'DROP SCHEMA "{schema}" CASCADE'))


def _client(url: str) -> OpenAI:
    return OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)


def _valid(resp: Any) -> Any:
    validate_response(resp.model_dump(mode="json", exclude_unset=True))
    return resp


def test_created_on_a_continues_on_b(replicas: tuple[str, str, str]) -> None:
    url_a, url_b, _ = replicas
    a, b = _client(url_a), _client(url_b)
    first = _valid(a.responses.create(model="test/echo", input="remember the word zebra"))
    assert first.status == "completed"

    seen = _valid(b.responses.retrieve(first.id))
    assert (seen.id, seen.output_text) == (first.id, "remember the word zebra")
    items = b.responses.input_items.list(first.id)
    assert [it.content[0].text for it in items.data] == ["remember the word zebra"]  # type: ignore[union-attr]

    second = _valid(b.responses.create(model="test/echo", input="[[history]] second", previous_response_id=first.id))
    assert "remember the word zebra" in second.output_text
    third = _valid(a.responses.create(model="test/echo", input="[[history]] third", previous_response_id=second.id))
    assert "remember the word zebra" in third.output_text and "second" in third.output_text

    # Deleted on B is gone on A, for retrieval and as a previous response.
    b.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        a.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        a.responses.create(model="test/echo", input="x", previous_response_id=first.id)


def test_streamed_on_a_is_complete_on_b(replicas: tuple[str, str, str]) -> None:
    """The terminal response is stored before the terminal event is sent, so
    by the time a client sees ``response.completed`` every replica has it."""
    url_a, url_b, _ = replicas
    raw = httpx.post(f"{url_a}/v1/responses", headers={"authorization": f"Bearer {KEY}"}, timeout=30,
                     json={"model": "test/echo", "input": "[[long:20]]", "stream": True})
    events, done = parse_sse(raw.content)
    assert done
    validate_stream(events)
    final = events[-1]["response"]
    assert final["status"] == "completed"
    stored = httpx.get(f"{url_b}/v1/responses/{final['id']}", headers={"authorization": f"Bearer {KEY}"}).json()
    validate_response(stored)
    assert stored["output"] == final["output"]


def test_one_idempotency_key_one_response_across_replicas(replicas: tuple[str, str, str]) -> None:
    """Retries of one POST landing on different replicas at the same moment
    (as a client retry through a load balancer would) make one response."""
    url_a, url_b, database_url = replicas
    key = f"idem-{uuid.uuid4().hex}"

    def post(url: str) -> httpx.Response:
        return httpx.post(f"{url}/v1/responses", timeout=30,
                          headers={"authorization": f"Bearer {KEY}", "idempotency-key": key},
                          json={"model": "test/echo", "input": "[[delay:30]] [[long:8]]"})

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(post, [url_a, url_b, url_a, url_b]))
    for r in results:
        assert r.status_code == 200, r.text
        validate_response(r.json())
    assert {r.json()["id"] for r in results} == {results[0].json()["id"]}
    assert {r.json()["status"] for r in results} == {"completed"}

    async def rows() -> int:
        conn = await asyncpg.connect(database_url)
        try:
            count: int = await conn.fetchval("SELECT count(*) FROM responses WHERE idempotency_key = $1", key)
            return count
        finally:
            await conn.close()

    assert in_own_loop(rows) == 1
