"""Fault 10: a queued background job re-run by another server after its own
died must never send the ``[redacted]`` placeholder (or nothing) where the
client's MCP secret was. Its secrets were never stored, so it fails with a
clear ``secrets_unavailable`` error instead. Real processes, kill -9."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harden.support import start, stop, wait_healthy
from tests.helpers import serve_in_thread
from tests.tools.support import make_server

TOKEN = "sk-mcp-queued-6b1d"
HEADERS = {"authorization": "Bearer secrets"}


@pytest.fixture(scope="module")
def mcp_seen() -> Iterator[tuple[str, list[bytes]]]:
    """A bearer-protected MCP server that records every Authorization it is sent."""
    seen: list[bytes] = []
    inner = make_server("vault").streamable_http_app()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            auth = dict(scope["headers"]).get(b"authorization", b"")
            seen.append(auth)
            if auth != f"Bearer {TOKEN}".encode():
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await inner(scope, receive, send)

    with serve_in_thread(app, lifespan="on") as url:
        yield f"{url}/mcp", seen


def _wait(url: str, rid: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = httpx.get(f"{url}/v1/responses/{rid}", headers=HEADERS, timeout=10).json()
        if body["status"] not in ("queued", "in_progress") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


@pytest.mark.parametrize("form", ["headers", "credentials"])
def test_requeued_job_never_sends_the_placeholder(tmp_path: Path, mcp_seen: tuple[str, list[bytes]],
                                                  form: str) -> None:
    mcp_url, seen = mcp_seen
    db = f"sqlite:///{tmp_path / 'r.db'}"
    env = {"RESPONSA_BACKGROUND_LEASE_S": "1", "RESPONSA_BACKGROUND_CONCURRENCY": "1",
           "RESPONSA_MCP_ALLOW_PRIVATE": "127.0.0.1"}
    if form == "headers":
        extra: dict[str, Any] = {"tools": [{"type": "mcp", "server_label": "vault", "server_url": mcp_url,
                                            "require_approval": "never",
                                            "headers": {"Authorization": f"Bearer {TOKEN}"}}]}
    else:
        registry = tmp_path / "r.toml"
        registry.write_text(f'[mcp.servers."acme/vault"]\nurl = "{mcp_url}"\nconnection_name = "vault"\n'
                            'credential_header = "Authorization"\ncredential_format = "Bearer {token}"\n'
                            '[mcp]\nallow_private = ["127.0.0.1"]\n')
        env["RESPONSA_CONFIG"] = str(registry)
        extra = {"mcp_servers": ["acme/vault"],
                 "credentials": {"connection_name": "vault", "values": {"token": TOKEN}}}
    a, url_a = start(tmp_path / "a.log", "--database-url", db, env=env)
    try:
        wait_healthy(a, url_a, tmp_path / "a.log")
        busy = httpx.post(f"{url_a}/v1/responses", headers=HEADERS, timeout=10, json={
            "model": "test/echo", "input": "[[long:2000]] [[delay:50]]", "background": True}).json()
        queued = httpx.post(f"{url_a}/v1/responses", headers=HEADERS, timeout=10, json={
            "model": "test/echo", "input": '[[call:add {"a": 1, "b": 2}]]', "background": True, **extra}).json()
        assert queued["status"] == "queued"
        assert _wait(url_a, busy["id"], 0.5)["status"] == "in_progress"
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
    finally:
        stop(a)
    seen.clear()
    b, url_b = start(tmp_path / "b.log", "--database-url", db, env=env)
    try:
        wait_healthy(b, url_b, tmp_path / "b.log")
        final = _wait(url_b, queued["id"])
        assert final["status"] == "failed", final
        assert final["error"]["code"] == "secrets_unavailable", final["error"]
        assert all(b"redacted" not in auth for auth in seen), seen
        assert seen == [], "the MCP server was contacted without the client's secret"
        # The job that was running when its server died is not left in_progress either.
        assert _wait(url_b, busy["id"])["status"] == "failed"
    finally:
        stop(b)
