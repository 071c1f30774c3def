"""MCP client sessions for one response.

Each server gets one session per response (its spec already carries that
request's credentials, so the pool key is effectively (server,
credentials)), opened on first use and shared by every list and call of the
response, including parallel calls.

A session lives in its own task: the MCP SDK's transports are anyio task
groups whose cancel scopes must be entered and exited by the same task,
while the engine's event generator may be resumed by different tasks
(Starlette streams from a worker task). Callers only send requests through
the session, which is task-agnostic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import httpx2
import mcp_types
from mcp.client.session import ClientSession
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from responsa.tools.mcp.specs import ServerSpec
from responsa.tools.mcp.urlguard import guarded_client_factory

log = logging.getLogger("responsa.mcp")

CONNECT_TIMEOUT_S = 15.0
CLOSE_TIMEOUT_S = 3.0
T = TypeVar("T")


class MCPUnavailable(Exception):
    """The server could not be reached or dropped the session."""


def describe(exc: BaseException) -> str:
    """A short message for a failure, unwrapping anyio's exception groups.
    Never includes request headers (the SDK's messages do not carry them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return text[:500]


class Connection:
    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self._session: ClientSession | None = None
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        spec = self.spec
        if spec.transport == "stdio":
            assert spec.command is not None
            params = StdioServerParameters(command=spec.command, args=spec.args, env=spec.env or None)
            return await stack.enter_async_context(stdio_client(params))
        assert spec.url is not None
        # A request-supplied URL connects only to the address the SSRF guard
        # judged at connect time (see urlguard); registry servers are trusted.
        factory = guarded_client_factory(spec.egress_allow) if spec.guard_url else create_mcp_http_client
        if spec.transport == "sse":
            return await stack.enter_async_context(
                sse_client(spec.url, headers=spec.headers, timeout=CONNECT_TIMEOUT_S,
                           sse_read_timeout=spec.timeout + CONNECT_TIMEOUT_S, httpx_client_factory=factory))
        http = await stack.enter_async_context(factory(
            headers=spec.headers, timeout=httpx2.Timeout(CONNECT_TIMEOUT_S, read=spec.timeout)))
        return await stack.enter_async_context(streamable_http_client(spec.url, http_client=http))

    async def _run(self) -> None:
        try:
            async with contextlib.AsyncExitStack() as stack:
                read, write = await self._transport(stack)
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                self._session = session
                self._ready.set()
                await self._closing.wait()
        except BaseException as exc:  # reported to every caller instead
            self._error = exc
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._session = None
            self._ready.set()

    async def _guard(self, work: Awaitable[T], timeout: float) -> T:
        """``work`` unless the session dies or time runs out first."""
        assert self._task is not None
        job = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({job, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if job in done:
            return job.result()
        job.cancel()
        with contextlib.suppress(BaseException):
            await job
        if self._task in done:
            raise MCPUnavailable(f"The MCP server closed the session: {describe(self._error or EOFError())}")
        raise TimeoutError(f"The MCP server did not answer within {timeout:g} s.")

    async def session(self) -> ClientSession:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mcp:{self.spec.label}")
        try:
            await asyncio.wait_for(self._ready.wait(), CONNECT_TIMEOUT_S)
        except TimeoutError:
            raise MCPUnavailable(f"Timed out connecting to the MCP server after {CONNECT_TIMEOUT_S:g} s.") from None
        if self._session is None:
            raise MCPUnavailable(f"Could not connect to the MCP server: {describe(self._error or EOFError())}")
        return self._session

    async def list_tools(self) -> list[mcp_types.Tool]:
        session = await self.session()
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        while True:
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await self._guard(session.list_tools(params=params), self.spec.timeout)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor or len(tools) > 1000:
                return tools

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
        session = await self.session()
        return await self._guard(session.call_tool(name, arguments), self.spec.timeout)

    async def aclose(self) -> None:
        task = self._task
        if task is None:
            return
        self._closing.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), CLOSE_TIMEOUT_S)
        except BaseException:  # a server that will not hang up is cut off
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


class Pool:
    """One ``Connection`` per server label, closed together at the end of the response."""

    def __init__(self, specs: list[ServerSpec]) -> None:
        self._conns = {s.label: Connection(s) for s in specs}

    def get(self, label: str) -> Connection:
        return self._conns[label]

    async def aclose(self) -> None:
        await asyncio.gather(*(c.aclose() for c in self._conns.values()), return_exceptions=True)
