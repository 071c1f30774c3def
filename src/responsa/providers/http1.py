"""The HTTP/1.1 client every upstream call goes through.

Why our own: ``benchmarks/http_clients.py`` ran aiohttp (plain and tuned),
pyreqwest, httpr, aiosonic and curl-cffi against one 0 ms upstream. The
best of them (pyreqwest) still spent 3.5x the instructions of a bare
``httptools`` client per streamed call (aiohttp: 8x), where the issue's
rule was "a library within 20% of it, else a minimal client". An upstream
call here is always the same shape (POST a JSON body to a configured base
URL, read a JSON or SSE answer), so the client is small: the parsing is
``httptools`` (llhttp, the parser uvicorn already runs for our own
requests), the I/O is an ``asyncio.Protocol`` on the running loop (uvloop
under ``responsa serve``), TLS is the standard ``ssl`` module.

What it does: keep-alive connections pooled per (scheme, host, port) with
a cap on connections in use; a connect timeout; a read timeout (no byte
for ``read_timeout`` seconds); a request that went out on a pooled
connection the server had already closed is sent again once on a new one
(nothing was read, so nothing is repeated); a response that ends early,
cannot be parsed, or is closed from outside (``Response.close``) raises
``UpstreamClosed``. It does not do what upstream calls never need:
redirects, cookies, proxies, compression (no ``accept-encoding`` is sent),
HTTP/2.

A streamed body is read one network read at a time (``Response.chunks``):
what one ``data_received`` brought is one chunk, however many SSE events
it holds.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import httptools

IDLE_S = 15.0
"""A pooled connection unused this long is closed rather than reused (as
aiohttp's keep-alive timeout: servers drop idle ones after 5-60 s)."""


class UpstreamError(Exception):
    """Any failure of the connection (not an HTTP error status: those are responses)."""


class UpstreamConnectError(UpstreamError):
    """No connection could be made (refused, unknown host, TLS failure)."""


class UpstreamClosed(UpstreamError):
    """The connection ended, or was closed, before the response did."""


class ConnectTimeout(UpstreamError, TimeoutError):
    pass


class ReadTimeout(UpstreamError, TimeoutError):
    pass


class _Target:
    """A URL as the client sends it, parsed once."""

    __slots__ = ("head", "key", "path")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamConnectError(f"Not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self.key = (parts.scheme, parts.hostname, port)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.head = f"host: {parts.netloc}\r\n".encode("latin-1")


@lru_cache(maxsize=256)
def _target(url: str) -> _Target:
    return _Target(url)


def header_block(headers: Mapping[str, str]) -> bytes:
    """Headers as they go on the wire (built once, sent with many requests)."""
    out = []
    for name, value in headers.items():
        if any(c in f"{name}{value}" for c in "\r\n\x00"):
            raise ValueError(f"HTTP header {name!r} holds a line break")
        out.append(f"{name}: {value}\r\n")
    return "".join(out).encode("latin-1")


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the response being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.done = False
        self.keep_alive = False
        self.error: UpstreamError | None = None
        self.received = False
        self.last_read = self.loop.time()
        self._waiter: asyncio.Future[None] | None = None
        self._framed = False  # content-length or chunked: the end is in the message, not the close

    # -- protocol callbacks --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        self.last_read = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(UpstreamClosed(f"The upstream sent a malformed HTTP response: {exc}"))
            return
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.done and self.error is None:
            if self.status and not self._framed:  # a body delimited by the close: it is complete
                self.done = True
            else:
                self.error = UpstreamClosed("The upstream closed the connection"
                                            + (f" ({exc})" if exc else "") + " before the response ended.")
        self._wake()

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        self.headers[key] = value.decode("latin-1")
        if key in ("content-length", "transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status < 200:  # an interim 1xx: the real response follows
            self.status, self.headers, self._framed = 0, {}, False

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.status:
            self.done = True
            self.keep_alive = self.parser.should_keep_alive()

    # -- used by the client ----------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: UpstreamError) -> None:
        """End the response in progress with ``error`` and drop the connection."""
        if self.error is None and not self.done:
            self.error = error
        if self.transport is not None:
            self.transport.close()
        self._wake()

    async def wait(self) -> None:
        """Until something arrives, the connection ends or the response fails."""
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class Response:
    """Status and headers; the body as it arrives (``chunks``) or whole (``read``)."""

    __slots__ = ("_conn", "headers", "status")

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn
        self.status = conn.status
        self.headers = conn.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, one network read at a time."""
        conn = self._conn
        while True:
            if conn.chunks:
                parts, conn.chunks = conn.chunks, []
                yield parts[0] if len(parts) == 1 else b"".join(parts)
            elif conn.done:
                return
            elif conn.error is not None:
                raise conn.error
            else:
                await conn.wait()

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    def close(self) -> None:
        """Abandon the response: a read in progress raises ``UpstreamClosed``."""
        self._conn.fail(UpstreamClosed("The response was closed before it ended."))


class _Exchange:
    """``async with client.request(...) as response``: the connection goes
    back to the pool if the response was read to its end, else it is closed."""

    __slots__ = ("_body", "_client", "_conn", "_extra", "_method", "_target", "_timer")

    def __init__(self, client: Client, method: str, target: _Target, body: bytes, extra: bytes) -> None:
        self._client = client
        self._method = method
        self._target = target
        self._body = body
        self._extra = extra
        self._conn: _Connection | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> Response:
        client = self._client
        await client._slots.acquire()
        try:
            return await self._send()
        except BaseException:
            self._finish()
            raise

    async def _send(self) -> Response:
        client, target = self._client, self._target
        head = (b"%s %s HTTP/1.1\r\n" % (self._method.encode(), target.path.encode("latin-1")) + target.head
                + client._headers + self._extra + b"content-length: %d\r\n\r\n" % len(self._body))
        for fresh in (False, True):
            conn = self._conn = await client._connection(target.key, fresh)
            reused = conn.idle_since != 0.0
            conn._reset()
            self._arm()
            assert conn.transport is not None
            conn.transport.write(head + self._body)
            while not conn.status and conn.error is None and not conn.done:
                await conn.wait()
            if conn.status:
                return Response(conn)
            if reused and not conn.received and isinstance(conn.error, UpstreamClosed):
                conn.fail(conn.error)  # closed while idle in the pool: once more on a new connection
                continue
            raise conn.error or UpstreamClosed("The upstream closed the connection without a response.")
        raise AssertionError("unreachable")

    def _arm(self) -> None:
        timeout = self._client.read_timeout
        if timeout is not None and self._conn is not None:
            self._timer = self._conn.loop.call_at(self._conn.last_read + timeout, self._check)

    def _check(self) -> None:
        """The read timeout: re-armed from the last read, so one timer serves a whole stream."""
        conn, timeout = self._conn, self._client.read_timeout
        if conn is None or timeout is None or conn.done or conn.error is not None:
            return
        if conn.loop.time() >= conn.last_read + timeout:
            conn.fail(ReadTimeout(f"The upstream sent nothing for {timeout:g} s."))
        else:
            self._timer = conn.loop.call_at(conn.last_read + timeout, self._check)

    async def __aexit__(self, *exc: object) -> None:
        self._finish()

    def _finish(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client._release(self._target.key, conn)
        self._client._slots.release()


class Client:
    """A pool of HTTP/1.1 connections; ``request`` is the one call."""

    def __init__(self, *, headers: Mapping[str, str] | None = None, max_connections: int = 512,
                 connect_timeout: float = 10.0, read_timeout: float | None = 300.0,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._headers = header_block(headers or {})
        self._slots = asyncio.Semaphore(max_connections)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    def request(self, method: str, url: str, body: bytes = b"", headers: bytes = b"") -> _Exchange:
        """``headers``: this request's own, from ``header_block``, after the client's."""
        return _Exchange(self, method, _target(url), body, headers)

    async def _connection(self, key: tuple[str, str, int], fresh: bool) -> _Connection:
        idle = self._idle.get(key)
        now = time.monotonic()
        while idle and not fresh:
            conn = idle.pop()
            if not conn.lost and now - conn.idle_since < IDLE_S:
                return conn
            if conn.transport is not None:
                conn.transport.close()
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        tls: Any = None
        if scheme == "https":
            tls = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(lambda: _Connection(loop), host, port, ssl=tls,
                                                       server_hostname=host if tls else None)
        except TimeoutError:
            raise ConnectTimeout(f"Connecting to {host}:{port} took over {self.connect_timeout:g} s.") from None
        except OSError as exc:  # refused, unreachable, unknown host, TLS (ssl.SSLError is an OSError)
            raise UpstreamConnectError(f"Cannot connect to {host}:{port}: {exc}") from None
        return conn

    def _release(self, key: tuple[str, str, int], conn: _Connection) -> None:
        if conn.done and conn.keep_alive and not conn.lost and conn.error is None:
            conn.idle_since = time.monotonic()
            self._idle.setdefault(key, []).append(conn)
        elif conn.transport is not None:
            conn.transport.close()

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                if conn.transport is not None:
                    conn.transport.close()
        self._idle.clear()
