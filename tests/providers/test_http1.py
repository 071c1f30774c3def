"""The upstream HTTP/1.1 client (``responsa.providers.http1``) against raw
servers that misbehave on purpose: what the providers' retry and error
policy relies on (tests/providers/test_chat_completions.py covers that
policy end to end)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from responsa.providers import http1
from tests.helpers import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _request_of(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


class Upstream:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/x"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def client() -> AsyncIterator[http1.Client]:
    c = http1.Client(headers={"authorization": "Bearer k"}, read_timeout=5)
    yield c
    await c.aclose()


def _ok(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


async def test_keep_alive_reuses_one_connection_and_sends_the_headers(client: http1.Client) -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            request = await _request_of(reader)
            up.requests.append(request)
            writer.write(_ok(request.rsplit(b"\r\n\r\n", 1)[1]))

    async with Upstream(echo) as up:
        for i in range(3):
            async with client.request("POST", up.url, b'{"n":%d}' % i,
                                      http1.header_block({"content-type": "application/json"})) as resp:
                assert (resp.status, await resp.read()) == (200, b'{"n":%d}' % i)
        assert up.connections == 1
        head = up.requests[0].split(b"\r\n")
        assert head[0] == b"POST /v1/x HTTP/1.1"
        assert {b"authorization: Bearer k", b"content-type: application/json", b"content-length: 7"} <= set(head)


async def test_chunked_stream_arrives_as_it_is_sent(client: http1.Client) -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_of(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        await release.wait()
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await reader.read()

    async with Upstream(slow) as up, client.request("POST", up.url, b"{}") as resp:
        chunks = resp.chunks()
        assert await anext(chunks) == b"first"  # before the rest was even sent
        release.set()
        assert [c async for c in chunks] == [b"second"]


async def test_a_body_ended_by_the_close_is_complete(client: http1.Client) -> None:
    async def close_delimited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_of(reader)
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: 1\n\n")
        await writer.drain()

    async with Upstream(close_delimited) as up, client.request("POST", up.url, b"{}") as resp:
        assert await resp.read() == b"data: 1\n\n"


async def test_a_cut_body_raises_upstream_closed(client: http1.Client) -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_of(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")
        await writer.drain()

    async with Upstream(cut) as up, client.request("POST", up.url, b"{}") as resp:
        with pytest.raises(http1.UpstreamClosed):
            await resp.read()


async def test_a_pooled_connection_closed_while_idle_is_replaced_once(client: http1.Client) -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_of(reader)
        writer.write(_ok(b"ok"))
        await writer.drain()
        # Keep-alive was promised, but the server drops the connection once the
        # next request is on its way (the race every pooled client meets).
        await reader.read(1)

    async with Upstream(one_then_close) as up:
        for _ in range(2):
            async with client.request("POST", up.url, b"{}") as resp:
                assert await resp.read() == b"ok"
        assert up.connections == 2


async def test_read_timeout_between_bytes(client: http1.Client) -> None:
    quick = http1.Client(read_timeout=0.3)

    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_of(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(3):  # a byte every 0.2 s keeps it alive...
            await asyncio.sleep(0.2)
            writer.write(b"1\r\n.\r\n")
        await asyncio.sleep(5)  # ...then silence

    try:
        async with Upstream(stalls) as up, quick.request("POST", up.url, b"{}") as resp:
            began = time.monotonic()
            with pytest.raises(http1.ReadTimeout):
                await resp.read()
            assert 0.8 < time.monotonic() - began < 3
    finally:
        await quick.aclose()


async def test_connect_errors_and_closing_from_outside(client: http1.Client) -> None:
    with pytest.raises(http1.UpstreamConnectError):
        async with client.request("POST", f"http://127.0.0.1:{free_port()}/v1/x", b"{}"):
            pass

    async def never_ends(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _request_of(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        await reader.read()

    async with Upstream(never_ends) as up, client.request("POST", up.url, b"{}") as resp:
        asyncio.get_running_loop().call_later(0.1, resp.close)
        with pytest.raises(http1.UpstreamClosed):
            await resp.read()


async def test_connections_in_use_are_capped() -> None:
    capped = http1.Client(max_connections=2)
    inflight = peak = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal inflight, peak
        while True:
            await _request_of(reader)
            inflight += 1
            peak = max(peak, inflight)
            await asyncio.sleep(0.05)
            inflight -= 1
            writer.write(_ok(b"ok"))

    async def call() -> bytes:
        async with capped.request("POST", up.url, b"{}") as resp:
            return await resp.read()

    try:
        async with Upstream(handler) as up:
            assert await asyncio.gather(*(call() for _ in range(6))) == [b"ok"] * 6
        assert peak == 2 and up.connections == 2
    finally:
        await capped.aclose()


def test_header_injection_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        http1.header_block({"x-evil": "a\r\nhost: elsewhere"})
