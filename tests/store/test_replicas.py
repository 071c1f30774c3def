"""Two real server processes sharing one PostgreSQL database, as replicas
behind a load balancer would: any replica serves any request."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import openai
import pytest
from openai import OpenAI

from tests.helpers import parse_sse, validate_response, validate_stream
from tests.store.backends import admin, in_own_loop, new_schema_name, with_search_path

KEY = "replica-test-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(database_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RESPONSA_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "responsa.cli", "serve", "--port", str(port), "--database-url", database_url,
             "--model", "test/echo", "--log-level", "warning"],
            stdout=out, stderr=subprocess.STDOUT, env=env)
    return proc, f"http://127.0.0.1:{port}"


def _wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"replica at {url} did not become healthy:\n{log.read_text()}")


@pytest.fixture(scope="module")
def replicas(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """``(replica A, replica B, database URL)``: both start at once on an
    empty schema, so their migrations race for real."""
    schema = new_schema_name()
    in_own_loop(lambda: admin(pg_url, f'CREATE SCHEMA "{schema}"'))
    database_url = with_search_path(pg_url, schema)
    logs = tmp_path_factory.mktemp("replicas")
    started: list[subprocess.Popen[bytes]] = []
    try:
        a, url_a = _start(database_url, logs / "a.log")
        started.append(a)
        b, url_b = _start(database_url, logs / "b.log")
        started.append(b)
        _wait_healthy(a, url_a, logs / "a.log")
        _wait_healthy(b, url_b, logs / "b.log")
        yield url_a, url_b, database_url
    finally:
        for proc in started:
            proc.terminate()
        for proc in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
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
