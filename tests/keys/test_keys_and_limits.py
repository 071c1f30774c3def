"""Managed API keys, per-key limits and the usage report, against real
servers: ``responsa keys`` on the command line, limits in one process, and
limits shared by two replica processes through a real Redis, where N
concurrent requests against a limit of M must admit exactly M."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from responsa.api.app import create_app
from responsa.config import load_settings
from tests.helpers import parse_sse, serve_in_thread, validate_response, validate_stream
from tests.observability.conftest import start_serve, stop, wait_until

REDIS_URL = os.environ.get("RESPONSA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ADMIN = "admin-key-for-usage"


def keys_cli(db: str, *args: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "responsa.cli", "keys", "--database-url", db, "--json", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else None


def post(url: str, key: str | None, body: dict[str, Any] | None = None, **kw: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{url}/v1/responses", json=body or {"model": "test/echo", "input": "hello"},
                      headers=headers, timeout=30, **kw)


@pytest.fixture
def one_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(url, database URL)`` of an in-process server (limits in memory)."""
    db = f"sqlite:///{tmp_path}/keys.db"
    asyncio.run(_create_key(db))  # a key exists from the start: a new key is refused until the server loads it
    settings = load_settings(None, database_url=db, default_model="test/echo", admin_keys=[ADMIN])
    app = create_app(settings)
    with serve_in_thread(app, lifespan="on") as url:
        yield url, db


def test_cli_manages_keys_without_restart(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/cli.db"
    proc, url = start_serve(["--database-url", db, "--model", "test/echo"], tmp_path / "server.log")
    try:
        assert post(url, None).status_code == 200  # no key exists yet: open, as before
        created = keys_cli(db, "create", "team-a", "--rpm", "100")
        secret = created["key"]
        assert secret.startswith("rsk-") and created["name"] == "team-a" and created["requests_per_minute"] == 100
        wait_until(lambda: post(url, None).status_code == 401)  # the first key closes the door, no restart
        assert post(url, "some-other-key").json()["error"]["code"] == "invalid_api_key"
        r = post(url, secret)
        assert r.status_code == 200 and r.headers["x-ratelimit-limit-requests"] == "100"
        validate_response(r.json())
        listed = keys_cli(db, "list")
        assert [k["id"] for k in listed] == [created["id"]]
        assert secret not in json.dumps(listed) and listed[0]["prefix"] == secret[:12]
        keys_cli(db, "revoke", created["id"])
        wait_until(lambda: post(url, secret).status_code == 401)
        assert post(url, secret).json()["error"]["message"] == "This API key has been revoked."
        assert keys_cli(db, "list")[0]["revoked_at"] is not None
        usage = keys_cli(db, "usage", "--key-id", created["id"])
        assert usage and usage[0]["requests"] >= 1 and usage[0]["model"] == "test/echo"
    finally:
        stop(proc)
    assert secret not in (tmp_path / "server.log").read_text()
    assert secret.encode() not in (tmp_path / "cli.db").read_bytes()  # only its hash is stored


async def _create_key(db: str, **limits: int) -> str:
    from responsa.keys.db import OpsDB
    from responsa.store import open_store

    store = open_store(db)
    await store.open()
    await store.close()
    ops = OpsDB(db)
    await ops.open()
    try:
        secret, _ = await ops.create_key(f"test-{uuid.uuid4().hex[:6]}", **limits)
        return secret
    finally:
        await ops.close()


def _loaded(url: str, *secrets: str) -> None:
    """Wait until the server accepts these new keys (its next key refresh)."""
    for secret in secrets:
        wait_until(lambda s=secret: httpx.get(f"{url}/v1/models",  # type: ignore[misc]
                                              headers={"authorization": f"Bearer {s}"}).status_code == 200)


def test_requests_per_minute_429_with_headers(one_server: tuple[str, str]) -> None:
    url, db = one_server
    secret = asyncio.run(_create_key(db, requests_per_minute=3))
    _loaded(url, secret)
    statuses = []
    for _ in range(4):
        r = post(url, secret)
        statuses.append(r.status_code)
        if r.status_code == 200:
            last_ok = r
    assert statuses == [200, 200, 200, 429]
    assert last_ok.headers["x-ratelimit-remaining-requests"] == "0"
    assert r.headers["x-ratelimit-limit-requests"] == "3" and int(r.headers["retry-after"]) >= 1
    assert r.headers["x-ratelimit-reset-requests"].endswith("s")
    err = r.json()["error"]
    assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_exceeded" and "3" in err["message"]
    assert r.headers["x-request-id"]
    # Other routes (reading a response) are not metered.
    assert httpx.get(f"{url}/v1/models", headers={"authorization": f"Bearer {secret}"}).status_code == 200


def test_token_budget_and_tokens_per_minute(one_server: tuple[str, str]) -> None:
    url, db = one_server
    body = {"model": "test/echo", "input": "[[long:30]]"}
    budget = asyncio.run(_create_key(db, token_budget=20))
    tpm = asyncio.run(_create_key(db, tokens_per_minute=20))
    _loaded(url, budget, tpm)
    r = post(url, budget, body)
    assert r.status_code in (200, 429)
    wait_until(lambda: post(url, budget, body).status_code == 429)  # the charge lands just after the answer
    r = post(url, budget, body)
    assert r.json()["error"]["code"] == "insufficient_quota" and "retry-after" not in r.headers
    assert r.headers["x-ratelimit-remaining-budget-tokens"] == "0"
    assert post(url, tpm, body).status_code == 200
    wait_until(lambda: post(url, tpm, body).status_code == 429)
    r = post(url, tpm, body)
    assert r.json()["error"]["code"] == "rate_limit_exceeded" and r.headers["x-ratelimit-remaining-tokens"] == "0"
    assert 1 <= int(r.headers["retry-after"]) <= 61


def test_concurrent_streams_limit(one_server: tuple[str, str]) -> None:
    url, db = one_server
    secret = asyncio.run(_create_key(db, max_concurrent=2))
    _loaded(url, secret)
    slow = {"model": "test/echo", "input": "[[long:10]] [[delay:100]]", "stream": True}

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30, headers={"authorization": f"Bearer {secret}"}) as c:
            return list(await asyncio.gather(*(c.post(f"{url}/v1/responses", json=slow) for _ in range(6))))

    results = asyncio.run(go())
    assert sorted(r.status_code for r in results) == [200, 200, 429, 429, 429, 429]
    for r in results:
        if r.status_code == 200:
            events, done = parse_sse(r.content)
            assert done
            validate_stream(events)
        else:
            assert "concurrent" in r.json()["error"]["message"]
    assert post(url, secret).status_code == 200  # slots are given back


def test_usage_report_by_key_model_and_day(one_server: tuple[str, str]) -> None:
    url, db = one_server
    a = asyncio.run(_create_key(db))
    b = asyncio.run(_create_key(db))
    _loaded(url, a, b)
    for _ in range(3):
        assert post(url, a, {"model": "test/echo", "input": "one two three"}).status_code == 200
    assert post(url, b, {"model": "test/echo", "input": "four"}).status_code == 200
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    mine = httpx.get(f"{url}/v1/usage", params={"start_date": today}, headers={"authorization": f"Bearer {a}"})
    assert mine.status_code == 200, mine.text
    rows = mine.json()["data"]
    assert len(rows) == 1 and rows[0]["date"] == today and rows[0]["model"] == "test/echo"
    assert rows[0]["requests"] == 3 and rows[0]["output_tokens"] > 0
    everyone = httpx.get(f"{url}/v1/usage", headers={"authorization": f"Bearer {ADMIN}"}).json()
    assert {r["key_id"] for r in everyone["data"]} >= {rows[0]["key_id"]} and len(everyone["data"]) >= 2
    assert everyone["totals"]["requests"] == sum(r["requests"] for r in everyone["data"])
    one = httpx.get(f"{url}/v1/usage", params={"key_id": rows[0]["key_id"]},
                    headers={"authorization": f"Bearer {ADMIN}"}).json()["data"]
    assert [r["key_id"] for r in one] == [rows[0]["key_id"]]
    r = httpx.get(f"{url}/v1/usage", params={"key_id": "key_x"}, headers={"authorization": f"Bearer {b}"})
    assert r.status_code == 403 and r.json()["error"]["param"] == "key_id"
    r = httpx.get(f"{url}/v1/usage", params={"bogus": "1"}, headers={"authorization": f"Bearer {b}"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "bogus"
    r = httpx.get(f"{url}/v1/usage", params={"start_date": "yesterday"}, headers={"authorization": f"Bearer {b}"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "start_date"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """Two ``responsa serve`` processes sharing one database and the real Redis."""
    tmp = tmp_path_factory.mktemp("limit-replicas")
    db = f"sqlite:///{tmp}/shared.db"
    env = {"RESPONSA_REDIS_URL": REDIS_URL}
    keys_cli(db, "create", "bootstrap")  # keys required from the start: a new key is refused until loaded
    a, url_a = start_serve(["--database-url", db, "--model", "test/echo", "--no-access-log"], tmp / "a.log", env)
    try:
        b, url_b = start_serve(["--database-url", db, "--model", "test/echo", "--no-access-log"], tmp / "b.log", env)
    except BaseException:
        stop(a)
        raise
    try:
        yield url_a, url_b, db
    finally:
        stop(a)
        stop(b)


def _replica_key(replicas: tuple[str, str, str], *args: str) -> str:
    url_a, url_b, db = replicas
    secret: str = keys_cli(db, "create", f"team-{uuid.uuid4().hex[:6]}", *args)["key"]
    for url in (url_a, url_b):  # both replicas see it within their refresh interval
        wait_until(lambda u=url: httpx.get(f"{u}/v1/models",  # type: ignore[misc]
                                           headers={"authorization": f"Bearer {secret}"}).status_code == 200)
    return secret


async def _burst(urls: list[str], secret: str, body: dict[str, Any], n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60, headers={"authorization": f"Bearer {secret}"},
                                 limits=httpx.Limits(max_connections=n)) as c:
        return list(await asyncio.gather(*(c.post(f"{urls[i % 2]}/v1/responses", json=body) for i in range(n))))


def test_two_replicas_admit_exactly_m_requests(replicas: tuple[str, str, str]) -> None:
    n, m = 24, 7
    secret = _replica_key(replicas, "--rpm", str(m))
    results = asyncio.run(_burst(list(replicas[:2]), secret, {"model": "test/echo", "input": "hi"}, n))
    statuses = [r.status_code for r in results]
    assert statuses.count(200) == m and statuses.count(429) == n - m, statuses
    # Each replica got n/2 = 12 > m requests: counters kept per replica would have admitted 2m.
    assert {str(r.url).split("/v1")[0] for r in results} == set(replicas[:2])
    for r in results:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and r.headers["x-ratelimit-remaining-requests"] == "0"


def test_two_replicas_admit_exactly_m_concurrent_streams(replicas: tuple[str, str, str]) -> None:
    n, m = 12, 3
    secret = _replica_key(replicas, "--concurrency", str(m))
    slow = {"model": "test/echo", "input": "[[long:12]] [[delay:150]]", "stream": True}
    results = asyncio.run(_burst(list(replicas[:2]), secret, slow, n))
    statuses = [r.status_code for r in results]
    assert statuses.count(200) == m and statuses.count(429) == n - m, statuses
    for r in results:
        if r.status_code == 200:
            events, done = parse_sse(r.content)
            assert done and events[-1]["type"] == "response.completed"
    # Every slot was given back on both replicas.
    assert all(post(u, secret).status_code == 200 for u in replicas[:2])
