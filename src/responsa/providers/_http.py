"""Plumbing shared by providers whose upstream speaks JSON over HTTP with SSE.

Every HTTP upstream fails in the same few ways (refused connections, 429s,
5xx, streams that stop half-way), so the retry policy and the mapping to
``ProviderError`` live here once: clients see identical errors whichever
upstream family served them.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, ClassVar

import orjson

from responsa import __version__
from responsa.config import ProviderConfig
from responsa.providers import http1
from responsa.providers.base import Capabilities, ProviderError

# Failures of the connection (refused, cut, malformed): before the upstream
# produced anything, repeating the request cannot duplicate output.
_RETRY_TRANSPORT = (http1.UpstreamConnectError, http1.UpstreamClosed)
# A longer Retry-After than this is better answered by the engine falling
# back to another model than by holding the client's request open.
_MAX_RETRY_AFTER = 5.0
_STREAM_HEADERS = http1.header_block({"content-type": "application/json", "accept": "text/event-stream"})
_JSON_HEADERS = http1.header_block({"content-type": "application/json"})


def upstream_error(status: int, payload: Any) -> ProviderError:
    """Map an upstream failure to the error our client sees.

    The upstream's own message is kept because it is usually the only useful
    hint (context too long, unknown model...). Upstream 401/403 become 502:
    they mean Responsa's upstream credentials are wrong, which the client
    cannot fix by changing its request.
    """
    message, code, param = _error_fields(payload)
    message = message or f"Upstream returned HTTP {status}."
    if status == 429:
        return ProviderError(message, status=429, code=code or "rate_limit_exceeded", type="rate_limit_error")
    if status in (401, 403):
        return ProviderError(f"The upstream rejected this server's credentials: {message}",
                             code="upstream_auth_error")
    if 400 <= status < 500:
        return ProviderError(message, status=400, code=code or "upstream_error", type="invalid_request_error",
                             param=param, retryable=False)
    return ProviderError(message, status=502, code=code or "upstream_error")


def _error_fields(payload: Any) -> tuple[str | None, str | None, str | None]:
    """Read ``{"error": {...}}`` and the looser shapes self-hosted servers use
    (``{"error": "..."}``, ``{"message": ...}``, ``{"detail": ...}``, plain text)."""
    if isinstance(payload, bytes | bytearray):
        try:
            payload = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return payload.decode(errors="replace").strip()[:1000] or None, None, None
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, dict):
        return None, None, None
    err = payload.get("error", payload)
    if isinstance(err, str):
        return err, None, None
    if not isinstance(err, dict):
        return None, None, None
    message = err.get("message") or err.get("detail")
    code, param = err.get("code"), err.get("param")
    return (str(message) if message else None, code if isinstance(code, str) else None,
            param if isinstance(param, str) else None)


class _SSE:
    """The ``data`` of each SSE event, from whole network reads rather than
    lines (``feed`` returns the events one read completed, so everything
    above it steps once per read, not once per event). Only ``data``
    matters: every upstream we speak repeats the event name inside the JSON
    payload, so ``event:``/``id:`` lines and comments are skipped."""

    __slots__ = ("_buf", "_pending")

    def __init__(self) -> None:
        self._pending = b""
        self._buf: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        out: list[str] = []
        buf = self._buf
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:
                if buf:
                    out.append("\n".join(buf))
                    buf.clear()
            elif line.startswith(b"data:"):
                buf.append(line[6:].decode() if line.startswith(b"data: ") else line[5:].decode())
        return out

    def end(self) -> list[str]:
        """What the body's last bytes hold (an event without its blank line)."""
        buf = self._buf
        if self._pending.startswith(b"data:"):
            buf.append(self._pending.rstrip(b"\r")[5:].lstrip(b" ").decode())
        return ["\n".join(buf)] if buf else []


def _retry_after(resp: http1.Response) -> float:
    try:
        return float(resp.headers.get("retry-after", 0))
    except ValueError:  # an HTTP date: treat as "too long to wait for"
        return _MAX_RETRY_AFTER + 1


class _Deadline:
    """Ends an upstream call that runs too long in total, or that sends no
    data for too long (SSE keep-alive comments reset the socket's read
    timeout, so an upstream that only sends those would otherwise hold a
    response ``in_progress`` forever). One timer per call, re-armed only when
    it fires; a data event costs one float assignment."""

    def __init__(self, total_s: float, idle_s: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.end = self.loop.time() + total_s
        self.idle_s = idle_s
        self.last_data = self.loop.time()
        self.expired: str | None = None
        self._resp: http1.Response | None = None
        self._timer: asyncio.TimerHandle | None = None
        if math.isfinite(total_s) or math.isfinite(idle_s):
            self._arm()

    def watch(self, resp: http1.Response) -> None:
        """The attempt now in flight is the one to cut off."""
        self._resp = resp
        if self.expired:
            resp.close()

    def _arm(self) -> None:
        when = min(self.end, self.last_data + self.idle_s)
        self._timer = self.loop.call_at(when, self._fire) if math.isfinite(when) else None

    def _fire(self) -> None:
        now = self.loop.time()
        if now >= self.end:
            self.expired = "did not finish in time"
        elif now >= self.last_data + self.idle_s:
            self.expired = f"sent no data for {self.idle_s:g} s"
        else:
            self._arm()
            return
        if self._resp is not None:
            self._resp.close()  # the pending read fails; stream_json reports why

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def error(self) -> ProviderError:
        return ProviderError(f"The upstream {self.expired}: the call was abandoned.", status=504,
                             code="upstream_timeout")


async def stream_json(client: http1.Client, url: str, body: dict[str, Any], *,
                      attempts: int, backoff: float, total_timeout: float = math.inf,
                      idle_timeout: float = math.inf) -> AsyncIterator[Any]:
    """POST ``body`` and yield each decoded SSE data payload until EOF or ``[DONE]``.

    Retries happen only while nothing has been yielded: once the caller has
    seen an event a repeat would duplicate output, so later failures raise
    ``ProviderError`` for the engine to turn into ``response.failed``.
    ``total_timeout`` bounds the whole call (all attempts); ``idle_timeout``
    the time between two data events (see ``_Deadline``).
    """
    content = orjson.dumps(body)
    yielded = False
    deadline = _Deadline(total_timeout, idle_timeout)
    try:
        async for events in _attempts(client, url, content, attempts, backoff, deadline):
            yielded = True
            deadline.last_data = deadline.loop.time()
            for event in events:
                yield event
    except (ProviderError, http1.UpstreamError, TimeoutError) as exc:
        if deadline.expired:
            raise deadline.error() from exc
        if yielded and not isinstance(exc, ProviderError):
            raise ProviderError(f"The upstream stream broke off: {exc}") from exc
        raise
    finally:
        deadline.cancel()
    if deadline.expired:
        raise deadline.error()


def _decode(datas: list[str], done: bool) -> tuple[list[Any], bool, ProviderError | None]:
    """The JSON payloads of ``datas`` up to ``[DONE]``, whether it came, and
    the error of a payload that is not JSON (the events before it still count)."""
    events = []
    for data in datas:
        if done or data == "[DONE]":
            done = True
            continue
        try:
            events.append(orjson.loads(data))
        except orjson.JSONDecodeError:
            return events, done, ProviderError(f"The upstream sent invalid JSON: {data[:200]!r}")
    return events, done, None


async def _attempts(client: http1.Client, url: str, content: bytes, attempts: int, backoff: float,
                    deadline: _Deadline) -> AsyncIterator[list[Any]]:
    """The decoded events, as a list per network read that completed any."""
    yielded = False
    for attempt in range(attempts):
        delay = backoff * 2**attempt
        try:
            async with client.request("POST", url, content, _STREAM_HEADERS) as resp:
                deadline.watch(resp)
                if resp.status < 400:
                    # Read on past [DONE] to the end of the body: a response
                    # left unread closes its connection instead of
                    # returning it to the pool.
                    done = False
                    sse = _SSE()
                    async for chunk in resp.chunks():
                        events, done, invalid = _decode(sse.feed(chunk), done)
                        if events:
                            yielded = True
                            yield events
                        if invalid is not None:
                            raise invalid
                    events, done, invalid = _decode(sse.end(), done)
                    if events:
                        yielded = True
                        yield events
                    if invalid is not None:
                        raise invalid
                    return
                error = upstream_error(resp.status, await resp.read())
                retry = resp.status == 429 or resp.status >= 500
                if resp.status == 429:
                    wait = _retry_after(resp)
                    retry = wait <= _MAX_RETRY_AFTER
                    delay = max(delay, wait)
        except TimeoutError as exc:
            error = ProviderError(f"The upstream timed out ({type(exc).__name__}).", status=504,
                                  code="upstream_timeout")
            retry = not yielded and isinstance(exc, http1.ConnectTimeout)
        except http1.UpstreamError as exc:
            if yielded:
                raise ProviderError(f"The upstream stream broke off: {exc}") from exc
            error = ProviderError(f"Cannot reach the upstream: {exc}", code="upstream_unavailable")
            retry = isinstance(exc, _RETRY_TRANSPORT)
        if deadline.expired:
            raise deadline.error()
        if not retry or attempt == attempts - 1:
            raise error
        await asyncio.sleep(delay)


HTTP_OPTIONS = frozenset({"max_retries", "retry_backoff", "timeout", "connect_timeout", "idle_timeout",
                          "total_timeout", "max_connections", "headers", "capabilities", "model_capabilities"})
"""The options every HTTP provider reads (below); each kind adds its own."""


class HTTPProvider:
    """Base for HTTP providers: one pooled client, config-driven capabilities,
    a cached model list. Subclasses add ``stream`` in their wire format."""

    default_base_url: ClassVar[str | None] = None
    default_capabilities: ClassVar[Capabilities] = Capabilities()
    embeddings_path: ClassVar[str | None] = None
    """Where the upstream serves OpenAI's ``POST /embeddings`` (``None``: it does not)."""
    name: str

    def __init__(self, cfg: ProviderConfig) -> None:
        base_url = cfg.base_url or self.default_base_url
        if not base_url:
            raise ProviderError(f"Provider '{cfg.name}' needs a base_url.", status=500,
                                code="provider_misconfigured", retryable=False)
        opts = cfg.options
        self.name = cfg.name
        self._cfg = cfg
        self._attempts = int(opts.get("max_retries", 2)) + 1
        self._backoff = float(opts.get("retry_backoff", 0.2))
        self._caps = self._capabilities_table(opts)
        self._models: list[str] | None = None
        self._base_url = base_url.rstrip("/") + "/"
        self._headers = {"user-agent": f"responsa/{__version__}", **self._auth_headers(cfg.api_key),
                         **opts.get("headers", {})}
        self._pool = int(opts.get("max_connections", 512))
        # Long read timeout: a slow local server may think for minutes before
        # its first token; connecting should never take that long.
        self._read_timeout = float(opts.get("timeout", 300))
        self._connect_timeout = float(opts.get("connect_timeout", 10))
        # Bounds no read timeout gives: the whole call, and the time between
        # two data events (keep-alive comments do not count).
        self._total_timeout = float(opts.get("total_timeout", 1800))
        self._idle_timeout = float(opts.get("idle_timeout", opts.get("timeout", 300)))
        self._client: http1.Client | None = None

    @property
    def client(self) -> http1.Client:
        """Created on first use, inside the event loop that will use it
        (``http1``: why our own client, measured)."""
        if self._client is None:
            self._client = http1.Client(headers=self._headers, max_connections=self._pool,
                                        connect_timeout=self._connect_timeout, read_timeout=self._read_timeout)
        return self._client

    def _url(self, path: str) -> str:
        return self._base_url + path.lstrip("/")

    def _auth_headers(self, api_key: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {api_key}"} if api_key else {}

    def _capabilities_table(self, opts: dict[str, Any]) -> dict[str | None, Capabilities]:
        """Built once so a typo in the config fails at start-up, not per request.
        ``capabilities`` applies to every model, ``model_capabilities.<model>`` to one."""
        try:
            base = replace(self.default_capabilities, **opts.get("capabilities", {}))
            table: dict[str | None, Capabilities] = {None: base}
            for model, over in opts.get("model_capabilities", {}).items():
                table[model] = replace(base, **over)
        except TypeError as exc:
            raise ProviderError(f"Provider '{self.name}' has invalid capabilities: {exc}", status=500,
                                code="provider_misconfigured", retryable=False) from exc
        return table

    def capabilities(self, model: str) -> Capabilities:
        return self._caps.get(model) or self._caps[None]

    async def list_models(self) -> list[str]:
        """Upstream ids plus configured ones; only a successful listing is
        cached, so an upstream that was down at first ask is asked again."""
        if self._models is None:
            try:
                async with asyncio.timeout(10), self.client.request("GET", self._url("models")) as resp:
                    if resp.status >= 400:
                        return list(self._cfg.models)
                    self._models = [m["id"] for m in orjson.loads(await resp.read())["data"]]
            except (http1.UpstreamError, TimeoutError, ValueError, KeyError, TypeError):
                return list(self._cfg.models)
        return list(dict.fromkeys([*self._models, *self._cfg.models]))

    def _stream_json(self, path: str, body: dict[str, Any]) -> AsyncIterator[Any]:
        return stream_json(self.client, self._url(path), body, attempts=self._attempts, backoff=self._backoff,
                           total_timeout=self._total_timeout, idle_timeout=self._idle_timeout)

    async def post_json(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body``, return the decoded JSON answer (a non-streamed call,
        e.g. embeddings). Retried like a stream before its first event
        (refused connections, 5xx, a 429 with a short ``Retry-After``);
        bounded by ``total_timeout``; errors mapped by ``upstream_error``."""
        content = orjson.dumps(body)
        url = self._url(path)
        try:
            async with asyncio.timeout(self._total_timeout if math.isfinite(self._total_timeout) else None):
                for attempt in range(self._attempts):
                    delay = self._backoff * 2**attempt
                    try:
                        async with self.client.request("POST", url, content, _JSON_HEADERS) as resp:
                            raw = await resp.read()
                            if resp.status < 400:
                                try:
                                    return orjson.loads(raw)
                                except orjson.JSONDecodeError:
                                    raise ProviderError(f"The upstream sent invalid JSON: {raw[:200]!r}") from None
                            error = upstream_error(resp.status, raw)
                            retry = resp.status >= 500
                            if resp.status == 429:
                                wait = _retry_after(resp)
                                retry, delay = wait <= _MAX_RETRY_AFTER, max(delay, wait)
                    except http1.ReadTimeout as exc:
                        error = ProviderError(f"The upstream timed out: {exc}", status=504, code="upstream_timeout")
                        retry = False
                    except http1.UpstreamError as exc:
                        error = ProviderError(f"Cannot reach the upstream: {exc}", code="upstream_unavailable")
                        retry = isinstance(exc, (*_RETRY_TRANSPORT, http1.ConnectTimeout))
                    if not retry or attempt == self._attempts - 1:
                        raise error
                    await asyncio.sleep(delay)
        except TimeoutError:
            raise ProviderError("The upstream timed out.", status=504, code="upstream_timeout") from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
