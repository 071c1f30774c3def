"""How ``responsa serve`` writes a response on the wire: the head goes out
with the first body bytes (one write, one TCP segment, one wake-up of the
client), yet a response whose body is not ready still sends its headers at
once. Against uvicorn with the server's own protocol class."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from responsa import serving
from responsa.config import load_settings
from tests.helpers import wait_until


class _Wire:
    """The socket side of a transport: what was written, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


async def test_head_and_body_of_one_step_are_one_write() -> None:
    wire = _Wire()
    held = serving._HeadWithBody(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    held.write(b"{}")
    assert wire.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    await asyncio.sleep(0)  # the scheduled flush finds nothing left to send
    assert len(wire.writes) == 1


async def test_a_head_alone_is_flushed_at_the_next_loop_turn_and_on_close() -> None:
    wire = _Wire()
    held = serving._HeadWithBody(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert wire.writes == []
    await asyncio.sleep(0)
    assert wire.writes == [b"HTTP/1.1 200 OK\r\n\r\n"]
    held.write(b"data")
    assert wire.writes[-1] == b"data"
    closing = _Wire()
    held = serving._HeadWithBody(closing, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
    held.close()
    assert closing.writes == [b"HTTP/1.1 500 Internal Server Error\r\n\r\n"] and closing.closed


async def test_an_interim_100_continue_is_not_held() -> None:
    wire = _Wire()
    held = serving._HeadWithBody(wire, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert wire.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    held.write(b"HTTP/1.1 200 OK\r\n\r\n")
    held.write(b"ok")
    assert wire.writes[1:] == [b"HTTP/1.1 200 OK\r\n\r\nok"]


@pytest.fixture
def slow_body_server() -> Iterator[tuple[str, threading.Event]]:
    """An app that starts its response, then waits for the test before its body."""
    release = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        while not release.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"data: late\n\n", "more_body": False})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    settings = load_settings(None)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", loop="asyncio",
                                           http=serving.protocol_class(settings)))  # stdlib loop: see serve_in_thread
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 30, what="the test server to start")
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}", release
    finally:
        release.set()
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_headers_are_not_kept_waiting_for_a_late_body(slow_body_server: tuple[str, threading.Event]) -> None:
    addr, release = slow_body_server
    host, port = addr.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            assert chunk, "the server closed before sending headers"
            head += chunk
        assert head.startswith(b"HTTP/1.1 200") and not release.is_set()
        release.set()
        rest = head.partition(b"\r\n\r\n")[2]
        while b"data: late" not in rest:
            chunk = conn.recv(65536)
            assert chunk
            rest += chunk
