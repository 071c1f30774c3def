"""How ``responsa serve`` runs uvicorn: bounded in time and size at the HTTP
layer, below the ASGI app, where the app cannot help.

uvicorn alone (measured in issue 15): a connection that trickles its
headers is kept open forever (1,000 such connections held for 90 s), a
connection that sends nothing is never timed out (the keep-alive timer is
armed only after a first response), a 1 MiB header is accepted (httptools
has no header limit), a malformed request gets a plain-text 400 that no
OpenAI client can parse, and SIGTERM waits forever for a stream that never
ends. ``GuardedHttpToolsProtocol`` adds:

- a header deadline: every request's request line and headers must arrive
  within ``header_timeout_s`` of the connection opening (or of the previous
  response ending); otherwise 408 and the connection is closed;
- a header size limit: request line plus headers above ``max_header_bytes``
  get 431 and the connection is closed;
- every error uvicorn itself writes in the OpenAI error shape (JSON).

``run`` passes ``shutdown_timeout_s`` as uvicorn's graceful-shutdown
timeout: on SIGTERM, requests in flight get that long, then their tasks are
cancelled (a cancelled stream is recorded as failed) and the process exits.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
from typing import Any

import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from responsa import workers
from responsa.config import Settings
from responsa.protocol.errors import ResponsaError, error_body

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def error_bytes(status: int, message: str, code: str) -> bytes:
    """A complete HTTP/1.1 response carrying an OpenAI-shaped error; the connection closes after it."""
    body = orjson.dumps(error_body(ResponsaError(message, status=status, code=code)))
    head = (b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % (status, _REASONS[status], len(body)))
    return head + body


class _HeadersTooLarge(Exception):
    pass


_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _HeadWithBody:
    """The transport one request's cycle writes to. uvicorn writes the
    response head (status line and headers) as soon as the app starts its
    response, and the body in a second write: two ``send()`` calls and two
    TCP segments, each waking the client, for every small response (about
    60 us of CPU each on the benchmark machine, issue 16). Here the head is
    held and goes out in the same write as the first body bytes when they
    come in the same task step (a JSON response, a stream's first batch);
    otherwise it is flushed at the next turn of the event loop, so a stream
    waiting for its first event still sends its headers at once."""

    __slots__ = ("_head", "_loop", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if not self._started and data != _CONTINUE:  # the cycle's first write after an interim 100: the head
            self._started = True
            self._head = data
            self._loop.call_soon(self._flush)
            return
        head = self._head
        if head is not None:
            self._head = None
            data = head + data
        self._transport.write(data)

    def _flush(self) -> None:
        head, self._head = self._head, None
        if head is not None and not self._transport.is_closing():
            self._transport.write(head)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self._flush()
        self._transport.close()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline, a header size
    limit and JSON errors (see the module docstring)."""

    header_timeout_s: float = 10.0
    max_header_bytes: int = 64 * 1024

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._header_timer: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._header_bytes = 0
        self._parsed_bytes = 0
        self._rejection: tuple[int, str, str] | None = None

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_headers = True
        self._header_bytes = 0
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        # Still inside the headers after this chunk, and already past the limit:
        # the parser buffers partial header lines, so refuse before it grows.
        if (self._in_headers and self._header_bytes > self.max_header_bytes and self.parser is not None
                and not self.transport.is_closing()):
            self._reject(431, f"Request headers too large (limit {self.max_header_bytes} bytes).",
                         "request_headers_too_large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._parsed_bytes = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count(len(name) + len(value) + 4)

    def _count(self, size: int) -> None:
        """Header bytes as parsed (a whole request in one read is counted here)."""
        self._parsed_bytes += size
        if self._parsed_bytes > self.max_header_bytes:
            self._rejection = (431, f"Request headers too large (limit {self.max_header_bytes} bytes).",
                               "request_headers_too_large")
            raise _HeadersTooLarge  # httptools turns it into HttpParserCallbackError -> send_400_response

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._disarm()
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle is not before:
            cycle.transport = _HeadWithBody(self.transport, self.loop)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # The next request's headers are timed from here (the keep-alive timer
        # only covers a connection that stays silent).
        if not self.transport.is_closing():
            self._in_headers = True
            self._header_bytes = 0
            self._arm()

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or not self._in_headers:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a response is still being written on this connection
        self._reject(408, f"The request headers did not arrive within {self.header_timeout_s:g} s.",
                     "request_timeout")

    def _reject(self, status: int, message: str, code: str) -> None:
        self._disarm()
        self.logger.warning("Closing connection: %s", message)
        self.transport.write(error_bytes(status, message, code))
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        rejection, self._rejection = self._rejection, None
        if rejection is not None:
            self._reject(*rejection)
            return
        self._disarm()
        self.transport.write(error_bytes(400, msg, "invalid_http_request"))
        self.transport.close()


def protocol_class(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    """``GuardedHttpToolsProtocol`` with this server's limits (uvicorn instantiates the class itself)."""
    return type("ResponsaHttpProtocol", (GuardedHttpToolsProtocol,),
                {"header_timeout_s": settings.header_timeout_s, "max_header_bytes": settings.max_header_bytes})


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class OpenModeRefused(SystemExit):
    pass


def check_open_mode(settings: Settings) -> None:
    """Refuse to serve a non-loopback address without API keys unless told to.

    Without ``api_keys`` every caller that sends no key shares one tenant
    (``anonymous``): anyone who can reach the port reads and deletes what
    every other key-less caller stored. On 127.0.0.1 that is a developer's
    laptop; on 0.0.0.0 it is a data leak, so it takes an explicit
    ``--allow-open-mode`` (or ``allow_open_mode = true``)."""
    if settings.api_keys or settings.allow_open_mode or is_loopback(settings.host):
        return
    raise OpenModeRefused(
        f"responsa: refusing to serve {settings.host} without API keys: every caller without a key would share "
        "the 'anonymous' tenant (and see each other's stored responses). Set api_keys / RESPONSA_API_KEYS, "
        "bind to 127.0.0.1, or pass --allow-open-mode if an open server is what you want.")


def run(app: Any, settings: Settings, *, access_log: bool) -> None:
    """uvicorn with this server's guards; ``settings.workers`` processes on the port (``responsa.workers``)."""
    import uvicorn

    check_open_mode(settings)
    options: dict[str, Any] = dict(
        host=settings.host, port=settings.port, log_level=settings.log_level.lower(), access_log=access_log,
        http=protocol_class(settings),
        log_config=None,  # keep the handlers `responsa serve` set up (observability.logs)
        timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_timeout_s)),
        h11_max_incomplete_event_size=settings.max_header_bytes)
    if settings.workers > 1:
        workers.run(uvicorn.Config(app, **options), settings.workers, settings.host, settings.port)
    else:
        uvicorn.run(app, **options)


__all__ = ["GuardedHttpToolsProtocol", "OpenModeRefused", "check_open_mode", "error_bytes", "is_loopback",
           "protocol_class", "run"]
