"""Fault 11: secrets never reach the logs, even at DEBUG, whoever logs them
(the WebSocket handshake's header dump, the MCP HTTP client's request
lines, uvicorn's access log)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from responsa import redact
from tests.harden.support import server
from tests.helpers import serve_in_thread
from tests.tools.support import make_server

WS_KEY = "sk-ws-handshake-91c2e8a4"
X_KEY = "sk-x-api-key-5d1f0b7e"
PASSWORD = "userinfo-pw-3a7c"
QUERY_KEY = "query-api-key-8e2b"
HEADER_TOKEN = "mcp-header-token-4f9d"
SECRETS = (WS_KEY, X_KEY, PASSWORD, QUERY_KEY, HEADER_TOKEN)


@pytest.fixture(scope="module")
def mcp_calc() -> Iterator[str]:
    with serve_in_thread(make_server("calc").streamable_http_app(), lifespan="on") as url:
        yield url


def test_debug_logs_carry_no_secrets(tmp_path: Path, mcp_calc: str) -> None:
    log = tmp_path / "server.log"
    mcp_url = mcp_calc.replace("http://", f"http://alice:{PASSWORD}@") + f"/mcp?api_key={QUERY_KEY}&v=1"
    with server(log, "--log-level", "debug", "--access-log", "--database-url", f"sqlite:///{tmp_path / 'r.db'}",
                env={"RESPONSA_MCP_ALLOW_PRIVATE": "127.0.0.1"}) as (_, url):
        ws = url.replace("http://", "ws://") + "/v1/responses"
        with connect(ws, additional_headers={"Authorization": f"Bearer {WS_KEY}"}) as conn:
            conn.send(json.dumps({"type": "response.create", "model": "test/echo", "input": "hi"}))
            while json.loads(conn.recv(timeout=10))["type"] != "response.completed":
                pass
        tool = {"type": "mcp", "server_label": "calc", "server_url": mcp_url, "require_approval": "never",
                "headers": {"Authorization": f"Bearer {HEADER_TOKEN}"}}
        r = httpx.post(f"{url}/v1/responses?api_key={QUERY_KEY}", headers={"x-api-key": X_KEY}, timeout=30,
                       json={"model": "test/echo", "input": '[[call:add {"a": 2, "b": 3}]]', "tools": [tool]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "completed" and body["output"][0]["type"] == "mcp_list_tools", body
        assert any(i["type"] == "mcp_call" and i["output"] == "5" for i in body["output"]), body
    text = log.read_text()
    # The lines that used to leak are still there, with the secret removed.
    assert "< authorization: [redacted]" in text.lower() or "authorization: [redacted]" in text.lower(), text[-3000:]
    assert "HTTP Request: POST http://[redacted]@127.0.0.1" in text, text[-3000:]
    assert f"api_key={redact.REDACTED}" in text
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked:\n" + "\n".join(
            line for line in text.splitlines() if secret in line)


@pytest.mark.parametrize("line", [
    "< authorization: Bearer {s}", "< x-api-key: {s}", "HTTP Request: GET https://u:{s}@host/mcp",
    "GET /mcp?api_key={s}&x=1", "headers={{'Authorization': 'Bearer {s}'}}", "[(b'authorization', b'{s}')]",
    "Client(api_key={s})", "cookie: session={s}", "url=https://h/p?token={s}",
])
def test_redact_patterns(line: str) -> None:
    secret = "s3cr3t-value-123"
    assert secret not in redact.redact(line.format(s=secret))


def test_records_are_redacted_before_any_handler(caplog: pytest.LogCaptureFixture) -> None:
    redact.install()
    logger = logging.getLogger("some.library")
    with caplog.at_level(logging.DEBUG, logger="some.library"):
        logger.debug("< %s: %s", "x-api-key", "sk-split-over-args")
        logger.info('HTTP Request: %s %s "%s"', "POST", httpx.URL("http://u:pw-in-url@h/?api_key=k9"), "200")
        try:
            raise ValueError("failed to reach http://u:pw-in-exc@h/")
        except ValueError:
            logger.exception("boom")
    text = caplog.text
    for secret in ("sk-split-over-args", "pw-in-url", "k9", "pw-in-exc"):
        assert secret not in text
    # Arguments stay arguments when nothing needed redacting (formatters such as uvicorn's access log unpack them).
    record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "%s %d", ("a", 1), None)
    assert record.args == ("a", 1)
