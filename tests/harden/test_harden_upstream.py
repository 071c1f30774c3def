"""Fault 2: a non-streamed request whose client hangs up cancels its
upstream call; an upstream that only sends SSE keep-alive comments is cut
off by a total/idle deadline, so nothing stays ``in_progress``."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from responsa.api.app import create_app
from responsa.config import ProviderConfig, load_settings
from tests.helpers import serve_in_thread, validate_response


class KeepAliveUpstream:
    """A Chat Completions upstream that answers 200 and then sends nothing
    but ``: keep-alive`` comments, forever; it records when each connection
    was closed by the other side."""

    def __init__(self) -> None:
        self.opened: list[float] = []
        self.closed: list[float] = []
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened.append(time.monotonic())
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            while True:
                chunk = b": keep-alive\n\n"
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
                if reader.at_eof():
                    break
                await asyncio.sleep(0.1)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.append(time.monotonic())
            writer.close()

    def _run(self) -> None:
        async def main() -> None:
            server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            async with server:
                await server.serve_forever()

        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(main())

    def __enter__(self) -> KeepAliveUpstream:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        pass  # a daemon thread: its connections end with the test process


@pytest.fixture(scope="module")
def upstream() -> Iterator[KeepAliveUpstream]:
    with KeepAliveUpstream() as up:
        yield up


@pytest.fixture(scope="module")
def app_url(upstream: KeepAliveUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("upstream") / "r.db"
    settings = load_settings(None, database_url=f"sqlite:///{db}", default_model="test/echo")
    settings.providers["hang"] = ProviderConfig(
        name="hang", kind="chat-completions", base_url=f"http://127.0.0.1:{upstream.port}/v1",
        models=["m"], options={"max_retries": 0, "total_timeout": 3, "idle_timeout": 60})
    settings.providers["idle"] = ProviderConfig(
        name="idle", kind="chat-completions", base_url=f"http://127.0.0.1:{upstream.port}/v1",
        models=["m"], options={"max_retries": 0, "idle_timeout": 1.5})
    settings.providers["forever"] = ProviderConfig(
        name="forever", kind="chat-completions", base_url=f"http://127.0.0.1:{upstream.port}/v1",
        models=["m"], options={"max_retries": 0})
    with serve_in_thread(create_app(settings), lifespan="on") as url:
        yield url


HEADERS = {"authorization": "Bearer upstream"}


def _wait(url: str, rid: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body: dict[str, Any] = httpx.get(f"{url}/v1/responses/{rid}", headers=HEADERS, timeout=10).json()
        if body["status"] not in ("queued", "in_progress") or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_non_streamed_disconnect_cancels_the_upstream_call(app_url: str, upstream: KeepAliveUpstream) -> None:
    before = len(upstream.closed)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{app_url}/v1/responses", headers={**HEADERS, "idempotency-key": "disc-1"}, timeout=1.0,
                   json={"model": "forever/m", "input": "hi"})
    hung_up = time.monotonic()
    while len(upstream.closed) == before:
        assert time.monotonic() - hung_up < 5, "the upstream call kept running after the client left"
        time.sleep(0.02)
    assert upstream.closed[-1] - hung_up < 2


def test_non_streamed_disconnect_leaves_a_failed_record(app_url: str) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{app_url}/v1/responses", headers={**HEADERS, "idempotency-key": "disc-2"}, timeout=0.5,
                   json={"model": "test/echo", "input": "[[long:400]] [[delay:25]]"})  # 10 s if left to run
    hung_up = time.monotonic()
    # The same key names the response: once it ended, the retry returns it at once.
    # (A failed response is answered in the error shape, with its code.)
    r = httpx.post(f"{app_url}/v1/responses", headers={**HEADERS, "idempotency-key": "disc-2"}, timeout=30,
                   json={"model": "test/echo", "input": "[[long:400]] [[delay:25]]"})
    assert time.monotonic() - hung_up < 5, r.text
    assert r.json()["error"]["code"] == "client_disconnected", r.text


def test_keep_alive_only_upstream_hits_the_total_deadline(app_url: str) -> None:
    began = time.monotonic()
    r = httpx.post(f"{app_url}/v1/responses", headers=HEADERS, timeout=30, json={"model": "hang/m", "input": "hi"})
    assert time.monotonic() - began < 10
    assert r.status_code in (502, 504), r.text  # a gateway error either way (the engine picks the status)
    assert r.json()["error"]["code"] == "upstream_timeout"


def test_keep_alive_only_upstream_hits_the_idle_deadline_in_background(app_url: str) -> None:
    job = httpx.post(f"{app_url}/v1/responses", headers=HEADERS, timeout=10,
                     json={"model": "idle/m", "input": "hi", "background": True}).json()
    body = _wait(app_url, job["id"], 15)
    assert body["status"] == "failed", body["status"]
    assert body["error"]["code"] == "upstream_timeout" and "no data" in body["error"]["message"], body["error"]
    validate_response(body)


def test_streamed_keep_alive_only_upstream_ends_failed(app_url: str) -> None:
    with httpx.stream("POST", f"{app_url}/v1/responses", headers=HEADERS, timeout=30,
                      json={"model": "hang/m", "input": "hi", "stream": True}) as r:
        text = r.read().decode()
    assert "response.failed" in text and "upstream_timeout" in text

