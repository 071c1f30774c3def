"""Health checks, Prometheus metrics and the structured access log,
against real servers (the session server in-process, and ``responsa
serve`` processes where logging or outages matter)."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
from pathlib import Path

import httpx

from responsa.observability import logs
from tests.helpers import parse_sse, validate_stream
from tests.observability.conftest import free_port, start_serve, stop, value, wait_until


def test_healthz_and_readyz(server: str) -> None:
    r = httpx.get(f"{server}/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    r = httpx.get(f"{server}/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"store", "migrations", "providers"}  # no Redis configured
    assert all(c["ok"] for c in body["checks"].values())


def test_request_id_is_returned_and_kept(http: httpx.Client) -> None:
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "hi"})
    generated = r.headers["x-request-id"]
    assert generated.startswith("req_") and len(generated) > 10
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "hi"}, headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    # Not a sane token (too long, odd characters): replaced, never echoed back into a header.
    r = http.get("/v1/models", headers={"x-request-id": "x" * 300})
    assert r.headers["x-request-id"].startswith("req_")
    r = http.get("/v1/nowhere")  # errors carry it too
    assert r.status_code == 404 and r.headers["x-request-id"].startswith("req_")


def test_metrics_count_requests_latency_tokens_and_streams(server: str, http: httpx.Client) -> None:
    before = httpx.get(f"{server}/metrics").text
    tenant = hashlib.sha256(b"test-key").hexdigest()[:12]
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "count my tokens please"})
    assert r.status_code == 200
    usage = r.json()["usage"]
    raw = http.post("/v1/responses", json={"model": "test/echo", "input": "stream me", "stream": True})
    events, done = parse_sse(raw.content)
    assert done
    validate_stream(events)
    http.get("/v1/responses/resp_doesnotexist")
    after = httpx.get(f"{server}/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def delta(name: str, **labels: str) -> float:
        return value(text, name, **labels) - value(before, name, **labels)

    assert delta("responsa_http_requests_total", method="POST", route="/v1/responses", status="200") == 2
    assert delta("responsa_http_requests_total", method="GET", route="/v1/responses/{response_id}",
                 status="404") == 1
    assert delta("responsa_http_request_duration_seconds_count", route="/v1/responses") == 2
    assert delta("responsa_time_to_first_event_seconds_count", route="/v1/responses") == 1
    assert delta("responsa_upstream_duration_seconds_count", provider="test") == 2
    assert delta("responsa_tokens_total", model="test/echo", key=tenant, direction="input") >= usage["input_tokens"]
    assert delta("responsa_tokens_total", model="test/echo", key=tenant, direction="output") >= usage["output_tokens"]
    assert delta("responsa_store_duration_seconds_count") >= 2
    assert value(text, "responsa_open_streams") == 0  # the stream is over
    assert value(text, "responsa_background_responses", status="queued") >= 0
    assert "test-key" not in text  # keys appear hashed only


def test_upstream_errors_are_counted_by_provider(server: str, http: httpx.Client) -> None:
    before = httpx.get(f"{server}/metrics").text
    r = http.post("/v1/responses", json={"model": "test/echo", "input": "[[error]]"})
    assert r.status_code >= 400
    text = httpx.get(f"{server}/metrics").text
    assert (value(text, "responsa_upstream_errors_total", provider="test")
            - value(before, "responsa_upstream_errors_total", provider="test")) == 1


def test_access_log_is_one_json_line_per_request_without_secrets(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    proc, url = start_serve(["--database-url", f"sqlite:///{tmp_path}/db.sqlite", "--model", "test/echo",
                             "--log-level", "warning"], log)
    key = "sk-very-secret-key-42"
    try:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}) as c:
            r = c.post("/v1/responses", json={"model": "test/echo", "input": "my private prompt text"},
                       headers={"x-request-id": "trace-me-1"})
            assert r.status_code == 200
            rid = r.json()["id"]
            r2 = c.post("/v1/responses", json={"model": "test/echo", "input": "streamed", "stream": True})
            assert r2.status_code == 200

        def lines() -> list[dict[str, object]]:
            found = []
            for line in log.read_text().splitlines():
                if line.startswith("{"):
                    found.append(json.loads(line))  # every JSON-looking line parses: one object per line
            return [d for d in found if d.get("logger") == "responsa.access"]

        wait_until(lambda: len(lines()) >= 3)  # /healthz polls, then the two requests
    finally:
        stop(proc)
    text = log.read_text()
    assert key not in text and "my private prompt text" not in text
    entries = lines()
    first = next(d for d in entries if d["request_id"] == "trace-me-1")
    assert first["route"] == "/v1/responses" and first["method"] == "POST" and first["status"] == 200
    assert first["tenant"] == hashlib.sha256(key.encode()).hexdigest()[:16]
    assert first["model"] == "test/echo" and first["response_id"] == rid
    assert isinstance(first["input_tokens"], int) and first["input_tokens"] > 0
    assert first["output_tokens"] > 0  # type: ignore[operator]
    for field in ("duration_ms", "upstream_ms", "store_ms", "ts", "level"):
        assert field in first
    streamed = next(d for d in entries if d["request_id"] != "trace-me-1" and d["route"] == "/v1/responses")
    assert streamed["ttfe_ms"] is not None and streamed["ttfe_ms"] <= streamed["duration_ms"]  # type: ignore[operator]
    assert sum(1 for d in entries if d["request_id"] == "trace-me-1") == 1  # one line, not two


def test_human_format_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logs.ACCESS.handlers[:], logs.ACCESS.level, logs.ACCESS.propagate
    try:
        logs.configure("info", "auto", stream=stream)
        logs.ACCESS.info("POST /v1/responses 200", extra={"fields": {"request_id": "req_1", "status": 200}})
        logging.getLogger("responsa.test").warning("plain words")
    finally:
        root.handlers[:], level, logs.ACCESS.handlers[:], alevel, logs.ACCESS.propagate = saved
        root.setLevel(level)
        logs.ACCESS.setLevel(alevel)
    out = stream.getvalue().splitlines()
    assert "responsa.access: POST /v1/responses 200 request_id=req_1 status=200" in out[0]
    assert not out[0].startswith("{") and "plain words" in out[1]


def test_readyz_fails_when_redis_is_gone(tmp_path: Path) -> None:
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                             stdout=subprocess.DEVNULL)
    log = tmp_path / "server.log"
    proc = None
    try:
        wait_until(lambda: _pings(port))
        proc, url = start_serve(["--database-url", f"sqlite:///{tmp_path}/db.sqlite", "--model", "test/echo"], log,
                                env={"RESPONSA_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        r = httpx.get(f"{url}/readyz")
        assert r.status_code == 200 and r.json()["checks"]["redis"]["ok"], r.text
        redis.terminate()
        redis.wait(10)
        r = httpx.get(f"{url}/readyz", timeout=10)
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable" and body["checks"]["redis"]["ok"] is False
        assert body["checks"]["store"]["ok"] and str(port) not in r.text  # names the check, not the URL
        assert httpx.get(f"{url}/healthz").status_code == 200  # alive, just not ready
    finally:
        if proc is not None:
            stop(proc)
        redis.terminate()
        redis.wait(10)


def test_readyz_fails_without_a_provider_key(tmp_path: Path) -> None:
    config = tmp_path / "responsa.toml"
    config.write_text('[providers.up]\nkind = "chat-completions"\nbase_url = "http://127.0.0.1:9/v1"\n'
                      'api_key_env = "RESPONSA_TEST_MISSING_KEY"\nmodels = ["m"]\n')
    proc, url = start_serve(["--database-url", f"sqlite:///{tmp_path}/db.sqlite", "--model", "test/echo",
                             "--config", str(config)], tmp_path / "server.log")
    try:
        r = httpx.get(f"{url}/readyz")
        assert r.status_code == 503
        assert "RESPONSA_TEST_MISSING_KEY" not in r.text or "up" in r.json()["checks"]["providers"]["error"]
        assert r.json()["checks"]["providers"]["ok"] is False
    finally:
        stop(proc)


def _pings(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_open_websockets_gauge_and_request_id(server: str) -> None:
    import orjson
    from websockets.sync.client import connect

    url = server.replace("http://", "ws://") + "/v1/responses"
    before = httpx.get(f"{server}/metrics").text
    with connect(url, additional_headers={"Authorization": "Bearer test-key", "x-request-id": "ws-1"}) as conn:
        assert conn.response is not None and conn.response.headers["x-request-id"] == "ws-1"
        wait_until(lambda: value(httpx.get(f"{server}/metrics").text, "responsa_open_websockets")
                   == value(before, "responsa_open_websockets") + 1)
        conn.send(orjson.dumps({"type": "response.create", "model": "test/echo", "input": "over a socket"}).decode())
        while json.loads(conn.recv(timeout=30))["type"] != "response.completed":
            pass
    wait_until(lambda: value(httpx.get(f"{server}/metrics").text, "responsa_open_websockets")
               == value(before, "responsa_open_websockets"))
    text = httpx.get(f"{server}/metrics").text
    assert (value(text, "responsa_http_requests_total", method="WS", route="/v1/responses", status="101")
            - value(before, "responsa_http_requests_total", method="WS", route="/v1/responses", status="101")) == 1
