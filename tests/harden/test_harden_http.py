"""Faults 6 and 8 and open mode, against the real ``responsa serve``:
slow clients are cut off, headers are bounded, uvicorn's own errors are in
the OpenAI shape, SIGTERM ends even a never-ending stream, and a public bind
without keys refuses to start."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from responsa import serving
from responsa.config import load_settings
from tests.harden.support import server, start, wait_healthy

HEADER_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("http")
    with server(tmp / "server.log", "--database-url", f"sqlite:///{tmp / 'r.db'}",
                env={"RESPONSA_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT), "RESPONSA_MAX_HEADER_BYTES": "32768"}) as (_, u):
        yield u


def _addr(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _read_all(sock: socket.socket, timeout: float) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def _error(raw: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert b"content-type: application/json" in head.lower(), raw
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return status, error


def test_silent_connection_is_closed_with_408(guarded: str) -> None:
    began = time.monotonic()
    with socket.create_connection(_addr(guarded)) as sock:
        raw = _read_all(sock, 10)
    assert time.monotonic() - began < HEADER_TIMEOUT + 3
    status, error = _error(raw)
    assert status == 408 and error["code"] == "request_timeout"


def test_slowloris_connections_are_all_cut_off(guarded: str) -> None:
    """Many connections trickling header lines forever: every one is closed
    soon after the header deadline, not kept open."""
    conns = [socket.create_connection(_addr(guarded)) for _ in range(50)]
    closed_at: list[float] = []
    began = time.monotonic()

    def trickle(sock: socket.socket) -> None:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            for i in range(100):
                sock.sendall(b"X-Slow-%d: y\r\n" % i)
                time.sleep(0.2)
        except OSError:
            closed_at.append(time.monotonic() - began)

    threads = [threading.Thread(target=trickle, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for c in conns:
        c.close()
    assert len(closed_at) == 50, f"{50 - len(closed_at)} slow connections were kept open"
    assert max(closed_at) < HEADER_TIMEOUT + 5


def test_keep_alive_and_normal_requests_still_work(guarded: str) -> None:
    with httpx.Client(base_url=guarded) as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
        time.sleep(HEADER_TIMEOUT + 0.5)  # an idle keep-alive connection may close; the client reconnects
        assert client.get("/health").status_code == 200


@pytest.mark.parametrize("size", [40_000, 1024 * 1024])
def test_huge_headers_get_431(guarded: str, size: int) -> None:
    with socket.create_connection(_addr(guarded)) as sock:
        with contextlib.suppress(OSError):  # the server may close before the client has written everything
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
        raw = _read_all(sock, 10)
    status, error = _error(raw)
    assert status == 431 and error["code"] == "request_headers_too_large"


def test_many_small_headers_are_counted_too(guarded: str) -> None:
    lines = b"".join(b"X-H-%d: v\r\n" % i for i in range(4000))
    with socket.create_connection(_addr(guarded)) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
        status, _ = _error(_read_all(sock, 10))
    assert status == 431


@pytest.mark.parametrize("request_bytes", [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
                                           b"GET /health HTTP/9.9\r\n\r\n\x00\x01"])
def test_malformed_http_gets_an_openai_shaped_400(guarded: str, request_bytes: bytes) -> None:
    with socket.create_connection(_addr(guarded)) as sock:
        sock.sendall(request_bytes)
        status, error = _error(_read_all(sock, 10))
    assert status == 400 and error["type"] == "invalid_request_error"


def test_sigterm_ends_a_never_ending_stream(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    db = tmp_path / "r.db"
    proc, url = start(log, "--database-url", f"sqlite:///{db}", "--shutdown-timeout", "1")
    try:
        wait_healthy(proc, url, log)
        rid: list[str] = []
        got_delta = threading.Event()

        def consume() -> None:
            try:
                with httpx.stream("POST", f"{url}/v1/responses", timeout=60, json={
                        "model": "test/echo", "input": "[[long:1000000]] [[delay:100]]", "stream": True}) as r:
                    for line in r.iter_lines():
                        if line.startswith("data: {") and not rid:
                            rid.append(json.loads(line[6:])["response"]["id"])
                        if "output_text.delta" in line:
                            got_delta.set()
            except httpx.HTTPError:
                pass

        reader = threading.Thread(target=consume, daemon=True)
        reader.start()
        assert got_delta.wait(30)
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)  # raises TimeoutExpired on the old behaviour (still running 45 s later)
        assert time.monotonic() - began < 10, log.read_text()
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The stream that was cut short is recorded as ended, not in_progress.
    proc, url = start(log, "--database-url", f"sqlite:///{db}")
    try:
        wait_healthy(proc, url, log)
        body = httpx.get(f"{url}/v1/responses/{rid[0]}", timeout=10).json()
        assert body["status"] in ("failed", "incomplete", "cancelled"), body["status"]
    finally:
        proc.terminate()
        proc.wait(15)


def test_public_bind_without_keys_refuses_to_start(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "responsa.cli", "serve", "--host", "0.0.0.0", "--port", "1",
                          "--database-url", f"sqlite:///{tmp_path / 'r.db'}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "anonymous" in out.stderr and "--allow-open-mode" in out.stderr


@pytest.mark.parametrize(("host", "keys", "flag", "refused"), [
    ("0.0.0.0", [], False, True), ("::", [], False, True), ("192.168.1.10", [], False, True),
    ("0.0.0.0", ["k"], False, False), ("0.0.0.0", [], True, False),
    ("127.0.0.1", [], False, False), ("::1", [], False, False), ("localhost", [], False, False),
])
def test_open_mode_rule(host: str, keys: list[str], flag: bool, refused: bool) -> None:
    settings = load_settings(None, host=host, api_keys=keys, allow_open_mode=flag)
    if refused:
        with pytest.raises(serving.OpenModeRefused):
            serving.check_open_mode(settings)
    else:
        serving.check_open_mode(settings)
